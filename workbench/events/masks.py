"""Boolean event masks: from case tables, combined with threshold events, aligned with forecasts.

A mask is an ``xarray.DataArray`` of bool named ``mask`` with dims ``(event_type, time, y, x)`` (or
``latitude, longitude``): True where a case of that type is active. A case whose ``event_type`` joins
several families (``"hail+wind"``) marks each of their layers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError, DataNote
from workbench.events.align import masks_at as masks_at  # re-exported: masks at a forecast's valid times
from workbench.events.cases import CaseRules, cases_from_reports
from workbench.events.climatology import climatology
from workbench.events.grid import grid_info
from workbench.events.table import check_table, make_table
from workbench.events.thresholds import (
    DEFAULT_RULES,
    EventSet,
    ThresholdRule,
    percentile_rules,
    threshold_events,
)
from workbench.events.types import sort_families, split_types


def _paint(table: pd.DataFrame, types: list[str], times: np.ndarray, shape) -> np.ndarray:
    """Bool (event_type, time, y, x) with each case's box set over its hours, for ``times``."""
    out = np.zeros((len(types), times.size, *shape), dtype=bool)
    layer = {t: i for i, t in enumerate(types)}
    first = np.searchsorted(times, table.start.to_numpy(), side="left")
    last = np.searchsorted(times, table.end.to_numpy(), side="right")
    for row, t0, t1 in zip(table.itertuples(index=False), first, last, strict=True):
        if t1 <= t0:
            continue
        for fam in split_types(row.event_type):
            k = layer.get(fam)
            if k is not None:
                out[k, t0:t1, row.y_min : row.y_max + 1, row.x_min : row.x_max + 1] = True
    return out


def masks_from_cases(
    table: pd.DataFrame,
    grid_like,
    *,
    times=None,
    event_types: Sequence[str] | None = None,
    chunks: dict | None = None,
) -> xr.DataArray:
    """Masks of a case table on a grid.

    Parameters
    ----------
    table : pandas.DataFrame
        Event table (from :func:`cases_from_reports`, :func:`threshold_events` or :func:`read_index_csv`)
        whose boxes index ``grid_like``.
    grid_like : xarray.Dataset, xarray.DataArray or workbench.grids grid
        The grid (``(…, y, x)`` with 2-D latitude/longitude, or ``(…, latitude, longitude)``); its
        ``time`` coordinate, when present, gives the mask times.
    times : array_like of datetime64, optional
        Mask times, overriding ``grid_like``'s; default, when ``grid_like`` has none, every hour from the
        first case start to the last case end.
    event_types : sequence of str, optional
        Layers (in order); default every family in the table. Cases of other families are left out.
    chunks : dict, optional
        E.g. ``{"time": 24}``: return a lazy dask-backed mask painted chunk by chunk.

    Returns
    -------
    xarray.DataArray
        Bool ``mask`` with dims ``(event_type, time, <grid dims>)`` and the grid's coordinates.

    Raises
    ------
    DataError
        When a box reaches outside the grid (the table was built for another grid) or no times are known.
    """
    table = check_table(table)
    info = grid_info(grid_like)
    ny, nx = info.shape
    off = (table.y_max >= ny) | (table.x_max >= nx) | (table.y_min < 0) | (table.x_min < 0)
    if off.any():
        raise DataError(
            f"{int(off.sum())} case boxes reach outside the {ny} x {nx} grid (e.g. "
            f"{table.event_id[off].iloc[0]}); the table was built for another grid"
        )
    if times is None and isinstance(grid_like, xr.Dataset | xr.DataArray) and "time" in grid_like.coords:
        times = grid_like["time"].values
    if times is None:
        if not len(table):
            raise DataError("no mask times: the table is empty and grid_like has no time coordinate")
        times = pd.date_range(table.start.min().floor("h"), table.end.max(), freq="h").values
    times = np.atleast_1d(np.asarray(times, dtype="datetime64[ns]"))
    if times.size > 1 and not (np.diff(times) > np.timedelta64(0)).all():
        raise DataError("mask times must be strictly increasing")
    if event_types is None:
        event_types = sort_families(f for label in table.event_type for f in split_types(label))
    types = list(event_types)

    if chunks:
        import dask.array as dsa

        tchunk = int(chunks.get("time", times.size)) or times.size
        template = dsa.zeros(
            (len(types), times.size, ny, nx), chunks=(len(types), tchunk, ny, nx), dtype=bool
        )

        def paint_block(block, block_info=None):
            t0, t1 = block_info[None]["array-location"][1]
            return _paint(table, types, times[t0:t1], (ny, nx))

        data = template.map_blocks(paint_block, dtype=bool)
    else:
        data = _paint(table, types, times, (ny, nx))

    coords = {"event_type": np.asarray(types, dtype=object), "time": times, **info.coords}
    mask = xr.DataArray(data, dims=("event_type", "time", info.y_dim, info.x_dim), coords=coords, name="mask")
    mask.attrs = {"description": "extreme-event masks from case boxes"}
    return mask


def combine_masks(*masks: xr.DataArray) -> xr.DataArray:
    """Union of mask arrays over matching event types (layers are aligned by label; times must agree)."""
    masks = [m for m in masks if m is not None]
    if not masks:
        raise DataError("nothing to combine")
    base = masks[0]
    for m in masks[1:]:
        if not np.array_equal(m["time"].values, base["time"].values):
            raise DataError("masks to combine must share their time coordinate")
    labels = sort_families(t for m in masks for t in m["event_type"].values.tolist())
    layers = []
    for label in labels:
        parts = [m.sel(event_type=label, drop=True) for m in masks if label in m["event_type"].values]
        layer = parts[0]
        for p in parts[1:]:
            layer = layer | p
        layers.append(layer)
    grid_coords = {k: v for k, v in base.coords.items() if k != "event_type"}
    if layers:
        out = xr.concat(layers, dim=xr.DataArray(np.asarray(labels, dtype=object), dims="event_type"))
    else:
        out = base.isel(event_type=slice(0, 0))
    out = out.assign_coords(grid_coords).rename("mask")
    out.attrs = {"description": "extreme-event masks"}
    # where the thresholds and their reference period come from travels with the union
    for m in masks:
        for key in ("thresholds", "reference_period", "in_sample"):
            if key in m.attrs:
                out.attrs[key] = m.attrs[key]
    return out


def _read_raw(reports, spc):
    """Report files given as paths, read raw (HR-Extreme reads the files' own columns)."""
    import os
    from pathlib import Path

    if isinstance(reports, str | os.PathLike):
        from workbench.sources.reports import read_storm_events

        reports = read_storm_events(reports)
    if isinstance(spc, str | os.PathLike):
        files = sorted(Path(spc).glob("*_rpts_*.csv")) if Path(spc).is_dir() else [Path(spc)]
        frames = []
        for f in files:
            df = pd.read_csv(f, dtype={"Time": str}, keep_default_na=False, na_values=[""])
            if len(df):
                frames.append(df.assign(kind=f.stem.split("_")[-1], date=f.name[:6]))
        spc = pd.concat(frames, ignore_index=True) if frames else None
    return reports, spc


def build_masks(
    truth: xr.Dataset,
    reports: pd.DataFrame | None = None,
    spc: pd.DataFrame | None = None,
    thresholds: str | Sequence[ThresholdRule] | None = "default",
    *,
    clim: xr.Dataset | None = None,
    reference: slice | Sequence[slice] | None = None,
    case_rules: CaseRules | None = None,
    min_cells: int = 2,
    min_duration: int = 1,
    allow_empty: bool = False,
    allow_in_sample: bool = False,
    method: str = "workbench",
    **case_overrides,
) -> EventSet:
    """Report cases and threshold events on ``truth``'s grid and times, as one mask array and one table.

    Parameters
    ----------
    truth : xarray.Dataset
        Analysis with dims ``(time, y, x)`` (2-D latitude/longitude) or ``(time, latitude, longitude)``.
    reports : pandas.DataFrame or path, optional
        NCEI Storm Events details rows (step 1 of the HR-Extreme method).
    spc : pandas.DataFrame or path, optional
        SPC reports (steps 1 and 2).
    thresholds : "default", "percentile", sequence of ThresholdRule or None
        Threshold events (step 3 and more): :data:`DEFAULT_RULES`, :func:`percentile_rules` or your own;
        ``None`` for report cases only.
    clim : xarray.Dataset, optional
        Climatology for percentile thresholds, from a reference period disjoint from ``truth``'s times
        (for the sample: :func:`workbench.events.sample_climatology`). Without one, rules that have a
        fixed value use it (the default heat and cold rules: 38 C and -29 C) and quantile-only rules
        need ``reference`` or ``allow_in_sample``.
    reference : slice or list of slices, optional
        Compute the climatology from ``truth`` over these periods. Since the masks cover all of
        ``truth``'s times this is in sample, so it needs ``allow_in_sample=True``.
    case_rules : CaseRules, optional
        Case-building parameters; ``**case_overrides`` change single fields (e.g. ``pad_cells=20``).
    min_cells, min_duration : int
        Size filter of threshold objects.
    allow_empty : bool
        Return empty masks instead of raising when nothing is found.
    allow_in_sample : bool
        Accept a climatology whose reference period overlaps ``truth``'s times (the masks are then
        flagged ``attrs["in_sample"] = 1``); refused by default.
    method : {"workbench", "hr-extreme"}
        ``"workbench"``: :func:`cases_from_reports` plus threshold events. ``"hr-extreme"``: HR-Extreme's
        exact steps 1-3 (:func:`workbench.events.hrextreme.hr_extreme_cases`, heat and cold from
        ``truth["t2m"]``), one mask layer per HR-Extreme type; ``thresholds`` are then not used unless
        given as rules.

    Returns
    -------
    EventSet
        ``masks`` on ``truth``'s times and grid, ``table`` of the cases overlapping them. When ``truth``
        is dask-backed the masks are lazy (threshold objects are relabelled per time block on each
        compute); call ``.load()`` on them when they fit in memory (one byte per cell, time and type).
    """
    if not isinstance(truth, xr.Dataset) or "time" not in truth.dims:
        raise DataError("build_masks needs truth as an xarray Dataset with a 'time' dimension")
    times = truth["time"].values
    chunks = None
    if any(getattr(truth[v].data, "chunks", None) for v in truth.data_vars):
        tchunks = truth.chunksizes.get("time")
        chunks = {"time": int(tchunks[0])} if tchunks else None

    if method not in ("workbench", "hr-extreme"):
        raise DataError(f"method must be 'workbench' or 'hr-extreme', got {method!r}")
    parts_masks, parts_tables = [], []
    if method == "hr-extreme":
        from workbench.events.hrextreme import hr_extreme_cases

        reports, spc = _read_raw(reports, spc)
        cases = hr_extreme_cases(reports, truth, spc, truth.get("t2m"))
        inside = (cases.end >= times.min()) & (cases.start <= times.max())
        cases = cases.loc[inside].reset_index(drop=True)
        parts_masks.append(masks_from_cases(cases, truth, chunks=chunks))
        parts_tables.append(cases)
        if isinstance(thresholds, str):
            thresholds = None
    elif reports is not None or spc is not None:
        cases = cases_from_reports(reports, truth, spc, rules=case_rules, allow_empty=True, **case_overrides)
        inside = (cases.end >= times.min()) & (cases.start <= times.max())
        if (~inside).any():
            warnings.warn(
                f"{int((~inside).sum())} of {len(cases)} report cases fall outside truth's period "
                f"{times.min()} to {times.max()} and were left out",
                DataNote,
                stacklevel=2,
            )
        cases = cases.loc[inside].reset_index(drop=True)
        parts_masks.append(masks_from_cases(cases, truth, chunks=chunks))
        parts_tables.append(cases)

    if thresholds is not None:
        if isinstance(thresholds, str):
            if thresholds not in ("default", "percentile"):
                raise DataError(
                    f"thresholds must be 'default', 'percentile', a list of rules or None, got {thresholds!r}"
                )
            rules = DEFAULT_RULES if thresholds == "default" else percentile_rules()
            skip = True
        else:
            rules, skip = tuple(thresholds), False
        if clim is None and (reference is not None or allow_in_sample):
            variables = sorted({r.variable for r in rules if r.quantile is not None})
            variables = [v for v in variables if v in truth.data_vars or (v == "ws10m" and "u10m" in truth)]
            if variables:
                clim = climatology(truth, reference=reference, variables=variables)
        found = threshold_events(
            truth,
            clim,
            rules,
            min_cells=min_cells,
            min_duration=min_duration,
            skip_missing=skip,
            allow_in_sample=allow_in_sample,
        )
        parts_masks.append(found.masks)
        parts_tables.append(found.table)

    if not parts_masks:
        raise DataError("nothing to build: give reports, SPC reports or thresholds")
    masks = combine_masks(*parts_masks)
    table = (
        make_table(pd.concat([t for t in parts_tables if len(t)], ignore_index=True))
        if any(len(t) for t in parts_tables)
        else make_table([])
    )
    table = table.sort_values(["start", "event_id"], kind="stable").reset_index(drop=True)
    if not len(table) and not allow_empty:
        raise DataError(
            f"no extreme events on truth's period {times.min()} to {times.max()}: no report case overlaps "
            "it and no threshold is exceeded; check the reports' dates and area, or pass allow_empty=True"
        )
    return EventSet(masks=masks, table=table)
