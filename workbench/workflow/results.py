"""What the dashboard shows: truth, forecasts, masks, events and scores, bundled, with field look-ups.

:class:`Results` only holds objects in the workbench's layouts; :func:`~workbench.workflow.load.load_results` fills one from the
embedded sample (see :mod:`workbench.workflow.pipeline`), and a scores file the catalog names can replace its
scores.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError
from workbench.grids import LambertConformalGrid
from workbench.workflow.derive import (
    event_error_tables,
    grid_from_coords,
    spread_split,
    with_model_dim,
)

#: Memory (MB) the dashboard keeps loaded fields in, across its sessions (``$WORKBENCH_DASHBOARD_MEMORY_MB``).
MEMORY_BUDGET_MB = 2048


class ViewCache:
    """Views built from one :class:`Results`, shared by every session that shows them.

    Each kind of view (``"skill"``, ``"scorecard"``, ``"event_rows"``, ...) keeps up to ``kept`` of its
    views, the oldest dropped first; a view is built once per key by the function that makes it.

    Parameters
    ----------
    kept : int
        Views kept per kind.
    """

    def __init__(self, kept: int = 512) -> None:
        if kept < 1:
            raise DataError(f"A view cache keeps at least one view per kind; got kept={kept}.")
        self.kept = int(kept)
        self._kinds: dict[str, OrderedDict] = {}

    def get(self, kind: str, key: Hashable, build: Callable[[], Any]) -> Any:
        """The view of ``kind`` for ``key``, made by ``build()`` the first time."""
        views = self._kinds.setdefault(kind, OrderedDict())
        if key not in views:
            if len(views) >= self.kept:
                views.popitem(last=False)
            views[key] = build()
        return views[key]

    def count(self, kind: str) -> int:
        """How many views of ``kind`` are kept."""
        return len(self._kinds.get(kind, ()))

    def clear(self) -> None:
        """Drop every view."""
        self._kinds.clear()


@dataclass(eq=False)
class Results:
    """Everything the dashboard plots, for one data set.

    Attributes
    ----------
    truth : xarray.Dataset
        Analysis ``(time, y, x)``.
    forecasts : dict of str to xarray.Dataset
        Per model, ``(init_time, lead_time, y, x)``.
    scores : xarray.Dataset
        ``(model, variable, lead_time, region)``.
    masks : xarray.DataArray or None
        Boolean ``(event_type, time, y, x)``.
    events : pandas.DataFrame
        Event table (``event_id, event_type, start, end, y_min, ...``).
    ensembles : dict of str to xarray.Dataset
        Per model, ``(init_time, lead_time, weight_member, noise_member, y, x)``, for the spread maps.
    label : str
        Shown in the page header.
    notes : list of str
        What was left out and why (shown on the page).
    views : ViewCache
        The views built from these results (plots, tables), shared by every session.
    """

    truth: xr.Dataset
    forecasts: dict[str, xr.Dataset]
    scores: xr.Dataset
    masks: xr.DataArray | None = None
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    ensembles: dict[str, xr.Dataset] = field(default_factory=dict)
    label: str = ""
    notes: list[str] = field(default_factory=list)
    views: ViewCache = field(default_factory=ViewCache, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.scores = with_model_dim(self.scores)
        if not self.forecasts:
            raise DataError("Results need at least one model's forecast.")
        self._cache: dict = {}
        self._arrays: OrderedDict = OrderedDict()

    # -- what there is ------------------------------------------------------------------------------
    @functools.cached_property
    def grid(self) -> LambertConformalGrid:
        """The truth's Lambert grid."""
        return grid_from_coords(self.truth)

    @property
    def models(self) -> list[str]:
        """Models with scores, in the scores' order (those with forecasts first)."""
        scored = [str(m) for m in self.scores["model"].values]
        return [m for m in scored if m in self.forecasts] + [m for m in scored if m not in self.forecasts]

    @property
    def map_models(self) -> list[str]:
        """Models whose fields can be mapped."""
        return [m for m in self.models if m in self.forecasts] or list(self.forecasts)

    @property
    def variables(self) -> list[str]:
        """Scored variables that the truth also has, in the scores' order."""
        return [str(v) for v in self.scores["variable"].values if str(v) in self.truth.data_vars]

    @property
    def regions(self) -> list[str]:
        """Score regions (``all``, ``extreme``, ``non_extreme``, event types and, where the forecasts' own
        events were scored, the forecast-conditioned regions of :mod:`workbench.scoring.regions`)."""
        return [str(r) for r in self.scores["region"].values]

    @property
    def event_types(self) -> list[str]:
        """Event types of the masks."""
        if self.masks is None or "event_type" not in self.masks.dims:
            return []
        return [str(t) for t in self.masks["event_type"].values]

    def init_times(self, model: str) -> list[pd.Timestamp]:
        """Initial times of a model's forecast."""
        return [pd.Timestamp(t) for t in self._forecast(model)["init_time"].values]

    def lead_hours(self, model: str) -> list[int]:
        """Lead times of a model's forecast, whole hours."""
        lead = self._forecast(model)["lead_time"].values
        return [int(h) for h in (lead.astype("timedelta64[s]").astype(np.int64) // 3600)]

    def _forecast(self, model: str) -> xr.Dataset:
        try:
            return self.forecasts[model]
        except KeyError:
            raise DataError(
                f"No forecast fields for model {model!r}; models with fields: {list(self.forecasts)}."
            ) from None

    # -- arrays in memory ---------------------------------------------------------------------------
    def _memo(self, key: tuple, load) -> xr.DataArray:
        """``load()`` once, kept in memory (least recently used first out, :data:`MEMORY_BUDGET_MB`)."""
        arrays = self._arrays
        if key in arrays:
            arrays.move_to_end(key)
            return arrays[key]
        da = load()
        arrays[key] = da
        budget = float(os.environ.get("WORKBENCH_DASHBOARD_MEMORY_MB", MEMORY_BUDGET_MB)) * 2**20
        while len(arrays) > 1 and sum(a.nbytes for a in arrays.values()) > budget:
            arrays.popitem(last=False)
        return da

    @functools.cached_property
    def _verification_times(self) -> slice:
        starts, ends = [], []
        for fc in self.forecasts.values():
            valid = fc["init_time"].values[:, None] + fc["lead_time"].values[None, :]
            starts.append(valid.min())
            ends.append(valid.max())
        return slice(min(starts), max(ends))

    def truth_var(self, variable: str) -> xr.DataArray:
        """The truth of one variable over the forecasts' valid times, in memory."""
        if variable not in self.truth.data_vars:
            raise DataError(f"The truth has no {variable!r}; it has {sorted(self.truth.data_vars)}.")
        return self._memo(
            ("truth", variable), lambda: self.truth[variable].sel(time=self._verification_times).load()
        )

    def forecast_var(self, model: str, variable: str) -> xr.DataArray:
        """One model's forecast of one variable, ``(init_time, lead_time, y, x)`` (member mean), in memory."""
        fc = self._forecast(model)
        if variable not in fc.data_vars:
            raise DataError(f"Model {model!r} does not forecast {variable!r}; it has {sorted(fc.data_vars)}.")

        def load() -> xr.DataArray:
            da = fc[variable]
            if "member" in da.dims:
                da = da.mean("member")
            return da.load()

        return self._memo(("forecast", model, variable), load)

    def ensemble_var(self, model: str, variable: str) -> xr.DataArray:
        """One model's ensemble of one variable, ``(init_time, lead_time, weight_member, noise_member, y, x)``."""
        if model not in self.ensembles:
            raise DataError(f"No ensemble for model {model!r}; spread maps exist for {list(self.ensembles)}.")
        return self._memo(("ensemble", model, variable), lambda: self.ensembles[model][variable].load())

    # -- fields -------------------------------------------------------------------------------------
    def field(self, kind: str, model: str, variable: str, init_time, lead_hours: int) -> xr.DataArray:
        """A 2-D ``(y, x)`` field for the maps.

        Parameters
        ----------
        kind : str
            ``truth``, ``forecast``, ``error``, ``spread_epistemic`` or ``spread_aleatoric``.
        model, variable : str
            Model and canonical variable.
        init_time : datetime-like
            Initial time.
        lead_hours : int
            Lead time in hours.

        Returns
        -------
        xarray.DataArray
            All NaN when the truth lacks the valid time (a forecast past the end of the analysis).
        """
        init = np.datetime64(pd.Timestamp(init_time).to_datetime64(), "ns")
        lead = np.timedelta64(int(lead_hours), "h").astype("timedelta64[ns]")
        valid = init + lead
        if kind == "truth":
            return self._truth_at(variable, valid)
        if kind.startswith("spread"):
            members = self._select(self.ensemble_var(model, variable), model, init, lead, lead_hours)
            epistemic, aleatoric = spread_split(members)
            return epistemic if kind == "spread_epistemic" else aleatoric
        forecast = self._select(self.forecast_var(model, variable), model, init, lead, lead_hours)
        if kind == "forecast":
            return forecast
        if kind == "error":
            truth = self._truth_at(variable, valid)
            return (forecast - truth.values).assign_attrs(units=forecast.attrs.get("units", ""))
        raise DataError(
            f"Unknown map kind {kind!r}; use truth, forecast, error, spread_epistemic or spread_aleatoric."
        )

    @staticmethod
    def _select(da: xr.DataArray, model: str, init, lead, lead_hours) -> xr.DataArray:
        try:
            return da.sel(init_time=init, lead_time=lead)
        except KeyError:
            raise DataError(
                f"Model {model!r} has no forecast from {pd.Timestamp(init)} at +{lead_hours} h."
            ) from None

    def _truth_at(self, variable: str, valid: np.datetime64) -> xr.DataArray:
        da = self.truth_var(variable)
        if valid in self._truth_times:
            return da.sel(time=valid)
        template = self.truth[variable].isel(time=0, drop=True)
        return xr.DataArray(
            np.full(template.shape, np.nan, np.float32),
            dims=template.dims,
            coords=template.coords,
            name=variable,
            attrs=template.attrs,
        )

    @functools.cached_property
    def _truth_times(self) -> set:
        return set(self.truth["time"].sel(time=self._verification_times).values)

    def event_errors(self, variable: str, lead_hours: int) -> pd.DataFrame:
        """Each mapped model's RMSE inside each event at one lead time (cached; see
        :func:`workbench.workflow.derive.event_errors`)."""
        return self._event_tables(variable, lead_hours)[0]

    def event_typical_errors(self, variable: str, lead_hours: int) -> pd.DataFrame:
        """Each mapped model's typical RMSE over each event's box at one lead time, event or not (cached;
        see :func:`workbench.workflow.derive.event_typical_errors`)."""
        return self._event_tables(variable, lead_hours)[1]

    def _event_tables(self, variable: str, lead_hours: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        # both tables from one load of the fields (the first visit of a variable and lead time)
        key = ("event_tables", variable, int(lead_hours))
        if key not in self._cache:
            truth = self.truth_var(variable).to_dataset()
            forecasts = {
                m: self.forecast_var(m, variable).to_dataset()
                for m in self.map_models
                if variable in self.forecasts[m].data_vars
            }
            self._cache[key] = event_error_tables(
                self.events, truth, forecasts, variable, int(lead_hours), self.masks
            )
        return self._cache[key]

    def mask_at(self, valid_time, event_type: str | None = None) -> xr.DataArray | None:
        """The ``(y, x)`` mask at a valid time: one event type, or the union of all (``None``/``"all"``)."""
        if self.masks is None:
            return None
        valid = np.datetime64(pd.Timestamp(valid_time).to_datetime64(), "ns")
        if valid not in set(self.masks["time"].values):
            return None
        m = self.masks.sel(time=valid)
        if "event_type" in m.dims:
            if event_type in (None, "all", "extreme"):
                m = m.any("event_type")
            elif event_type in self.event_types:
                m = m.sel(event_type=event_type)
            else:
                raise DataError(f"Unknown event type {event_type!r}; mask layers are {self.event_types}.")
        return m.load()

    def clim(self, variable: str) -> tuple[float, float]:
        """A stable colour range for a variable's truth and forecasts (0.5-99.5 percentiles of the truth)."""
        key = ("clim", variable)
        if key not in self._cache:
            da = self.truth[variable]
            # A strided subset is plenty for percentiles and keeps this instant at 3 km.
            step = max(1, int(np.ceil(max(da.sizes["y"], da.sizes["x"]) / 200)))
            times = np.unique(np.linspace(0, da.sizes["time"] - 1, min(24, da.sizes["time"])).astype(int))
            sub = np.asarray(da.isel(time=times, y=slice(None, None, step), x=slice(None, None, step)), float)
            sub = sub[np.isfinite(sub)]
            lo, hi = np.percentile(sub, [0.5, 99.5]) if sub.size else (0.0, 1.0)
            self._cache[key] = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
        return self._cache[key]

    def error_clim(self, model: str, variable: str) -> tuple[float, float]:
        """A stable symmetric colour range for a model's errors: twice its largest overall RMSE."""
        key = ("error_clim", model, variable)
        if key not in self._cache:
            top = np.nan
            if "rmse" in self.scores and model in self.scores["model"].values:
                rmse = self.scores["rmse"].sel(model=model, variable=variable, region="all")
                top = float(np.nanmax(np.asarray(rmse))) * 2 if np.isfinite(rmse).any() else np.nan
            if not np.isfinite(top) or top <= 0:
                lo, hi = self.clim(variable)
                top = (hi - lo) / 4
            self._cache[key] = (-top, top)
        return self._cache[key]
