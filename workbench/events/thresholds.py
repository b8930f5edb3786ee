"""Threshold events: extreme heat, cold, wind, gust, heavy rain and reflectivity in the fields themselves.

A :class:`ThresholdRule` marks the cells where a variable passes a threshold, either a fixed physical
value or a per-cell, per-hour-of-day climatological quantile (:func:`~workbench.events.climatology.
climatology`). Marked cells are grouped into connected space-time objects
(:mod:`workbench.events.objects`) and objects smaller than ``min_cells`` cells (at their largest time
step) or shorter than ``min_duration`` time steps are removed, which clears single-pixel noise.

Default rules (:data:`DEFAULT_RULES`), with their physical basis:

=============  ==========  =========================================================================
label          variable    threshold
=============  ==========  =========================================================================
heat           t2m         > 99th percentile (per cell and hour of day) of an out-of-sample
                           climatology and > 303.15 K (30 C); without a climatology > 311.15 K
                           (38 C, HR-Extreme's heat threshold)
cold           t2m         < 1st percentile of that climatology and < 273.15 K (frost); without a
                           climatology < 244.15 K (-29 C, HR-Extreme's cold threshold)
wind           ws10m       >= 17.9 m s-1 (40 mph sustained, the NWS high-wind criterion)
gust           gust        >= 25.7 m s-1 (50 kt, the NWS severe-thunderstorm gust criterion)
heavy_rain     tp          >= 0.0254 m per hour (1 inch/h); scaled by the data's time step, so a
                           6-hourly accumulation needs 0.1524 m
reflectivity   refc        >= 50 dBZ (intense convective cores, large-hail potential)
=============  ==========  =========================================================================

:func:`percentile_rules` gives the all-percentile variant (99th, or 1st for cold, for every variable).
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError, UnitsError
from workbench.events.align import masks_at
from workbench.events.climatology import (
    check_out_of_sample,
    format_periods,
    quantile_field,
    reference_periods,
    with_wind_speed,
)
from workbench.events.grid import box_extents, grid_info
from workbench.events.objects import label_objects
from workbench.events.table import make_table
from workbench.events.types import sort_families

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class ThresholdRule:
    """One threshold event definition.

    Attributes
    ----------
    label : str
        The event type (mask layer), e.g. ``"heat"``.
    variable : str
        Canonical variable name (``ws10m`` is derived from ``u10m``/``v10m``).
    comparison : {">", ">=", "<", "<="}
        How the variable is compared with the threshold.
    value : float, optional
        Fixed threshold in the variable's canonical units.
    quantile : float, optional
        Climatological quantile used as the threshold when a climatology is given (it takes precedence
        over ``value``, which is then the fallback without a climatology).
    units : str, optional
        Units of ``value``; the variable's ``attrs["units"]`` must match when ``value`` is used.
    per_hour : bool
        ``value`` is a rate per hour, multiplied by the data's time step (accumulated precipitation).
    bound : float, optional
        A physical value a climatological threshold must also pass (same comparison, in ``units``), so
        that a percentile event is extreme in absolute terms too: a cell in its 1st June percentile at
        15 C is cool for June, not a cold extreme.
    """

    label: str
    variable: str
    comparison: str
    value: float | None = None
    quantile: float | None = None
    units: str | None = None
    per_hour: bool = False
    bound: float | None = None

    def __post_init__(self) -> None:
        if self.comparison not in _OPS:
            raise DataError(f"comparison must be one of {list(_OPS)}, got {self.comparison!r}")
        if self.value is None and self.quantile is None:
            raise DataError(f"rule {self.label!r} needs a value, a quantile or both")
        if self.quantile is not None and not 0 < self.quantile < 1:
            raise DataError(f"rule {self.label!r}: quantile must be in (0, 1), got {self.quantile}")


DEFAULT_RULES: tuple[ThresholdRule, ...] = (
    ThresholdRule("heat", "t2m", ">", value=311.15, quantile=0.99, units="K", bound=303.15),
    ThresholdRule("cold", "t2m", "<", value=244.15, quantile=0.01, units="K", bound=273.15),
    ThresholdRule("wind", "ws10m", ">=", value=17.9, units="m s-1"),
    ThresholdRule("gust", "gust", ">=", value=25.7, units="m s-1"),
    ThresholdRule("heavy_rain", "tp", ">=", value=0.0254, units="m", per_hour=True),
    ThresholdRule("reflectivity", "refc", ">=", value=50.0, units="dBZ"),
)


def percentile_rules(high: float = 0.99, low: float = 0.01) -> tuple[ThresholdRule, ...]:
    """Every default event defined by climatological quantiles (``high``; ``low`` for cold)."""
    return (
        ThresholdRule("heat", "t2m", ">", quantile=high),
        ThresholdRule("cold", "t2m", "<", quantile=low),
        ThresholdRule("wind", "ws10m", ">", quantile=high),
        ThresholdRule("gust", "gust", ">", quantile=high),
        ThresholdRule("heavy_rain", "tp", ">", quantile=high),
        ThresholdRule("reflectivity", "refc", ">", quantile=high),
    )


@dataclass
class EventSet:
    """Masks and the matching event table.

    Attributes
    ----------
    masks : xarray.DataArray
        Bool named ``mask`` with dims ``(event_type, time, <grid dims>)``.
    table : pandas.DataFrame
        The event table (:data:`~workbench.events.table.EVENT_COLUMNS`).
    """

    masks: xr.DataArray
    table: pd.DataFrame

    def at(self, valid_time) -> xr.DataArray:
        """The masks at a forecast's valid times (see :func:`workbench.events.align.masks_at`)."""
        return masks_at(self.masks, valid_time)

    def write_index_csv(self, path) -> None:
        """Write the table as an HR-Extreme-style index CSV."""
        from workbench.events.table import write_index_csv

        write_index_csv(self.table, path)


def _norm_units(u: str) -> str:
    u = u.replace("**", "").replace("^", "").replace(" ", "").replace(".", "")
    return {"m/s": "ms-1"}.get(u, u)


def _step_hours(times: np.ndarray) -> float:
    if times.size < 2:
        return 1.0
    return float(np.median(np.diff(times.astype("datetime64[s]").astype(np.int64))) / 3600.0)


def threshold_events(
    truth: xr.Dataset,
    clim: xr.Dataset | None = None,
    rules: Sequence[ThresholdRule] | None = None,
    *,
    min_cells: int = 2,
    min_duration: int = 1,
    block: int = 24,
    skip_missing: bool | None = None,
    allow_in_sample: bool = False,
    step_hours: float | None = None,
) -> EventSet:
    """Find threshold events as connected space-time objects.

    Parameters
    ----------
    truth : xarray.Dataset
        Analysis fields with dims ``(time, y, x)`` (2-D latitude/longitude) or ``(time, latitude,
        longitude)``, canonical names and units. Dask-backed input gives lazy masks.
    clim : xarray.Dataset, optional
        From :func:`~workbench.events.climatology.climatology`; needed by rules with a quantile and no
        value, and used in preference to ``value`` where a rule has both. The variables the rules use are
        loaded into memory once (a lazy climatology would be recomputed for every time block).
    rules : sequence of ThresholdRule, optional
        Default :data:`DEFAULT_RULES`.
    min_cells : int
        Minimum object footprint, in cells at its largest time step (2 removes single-cell blips).
    min_duration : int
        Minimum object duration in time steps.
    block : int
        Time steps processed at once (memory: about 5 bytes per cell per step in a block).
    skip_missing : bool, optional
        Skip rules whose variable ``truth`` lacks, with a warning (default: True for the default rules,
        False for rules you pass, which then raise).
    allow_in_sample : bool
        Accept a climatology whose reference period overlaps ``truth``'s times (refused by default:
        see :func:`~workbench.events.climatology.check_out_of_sample`).
    step_hours : float, optional
        Accumulation period of ``tp`` in hours for per-hour rules (default: the median time step; give
        it for unevenly spaced times such as a forecast's sparse lead times).

    Returns
    -------
    EventSet
        ``masks`` (one layer per rule label; rules sharing a label are merged) and ``table`` (one row per
        object: its time span, bounding box, and in ``details`` the rule, the peak value and the size).
        ``masks.attrs`` name the thresholds (``thresholds``), the climatology's reference period
        (``reference_period``, ``"none"`` when every threshold is fixed) and ``in_sample`` (0 or 1).

    Raises
    ------
    DataError, UnitsError
        A missing variable or climatology, or a variable whose units differ from a fixed threshold's.
    """
    if not isinstance(truth, xr.Dataset):
        raise DataError(f"threshold_events needs an xarray Dataset of fields, got {type(truth).__name__}")
    if "time" not in truth.dims:
        raise DataError(f"truth needs a 'time' dimension; it has {tuple(truth.dims)}")
    if skip_missing is None:
        skip_missing = rules is None
    rules = tuple(DEFAULT_RULES if rules is None else rules)
    info = grid_info(truth)
    truth = with_wind_speed(truth)
    times = truth["time"].values
    if times.size > 1 and not (np.diff(times) > np.timedelta64(0)).all():
        raise DataError("truth's time coordinate must be strictly increasing")
    dims = ("time", info.y_dim, info.x_dim)
    if clim is not None:
        # The climatology is small (quantile x hour x cell) but, computed from dask-backed truth, lazy:
        # every time block of the comparison would recompute it from the whole reference period.
        used = sorted({r.variable for r in rules if r.quantile is not None} & set(clim.data_vars))
        ref_attrs = dict(clim.attrs)
        clim = clim[used].compute()
        clim.attrs = ref_attrs
    in_sample = False
    if clim is not None and any(r.quantile is not None and r.variable in truth.data_vars for r in rules):
        in_sample = check_out_of_sample(clim, times, allow_in_sample)

    skipped, layers, rows, descriptions = [], {}, [], []
    for rule in rules:
        if rule.variable not in truth.data_vars:
            if skip_missing:
                skipped.append(f"{rule.label} ({rule.variable})")
                continue
            raise DataError(
                f"rule {rule.label!r} needs variable {rule.variable!r}, which truth lacks "
                f"(it has {list(truth.data_vars)})"
            )
        da = truth[rule.variable].transpose(*dims)
        threshold, desc = _threshold(rule, da, clim, times, step_hours)
        descriptions.append(f"{rule.label}: {rule.variable} {rule.comparison} {desc}")
        exceed = _OPS[rule.comparison](da, threshold)
        score = da if rule.comparison in (">", ">=") else -da
        found = label_objects(
            exceed,
            score,
            min_cells=min_cells,
            min_duration=min_duration,
            block=block,
            periodic_x=info.periodic_x,
        )
        mask = found.mask.drop_vars(
            [c for c in found.mask.coords if c not in (*dims, "latitude", "longitude")]
        )
        layers[rule.label] = mask if rule.label not in layers else (layers[rule.label] | mask)
        units = da.attrs.get("units", "")
        objs = found.table
        extent = box_extents(info, objs.y_min, objs.y_max, objs.x_min, objs.x_max)
        peak = objs.peak.to_numpy() if rule.comparison in (">", ">=") else -objs.peak.to_numpy()
        rows.append(
            pd.DataFrame(
                {
                    "event_id": [f"thr-{rule.label}-{k:04d}" for k in range(len(objs))],
                    "event_type": rule.label,
                    "start": times[objs.t_first.to_numpy()],
                    "end": times[objs.t_last.to_numpy()],
                    "y_min": objs.y_min.to_numpy(),
                    "y_max": objs.y_max.to_numpy(),
                    "x_min": objs.x_min.to_numpy(),
                    "x_max": objs.x_max.to_numpy(),
                    "lat_min": extent[:, 0],
                    "lat_max": extent[:, 1],
                    "lon_min": extent[:, 2],
                    "lon_max": extent[:, 3],
                    "source": "threshold",
                    "details": [
                        f"{rule.variable} {rule.comparison} {desc}; peak {p:.4g} {units}; {c} cell-steps, "
                        f"up to {a} cells"
                        for p, c, a in zip(peak, objs.n_cells, objs.peak_area, strict=True)
                    ],
                }
            )
        )
    if skipped:
        warnings.warn(
            f"threshold rules skipped, their variables are not in truth: {', '.join(skipped)}",
            UserWarning,
            stacklevel=2,
        )
    labels = sort_families(layers)
    if labels:
        masks = xr.concat(
            [layers[k] for k in labels], dim=xr.DataArray(labels, dims="event_type", name="event_type")
        )
    else:
        masks = xr.zeros_like(truth[next(iter(truth.data_vars))].transpose(*dims), dtype=bool).expand_dims(
            event_type=np.array([], dtype=object)
        )
        masks = masks.drop_vars(
            [c for c in masks.coords if c not in (*dims, "event_type", "latitude", "longitude")]
        )
    masks = masks.assign_coords(info.coords).rename("mask")
    uses_clim = clim is not None and any("percentile" in d for d in descriptions)
    masks.attrs = {
        "description": "threshold events",
        "min_cells": min_cells,
        "min_duration": min_duration,
        "thresholds": "; ".join(descriptions),
        "reference_period": format_periods(reference_periods(clim)) if uses_clim else "none",
        "in_sample": int(in_sample),
    }
    table = make_table(pd.concat(rows, ignore_index=True) if rows else [])
    return EventSet(
        masks=masks, table=table.sort_values(["start", "event_id"], kind="stable").reset_index(drop=True)
    )


def _ordinal(value: float) -> str:
    """``99`` -> ``"99th"``, ``1`` -> ``"1st"``, ``2.5`` -> ``"2.5th"``."""
    text = f"{value:g}"
    if text.isdigit() and not 10 <= int(text) % 100 <= 20:
        return text + {1: "st", 2: "nd", 3: "rd"}.get(int(text) % 10, "th")
    return text + "th"


def _check_units(rule: ThresholdRule, da: xr.DataArray) -> None:
    have = da.attrs.get("units")
    if rule.units is not None and have is not None and _norm_units(str(have)) != _norm_units(rule.units):
        raise UnitsError(
            f"{rule.variable} has units {have!r} but the {rule.label} threshold is in "
            f"{rule.units!r}; convert the data to canonical units first"
        )


def _threshold(
    rule: ThresholdRule, da: xr.DataArray, clim: xr.Dataset | None, times: np.ndarray, step: float | None
):
    """The threshold (a number or a (time, grid) field) of ``rule`` and its description."""
    if rule.quantile is not None and clim is not None:
        if da.chunks is not None:
            # one (hour, grid) field in memory, indexed lazily block by block, not every time at once
            field = quantile_field(clim.chunk(), rule.variable, rule.quantile, times)
            # the data's own time chunks: da.chunksizes also checks the coordinates' chunks, which differ
            # on a forecast's lazily computed valid-time coordinate (ValueError: inconsistent chunks)
            field = field.chunk({"time": da.chunks[da.get_axis_num("time")]}).transpose(*da.dims)
        else:
            field = quantile_field(clim, rule.variable, rule.quantile, times).transpose(*da.dims)
        pct = f"{_ordinal(100 * rule.quantile)} percentile"
        if rule.bound is not None:
            _check_units(rule, da)
            # the stricter of the percentile and the physical bound, cell by cell
            field = (
                np.maximum(field, rule.bound)
                if rule.comparison in (">", ">=")
                else np.minimum(field, rule.bound)
            )
            pct += f" and {rule.comparison} {rule.bound:g} {rule.units or ''}".rstrip()
        periods = reference_periods(clim)
        ref = "; ".join(f"{a:%Y-%m-%d} to {b:%Y-%m-%d}" for a, b in periods)
        return field, f"{pct} (climatology {ref})"
    if rule.value is None:
        raise DataError(
            f"rule {rule.label!r} is defined by the {rule.quantile} quantile: pass a climatology "
            "(workbench.events.climatology(truth, reference=...))"
        )
    _check_units(rule, da)
    hours = float(step) if step is not None else _step_hours(times)
    value = rule.value * (hours if rule.per_hour else 1.0)
    desc = f"{value:g} {rule.units or ''}".strip()
    if rule.per_hour:
        desc += f" ({rule.value:g} per hour over a {hours:g} h step)"
    return value, desc
