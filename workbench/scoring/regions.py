"""Forecast-conditioned and two-sided regions: where the forecast said "extreme", and the contingency.

Selecting extremes on the verifying analysis alone scores a forecast only where the truth was extreme,
which is where any forecast is most wrong, and never where the forecast cried wolf (the forecaster's
dilemma). With forecast event masks (the same rules applied to each forecast field, dims
``(event_type, init_time, lead_time, *grid)``) the regions below make both sides visible. With the
observed union :math:`O` (every observed type) and the forecast union :math:`F`:

==================  ===============================  ===============================================
region              cells                            question
==================  ===============================  ===============================================
extreme             :math:`O` (observed)             how wrong where it happened?
extreme_forecast    :math:`F`                        how wrong where the forecast said extreme?
extreme_either      :math:`O \\cup F`                 both sides at once
hit                 :math:`O \\cap F`                 extreme, and forecast so
miss                :math:`O \\setminus F`            extreme, not forecast
false_alarm         :math:`F \\setminus O`            forecast, did not happen
==================  ===============================  ===============================================

``extreme`` = hit + miss and ``extreme_forecast`` = hit + false_alarm (disjoint), so their area fractions
and error shares add up. Per event type ``t`` present in both masks the same split is named
``t|forecast``, ``t|either``, ``t|hit``, ``t|miss``, ``t|false_alarm``. Types only in the observed masks
(report cases, which a forecast field cannot produce) have no forecast side of their own; in the union
they count as misses unless the forecast marks the cells through another type.

The masks here differ per initial and lead time, so :func:`field_masks` lays them out as one mask per
forecast field and :func:`field_positions` finds each field's mask; ``decompose`` scores them through
the same kernels as valid-time masks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError

#: The union regions of :func:`conditioned_regions`, in order.
CONDITIONED_REGIONS: tuple[str, ...] = ("extreme_forecast", "extreme_either", "hit", "miss", "false_alarm")
_PER_TYPE = ("forecast", "either", "hit", "miss", "false_alarm")
_FIELD_DIMS = ("init_time", "lead_time")


def is_field_masks(masks) -> bool:
    """Whether ``masks`` are per forecast field (they have ``init_time`` and ``lead_time`` dims)."""
    return isinstance(masks, xr.DataArray) and set(_FIELD_DIMS) <= set(masks.dims)


def observed_at_fields(observed: xr.DataArray, valid_time: xr.DataArray) -> xr.DataArray:
    """Observed masks ``(event_type, time, *grid)`` at each field's valid time: ``(event_type, init, lead, *grid)``."""
    if "time" not in observed.dims:
        raise DataError(f"the observed masks need a 'time' dimension; they have {tuple(observed.dims)}")
    have = pd.DatetimeIndex(observed["time"].values)
    vt = valid_time.values.astype("datetime64[ns]")
    missing = ~pd.DatetimeIndex(vt.ravel()).isin(have)
    if missing.any():
        raise DataError(
            f"the observed masks do not cover {int(missing.sum())} forecast valid times (first "
            f"{pd.Timestamp(vt.ravel()[missing][0])}); build them over the whole forecast period"
        )
    out = observed.sel(time=valid_time.astype("datetime64[ns]")).drop_vars(["time"], errors="ignore")
    return out.transpose("event_type", *_FIELD_DIMS, ...)


def conditioned_regions(observed: xr.DataArray, forecast_masks: xr.DataArray) -> xr.DataArray:
    """The forecast-conditioned and contingency regions of one model's forecast.

    Parameters
    ----------
    observed : xarray.DataArray
        Bool observed masks ``(event_type, time, *grid)`` covering the forecast's valid times.
    forecast_masks : xarray.DataArray
        Bool forecast masks ``(event_type, init_time, lead_time, *grid)`` with a ``valid_time``
        coordinate (``init_time + lead_time`` when absent).

    Returns
    -------
    xarray.DataArray
        Bool ``(event_type, init_time, lead_time, *grid)`` whose ``event_type`` holds
        :data:`CONDITIONED_REGIONS` and, per shared type ``t``, ``t|forecast`` ... ``t|false_alarm``.

    Raises
    ------
    DataError
        Masks of the wrong layout, or observed masks that do not cover the valid times.
    """
    for name, m in (("observed", observed), ("forecast_masks", forecast_masks)):
        if not isinstance(m, xr.DataArray) or "event_type" not in m.dims:
            raise DataError(f"{name} must be a bool DataArray with an 'event_type' dimension")
    if not is_field_masks(forecast_masks):
        raise DataError(
            f"forecast_masks need (init_time, lead_time) dims; they have {tuple(forecast_masks.dims)}"
        )
    fm = forecast_masks.astype(bool).transpose("event_type", *_FIELD_DIMS, ...)
    vt = fm.coords["valid_time"] if "valid_time" in fm.coords else fm["init_time"] + fm["lead_time"]
    obs = observed_at_fields(observed.astype(bool), vt)
    grid = [d for d in fm.dims if d not in ("event_type", *_FIELD_DIMS)]
    if [d for d in obs.dims if d not in ("event_type", *_FIELD_DIMS)] != grid:
        raise DataError(f"observed and forecast masks are on different grids ({obs.dims} vs {fm.dims})")
    obs = obs.assign_coords({d: fm[d] for d in grid if d in fm.coords})
    o_all, f_all = obs.any("event_type"), fm.any("event_type")
    layers = {
        "extreme_forecast": f_all,
        "extreme_either": o_all | f_all,
        "hit": o_all & f_all,
        "miss": o_all & ~f_all,
        "false_alarm": ~o_all & f_all,
    }
    shared = [t for t in fm["event_type"].values.tolist() if t in obs["event_type"].values.tolist()]
    for t in shared:
        o, f = obs.sel(event_type=t, drop=True), fm.sel(event_type=t, drop=True)
        layers.update(
            {
                f"{t}|forecast": f,
                f"{t}|either": o | f,
                f"{t}|hit": o & f,
                f"{t}|miss": o & ~f,
                f"{t}|false_alarm": ~o & f,
            }
        )
    labels = list(layers)
    out = xr.concat(
        [layers[k].drop_vars("event_type", errors="ignore") for k in labels],
        dim=xr.DataArray(np.asarray(labels, dtype=object), dims="event_type"),
    )
    out = out.transpose("event_type", *_FIELD_DIMS, *grid).rename("mask")
    out.attrs = {
        "description": "forecast-conditioned and contingency regions",
        "shared_types": ", ".join(shared),
    }
    return out


def field_masks(masks: xr.DataArray, spatial: Sequence[str]) -> xr.DataArray:
    """Per-field masks ``(event_type, init_time, lead_time, *spatial)`` laid out as ``(event_type, time,
    *spatial)`` with one ``time`` entry per field (integer positions; ``init_time`` and ``lead_time`` kept
    as coordinates along it), the layout ``decompose``'s mask reader expects."""
    extra = [d for d in masks.dims if d not in ("event_type", *_FIELD_DIMS, *spatial)]
    if extra or "event_type" not in masks.dims:
        raise DataError(
            f"per-field masks must have dims (event_type, init_time, lead_time, {', '.join(spatial)}); "
            f"they have {tuple(masks.dims)}"
        )
    if masks.dtype != bool:
        if masks.dtype.kind not in "biu":
            raise DataError(f"the masks must be bool, not {masks.dtype}")
        masks = masks.astype(bool)
    types = [str(t) for t in masks["event_type"].values]
    if len(set(types)) != len(types) or {"all", "extreme", "non_extreme"} & set(types):
        raise DataError(f"event type names must be unique and not 'all', 'extreme' or 'non_extreme': {types}")
    masks = masks.transpose("event_type", *_FIELD_DIMS, *spatial)
    inits = np.repeat(masks["init_time"].values, masks.sizes["lead_time"])
    leads = np.tile(masks["lead_time"].values, masks.sizes["init_time"])
    drop = [c for c in masks.coords if c in ("valid_time", *_FIELD_DIMS)]
    flat = masks.drop_vars(drop).stack(time=_FIELD_DIMS)
    flat = flat.drop_vars([c for c in flat.coords if c in ("time", *_FIELD_DIMS)])
    flat = flat.assign_coords(field_init=("time", inits), field_lead=("time", leads))
    return flat.transpose("event_type", "time", *spatial)


def field_positions(masks: xr.DataArray, forecast: xr.Dataset) -> np.ndarray:
    """Position of each forecast field's mask in :func:`field_masks` output, shape ``(n_init, n_lead)``.

    Raises
    ------
    DataError
        When the masks lack one of the forecast's (init_time, lead_time) pairs.
    """
    have = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex(masks["field_init"].values), pd.TimedeltaIndex(masks["field_lead"].values)]
    )
    inits, leads = forecast["init_time"].values, forecast["lead_time"].values
    want = pd.MultiIndex.from_arrays(
        [
            pd.DatetimeIndex(np.repeat(inits, leads.size)),
            pd.TimedeltaIndex(np.tile(leads, inits.size)),
        ]
    )
    pos = np.asarray(have.get_indexer(want)).reshape(inits.size, leads.size)
    if (pos < 0).any():
        i, j = np.argwhere(pos < 0)[0]
        raise DataError(
            f"the per-field masks lack {int((pos < 0).sum())} of the forecast's fields (first: init "
            f"{pd.Timestamp(inits[i])}, lead {pd.Timedelta(leads[j])}); build them from this forecast"
        )
    return pos
