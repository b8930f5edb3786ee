"""Tests of the climate pieces of the sample generator (version 3) against hand values and target slopes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.grids import hrrr_grid
from workbench.sample import TRUTH_PARAMS
from workbench.sample import geography as geo
from workbench.sample.atmosphere import Surface, diurnal_shape
from workbench.sample.eddies import Eddies
from workbench.sample.flow import bounded_z500
from workbench.sample.reports import REPORT_REACH_KM, _Builder
from workbench.sample.tracers import ModelGrid


@pytest.fixture(scope="session")
def climate_script(benchmark_module):
    """``benchmarks/sample_climate.py``, whose measurements these tests check."""
    return benchmark_module("sample_climate")


@pytest.fixture(scope="module")
def grid24(workbench_cache):
    geo.use_cache_dir(Path(workbench_cache) / "sample")
    return ModelGrid(hrrr_grid(24.0))


def test_ke_spectrum_slope_recovers_a_known_power_law(climate_script):
    # a random field with E(k) ~ k^-3 exactly: the measured slope must be close to -3
    rng = np.random.default_rng(1)
    n, dx = 256, 24.0
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n, dx), np.fft.fftfreq(n, dx)))
    k[0, 0] = np.inf
    amp = np.sqrt(k**-3.0 / k)  # per-mode variance E(k) / (2 pi k)
    fields = [np.fft.ifft2(amp * (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))).real for _ in range(8)]
    script = climate_script
    wl, e = script.ke_spectrum(np.array(fields), np.zeros((8, n, n)), dx)
    assert script.slope(wl, e, 100.0, 1500.0) == pytest.approx(-3.0, abs=0.3)


def test_eddies_have_the_nastrom_gage_slopes_and_their_rms(grid24, climate_script):
    script = climate_script
    rng = np.random.default_rng(0)
    ed = Eddies(grid24.shape, grid24.spacing_m, grid24.lat, TRUTH_PARAMS, rng)
    us, vs = [], []
    for _ in range(12):
        ed.psi_hat = ed._noise(rng, 1.0)
        ed._fields = None
        f = ed.fields()
        us.append(f["u"])
        vs.append(f["v"])
    wl, e = script.ke_spectrum(np.array(us), np.array(vs), 24.0)
    assert -3.5 < script.slope(wl, e, 400.0, 1500.0) < -2.5
    assert -2.2 < script.slope(wl, e, 100.0, 300.0) < -1.3
    # var(u) + var(v) is the parameter (over the padded domain; the grid sees most of it)
    rms = np.sqrt(np.mean(np.var(us, axis=(1, 2)) + np.var(vs, axis=(1, 2))))
    assert rms == pytest.approx(TRUTH_PARAMS.eddy_rms_ms, rel=0.35)


def test_eddies_decorrelate_at_small_scales_first(grid24):
    rng = np.random.default_rng(3)
    a = Eddies(grid24.shape, grid24.spacing_m, grid24.lat, TRUTH_PARAMS, rng)
    b = a.copy()
    # two forecasts of the same eddies with their own random forcing, 12 h
    for _ in range(12):
        a.step(1.0, 0.0, 0.0, np.random.default_rng(rng.integers(1 << 30)))
        b.step(1.0, 0.0, 0.0, np.random.default_rng(rng.integers(1 << 30)))
    wavelength = 1e-3 / a.k
    corr = {}
    for name, sel in (("large", wavelength > 800), ("small", (wavelength < 150) & (wavelength > 50))):
        x, y = a.psi_hat[sel], b.psi_hat[sel]
        corr[name] = float(np.real(np.vdot(x, y)) / np.sqrt(np.vdot(x, x).real * np.vdot(y, y).real))
    assert corr["large"] > 0.5 > corr["small"], corr
    # and without forcing and wind, eddies only decay
    c = a.copy()
    c.step(6.0, 0.0, 0.0, None)
    assert np.all(np.abs(c.psi_hat) <= np.abs(a.psi_hat) + 1e-12)


def test_bounded_z500_keeps_the_middle_and_squashes_the_extremes():
    z = np.array([5000.0, 5440.0, 5600.0, 5880.0, 6200.0])
    out, slope = bounded_z500(z)
    assert out[2] == 5600.0 and slope[2] == 1.0
    assert 5320.0 < out[0] < 5440.0 and out[4] < 5970.0
    assert np.all(np.diff(out) > 0) and np.all((slope > 0) & (slope <= 1))
    # the factor is the derivative: finite differences agree
    h = 1e-3
    num = (bounded_z500(z + h)[0] - bounded_z500(z - h)[0]) / (2 * h)
    np.testing.assert_allclose(slope, num, rtol=1e-5)


def test_diurnal_shape_is_a_skewed_land_cycle():
    hours = np.arange(0, 24, 0.25)
    g = diurnal_shape(hours)
    assert g.min() == pytest.approx(-1.0) and g.max() == pytest.approx(1.0)
    assert hours[np.argmin(g)] == 6.0 and hours[np.argmax(g)] == 15.0
    # warming takes 9 h, cooling 15 h: three hours after the maximum the air is nearly as warm as
    # three hours before it; by midnight it has lost most of the day's warmth
    assert diurnal_shape(np.array(18.0)) == pytest.approx(diurnal_shape(np.array(12.0)), abs=0.3)
    assert diurnal_shape(np.array(0.0)) < -0.5
    assert np.all(np.diff(diurnal_shape(np.arange(15.0, 30.0, 0.5) % 24)) < 0)


def test_orography_and_moisture_climate(grid24):
    assert geo.orography(40.0, -108.5) > 2000.0  # the Rockies
    assert 300.0 < geo.orography(40.0, -98.0) < geo.orography(40.0, -103.0) < 1800.0  # the High Plains rise
    assert geo.orography(40.0, -140.0) < 1.0  # the Pacific
    sf = Surface(grid24)
    lat, lon = grid24.lat, grid24.lon

    def mean(field, la, lo):
        sel = (abs(lat - la) < 1.5) & (abs(lon - lo) < 1.5) & (sf.land > 0.9)
        return float(field[sel].mean())

    assert mean(sf.rh, 38.0, -96.0) > mean(sf.rh, 38.0, -110.0) + 0.2  # moist Plains, dry West
    assert mean(sf.marine, 37.0, -122.0) > 0.3 > mean(sf.marine, 38.0, -96.0)  # the cold California coast
    assert mean(sf.eml, 38.0, -97.0) > 3.0  # the elevated mixed layer over the Plains


def test_reports_are_made_near_towns(grid24):
    b = _Builder(grid24, np.random.default_rng(5))
    far = 0
    for iy, ix in zip(*np.nonzero(geo.state_index(grid24.lat, grid24.lon)[::7, ::7] > 0), strict=True):
        pos = b.point(iy * 7, ix * 7)
        if pos is None:
            far += 1
            continue
        _, miles, _ = geo.nearest_town(pos[0], pos[1])
        if miles[0] * 1.609 > REPORT_REACH_KM + 20:
            far += 1
    n = np.count_nonzero(geo.state_index(grid24.lat, grid24.lon)[::7, ::7] > 0)
    assert far < 0.6 * n
    # positions drawn near a town are a few miles out: the median BEGIN_RANGE of such reports <= 5 mi
    ranges = []
    for iy, ix in zip(*np.nonzero(geo.state_index(grid24.lat, grid24.lon)[::5, ::5] > 0), strict=True):
        pos = b.point(iy * 5, ix * 5)
        if pos is not None:
            ranges.append(int(geo.nearest_town(pos[0], pos[1])[1][0]))
    assert np.median(ranges) <= 5
