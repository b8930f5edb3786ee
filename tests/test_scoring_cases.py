"""HR-Extreme's scoring convention: unweighted RMSE per case, then the mean over cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError
from workbench.scoring.cases import case_rmse, mean_over_cases

TIMES = pd.date_range("2020-06-01T00", periods=6, freq="h")


def data():
    truth = xr.Dataset({"t2m": (("time", "y", "x"), np.zeros((6, 4, 5)))}, coords={"time": TIMES})
    inits = TIMES[:4]
    leads = pd.to_timedelta([1, 2], unit="h")
    err = np.zeros((4, 2, 4, 5))
    err[:, 0] = 1.0  # 1 K everywhere at 1 h
    err[1, 0, 0, 0] = 3.0  # valid at 02 UTC, cell (0, 0)
    err[:, 1] = 50.0  # the 2-h lead must never be used
    fc = xr.Dataset(
        {"t2m": (("init_time", "lead_time", "y", "x"), err)}, coords={"init_time": inits, "lead_time": leads}
    )
    return fc, truth


def table():
    return pd.DataFrame(
        {
            "event_id": ["a", "b", "c"],
            "event_type": ["Hail", "Hail+Tornado", "Heat"],
            "start": pd.to_datetime(["2020-06-01T02", "2020-06-01T01", "2020-06-01T05"]),
            "end": pd.to_datetime(["2020-06-01T02", "2020-06-01T03", "2020-06-01T05"]),
            "y_min": [0, 1, 0], "y_max": [1, 1, 0], "x_min": [0, 0, 0], "x_max": [1, 4, 0],
        }
    )  # fmt: skip


def test_case_rmse_by_hand():
    fc, truth = data()
    per_case = case_rmse(fc, truth, table())
    # case a: one hour (02 UTC) on a 2x2 box: errors 3, 1, 1, 1 -> sqrt((9 + 3) / 4) = sqrt(3)
    assert per_case.loc["a", "t2m"] == pytest.approx(np.sqrt(3.0))
    assert per_case.loc["a", "n_hours"] == 1
    # case b: 01-03 UTC, row 1 only: every error 1
    assert per_case.loc["b", "t2m"] == pytest.approx(1.0) and per_case.loc["b", "n_hours"] == 3
    # case c: 05 UTC would need the 04 UTC start, which the forecast lacks
    assert per_case.loc["c", "n_hours"] == 0 and np.isnan(per_case.loc["c", "t2m"])
    by_type = mean_over_cases(per_case)
    # each case counts once: Hail = mean(sqrt 3, 1), Tornado = 1; Heat has no scored case
    assert by_type.loc["Hail", "t2m"] == pytest.approx((np.sqrt(3.0) + 1.0) / 2)
    assert by_type.loc["Tornado", "t2m"] == pytest.approx(1.0)
    assert by_type.loc["Hail", "n_cases"] == 2 and "Heat" not in by_type.index
    overall = mean_over_cases(per_case, by_type=False)
    assert overall.loc["all", "t2m"] == pytest.approx((np.sqrt(3.0) + 1.0) / 2)


def test_case_rmse_bad_inputs():
    fc, truth = data()
    with pytest.raises(DataError, match="lead time 0 days 03:00:00 is not in the forecast"):
        case_rmse(fc, truth, table(), lead_time="3h")
    bad = table().assign(x_max=[9, 4, 0])
    with pytest.raises(DataError, match="outside the 4 x 5 grid"):
        case_rmse(fc, truth, bad)
