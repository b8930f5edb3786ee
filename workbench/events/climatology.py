"""Per-cell, per-hour-of-day climatological quantiles from a reference period.

For each hour of the day ``h`` the quantiles are taken over every reference time whose hour lies within
``window`` hours of ``h`` (circularly, so 23 h and 0 h are neighbours). Pooling neighbouring hours keeps
the diurnal cycle, since adjacent hours differ little, while multiplying the sample: three weeks of hourly
data give 21 values per hour but 63 with ``window=1`` and 105 with ``window=2``. Every day of the
reference period is pooled, so pick a reference period from the season of interest (the same months of
other years where available); a reference spanning seasons would put summer's heat into the winter
percentiles.

The wind speed ``ws10m = hypot(u10m, v10m)`` is added when both components are present, so wind events
can be thresholded on it.

**Out of sample.** A percentile threshold is only meaningful against a reference period that does not
contain the evaluated period: the 99th percentile of the evaluated week itself marks 1% of that week as
"extreme" whatever the weather did, and a cool June week gets its own "cold" events. The reference
period(s) are recorded in the climatology's ``attrs["reference_period"]`` (``"start/end; start/end"``),
and :func:`check_out_of_sample` refuses a climatology whose reference overlaps the times it is applied
to unless the caller says ``allow_in_sample=True``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError

HOURS = 24


def with_wind_speed(truth: xr.Dataset) -> xr.Dataset:
    """``truth`` with ``ws10m`` (10-m wind speed, m s-1) added when ``u10m`` and ``v10m`` are present."""
    if isinstance(truth, xr.Dataset) and "ws10m" not in truth and {"u10m", "v10m"} <= set(truth.data_vars):
        ws = np.hypot(truth["u10m"], truth["v10m"])
        ws.attrs = {"units": "m s-1", "long_name": "10 m wind speed"}
        truth = truth.assign(ws10m=ws)
    return truth


def _as_slices(reference) -> list[slice] | None:
    if reference is None:
        return None
    if isinstance(reference, slice):
        return [reference]
    is_list = isinstance(reference, Sequence) and not isinstance(reference, str) and len(reference) > 0
    if is_list and all(isinstance(r, slice) for r in reference):
        return list(reference)
    raise DataError(
        f"reference must be a slice of times or a list of slices (several periods), got {reference!r}"
    )


def format_periods(periods: Sequence[tuple[pd.Timestamp, pd.Timestamp]]) -> str:
    """``"start/end; start/end"`` (ISO, to the hour) of closed time periods."""
    return "; ".join(f"{pd.Timestamp(a):%Y-%m-%dT%H}/{pd.Timestamp(b):%Y-%m-%dT%H}" for a, b in periods)


def reference_periods(clim: xr.Dataset) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The reference periods a climatology was computed from (from its attributes).

    Raises
    ------
    DataError
        When the climatology does not record them (it was not made by :func:`climatology`).
    """
    attrs = getattr(clim, "attrs", {}) or {}
    text = attrs.get("reference_period")
    if text is None and "reference_start" in attrs and "reference_end" in attrs:
        text = f"{attrs['reference_start']}/{attrs['reference_end']}"
    if not text:
        raise DataError(
            "the climatology does not record its reference period (attrs 'reference_period'); build it "
            "with workbench.events.climatology(truth, reference=...) so that it can be checked against "
            "the evaluated period"
        )
    try:
        return [
            (pd.Timestamp(a.strip()), pd.Timestamp(b.strip()))
            for a, b in (part.split("/") for part in str(text).split(";") if part.strip())
        ]
    except ValueError as err:
        raise DataError(f"cannot read the climatology's reference_period {text!r} ({err})") from None


def check_out_of_sample(clim: xr.Dataset, times, allow_in_sample: bool = False) -> bool:
    """Refuse a climatology whose reference period overlaps the evaluated times.

    Parameters
    ----------
    clim : xarray.Dataset
        From :func:`climatology` (its ``reference_period`` attribute is read).
    times : array_like of datetime64
        The evaluated times (their span, first to last, is the evaluated period).
    allow_in_sample : bool
        Accept an overlap (the result is then flagged in sample).

    Returns
    -------
    bool
        Whether the climatology is in sample (only ever True with ``allow_in_sample``).

    Raises
    ------
    DataError
        Naming both periods, when they overlap and ``allow_in_sample`` is False.
    """
    times = np.atleast_1d(np.asarray(times, dtype="datetime64[ns]"))
    if times.size == 0:
        return False
    first, last = pd.Timestamp(times.min()), pd.Timestamp(times.max())
    overlap = [(a, b) for a, b in reference_periods(clim) if a <= last and b >= first]
    if overlap and not allow_in_sample:
        raise DataError(
            f"the climatology's reference period {format_periods(overlap)} overlaps the evaluated period "
            f"{first:%Y-%m-%dT%H}/{last:%Y-%m-%dT%H}: percentile thresholds would be in sample (the "
            "evaluated period's own extremes). Use a reference period outside it (e.g. "
            "workbench.events.sample_climatology for the sample), fixed thresholds, or pass "
            "allow_in_sample=True"
        )
    return bool(overlap)


def climatology(
    truth: xr.Dataset | xr.DataArray,
    reference: slice | Sequence[slice] | None = None,
    quantiles: Sequence[float] = (0.01, 0.99),
    by: str | None = "hourofday",
    window: int = 2,
    variables: Sequence[str] | None = None,
) -> xr.Dataset:
    """Per-cell climatological quantiles of ``truth`` over a reference period.

    Parameters
    ----------
    truth : xarray.Dataset or DataArray
        Fields with a ``time`` dimension (hourly or coarser), any horizontal grid. Dask-backed input
        stays lazy.
    reference : slice or list of slices, optional
        Times of the reference period, e.g. ``slice("2020-06-01", "2020-06-21")``, or several periods
        (e.g. before and after an evaluated week, with a gap); default all times. The periods used are
        recorded in ``attrs["reference_period"]``.
    quantiles : sequence of float
        Quantiles in (0, 1); the defaults give the 1st and 99th percentiles.
    by : {"hourofday", None}
        ``"hourofday"``: one set of quantiles per hour of the day present in the reference period.
        ``None``: one set over all times.
    window : int
        Hours either side pooled with each hour of the day (``by="hourofday"`` only).
    variables : sequence of str, optional
        Variables to include (default: every variable with a ``time`` dimension, plus ``ws10m``).

    Returns
    -------
    xarray.Dataset
        Each variable with dims ``(quantile, hour, <grid dims>)`` (no ``hour`` when ``by=None``), the
        coordinate ``n_samples`` (values pooled per hour) and the settings in ``attrs``.

    Raises
    ------
    DataError
        An empty reference period, quantiles outside (0, 1), an unknown ``by`` or variable.

    Warns
    -----
    UserWarning
        When an hour has fewer samples than ``1 / min(q, 1 - q)``, so the extreme quantile is close to the
        sample extreme; widen the reference period or the window.
    """
    if isinstance(truth, xr.DataArray):
        truth = truth.to_dataset(name=truth.name or "field")
    if "time" not in truth.dims:
        raise DataError(f"climatology needs a 'time' dimension; truth has dims {tuple(truth.dims)}")
    q = np.asarray(quantiles, dtype=float)
    if q.ndim != 1 or q.size == 0 or ((q <= 0) | (q >= 1)).any():
        raise DataError(f"quantiles must be a non-empty list of values in (0, 1), got {list(quantiles)}")
    if by not in ("hourofday", None):
        raise DataError(f"by must be 'hourofday' or None, got {by!r}")
    if window < 0 or window >= HOURS // 2:
        raise DataError(f"window must be between 0 and {HOURS // 2 - 1} hours, got {window}")

    truth = with_wind_speed(truth)
    if variables is None:
        variables = [v for v in truth.data_vars if "time" in truth[v].dims]
    missing = [v for v in variables if v not in truth.data_vars]
    if missing:
        raise DataError(f"variables {missing} are not in truth (it has {list(truth.data_vars)})")
    ref = truth[list(variables)]
    slices = _as_slices(reference)
    periods = []
    if slices is not None:
        parts = [ref.sel(time=r) for r in slices]
        empty = [r for r, part in zip(slices, parts, strict=True) if part.sizes.get("time", 0) == 0]
        if empty:
            raise DataError(
                f"the reference period {empty[0]} holds no times; truth covers "
                f"{truth.time.values.min()} to {truth.time.values.max()}"
            )
        periods = [(p["time"].to_index().min(), p["time"].to_index().max()) for p in parts]
        ref = xr.concat(parts, dim="time") if len(parts) > 1 else parts[0]
        if not ref["time"].to_index().is_unique:
            raise DataError(f"the reference periods {slices} overlap each other")
    if ref.sizes.get("time", 0) == 0:
        raise DataError(
            f"the reference period {reference} holds no times; truth covers "
            f"{truth.time.values.min()} to {truth.time.values.max()}"
        )
    times = ref["time"].to_index()
    if not periods:
        periods = [(times.min(), times.max())]
    attrs = {
        "reference_start": str(times.min()),
        "reference_end": str(times.max()),
        "reference_period": format_periods(periods),
        "by": str(by),
        "window_hours": int(window),
    }

    if by is None:
        out = _quantiles(ref, q)
        out = out.assign_coords(n_samples=ref.sizes["time"])
        _warn_small(np.array([ref.sizes["time"]]), q)
        out.attrs = attrs
        return out

    hour_of = times.hour.to_numpy()
    hours = np.unique(hour_of)
    parts, counts = [], []
    for h in hours:
        dist = np.abs(hour_of - h)
        dist = np.minimum(dist, HOURS - dist)
        idx = np.flatnonzero(dist <= window)
        parts.append(_quantiles(ref.isel(time=idx), q))
        counts.append(idx.size)
    out = xr.concat(parts, dim=xr.DataArray(hours, dims="hour", name="hour"))
    out = out.assign_coords(n_samples=("hour", np.asarray(counts)))
    for v in out.data_vars:
        grid_dims = [d for d in out[v].dims if d not in ("quantile", "hour")]
        out[v] = out[v].transpose("quantile", "hour", *grid_dims)
        out[v].attrs = dict(truth[v].attrs)
    _warn_small(np.asarray(counts), q)
    out.attrs = attrs
    return out


def nanquantile(a: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles over the last axis, skipping NaNs, with numpy's default "linear" interpolation.

    Vectorised over all other axes (``np.nanquantile`` loops over cells in Python, which is ~100 times
    slower on a grid). Returns shape ``a.shape[:-1] + (len(q),)``; NaN where a cell has no valid value.
    """
    a = np.sort(np.asarray(a, dtype=np.float64), axis=-1)  # NaNs sort to the end
    n = np.sum(~np.isnan(a), axis=-1, keepdims=True)
    pos = np.asarray(q, dtype=np.float64) * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    a_lo = np.take_along_axis(a, lo, axis=-1)
    a_hi = np.take_along_axis(a, hi, axis=-1)
    out = a_lo + (pos - lo) * (a_hi - a_lo)
    return np.where(n > 0, out, np.nan)


def _quantiles(ds: xr.Dataset, q: np.ndarray) -> xr.Dataset:
    if any(getattr(ds[v].data, "chunks", None) is not None for v in ds.data_vars):
        ds = ds.chunk({"time": -1})  # quantiles need the reduced dimension in one chunk
    out = xr.apply_ufunc(
        nanquantile,
        ds,
        kwargs={"q": q},
        input_core_dims=[["time"]],
        output_core_dims=[["quantile"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"quantile": q.size}},
        keep_attrs=True,
    )
    out = out.assign_coords(quantile=q)
    return out.transpose("quantile", ...)


def _warn_small(counts: np.ndarray, q: np.ndarray) -> None:
    need = int(np.ceil(1.0 / min(q.min(), 1.0 - q.max()) - 1e-9))
    if counts.min() < need:
        warnings.warn(
            f"only {int(counts.min())} samples per climatology bin for quantiles {q.tolist()} (at least "
            f"{need} make the extreme quantile more than the sample extreme); widen the reference period "
            "or the hour window",
            UserWarning,
            stacklevel=3,
        )


def quantile_field(clim: xr.Dataset, variable: str, quantile: float, times: np.ndarray) -> xr.DataArray:
    """The climatological ``quantile`` of ``variable`` at each of ``times`` (dims ``time, <grid>``).

    Raises
    ------
    DataError
        When the climatology lacks the variable, the quantile, or an hour of ``times``.
    """
    if variable not in clim.data_vars:
        raise DataError(
            f"the climatology has no {variable!r} (it has {list(clim.data_vars)}); compute it with "
            f"climatology(truth, variables=[..., {variable!r}])"
        )
    qs = clim["quantile"].values
    match = np.flatnonzero(np.isclose(qs, quantile, rtol=0, atol=1e-9))
    if match.size == 0:
        raise DataError(
            f"the climatology has quantiles {qs.tolist()}, not {quantile}; compute it with "
            f"climatology(truth, quantiles=[..., {quantile}])"
        )
    field = clim[variable].isel(quantile=int(match[0]), drop=True)
    times = np.asarray(times, dtype="datetime64[ns]")
    if "hour" not in field.dims:
        return field.expand_dims(time=times)
    hours = (times.astype("datetime64[h]").astype(np.int64) % HOURS).astype(int)
    have = set(field["hour"].values.tolist())
    lacking = sorted(set(hours.tolist()) - have)
    if lacking:
        raise DataError(
            f"the climatology has no values for hours {lacking} of the day (it has {sorted(have)}); use a "
            "reference period with those hours or by=None"
        )
    out = field.sel(hour=xr.DataArray(hours, dims="time")).drop_vars(["hour", "n_samples"], errors="ignore")
    return out.assign_coords(time=times)
