"""The protocol every forecaster meets, and the forecast layout it returns.

Two kinds of model meet here. Baselines (persistence, climatology, the NWP forecast, Pangu-Weather's
ONNX files) produce a forecast :class:`xarray.Dataset` directly. Torch prognostic networks
(:class:`workbench.models.TorchForecaster`) map a normalised state tensor to the next state; their
``forecast`` runs through the inference engine (:func:`workbench.inference.rollout`), which does the
batching, autocast and the roll-out. Downstream code (the scorer, the dashboard) sees only
:class:`Forecaster` and the layout built by :func:`forecast_dataset`.

Forecast layout: dims ``(init_time, lead_time, <spatial dims>)`` where the spatial dims are those of
the initial data (``y, x`` on the HRRR-like grid, ``latitude, longitude`` on lat-lon grids);
``lead_time`` is timedelta64; coordinate ``valid_time = init_time + lead_time`` (2-D).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError

__all__ = [
    "Forecaster",
    "as_init_times",
    "as_lead_times",
    "forecast_dataset",
    "select_initial",
    "spatial_dims",
]


@runtime_checkable
class Forecaster(Protocol):
    """What every model offers to the rest of the workbench.

    Attributes
    ----------
    name : str
        Registry name (``"persistence"``, ``"pangu"``, ...).
    variables : tuple of str
        Canonical names of the variables the model forecasts.
    input_variables : tuple of str
        Canonical names it needs in the initial data.
    time_step : pandas.Timedelta or None
        The model's native step; lead times must be multiples of it. ``None`` means any lead time
        can be produced directly (persistence, climatology).
    grid : dict or None
        The grid the model was built for (``{"kind": "hrrr", "spacing_km": 24.0, "shape": [133, 225]}``),
        or ``None`` when it is grid-agnostic.
    """

    name: str
    variables: tuple[str, ...]
    input_variables: tuple[str, ...]
    time_step: pd.Timedelta | None
    grid: dict | None

    def forecast(self, initial: xr.Dataset, init_times: Any, lead_times: Any) -> xr.Dataset:
        """Forecast from the states of ``initial`` at ``init_times`` for ``lead_times``.

        Parameters
        ----------
        initial : xarray.Dataset
            Analysis with a ``time`` dimension and the model's input variables.
        init_times : array-like of datetime64
            Initial times (each must be in ``initial.time``).
        lead_times : array-like of timedelta64, pandas.Timedelta, or int hours
            Lead times.

        Returns
        -------
        xarray.Dataset
            Forecast in the layout of :func:`forecast_dataset`.
        """
        ...


def as_init_times(init_times: Any) -> pd.DatetimeIndex:
    """Turn one or several initial times into a sorted, duplicate-free :class:`pandas.DatetimeIndex`."""
    if isinstance(init_times, (str, np.datetime64, pd.Timestamp)) or not isinstance(init_times, Iterable):
        init_times = [init_times]
    try:
        index = pd.DatetimeIndex(pd.to_datetime(list(np.asarray(init_times).ravel())))
    except (ValueError, TypeError) as exc:
        raise DataError(f"Cannot read initial times {init_times!r} as dates: {exc}") from exc
    if len(index) == 0:
        raise DataError("No initial times given; pass at least one datetime.")
    return index.unique().sort_values()


def as_lead_times(lead_times: Any) -> pd.TimedeltaIndex:
    """Turn lead times (timedelta-likes, or plain numbers meaning hours) into a sorted TimedeltaIndex.

    Parameters
    ----------
    lead_times : timedelta-like, number, or a collection of them
        One lead time or several: a list, a numpy array, a :class:`pandas.TimedeltaIndex` or Series, or
        an xarray coordinate or DataArray (e.g. ``forecast.lead_time``) of timedelta64. Plain numbers
        are hours.

    Raises
    ------
    DataError
        If a lead time is negative, missing (NaT) or cannot be read.
    """
    if isinstance(lead_times, (str, int, float, np.integer, np.floating, np.timedelta64, pd.Timedelta)):
        lead_times = [lead_times]
    if isinstance(lead_times, (xr.DataArray, xr.Variable, pd.Index, pd.Series)):
        lead_times = np.asarray(lead_times)
    if isinstance(lead_times, np.ndarray) and lead_times.dtype.kind == "m":
        lead_times = lead_times.astype("timedelta64[ns]")  # whole array at once, any unit
    values = list(lead_times.ravel()) if isinstance(lead_times, np.ndarray) else list(lead_times)
    converted = []
    for value in values:
        # np.timedelta64 subclasses np.signedinteger: test for time deltas before plain numbers
        if isinstance(value, (np.timedelta64, pd.Timedelta, datetime.timedelta, str)):
            try:
                converted.append(pd.Timedelta(value))
            except (ValueError, TypeError) as exc:
                raise DataError(f"Cannot read lead time {value!r}: {exc}") from exc
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            converted.append(pd.Timedelta(hours=float(value)))
        else:
            raise DataError(f"Cannot read lead time {value!r}; give timedeltas or numbers of hours.")
    if not converted:
        raise DataError("No lead times given; pass at least one (e.g. [1, 6, 24] hours).")
    if any(pd.isna(t) for t in converted):
        raise DataError(f"Lead times must not be missing (NaT); got {values!r}.")
    index = pd.TimedeltaIndex(converted).unique().sort_values()
    if (index < pd.Timedelta(0)).any():
        raise DataError(f"Lead times must not be negative; got {list(index[index < pd.Timedelta(0)])}.")
    return index


def spatial_dims(data: xr.Dataset | xr.DataArray, time_dim: str = "time") -> tuple[str, ...]:
    """The spatial dimensions of gridded data: ``("y", "x")`` or ``("latitude", "longitude")``."""
    for dims in (("y", "x"), ("latitude", "longitude"), ("lat", "lon")):
        if all(d in data.dims for d in dims):
            return dims
    others = tuple(d for d in data.dims if d != time_dim)
    if len(others) != 2:
        raise DataError(
            f"Cannot tell the two spatial dimensions of data with dims {tuple(data.dims)}; expected (y, x) "
            "or (latitude, longitude)."
        )
    return others


def select_initial(
    initial: xr.Dataset, init_times: pd.DatetimeIndex, variables: Sequence[str], time_dim: str = "time"
) -> xr.Dataset:
    """The states of ``initial`` at ``init_times`` for ``variables``, with clear errors when absent.

    Returns a Dataset with dims ``(init_time, <spatial dims>)``.
    """
    missing = [v for v in variables if v not in initial.data_vars]
    if missing:
        raise DataError(
            f"The initial data lacks variables {missing} that the model needs; it has "
            f"{sorted(map(str, initial.data_vars))}."
        )
    if time_dim not in initial.dims:
        raise DataError(f"The initial data has no {time_dim!r} dimension (dims: {tuple(initial.dims)}).")
    have = pd.DatetimeIndex(initial[time_dim].values)
    absent = init_times.difference(have)
    if len(absent):
        raise DataError(
            f"Initial times {[str(t) for t in absent[:5]]}{' ...' if len(absent) > 5 else ''} are not in the "
            f"initial data, which covers {have.min()} to {have.max()}."
        )
    out = initial[list(variables)].sel({time_dim: init_times})
    return out.rename({time_dim: "init_time"})


def forecast_dataset(
    values: dict[str, np.ndarray],
    init_times: pd.DatetimeIndex,
    lead_times: pd.TimedeltaIndex,
    template: xr.Dataset | xr.DataArray,
    model: str | None = None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """Build a forecast Dataset in the workbench layout.

    Parameters
    ----------
    values : dict of str to numpy.ndarray
        Per variable an array ``(init_time, lead_time, ny, nx)`` (any extra leading member dims must
        come between ``lead_time`` and the spatial dims and are not handled here).
    init_times, lead_times : pandas indexes
        Coordinates of the first two dims.
    template : xarray.Dataset or DataArray
        Data on the same grid: its spatial dims, their coordinates and 2-D ``latitude``/``longitude``
        coordinates are copied, and its variables' ``units`` attributes are carried over.
    model : str, optional
        Stored in ``attrs["model"]``.
    attrs : dict, optional
        Extra dataset attributes.

    Returns
    -------
    xarray.Dataset
        Dims ``(init_time, lead_time, <spatial dims>)`` with coordinate ``valid_time``.
    """
    sdims = spatial_dims(template)
    coords: dict[str, Any] = {"init_time": init_times.values, "lead_time": lead_times.values}
    for dim in sdims:
        if dim in template.coords:
            coords[dim] = template[dim].values
    for name, coord in template.coords.items():
        if name not in coords and set(coord.dims) and set(coord.dims) <= set(sdims):
            coords[name] = (coord.dims, coord.values, dict(coord.attrs))
    valid = init_times.values[:, None] + lead_times.values[None, :]
    coords["valid_time"] = (("init_time", "lead_time"), valid)
    data_vars = {}
    for name, array in values.items():
        array = np.asarray(array)
        expected = (len(init_times), len(lead_times)) + tuple(template.sizes[d] for d in sdims)
        if array.shape != expected:
            raise DataError(f"Forecast array for {name!r} has shape {array.shape}; expected {expected}.")
        var_attrs = {}
        if isinstance(template, xr.Dataset) and name in template.data_vars:
            var_attrs = {k: v for k, v in template[name].attrs.items() if k in ("units", "long_name")}
        data_vars[name] = (("init_time", "lead_time", *sdims), array, var_attrs)
    ds = xr.Dataset(data_vars, coords=coords)
    if model is not None:
        ds.attrs["model"] = model
    if attrs:
        ds.attrs.update(attrs)
    return ds
