"""Baselines that produce a forecast Dataset directly: persistence, climatology and the NWP forecast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError
from workbench.models.protocol import (
    as_init_times,
    as_lead_times,
    forecast_dataset,
    select_initial,
    spatial_dims,
)

__all__ = ["Climatology", "NWPForecast", "Persistence"]


def _variables(initial: xr.Dataset, variables: Sequence[str] | None) -> tuple[str, ...]:
    if variables is not None:
        return tuple(variables)
    return tuple(str(v) for v in initial.data_vars if "time" in initial[v].dims)


class Persistence:
    """Tomorrow equals today: every lead time repeats the state at the initial time.

    Parameters
    ----------
    variables : sequence of str, optional
        Variables to forecast (default: every time-dependent variable of the initial data).
    """

    name = "persistence"
    time_step = None
    grid = None

    def __init__(self, variables: Sequence[str] | None = None) -> None:
        self._variables = tuple(variables) if variables is not None else None

    @property
    def variables(self) -> tuple[str, ...]:
        return self._variables or ()

    @property
    def input_variables(self) -> tuple[str, ...]:
        return self.variables

    def __repr__(self) -> str:
        return f"Persistence(variables={list(self._variables) if self._variables else 'all'})"

    def forecast(self, initial: xr.Dataset, init_times: Any, lead_times: Any) -> xr.Dataset:
        """Repeat the initial state over ``lead_times``; see :class:`workbench.models.Forecaster`."""
        inits, leads = as_init_times(init_times), as_lead_times(lead_times)
        variables = _variables(initial, self._variables)
        state = select_initial(initial, inits, variables)
        values = {
            v: np.broadcast_to(
                np.asarray(state[v].values)[:, None], (len(inits), len(leads)) + state[v].shape[1:]
            ).copy()
            for v in variables
        }
        return forecast_dataset(values, inits, leads, initial, model=self.name)


class Climatology:
    """The mean state per grid cell and hour of day over a training period.

    Parameters
    ----------
    data : xarray.Dataset, optional
        Data to build the climatology from (dims ``(time, <spatial>)``). When omitted, the
        ``initial`` data given to :meth:`forecast` is used, restricted to times *before* the first
        initial time, so that no forecast sees its own future.
    period : (start, end), optional
        Training period within ``data`` (inclusive); default: all of it.
    variables : sequence of str, optional
        Variables (default: every time-dependent variable).
    min_hours : int
        The fewest time steps a climatology may be built from.

    Notes
    -----
    Data that are not hourly (ERA5 is 6-hourly) only have some hours of day; a valid time at another
    hour takes the nearest available hour on the 24-hour circle.
    """

    name = "climatology"
    time_step = None
    grid = None

    def __init__(
        self,
        data: xr.Dataset | None = None,
        period: tuple[Any, Any] | None = None,
        variables: Sequence[str] | None = None,
        min_hours: int = 24,
    ) -> None:
        self._variables = tuple(variables) if variables is not None else None
        self.period = period
        self.min_hours = int(min_hours)
        self._climatology: xr.Dataset | None = None
        # without data, each forecast refits on the initial data before its first initial time
        self._auto = data is None
        if data is not None:
            self._climatology = self.fit(data, period)

    @property
    def variables(self) -> tuple[str, ...]:
        if self._variables:
            return self._variables
        return tuple(map(str, self._climatology.data_vars)) if self._climatology is not None else ()

    @property
    def input_variables(self) -> tuple[str, ...]:
        return self.variables

    @property
    def climatology(self) -> xr.Dataset | None:
        """The fitted climatology, dims ``(hour, <spatial>)``, or None before fitting."""
        return self._climatology

    def __repr__(self) -> str:
        return f"Climatology(period={self.period}, fitted={self._climatology is not None})"

    def fit(self, data: xr.Dataset, period: tuple[Any, Any] | None = None) -> xr.Dataset:
        """Compute (and keep) the mean per cell and hour of day of ``data`` over ``period``."""
        variables = _variables(data, self._variables)
        subset = data[list(variables)]
        if period is not None:
            subset = subset.sel(time=slice(pd.Timestamp(period[0]), pd.Timestamp(period[1])))
        if subset.sizes.get("time", 0) < self.min_hours:
            raise DataError(
                f"The climatology needs at least {self.min_hours} time steps; the training period "
                f"{period if period is not None else '(all data)'} has {subset.sizes.get('time', 0)}."
            )
        clim = subset.groupby("time.hour").mean("time", skipna=True)
        for v in variables:
            clim[v].attrs = {k: val for k, val in data[v].attrs.items() if k in ("units", "long_name")}
        times = pd.DatetimeIndex(subset.time.values)
        clim.attrs["period"] = f"{times.min()} to {times.max()}"
        self._climatology = clim.load()
        return self._climatology

    def _hour_lookup(self) -> np.ndarray:
        hours = np.asarray(self._climatology["hour"].values, dtype=int)
        target = np.arange(24)
        dist = np.abs(target[:, None] - hours[None, :])
        dist = np.minimum(dist, 24 - dist)
        return hours[np.argmin(dist, axis=1)]

    def forecast(self, initial: xr.Dataset, init_times: Any, lead_times: Any) -> xr.Dataset:
        """The climatological mean at each valid time's hour of day."""
        inits, leads = as_init_times(init_times), as_lead_times(lead_times)
        if self._auto:
            before = initial.sel(time=initial.time < np.datetime64(inits.min()))
            self.fit(before)
        clim = self._climatology
        missing = [v for v in (self._variables or ()) if v not in clim.data_vars]
        if missing:
            raise DataError(f"The climatology has no {missing}.")
        variables = self.variables
        sdims = spatial_dims(initial)
        for d in sdims:
            if d not in clim.dims or clim.sizes[d] != initial.sizes[d]:
                raise DataError(
                    f"The climatology's grid ({dict(clim.sizes)}) differs from the initial data's "
                    f"({dict(initial.sizes)})."
                )
        valid = inits.values[:, None] + leads.values[None, :]
        hours = self._hour_lookup()[pd.DatetimeIndex(valid.ravel()).hour]
        positions = pd.Index(clim["hour"].values).get_indexer(hours)
        values = {}
        for v in variables:
            table = clim[v].transpose("hour", *sdims).values
            values[v] = table[positions].reshape((len(inits), len(leads)) + table.shape[1:])
        return forecast_dataset(
            values,
            inits,
            leads,
            initial,
            model=self.name,
            attrs={"climatology_period": clim.attrs.get("period", "")},
        )


class NWPForecast:
    """An existing forecast data set (the sample NWP run or real HRRR forecasts) behind the protocol.

    Parameters
    ----------
    data : xarray.Dataset, optional
        Forecast with dims ``(init_time, lead_time, <spatial>)``. Default: the sample NWP forecast
        (``workbench.sample.open_sample("nwp", size=size)``).
    size : str
        Sample size used when ``data`` is omitted.
    variables : sequence of str, optional
        Restrict to these variables.
    """

    name = "nwp"
    grid = None

    def __init__(
        self, data: xr.Dataset | None = None, size: str = "default", variables: Sequence[str] | None = None
    ):
        self._data = data
        self.size = size
        self._variables = tuple(variables) if variables is not None else None

    @property
    def data(self) -> xr.Dataset:
        """The underlying forecast data set (opened lazily)."""
        if self._data is None:
            try:
                from workbench.sample import open_sample
            except ImportError as exc:
                raise DataError(f"The sample NWP forecast is not available ({exc}); pass data=.") from exc
            self._data = open_sample("nwp", size=self.size)
        for d in ("init_time", "lead_time"):
            if d not in self._data.dims:
                raise DataError(
                    f"An NWP forecast needs an {d!r} dimension; dims are {tuple(self._data.dims)}."
                )
        return self._data

    @property
    def variables(self) -> tuple[str, ...]:
        return self._variables or tuple(map(str, self.data.data_vars))

    @property
    def input_variables(self) -> tuple[str, ...]:
        return ()

    @property
    def time_step(self) -> pd.Timedelta | None:
        leads = pd.TimedeltaIndex(self.data["lead_time"].values)
        if len(leads) < 2:
            return None
        return pd.Timedelta(np.min(np.diff(leads.values)))

    def __repr__(self) -> str:
        return f"NWPForecast(size={self.size!r}, data={'given' if self._data is not None else 'sample'})"

    def forecast(self, initial: xr.Dataset | None, init_times: Any, lead_times: Any) -> xr.Dataset:
        """Select ``init_times`` x ``lead_times`` from the forecast data set.

        ``initial`` is not needed (the forecast exists already) and may be ``None``.
        """
        data = self.data
        inits, leads = as_init_times(init_times), as_lead_times(lead_times)
        have_i = pd.DatetimeIndex(data["init_time"].values)
        have_l = pd.TimedeltaIndex(data["lead_time"].values)
        absent_i, absent_l = inits.difference(have_i), leads.difference(have_l)
        if len(absent_i):
            raise DataError(
                f"The NWP forecast has no initial times {[str(t) for t in absent_i[:5]]}; it has "
                f"{len(have_i)} from {have_i.min()} to {have_i.max()}."
            )
        if len(absent_l):
            raise DataError(
                f"The NWP forecast has no lead times {[str(t) for t in absent_l[:5]]}; it has {list(map(str, have_l))}."
            )
        variables = list(self.variables)
        missing = [v for v in variables if v not in data.data_vars]
        if missing:
            raise DataError(f"The NWP forecast lacks variables {missing}.")
        out = data[variables].sel(init_time=inits, lead_time=leads)
        if "valid_time" not in out.coords:
            out = out.assign_coords(valid_time=out["init_time"] + out["lead_time"])
        out.attrs = {**out.attrs, "model": self.name}
        return out
