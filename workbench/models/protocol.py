"""The model contract: what a model declares so that the engine can run it, and the forecast layout.

Three kinds of model meet here, each a :class:`typing.Protocol` checked with ``isinstance`` when a model
is loaded or built (:func:`check_model`):

* a :class:`Forecaster` forecasts by itself: ``forecast(initial, init_times, lead_times)`` returns a
  Dataset (persistence, climatology, the NWP forecast, Pangu-Weather's ONNX files);
* a :class:`StepForecaster` is a prognostic network that advances a state tensor, normalised by its
  ``normalization``, by its ``time_step`` (``step(x, valid_time=...)``); the inference engine rolls it out;
* a :class:`StepFamily` holds step forecasters of several time steps, used together by hierarchical
  temporal aggregation (Pangu-like), and declares them with ``step_models()``.

An :class:`EnsembleMember` is a step forecaster or family whose weights live in one torch module
(``torch_module()``): the engine hashes them into a store's signature and draws MC-dropout members from
them; a list of members makes a deep ensemble.

Models never import the engine: every model, of any kind, is run by
:func:`workbench.inference.run_forecast`, which finds what it needs through :func:`step_models` and
these protocols only. This is the contract an adapter for outside models implements.

Forecast layout: dims ``(init_time, lead_time, <spatial dims>)`` where the spatial dims are those of
the initial data (``y, x`` on the HRRR-like grid, ``latitude, longitude`` on lat-lon grids);
``lead_time`` is timedelta64; coordinate ``valid_time = init_time + lead_time`` (2-D).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError

if TYPE_CHECKING:  # torch is imported by the torch models themselves, not by the contract
    import torch
    from torch import nn

__all__ = [
    "EnsembleMember",
    "Forecaster",
    "StepFamily",
    "StepForecaster",
    "as_init_times",
    "as_lead_times",
    "check_model",
    "forecast_dataset",
    "is_stepped",
    "select_initial",
    "spatial_dims",
    "step_models",
    "torch_module",
]


@runtime_checkable
class Forecaster(Protocol):
    """A model that forecasts by itself (a baseline, or a model run by another runtime).

    Attributes
    ----------
    name : str
        Registry name (``"persistence"``, ``"nwp"``, ...).
    variables : tuple of str
        Canonical names of the variables the model forecasts (empty: whatever the initial data holds).
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


@runtime_checkable
class StepForecaster(Protocol):
    """A prognostic network: advances a normalised state by ``time_step``.

    Attributes
    ----------
    name : str
        Registry name.
    variables : tuple of str
        The state's channels, in order; the network forecasts all of them.
    input_variables : tuple of str
        What it reads from the initial data (the same as ``variables`` for a network that can be rolled
        out).
    time_step : pandas.Timedelta
        How far one :meth:`step` advances the state.
    grid : dict or None
        The grid the network was built for.
    normalization : object
        Per-variable statistics with ``tensors(variables, device=...) -> (mean, std)``: the engine keeps
        the state normalised by them between steps
        (:class:`~workbench.models.normalization.Normalization`).
    """

    name: str
    variables: tuple[str, ...]
    input_variables: tuple[str, ...]
    time_step: pd.Timedelta
    grid: dict | None
    normalization: Any

    def step(self, x: torch.Tensor, valid_time: Any = None) -> torch.Tensor:
        """The normalised state ``time_step`` later; ``valid_time`` (hours since 1970, one per batch
        element) is the input's valid time, for models with time-of-day forcings."""
        ...


@runtime_checkable
class StepFamily(Protocol):
    """Step forecasters of several time steps that forecast the same variables, used together by
    hierarchical temporal aggregation (each lead reached with the fewest steps, longest first).

    A lead-time conditioned network trained for several leads (ClimaX-like) is a family too: one
    member per trained lead, all sharing its weights.
    """

    name: str
    variables: tuple[str, ...]

    def step_models(self) -> Mapping[pd.Timedelta, StepForecaster]:
        """The step forecaster of each time step."""
        ...


@runtime_checkable
class EnsembleMember(Protocol):
    """A step forecaster or family whose weights live in one torch module.

    The engine hashes that module's parameters into a forecast store's signature (a store is never
    resumed with other weights) and draws MC-dropout weight members from its dropout layers; a list of
    members is a deep ensemble, one weight member each.
    """

    def torch_module(self) -> nn.Module:
        """The module that holds every parameter of the model."""
        ...


def is_stepped(model: Any) -> bool:
    """Whether the engine rolls ``model`` out (a :class:`StepForecaster` or :class:`StepFamily`)."""
    return isinstance(model, (StepFamily, StepForecaster))


def step_models(model: Any) -> dict[pd.Timedelta, StepForecaster]:
    """The step forecaster of each time step of a stepped model: its own family, or just itself.

    Raises
    ------
    DataError
        If ``model`` is neither a :class:`StepFamily` nor a :class:`StepForecaster`, or a family is empty.
    """
    if isinstance(model, StepFamily):
        family = {pd.Timedelta(k): v for k, v in model.step_models().items()}
        if not family:
            raise DataError(f"{type(model).__name__}.step_models() is empty; a family needs one network at least.")
        return family
    if isinstance(model, StepForecaster):
        return {pd.Timedelta(model.time_step): model}
    raise DataError(
        f"{type(model).__name__} is neither a step forecaster (step, time_step, normalization) nor a "
        "family of them (step_models); baselines forecast by themselves through forecast()."
    )


def torch_module(model: Any) -> nn.Module:
    """The torch module that holds a model's parameters (see :class:`EnsembleMember`)."""
    if not isinstance(model, EnsembleMember):
        raise DataError(
            f"{type(model).__name__} does not say where its weights are; an ensemble member defines "
            "torch_module()."
        )
    return model.torch_module()


def check_model(model: Any, name: str | None = None) -> Any:
    """Return ``model`` if it meets one of the model protocols, else raise a one-line error.

    Called by :func:`workbench.models.load` and :func:`workbench.models.build` on every model they hand
    out, so that a model which does not keep the contract is refused where it joins the workbench
    rather than deep inside a forecast.
    """
    if isinstance(model, (Forecaster, StepForecaster, StepFamily)):
        return model
    label = name or type(model).__name__
    raise DataError(
        f"Model {label!r} ({type(model).__name__}) meets none of the model protocols: a Forecaster needs name, "
        "variables, input_variables, time_step, grid and forecast(); a StepForecaster those attributes (less "
        "forecast) with normalization and step; a StepFamily name, variables and "
        "step_models() (see workbench.models.protocol)."
    )


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
