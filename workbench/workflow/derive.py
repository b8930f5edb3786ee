"""The data the views are drawn from: a field's grid, the ensemble spread split, scores with a model
dimension, and each event's error.

These are computations on xarray and pandas objects, not pictures: :class:`~workbench.workflow.results.Results`
builds its views from them, and the plot builders in :mod:`workbench.viz` read them from here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError, GridError
from workbench.events.table import EVENT_COLUMNS
from workbench.grids import HRRR_CENTRAL_MERIDIAN, HRRR_STANDARD_PARALLEL, LambertConformalGrid

__all__ = [
    "BROWSER_COLUMNS",
    "check_events",
    "event_error_tables",
    "event_errors",
    "event_typical_errors",
    "grid_from_coords",
    "spread_split",
    "with_model_dim",
]

#: The event table's columns that the views need (the provenance columns are optional there).
BROWSER_COLUMNS: tuple[str, ...] = tuple(c for c in EVENT_COLUMNS if c not in ("source", "details"))


def grid_from_coords(obj: xr.DataArray | xr.Dataset) -> LambertConformalGrid:
    """The Lambert conformal grid an object with regular ``y``/``x`` coordinates (m) lies on.

    The projection parameters are read from the attributes written by
    :meth:`~workbench.grids.LambertConformalGrid.attrs` when present, else HRRR's.

    Raises
    ------
    GridError
        If ``x``/``y`` are missing, not regular or not equally spaced.
    """
    if "x" not in obj.coords or "y" not in obj.coords:
        raise GridError(f"A map needs 'x' and 'y' projection coordinates (m); got coords {list(obj.coords)}.")
    x, y = np.asarray(obj["x"], float), np.asarray(obj["y"], float)
    dx, dy = np.diff(x), np.diff(y)
    if len(x) < 2 or len(y) < 2 or not (np.allclose(dx, dx[0]) and np.allclose(dy, dx[0], rtol=1e-3)):
        raise GridError("Map coordinates 'x' and 'y' must be ascending and equally spaced (a Lambert grid).")
    attrs = dict(getattr(obj, "attrs", {}))
    return LambertConformalGrid(
        nx=len(x),
        ny=len(y),
        dx=float(dx[0]),
        x0=float(x[0]),
        y0=float(y[0]),
        standard_parallel=float(attrs.get("standard_parallel", HRRR_STANDARD_PARALLEL)),
        central_meridian=float(attrs.get("longitude_of_central_meridian", HRRR_CENTRAL_MERIDIAN)),
    )


def spread_split(ensemble: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Epistemic and aleatoric spread (standard deviations) of a two-level ensemble.

    By the law of total variance over weight members ``w`` and noise members ``n``:
    ``Var = E_w[Var_n] + Var_w[E_n]`` (aleatoric + epistemic); the maps show the square roots.

    Parameters
    ----------
    ensemble : xarray.DataArray
        With dims ``weight_member`` and ``noise_member``.

    Returns
    -------
    (epistemic, aleatoric) : tuple of xarray.DataArray
        In the field's units.
    """
    for dim in ("weight_member", "noise_member"):
        if dim not in ensemble.dims:
            raise DataError(
                f"The spread split needs an ensemble with dims 'weight_member' and 'noise_member'; got "
                f"{tuple(ensemble.dims)}. Run an ensemble with both member kinds (workbench.inference)."
            )
    aleatoric = ensemble.var("noise_member").mean("weight_member")
    epistemic = ensemble.mean("noise_member").var("weight_member")
    units = ensemble.attrs.get("units", "")
    return (
        np.sqrt(epistemic).assign_attrs(units=units, long_name="epistemic spread"),
        np.sqrt(aleatoric).assign_attrs(units=units, long_name="aleatoric spread"),
    )


def with_model_dim(scores: xr.Dataset) -> xr.Dataset:
    """The scores with a ``model`` dimension (a single-model Dataset gets one, named from its attrs)."""
    if "model" in scores.dims:
        return scores
    name = str(scores.attrs.get("model", "model"))
    return scores.expand_dims(model=[name])


def check_events(events: pd.DataFrame) -> None:
    """Raise :class:`~workbench.errors.DataError` unless ``events`` has every column the views need."""
    missing = [c for c in BROWSER_COLUMNS if c not in events.columns]
    if missing:
        raise DataError(f"The event table is missing columns {missing}; build it with workbench.events.")


class _Footprints:
    """Each event's own mask cells inside its box, from the masks held once as a numpy array."""

    def __init__(self, masks: xr.DataArray | None) -> None:
        self.values = None
        if masks is not None:
            m = masks.transpose("event_type", "time", "y", "x")
            self.values = np.asarray(m.values, dtype=bool)
            self.types = {str(t): i for i, t in enumerate(m["event_type"].values)}
            self.times = {t: i for i, t in enumerate(m["time"].values.astype("datetime64[ns]"))}

    def cells(self, event_type: str, times: np.ndarray, ys: slice, xs: slice) -> np.ndarray | None:
        """``(t, y, x)`` footprint at ``times``, or None to use the whole box."""
        if self.values is None:
            return None
        types = [self.types[t] for t in str(event_type).split("+") if t in self.types]
        t_idx = [self.times.get(t) for t in times]
        if not types or any(i is None for i in t_idx):
            return None
        cells = self.values[types][:, t_idx, ys, xs].any(axis=0)
        return cells if cells.any() else None


def event_errors(
    events: pd.DataFrame,
    truth: xr.Dataset,
    forecasts: dict[str, xr.Dataset],
    variable: str,
    lead_hours: int,
    masks: xr.DataArray | None = None,
) -> pd.DataFrame:
    """RMSE of each model inside each event, at one lead time.

    For every event, the forecasts from all initial times whose valid time ``init + lead`` falls in the
    event's ``[start, end]`` are compared with the truth over the event's cells: the cells of its own
    mask layers inside its box when ``masks`` are given (the reports' footprint), else the whole box.
    Cells are not area-weighted: an event's box is small enough that cell areas barely differ.

    Parameters
    ----------
    events : pandas.DataFrame
        Event table (box indices on the truth's grid).
    truth : xarray.Dataset
        ``(time, y, x)``.
    forecasts : dict of str to xarray.Dataset
        ``(init_time, lead_time, y, x)`` per model.
    variable : str
        Canonical variable.
    lead_hours : int
        Lead time in hours.
    masks : xarray.DataArray, optional
        ``(event_type, time, y, x)``.

    Returns
    -------
    pandas.DataFrame
        Index ``event_id``, one column per model; NaN where no forecast verifies inside the event.
    """
    return event_error_tables(events, truth, forecasts, variable, lead_hours, masks, typical=False)[0]


def event_error_tables(
    events: pd.DataFrame,
    truth: xr.Dataset,
    forecasts: dict[str, xr.Dataset],
    variable: str,
    lead_hours: int,
    masks: xr.DataArray | None = None,
    typical: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """:func:`event_errors` and :func:`event_typical_errors` from one load of the fields.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame or None)
        The events' errors and (when ``typical``) the typical errors of their boxes.
    """
    check_events(events)
    index = pd.Index(events["event_id"].astype(str), name="event_id")
    out, usual = pd.DataFrame(index=index), pd.DataFrame(index=index)
    footprints = _Footprints(masks)
    starts = pd.to_datetime(events["start"]).values.astype("datetime64[ns]")
    ends = pd.to_datetime(events["end"]).values.astype("datetime64[ns]")
    boxes = [
        (slice(int(y0), int(y1) + 1), slice(int(x0), int(x1) + 1))
        for y0, y1, x0, x1 in zip(events["y_min"], events["y_max"], events["x_min"], events["x_max"], strict=True)
    ]
    for model, verifying in _verifying_fields(truth, forecasts, variable, lead_hours):
        if verifying is None:
            out[model] = usual[model] = np.nan
            continue
        valid, fc_values, tr_values = verifying
        errors = []
        for start, end, (ys, xs), kind in zip(starts, ends, boxes, events["event_type"], strict=True):
            pick = np.flatnonzero((valid >= start) & (valid <= end))
            if not len(pick):
                errors.append(np.nan)
                continue
            diff = fc_values[pick, ys, xs] - tr_values[pick, ys, xs]
            cells = footprints.cells(kind, valid[pick], ys, xs)
            sq = diff[cells] ** 2 if cells is not None else diff.ravel() ** 2
            errors.append(_root_mean(sq))
        out[model] = errors
        if typical:
            usual[model] = [
                _root_mean((fc_values[:, ys, xs] - tr_values[:, ys, xs]).ravel() ** 2) for ys, xs in boxes
            ]
    return out, (usual if typical else None)


def _root_mean(sq: np.ndarray) -> float:
    # no nanmean: all-NaN (or no verifying time) is NaN without a RuntimeWarning
    sq = sq[np.isfinite(sq)]
    return float(np.sqrt(sq.mean())) if sq.size else np.nan


def _verifying_fields(truth: xr.Dataset, forecasts: dict[str, xr.Dataset], variable: str, lead_hours: int):
    """Per model: ``(model, (valid times, forecast (t, y, x), truth (t, y, x)))`` of the forecasts at one
    lead that verify against the truth, loaded once as numpy; ``(model, None)`` without that lead."""
    lead = np.timedelta64(int(lead_hours), "h").astype("timedelta64[ns]")
    truth_times = truth["time"].values.astype("datetime64[ns]")
    truth_index = {t: i for i, t in enumerate(truth_times)}
    for model, fc in forecasts.items():
        if variable not in fc.data_vars or lead not in set(fc["lead_time"].values.astype("timedelta64[ns]")):
            yield model, None
            continue
        da = fc[variable].sel(lead_time=lead)
        if "member" in da.dims:
            da = da.mean("member")
        inits = da["init_time"].values.astype("datetime64[ns]")
        valid = inits + lead
        verifiable = np.array([v in truth_index for v in valid], dtype=bool)
        # One load per model and lead; events are then plain numpy slices.
        fc_values = np.asarray(da.isel(init_time=np.flatnonzero(verifiable)).transpose("init_time", "y", "x"))
        valid = valid[verifiable]
        tr_values = (
            np.asarray(truth[variable].isel(time=[truth_index[v] for v in valid]).transpose("time", "y", "x"))
            if len(valid)
            else np.empty((0,) + fc_values.shape[1:])
        )
        yield model, (valid, fc_values, tr_values)


def event_typical_errors(
    events: pd.DataFrame,
    truth: xr.Dataset,
    forecasts: dict[str, xr.Dataset],
    variable: str,
    lead_hours: int,
) -> pd.DataFrame:
    """The typical RMSE of each model over each event's box at one lead time, event or not.

    The RMSE over every cell of the event's box and every verifying forecast at that lead (all initial
    times, not only those inside the event). An event's error divided by this says how much worse the
    model did during the event than it usually does at that place: places with a high error on every
    day (the domain's edges, where a limited-area forecast loses its boundary information; steep
    orography) no longer top a ranking by raw error.

    Parameters
    ----------
    events, truth, forecasts, variable, lead_hours
        As for :func:`event_errors`.

    Returns
    -------
    pandas.DataFrame
        Index ``event_id``, one column per model; NaN where the model has no finite forecast there.
    """
    return event_error_tables(events, truth, forecasts, variable, lead_hours)[1]
