"""Checking and aligning the inputs of the scorer: grids, times, units, members, weights, climatology.

Every check raises an error that names what does not match and how to fix it, before any data is
read, so a long scoring run never fails half-way on a mistake that was visible up front.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError, GridError, UnitsError

FORECAST_DIMS = ("init_time", "lead_time")
SPLIT_MEMBER_DIMS = ("weight_member", "noise_member")


class ScoringWarning(UserWarning):
    """Something in the inputs was skipped (NaN values, valid times outside the truth)."""


def spatial_dims(truth: xr.Dataset) -> tuple[str, ...]:
    """The grid dimensions of the truth: every dimension but ``time``, in the truth's order."""
    if "time" not in truth.dims:
        raise DataError(
            f"The truth has no 'time' dimension (dims {list(truth.dims)}); it must be laid out "
            "(time, y, x) or (time, latitude, longitude)."
        )
    order = next((list(truth[v].dims) for v in truth.data_vars if "time" in truth[v].dims), list(truth.dims))
    dims = tuple(str(d) for d in order if d != "time")
    if not dims:
        raise DataError("The truth has no grid dimensions besides 'time'.")
    return dims


def check_grid(name: str, obj: xr.DataArray | xr.Dataset, ref: xr.Dataset, spatial: Sequence[str]) -> None:
    """Check that ``obj`` lies on the grid of ``ref`` (same dims, sizes and coordinate values)."""
    missing = [d for d in spatial if d not in obj.dims]
    if missing:
        raise GridError(
            f"The {name} lacks the grid dimension(s) {missing} of the truth (its dims: {list(obj.dims)}). "
            f"Regrid or rename it onto the truth's grid {dict((d, ref.sizes[d]) for d in spatial)}."
        )
    for dim in spatial:
        if obj.sizes[dim] != ref.sizes[dim]:
            raise GridError(
                f"The {name} has {obj.sizes[dim]} points along {dim!r} but the truth has {ref.sizes[dim]}; "
                "they must be on the same grid."
            )
        if dim in obj.coords and dim in ref.coords:
            a = np.asarray(obj[dim].values)
            b = np.asarray(ref[dim].values)
            if a.dtype.kind in "fiu" and b.dtype.kind in "fiu":
                scale = max(float(np.abs(b).max()), 1.0)
                same = np.allclose(a, b, rtol=0.0, atol=1e-6 * scale)
            else:
                same = np.array_equal(a, b)
            if not same:
                raise GridError(
                    f"The {name}'s {dim!r} coordinate differs from the truth's (first values "
                    f"{a[:3].tolist()} vs {b[:3].tolist()}); put both on the same grid."
                )


def prepare_forecast(forecast: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """The forecast as a Dataset with ``init_time`` and ``lead_time`` dims and a 2-D ``valid_time``."""
    if isinstance(forecast, xr.DataArray):
        forecast = forecast.to_dataset(name=forecast.name or "forecast")
    if not isinstance(forecast, xr.Dataset):
        raise DataError(
            f"The forecast must be an xarray Dataset or DataArray, not {type(forecast).__name__}."
        )
    for dim in FORECAST_DIMS:
        if dim not in forecast.dims:
            if dim in forecast.coords and forecast[dim].ndim == 0:
                forecast = forecast.expand_dims(dim)
            else:
                raise DataError(
                    f"The forecast has no {dim!r} dimension (dims {list(forecast.dims)}); the layout is "
                    "(init_time, lead_time[, member], y, x)."
                )
    for dim, kind, what in (("init_time", "M", "datetime64"), ("lead_time", "m", "timedelta64")):
        if forecast[dim].dtype.kind != kind:
            raise DataError(f"The forecast's {dim!r} must be {what}, not {forecast[dim].dtype}.")
    expected = (forecast["init_time"] + forecast["lead_time"]).transpose(*FORECAST_DIMS)
    if "valid_time" in forecast.coords:
        vt = forecast["valid_time"]
        if not np.issubdtype(vt.dtype, np.datetime64):
            raise DataError(f"The forecast's valid_time must be datetime64, not {vt.dtype}.")
        if not set(vt.dims) <= set(FORECAST_DIMS):
            raise DataError(
                f"The forecast's valid_time has dims {list(vt.dims)}; it must span (init_time, lead_time)."
            )
        vt = vt.broadcast_like(expected).transpose(*FORECAST_DIMS)
        _check_valid_time(vt, expected)
    else:
        vt = expected
    return forecast.assign_coords(valid_time=vt)


def _check_valid_time(vt: xr.DataArray, expected: xr.DataArray) -> None:
    """A stored valid_time must equal init_time + lead_time everywhere: else the forecast is paired with
    the wrong truth and scored against another hour (or day) without any sign of it."""
    got = np.asarray(vt.values)
    want = np.asarray(expected.values).astype(got.dtype)
    bad = got != want  # NaT != anything, so missing valid times count as wrong too
    if bad.any():
        i, j = (int(k[0]) for k in np.nonzero(bad))
        raise DataError(
            f"The forecast's valid_time is not init_time + lead_time at {int(bad.sum())} of {bad.size} "
            f"(init_time, lead_time) pairs; e.g. init {str(expected['init_time'].values[i])[:16]} + lead "
            f"{pd.Timedelta(expected['lead_time'].values[j])} is {str(want[i, j])[:16]}, but valid_time says "
            f"{str(got[i, j])[:16]}. Drop the valid_time coordinate to rebuild it, or fix the times."
        )


def prepare_truth(truth: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """The truth as a Dataset with a datetime ``time`` dimension."""
    if isinstance(truth, xr.DataArray):
        truth = truth.to_dataset(name=truth.name or "truth")
    if not isinstance(truth, xr.Dataset):
        raise DataError(f"The truth must be an xarray Dataset or DataArray, not {type(truth).__name__}.")
    if "time" not in truth.dims and "valid_time" in truth.dims:
        truth = truth.rename({"valid_time": "time"})
    spatial_dims(truth)
    if truth.sizes["time"] == 0:
        raise DataError("The truth has no time steps.")
    if not np.issubdtype(truth["time"].dtype, np.datetime64):
        raise DataError("The truth's 'time' coordinate must be datetime64.")
    if not truth.indexes["time"].is_unique:
        raise DataError("The truth's 'time' coordinate has duplicate values.")
    return truth


def prepare_masks(masks: xr.DataArray | xr.Dataset | None, truth: xr.Dataset, spatial: Sequence[str]):
    """The event masks as a bool DataArray ``(event_type, time, *spatial)``, or None."""
    if masks is None:
        return None
    if isinstance(masks, xr.Dataset):
        if "mask" not in masks.data_vars:
            raise DataError(f"The masks dataset has no 'mask' variable (variables: {list(masks.data_vars)}).")
        masks = masks["mask"]
    if not isinstance(masks, xr.DataArray):
        raise DataError(f"masks must be an xarray DataArray of bool, not {type(masks).__name__}.")
    if "time" not in masks.dims and "valid_time" in masks.dims:
        masks = masks.rename({"valid_time": "time"})
    if "time" not in masks.dims:
        raise DataError(
            f"The masks have no 'time' dimension (dims {list(masks.dims)}); they must be "
            "(event_type, time, y, x), aligned with the forecast valid times."
        )
    if "event_type" not in masks.dims:
        masks = masks.expand_dims(event_type=[str(masks.attrs.get("event_type", masks.name or "event"))])
    extra = [d for d in masks.dims if d not in ("event_type", "time", *spatial)]
    if extra:
        raise GridError(f"The masks have dimension(s) {extra} that the truth's grid {list(spatial)} lacks.")
    check_grid("masks", masks, truth, spatial)
    masks = _as_bool_masks(masks)
    if not masks.indexes["time"].is_unique:
        raise DataError("The masks' 'time' coordinate has duplicate values.")
    types = [str(t) for t in masks["event_type"].values]
    clash = [t for t in types if t in ("all", "extreme", "non_extreme")]
    if clash or len(set(types)) != len(types):
        raise DataError(
            f"Event type names must be unique and not 'all', 'extreme' or 'non_extreme': {types}."
        )
    return masks.transpose("event_type", "time", *spatial)


def _as_bool_masks(masks: xr.DataArray) -> xr.DataArray:
    """Bool masks as they are; 0/1 integers as bool; anything else refused, in memory or lazy.

    Float masks are refused whatever their values: a NaN in a float mask turns True under
    ``astype(bool)``, and whether a lazily opened mask holds a NaN cannot be known without reading it all.
    """
    if masks.dtype == bool:
        return masks
    if masks.dtype.kind == "f":
        raise DataError(
            f"The masks are {masks.dtype}, which may hide NaN (NaN would count as inside an event); they "
            "must be bool, True inside an event. Convert them with masks.fillna(0).astype(bool) once the "
            "NaNs are understood."
        )
    if masks.dtype.kind not in "iu":
        raise DataError(f"The masks must be bool (True inside an event), not {masks.dtype}.")
    from workbench.lexicon import sample_values

    values = np.unique(sample_values(masks))  # the whole array in memory, a few fields when lazy
    if not set(values.tolist()) <= {0, 1}:
        raise DataError(
            f"The masks are integers with values {values[:5].tolist()}; only 0 and 1 can be read as bool."
        )
    return masks.astype(bool)


def resolve_variables(forecast: xr.Dataset, truth: xr.Dataset, variables: Sequence[str] | None) -> list[str]:
    """The variables to score: those asked for (or all of the forecast's), each present in both."""
    if variables is None:
        names = [str(v) for v in forecast.data_vars if set(FORECAST_DIMS) <= set(forecast[v].dims)]
        if not names:
            raise DataError("The forecast has no data variable with (init_time, lead_time) dimensions.")
    else:
        names = [variables] if isinstance(variables, str) else [str(v) for v in variables]
        missing = [v for v in names if v not in forecast.data_vars]
        if missing:
            raise DataError(
                f"Variable(s) {missing} are not in the forecast (it has {list(forecast.data_vars)})."
            )
    missing = [v for v in names if v not in truth.data_vars]
    if missing:
        raise DataError(
            f"Variable(s) {missing} of the forecast are missing from the truth (it has "
            f"{list(truth.data_vars)}); pass variables=[...] to score only the shared ones."
        )
    return names


def check_units(name: str, fcst: xr.DataArray, truth: xr.DataArray) -> None:
    """Units present on both sides and equal; canonical and plausible where the lexicon knows ``name``.

    The plausibility check reads a small sample of each side (a few fields when lazy), so data in
    degrees C labelled K, or in hPa labelled Pa, are refused before they are scored.

    Raises
    ------
    UnitsError
        Naming the variable, the side, the units or range found, and the fix.
    """
    from workbench import lexicon

    fu, tu = fcst.attrs.get("units"), truth.attrs.get("units")
    expected = lexicon.info(name).units if name in lexicon.VARIABLES else None
    for label, units in (("forecast", fu), ("truth", tu)):
        if units is None or not str(units).strip():
            want = f"{expected!r}" if expected else "its units"
            raise UnitsError(
                f"Variable {name!r} in the {label} has no 'units' attribute; expected {want}. Set "
                f"da.attrs['units'] once you have checked which units the values are in."
            )
    if name in lexicon.VARIABLES:
        for label, da in (("forecast", fcst), ("truth", truth)):
            try:
                lexicon.check_units(da, name)
            except UnitsError as exc:
                raise UnitsError(f"In the {label}: {exc}") from None
    if lexicon.normalize_units(str(fu)) != lexicon.normalize_units(str(tu)):
        raise UnitsError(
            f"Variable {name!r} is in {fu!r} in the forecast but {tu!r} in the truth; convert one "
            "of them (workbench.lexicon.convert_units) before scoring."
        )
    for label, da in (("forecast", fcst), ("truth", truth)):
        lexicon.check_plausible(da, name, label)


def resolve_members(
    da: xr.DataArray, member_dims: str | Sequence[str] | None, spatial: Sequence[str]
) -> tuple[str, ...]:
    """The member dimensions of ``da``: ``()``, ``(member,)`` or ``(weight_member, noise_member)``.

    With two, the first is the epistemic (weight) dimension and the second the aleatoric (noise) one.
    """
    others = [str(d) for d in da.dims if d not in (*FORECAST_DIMS, *spatial)]
    if member_dims is None:
        dims = SPLIT_MEMBER_DIMS if set(SPLIT_MEMBER_DIMS) <= set(others) else tuple(others)
    else:
        dims = (member_dims,) if isinstance(member_dims, str) else tuple(member_dims)
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise DataError(f"member dimension(s) {missing} are not in {da.name!r} (dims {list(da.dims)}).")
    if len(dims) > 2:
        raise DataError(
            f"{da.name!r} has dimensions {list(dims)} beyond (init_time, lead_time) and the grid; at most two "
            "member dimensions (weight_member, noise_member) are understood. Select or rename the others."
        )
    leftover = [d for d in others if d not in dims]
    if leftover:
        raise DataError(
            f"{da.name!r} has dimension(s) {leftover} that are neither members nor grid; select them."
        )
    return dims


def resolve_weights(
    weights: xr.DataArray | None, truth: xr.Dataset, spatial: Sequence[str]
) -> tuple[np.ndarray, str]:
    """Flat weights over the grid (``P`` values, C order of ``spatial``) and a description."""
    if weights is None:
        from workbench.grids import area_weights

        try:
            weights = area_weights(truth)
            how = "area weights (workbench.grids.area_weights)"
        except GridError as exc:
            warnings.warn(
                f"No weights given and none can be derived from the truth's grid ({exc}); using equal "
                "weights. Pass weights=... to silence this.",
                ScoringWarning,
                stacklevel=3,
            )
            weights = xr.DataArray(1.0)
            how = "equal weights"
    else:
        how = "weights given by the caller"
    if not isinstance(weights, xr.DataArray):
        raise DataError("weights must be an xarray DataArray over the grid dimensions.")
    extra = [d for d in weights.dims if d not in spatial]
    if extra:
        raise GridError(f"The weights have dimension(s) {extra} outside the grid {list(spatial)}.")
    for dim in weights.dims:
        if weights.sizes[dim] != truth.sizes[dim]:
            raise GridError(
                f"The weights have {weights.sizes[dim]} points along {dim!r}, the truth {truth.sizes[dim]}."
            )
    check_grid("weights", weights, truth, [str(d) for d in weights.dims])
    template = xr.DataArray(np.zeros([truth.sizes[d] for d in spatial]), dims=list(spatial))
    full = weights.drop_vars(list(weights.coords)).broadcast_like(template).transpose(*spatial)
    values = np.ascontiguousarray(full.values, dtype=np.float64).reshape(-1)
    if not np.isfinite(values).all():
        raise DataError("The weights contain NaN or infinite values; fill them (e.g. weights.fillna(0)).")
    if (values < 0).any():
        raise DataError("The weights contain negative values.")
    if not values.any():
        raise DataError("The weights are all zero.")
    return values, how


def time_positions(index: pd.Index, times: np.ndarray) -> np.ndarray:
    """Position of each of ``times`` in ``index`` (-1 where absent), same shape as ``times``."""
    flat = pd.DatetimeIndex(np.asarray(times).reshape(-1))
    return np.asarray(index.get_indexer(flat)).reshape(np.shape(times))


def _time_attribute(times: pd.DatetimeIndex, dim: str) -> np.ndarray:
    if dim == "hour":
        return np.asarray(times.hour)
    if dim == "dayofyear":
        return np.asarray(times.dayofyear)
    if dim == "month":
        return np.asarray(times.month)
    raise DataError(dim)


def climatology_positions(
    clim: xr.DataArray, valid_times: np.ndarray, spatial: Sequence[str]
) -> tuple[xr.DataArray, np.ndarray]:
    """Lay the climatology out as ``(_key, *spatial)`` and find the key of each valid time.

    Understood layouts: a ``time`` dimension (values for the exact valid times), any of ``month``,
    ``dayofyear`` and ``hour`` (e.g. ``(dayofyear, hour, y, x)`` as in WeatherBench 2, or ``(hour, y, x)``),
    or the grid alone (one static field).
    """
    extra = [str(d) for d in clim.dims if d not in spatial]
    times = pd.DatetimeIndex(np.asarray(valid_times).reshape(-1))
    if not extra:
        keyed = clim.expand_dims(_key=1)
        pos = np.zeros(len(times), dtype=np.int64)
    elif extra in (["time"], ["valid_time"]):
        keyed = clim.rename({extra[0]: "_key"})
        pos = np.asarray(clim.indexes[extra[0]].get_indexer(times))
    elif set(extra) <= {"month", "dayofyear", "hour"}:
        keyed = clim.stack(_key=extra)
        wanted = pd.MultiIndex.from_arrays([_time_attribute(times, d) for d in extra], names=extra)
        pos = np.asarray(keyed.indexes["_key"].get_indexer(wanted))
        keyed = keyed.drop_vars(["_key", *extra], errors="ignore")
    else:
        raise DataError(
            f"The climatology's dims {list(clim.dims)} are not understood; use (time, *grid), "
            "(dayofyear, hour, *grid), (hour, *grid), (month, *grid) or the grid alone."
        )
    if (pos < 0).any():
        first = times[np.flatnonzero(pos < 0)[0]]
        raise DataError(
            f"The climatology does not cover {int((pos < 0).sum())} forecast valid time(s) (first: {first}); "
            "extend it or drop those forecasts."
        )
    return keyed.transpose("_key", *spatial), pos.reshape(np.shape(valid_times))


def select_variable(obj: xr.Dataset | xr.DataArray, name: str, label: str) -> xr.DataArray:
    """Variable ``name`` of a Dataset, or a DataArray used for every variable."""
    if isinstance(obj, xr.Dataset):
        if name not in obj.data_vars:
            raise DataError(f"The {label} has no variable {name!r} (it has {list(obj.data_vars)}).")
        return obj[name]
    return obj


def as_model_dict(forecast) -> dict[Hashable, xr.Dataset]:
    """Several models as ``{name: Dataset}``; a single forecast as ``{None: Dataset}``."""
    if isinstance(forecast, xr.Dataset | xr.DataArray):  # before Mapping: a Dataset is a Mapping too
        if "model" in forecast.dims:
            return {
                str(m): prepare_forecast(forecast.sel(model=m, drop=True)) for m in forecast["model"].values
            }
        return {None: prepare_forecast(forecast)}
    if isinstance(forecast, Mapping):
        if not forecast:
            raise DataError("The dict of forecasts is empty.")
        return {name: prepare_forecast(fc) for name, fc in forecast.items()}
    raise DataError(
        f"The forecast must be an xarray Dataset, a DataArray or a dict of them, not {type(forecast).__name__}."
    )
