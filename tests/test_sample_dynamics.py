"""Tests of the sample atmosphere's building blocks against hand-computed values."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from workbench.grids import hrrr_grid, latlon_grid
from workbench.sample import TRUTH_PARAMS
from workbench.sample import geography as geo
from workbench.sample.flow import (
    EARTH_RADIUS,
    GRAVITY,
    OMEGA,
    Evaluator,
    FlowState,
    initial_flow,
    phase_speed,
)
from workbench.sample.nwp import step_schedule
from workbench.sample.reports import NCEI_COLUMNS, _fmt_date_time
from workbench.sample.storms import StormSet
from workbench.sample.tracers import Coarsened, ModelGrid, advect


def _one_wave(m: int, lat0: float = 47.0) -> FlowState:
    return FlowState(
        time_h=0.0,
        m=np.array([m]),
        lat0=np.array([lat0]),
        amp=np.array([100.0]),
        amp_mean=np.array([100.0]),
        phase=np.array([0.0]),
        amp_rate=np.zeros(1),
        phase_rate=np.zeros(1),
    )


def test_rossby_phase_speed_follows_the_dispersion_relation():
    # June 1 (day 152): northern jet speed 20 + 8 cos(2 pi (152 - 20) / 365.25)
    u = 20.0 + 8.0 * np.cos(2 * np.pi * 132 / 365.25)
    phi = np.deg2rad(47.0)
    beta = 2 * OMEGA * np.cos(phi) / EARTH_RADIUS
    l_mer = np.pi / (2.5 * np.deg2rad(14.0) * EARTH_RADIUS)
    for m in (1, 5, 8):
        k = m / (EARTH_RADIUS * np.cos(phi))
        c = u - beta / (k**2 + l_mer**2)
        assert phase_speed(_one_wave(m), TRUTH_PARAMS)[0] == pytest.approx(k * c * 3600.0, rel=1e-12)
    # long waves drift west, short waves ride east with the jet
    assert phase_speed(_one_wave(1), TRUTH_PARAMS)[0] < 0 < phase_speed(_one_wave(8), TRUTH_PARAMS)[0]


def test_winds_are_geostrophic():
    flow = initial_flow(np.random.default_rng(3), TRUTH_PARAMS)
    lat = np.array([40.0, 50.0, -45.0])
    lon = np.array([-100.0, 10.0, 120.0])
    ev = Evaluator(lat, lon)
    _, u, v = ev.wind(flow, "z500", TRUTH_PARAMS)
    h = 0.01  # degrees
    zn = Evaluator(lat + h, lon).height(flow, "z500", TRUTH_PARAMS)[0]
    zs = Evaluator(lat - h, lon).height(flow, "z500", TRUTH_PARAMS)[0]
    ze = Evaluator(lat, lon + h).height(flow, "z500", TRUTH_PARAMS)[0]
    zw = Evaluator(lat, lon - h).height(flow, "z500", TRUTH_PARAMS)[0]
    f = 2 * OMEGA * np.sin(np.deg2rad(lat))
    dy = EARTH_RADIUS * np.deg2rad(2 * h)
    dx = dy * np.cos(np.deg2rad(lat))
    np.testing.assert_allclose(u, -GRAVITY / f * (zn - zs) / dy, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(v, GRAVITY / f * (ze - zw) / dx, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("grid", [hrrr_grid(96.0), latlon_grid(5.625)], ids=["lambert", "latlon"])
def test_semi_lagrangian_advection_moves_a_blob_with_the_wind(grid):
    mg = ModelGrid(grid)
    lat0, lon0 = 40.0, -100.0
    d2 = (mg.lat - lat0) ** 2 + ((mg.lon - lon0) * np.cos(np.deg2rad(lat0))) ** 2
    blob = np.exp(-d2 / (2 * 6.0**2))
    u = np.full(mg.shape, 20.0)
    v = np.zeros(mg.shape)
    moved = blob
    for _ in range(10):
        (moved,) = advect(mg, [moved], u, v, 3600.0)
    w = moved / moved.sum()
    # centroid of the moved blob: 10 h at 20 m/s eastward is 720 km, 8.46 degrees of longitude at 40 N
    shift = (np.sum(w * mg.lon) - np.sum(blob * mg.lon) / blob.sum()) * 111.195 * np.cos(np.deg2rad(lat0))
    assert shift == pytest.approx(720.0, rel=0.12)
    assert abs(np.sum(w * mg.lat) - np.sum(blob * mg.lat) / blob.sum()) < 0.5


def test_coarse_evaluation_interpolates_linearly():
    mg = ModelGrid(hrrr_grid(24.0))
    c = Coarsened(mg, 4)
    ramp = 3.0 * mg.lat + 0.5 * mg.lon  # not linear in index space, but smooth
    up = c.upsample(3.0 * c.lat + 0.5 * c.lon)
    np.testing.assert_allclose(up[np.ix_(c.rows, c.cols)], 3.0 * c.lat + 0.5 * c.lon)
    assert np.abs(up - ramp).max() < 0.05


def test_storm_cell_life_cycle_and_motion():
    storms = StormSet()
    storms.cells = {
        "id": np.array([1.0]), "system": np.array([1.0]), "lat0": np.array([35.0]), "lon0": np.array([-97.0]),
        "t0": np.array([10.0]), "u": np.array([10.0]), "v": np.array([5.0]), "life": np.array([4.0]),
        "dbz": np.array([60.0]), "radius": np.array([1e4]), "gust": np.array([30.0]), "tornado": np.array([0.0]),
    }  # fmt: skip
    lat, lon, inten = storms.cell_positions(12.0)
    assert inten[0] == pytest.approx(1.0)  # peak at half its life
    assert lat[0] - 35.0 == pytest.approx(np.rad2deg(5.0 * 7200 / EARTH_RADIUS), rel=1e-9)
    assert (lon[0] + 97.0) * np.cos(np.deg2rad(35.0)) == pytest.approx(np.rad2deg(10.0 * 7200 / EARTH_RADIUS))
    assert storms.cell_positions(11.0)[2][0] == pytest.approx(np.sin(np.pi / 4) ** 0.8)
    assert storms.cell_positions(9.0)[2][0] == 0.0 and storms.cell_positions(14.5)[2][0] == 0.0


def test_nwp_step_schedule_ends_with_an_hour():
    assert step_schedule(0) == []
    assert step_schedule(1) == [1]
    assert step_schedule(3) == [2, 1]
    assert step_schedule(6) == [5, 1]
    assert step_schedule(12) == [5, 5, 1, 1]
    assert all(sum(step_schedule(g)) == g for g in range(1, 49))


def test_ncei_columns_and_date_format():
    assert len(NCEI_COLUMNS) == 51
    assert NCEI_COLUMNS[:8] == (
        "BEGIN_YEARMONTH", "BEGIN_DAY", "BEGIN_TIME", "END_YEARMONTH", "END_DAY", "END_TIME", "EPISODE_ID", "EVENT_ID",
    )  # fmt: skip
    assert NCEI_COLUMNS[-3:] == ("EPISODE_NARRATIVE", "EVENT_NARRATIVE", "DATA_SOURCE")
    assert _fmt_date_time(datetime(2020, 6, 1, 14, 30)) == "01-JUN-20 14:30:00"


def test_geography_lookups():
    s = geo.states()
    i = int(geo.state_index(np.array([35.5]), np.array([-97.5]))[0])
    assert (s.name[i], s.abbrev[i], s.fips[i]) == ("OKLAHOMA", "OK", 40)
    assert geo.STATE_TIMEZONE["OK"] == "CST-6"
    assert geo.state_index(np.array([30.0]), np.array([-140.0]))[0] == 0  # Pacific
    town, miles, az = geo.nearest_town(np.array([35.22]), np.array([-97.30]))
    assert miles[0] < 15 and az[0] in {"N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW",
                                       "W", "WNW", "NW", "NNW"}  # fmt: skip
    land = geo.land_fraction(np.array([39.0, 30.0]), np.array([-100.0, -140.0]))
    np.testing.assert_array_equal(land, [1.0, 0.0])
