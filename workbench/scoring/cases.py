"""Case-based scoring: HR-Extreme's convention, one RMSE per case, averaged over cases.

HR-Extreme (``test_nwp.py``) scores each case on its own: the squared error over the case's box and
hours, **unweighted** (every cell counts the same), gives one RMSE per case; these are averaged over the
cases (per event type), at a lead time of one hour. This differs from :func:`workbench.scoring.decompose`,
which pools the area-weighted squared error of every extreme cell-time before taking the root: there a
long, large case weighs more, here every case counts once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError

_HOUR = np.timedelta64(1, "h")


def _box(table_row, ydim: str, xdim: str) -> dict:
    return {
        ydim: slice(int(table_row.y_min), int(table_row.y_max) + 1),
        xdim: slice(int(table_row.x_min), int(table_row.x_max) + 1),
    }


def _grid_dims(da: xr.DataArray) -> tuple[str, str]:
    if {"y", "x"} <= set(da.dims):
        return "y", "x"
    if {"latitude", "longitude"} <= set(da.dims):
        return "latitude", "longitude"
    raise DataError(f"cannot find the grid dims (y, x) or (latitude, longitude) in {tuple(da.dims)}")


def case_rmse(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    cases: pd.DataFrame,
    *,
    lead_time: np.timedelta64 | pd.Timedelta | str = "1h",
    variables: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Unweighted RMSE over each case's box and hours, at one lead time (HR-Extreme's convention).

    For case :math:`c` with cells and hours :math:`i \\in c` that have both a forecast at ``lead_time``
    and a truth: :math:`\\mathrm{RMSE}_c = \\sqrt{\\frac{1}{n_c}\\sum_{i \\in c} (f_i - o_i)^2}` (NaNs
    skipped).

    Parameters
    ----------
    forecast : xarray.Dataset
        Dims ``(init_time, lead_time, <grid>)``; the field valid at ``t`` is the one started at
        ``t - lead_time``.
    truth : xarray.Dataset
        Dims ``(time, <grid>)`` on the same grid.
    cases : pandas.DataFrame
        Event table (``event_id, event_type, start, end, y_min, y_max, x_min, x_max``), e.g. from
        :func:`workbench.events.hr_extreme_cases`; every hour from ``start`` to ``end`` is scored.
    lead_time : timedelta-like
        The lead time scored (HR-Extreme: 1 hour).
    variables : sequence of str, optional
        Default: the forecast variables that the truth has.

    Returns
    -------
    pandas.DataFrame
        One row per case (index ``event_id``): ``event_type``, ``n_hours`` (hours with a forecast and a
        truth) and one RMSE column per variable (NaN for a case with no such hour).

    Raises
    ------
    DataError
        The lead time is not in the forecast, a variable is missing, or a box is off the grid.
    """
    lead = pd.Timedelta(lead_time).to_timedelta64()
    if "lead_time" not in forecast.dims or "init_time" not in forecast.dims:
        raise DataError(f"the forecast needs (init_time, lead_time) dims, it has {tuple(forecast.dims)}")
    leads = forecast["lead_time"].values.astype("timedelta64[ns]")
    if not (leads == lead).any():
        raise DataError(f"lead time {pd.Timedelta(lead)} is not in the forecast (it has {len(leads)} leads)")
    names = list(variables) if variables is not None else [v for v in forecast.data_vars if v in truth]
    missing = [v for v in names if v not in forecast or v not in truth]
    if missing or not names:
        raise DataError(f"variables {missing or names} are not in both forecast and truth")
    required = {"event_id", "event_type", "start", "end", "y_min", "y_max", "x_min", "x_max"}
    if not isinstance(cases, pd.DataFrame) or not required <= set(cases.columns):
        raise DataError(f"cases must be an event table with columns {sorted(required)}")
    fc = forecast[names].sel(lead_time=lead)
    ydim, xdim = _grid_dims(fc[names[0]])
    ny, nx = fc.sizes[ydim], fc.sizes[xdim]
    off = (cases.y_max >= ny) | (cases.x_max >= nx) | (cases.y_min < 0) | (cases.x_min < 0)
    if off.any():
        raise DataError(f"{int(off.sum())} case boxes reach outside the {ny} x {nx} grid")
    valid = pd.DatetimeIndex(fc["init_time"].values + lead)
    truth_times = truth.indexes["time"]
    rows = []
    for case in cases.itertuples(index=False):
        hours = pd.date_range(pd.Timestamp(case.start).floor("h"), pd.Timestamp(case.end), freq="h")
        hours = hours[hours.isin(valid) & hours.isin(truth_times)]
        row = {"event_id": case.event_id, "event_type": case.event_type, "n_hours": len(hours)}
        box = _box(case, ydim, xdim)
        for name in names:
            if not len(hours):
                row[name] = np.nan
                continue
            f = fc[name].isel(init_time=valid.get_indexer(hours), **box).values
            o = truth[name].isel(time=truth_times.get_indexer(hours), **box).values
            se = (np.asarray(f, dtype=np.float64) - o) ** 2
            ok = np.isfinite(se)
            row[name] = float(np.sqrt(se[ok].mean())) if ok.any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["event_id", "event_type", "n_hours", *names]).set_index("event_id")


def mean_over_cases(per_case: pd.DataFrame, by_type: bool = True) -> pd.DataFrame:
    """Average per-case scores over cases (each case once), per event type or over all.

    A case of a joined type (``"Hail+Tornado"``) counts in each of its types. Cases without a scored
    hour (NaN) are left out; ``n_cases`` counts the others.
    """
    if "event_type" not in per_case.columns:
        raise DataError("per_case needs an 'event_type' column (the output of case_rmse)")
    scores = [c for c in per_case.columns if c not in ("event_type", "n_hours")]
    scored = per_case[per_case["n_hours"] > 0] if "n_hours" in per_case else per_case
    if not by_type:
        out = scored[scores].mean().to_frame("all").T
        out.insert(0, "n_cases", len(scored))
        return out
    long = scored.assign(type=scored["event_type"].astype(str).str.split("+")).explode("type")
    out = long.groupby("type")[scores].mean()
    out.insert(0, "n_cases", long.groupby("type").size())
    return out
