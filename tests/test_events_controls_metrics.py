"""Control cases and the per-case event metrics, against hand values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError
from workbench.events.controls import control_cases
from workbench.scoring.event_metrics import convective_contingency, onset_duration_error, peak_error

NY, NX = 6, 8
TIMES = pd.date_range("2020-06-01T00", periods=6, freq="h")
LATLON = {
    "latitude": (("y", "x"), 30.0 + np.mgrid[0:NY, 0:NX][0]),
    "longitude": (("y", "x"), -100.0 + np.mgrid[0:NY, 0:NX][1]),
}


def case_table(**overrides):
    row = dict(event_id="c1", event_type="heat", start=pd.Timestamp("2020-06-01T01"),
               end=pd.Timestamp("2020-06-01T02"), y_min=1, y_max=2, x_min=1, x_max=2, lat_min=31.0,
               lat_max=32.0, lon_min=-99.0, lon_max=-98.0, source="threshold", details="")  # fmt: skip
    row.update(overrides)
    return pd.DataFrame([row])


def test_control_is_the_nearest_clear_box_over_the_same_hours():
    masks = np.zeros((1, 6, NY, NX), dtype=bool)
    masks[0, 1:3, 1:3, 1:3] = True  # the case itself
    masks[0, 2, 1:3, 3:5] = True  # another event right of it at 02 UTC: the control must avoid it
    masks[0, 5, 1:3, 5:7] = True  # at 05 UTC, outside the case's hours: irrelevant
    masks = xr.DataArray(masks, dims=("event_type", "time", "y", "x"),
                         coords={"event_type": ["heat"], "time": TIMES, **LATLON})  # fmt: skip
    controls = control_cases(case_table(), masks)
    c = controls.iloc[0]
    # same size (2 x 2) and hours. Shifts by 1 (or 1 diagonally) overlap the case itself; at distance 2,
    # up is off the grid, right (columns 3-4) is the other event at 02 UTC, left is off the grid, down
    # (rows 3-4) is clear: (3, 1). A brute-force search agrees.
    occupied = masks.any("event_type").isel(time=[1, 2]).any("time").values
    best = min(
        ((np.hypot(y - 1, x - 1), y, x) for y in range(NY - 1) for x in range(NX - 1)
         if not occupied[y : y + 2, x : x + 2].any()),
    )  # fmt: skip
    assert (c.y_min, c.x_min) == (best[1], best[2]) == (3, 1)
    assert (c.y_max - c.y_min, c.x_max - c.x_min) == (1, 1)
    assert (c.start, c.end) == (pd.Timestamp("2020-06-01T01"), pd.Timestamp("2020-06-01T02"))
    assert c.event_type == "control" and "control for c1 (heat); shift (2, 0)" in c.details
    assert not masks.any("event_type").isel(time=[1, 2], y=slice(3, 5), x=slice(1, 3)).any()
    with pytest.warns(UserWarning, match="no clear position"):
        assert len(control_cases(case_table(), masks, max_shift=1)) == 0


def forecast_and_truth():
    truth = np.full((6, NY, NX), 300.0)
    truth[2, 1, 1] = 312.0  # observed peak 312 K at 02 UTC; above 311.15 at 02-03 UTC
    truth[3, 2, 2] = 311.5
    fc = np.full((3, 4, NY, NX), 300.0)  # inits 00, 01, 02 UTC; leads 0-3 h
    fc[0, 1, 1, 1] = 315.0  # init 00, valid 01 UTC: onset one hour early
    fc[0, 2, 1, 1] = 314.0  # valid 02 UTC
    fc[1, 1, 2, 2] = 309.0  # init 01 + 1 h = 02 UTC
    truth = xr.Dataset({"t2m": (("time", "y", "x"), truth)}, coords={"time": TIMES, **LATLON})
    forecast = xr.Dataset(
        {"t2m": (("init_time", "lead_time", "y", "x"), fc)},
        coords={"init_time": TIMES[:3], "lead_time": pd.to_timedelta(range(4), unit="h"), **LATLON},
    )
    return forecast, truth


def test_peak_onset_and_duration_errors_by_hand():
    forecast, truth = forecast_and_truth()
    cases = case_table(end=pd.Timestamp("2020-06-01T03"))
    peak = peak_error(forecast, truth, cases, lead_time="1h")
    # hours 01-03 with a 1-h forecast: valid 01 (init 00: 315), 02 (init 01: max 309), 03 (init 02: 300)
    assert peak.loc["c1", "observed"] == 312.0 and peak.loc["c1", "forecast"] == 315.0
    assert peak.loc["c1", "error"] == pytest.approx(3.0) and peak.loc["c1", "n_hours"] == 3
    od = onset_duration_error(forecast, truth, cases, threshold=311.15)
    # the run started at 01 UTC (latest init <= start) covers 01-03 UTC: it never passes 311.15 (309)
    assert od.loc["c1", "init_time"] == pd.Timestamp("2020-06-01T01")
    assert od.loc["c1", "observed_onset"] == pd.Timestamp("2020-06-01T02")
    assert od.loc["c1", "observed_duration_h"] == 2.0 and od.loc["c1", "forecast_duration_h"] == 0.0
    assert np.isnan(od.loc["c1", "onset_error_h"]) and od.loc["c1", "duration_error_h"] == -2.0
    # from the 00 UTC run (start at 01 with min_lead 1 h): onset 01 UTC, an hour early; 01-02 UTC
    early = onset_duration_error(forecast, truth, cases, threshold=311.15, min_lead="1h")
    assert early.loc["c1", "onset_error_h"] == -1.0 and early.loc["c1", "duration_error_h"] == 0.0
    with pytest.raises(DataError, match="kind must be"):
        peak_error(forecast, truth, cases, kind="mean")


def test_convective_contingency_by_hand():
    refc = np.zeros((3, 2, NY, NX))
    refc[0, 1, 4, 4] = 55.0  # init 00 + 1 h = 01 UTC, 2 cells right of the case box (x 1-2 grown by 1)
    refc[1, 1, 0, 7] = 60.0  # 02 UTC, far from the case: a false alarm
    forecast = xr.Dataset(
        {"refc": (("init_time", "lead_time", "y", "x"), refc)},
        coords={"init_time": TIMES[:3], "lead_time": pd.to_timedelta([0, 1], unit="h"), **LATLON},
    )
    cases = case_table(event_type="hail")
    # 3-km cells: a 3-km radius grows the box by one cell (rows 0-3, columns 0-3): (4, 4) is outside
    out = convective_contingency(forecast, cases, radius_km=3.0, spacing_km=3.0, lead_time="1h")
    assert out.loc["c1", "outcome"] == "miss"
    assert (out.outcome == "false_alarm").sum() == 2
    # 6 km: two cells, rows 0-4, columns 0-4: the 01 UTC storm is a hit; the 02 UTC one stays a false alarm
    out = convective_contingency(forecast, cases, radius_km=6.0, spacing_km=3.0, lead_time="1h")
    assert out.loc["c1", "outcome"] == "hit"
    fa = out[out.outcome == "false_alarm"]
    assert len(fa) == 1 and fa.valid_time.iloc[0] == pd.Timestamp("2020-06-01T02") and fa.n_cells.iloc[0] == 1
    with pytest.raises(DataError, match="spacing_km"):
        convective_contingency(forecast, cases, lead_time="1h")
