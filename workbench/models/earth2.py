"""Earth2Studio prognostic models (``earth2studio.models.px``) as workbench forecasters.

Earth2Studio's model zoo (Pangu, FourCastNet, SFNO, GraphCast, FuXi, AIFS, StormCast on the HRRR grid,
and its weight-free ``Persistence``) share one interface: ``input_coords()`` names the variables, the
history of lead times and the grid a model takes; ``create_iterator(x, coords)`` yields the initial
state and then one state per model step. :class:`Earth2Forecaster` wraps any such model behind
:class:`workbench.models.Forecaster`, so ``run_forecast`` (resumable stores), scoring and the dashboard
take it like any other model. Earth2Studio's lexicon is the workbench's (``t2m``, ``u10m``, ``z500``;
the few differences are :data:`workbench.lexicon.EARTH2_NAMES`, the one table between the two). Install
with the ``earth2`` extra.

Ensembles: ``run_forecast(model, data, inits, leads, members=n)`` runs the model once per member from
perturbed initial states (:mod:`workbench.inference.members`). The perturbation is an Earth2Studio method
when one is given (``perturbation=lambda seed: Gaussian(noise_amplitude=0.05, seed=seed)``; any of
``earth2studio.perturbation``), seeded per initial time and member, or else the workbench's correlated
noise.

On a GPU with the internet, Pangu-Weather from Earth2Studio's model registry runs as::

    from earth2studio.models.px import Pangu6
    model = Earth2Forecaster(Pangu6.load_model(Pangu6.load_default_package()).to("cuda"))
    forecast = run_forecast(model, era5_025, init_times=["2021-06-02"], lead_times=[6, 12, 24],
                            sink=ZarrSink.catalog("pangu"))
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench import lexicon
from workbench.errors import DataError, GridError
from workbench.models.protocol import as_init_times, as_lead_times, forecast_dataset


class Earth2Forecaster:
    """A :class:`~workbench.models.Forecaster` over an Earth2Studio prognostic model.

    Parameters
    ----------
    model : earth2studio prognostic model
        Anything with ``input_coords()``, ``output_coords(coords)`` and ``create_iterator(x, coords)``.
    name : str, optional
        Registry-style name; defaults to the model's ``str()`` (``"persistence"``, ``"pangu"``...).
    device : str
        Torch device the initial states are moved to (the model must already be there).

    Raises
    ------
    DataError
        A model whose variables have no workbench name.
    """

    #: ``run_forecast(..., members=n)`` makes noise members by perturbing this model's initial states
    #: (:class:`workbench.inference.members.PerturbedRunner`).
    perturbable = True

    def __init__(
        self,
        model: Any,
        name: str | None = None,
        device: str = "cpu",
        perturbation: Callable[[int], Any] | None = None,
    ):
        self.model = model
        self.device = device
        self.name = name or str(model)
        self.perturbation = perturbation
        self._in = model.input_coords()
        self._out = model.output_coords(self._in)
        self._in_names = [str(v) for v in np.asarray(self._in["variable"]).tolist()]
        self._out_names = [str(v) for v in np.asarray(self._out["variable"]).tolist()]
        missing = [v for v in self._in_names + self._out_names if lexicon.earth2_name(v) is None]
        if missing:
            raise DataError(
                f"{self.name}: Earth2Studio variables {sorted(set(missing))} have no workbench name."
            )
        self.input_variables = tuple(lexicon.earth2_name(v) for v in self._in_names)
        self.variables = tuple(lexicon.earth2_name(v) for v in self._out_names)
        self.history = pd.TimedeltaIndex(np.asarray(self._in["lead_time"]))  # e.g. [0] or [-6 h, 0]
        step = np.asarray(self._out["lead_time"])[-1] - np.asarray(self._in["lead_time"])[-1]
        self.time_step = pd.Timedelta(step)
        self._spatial = [k for k in self._in if k not in ("batch", "time", "lead_time", "variable")]
        self.grid = {
            "kind": "latlon" if self._spatial == ["lat", "lon"] else "earth2",
            "shape": [len(self._in[k]) for k in self._spatial],
        }

    @property
    def config(self) -> dict[str, Any]:
        """What a resumable store records of this model (so it is never resumed by another one)."""
        return {"model": self.name, "variables": list(self.variables), "perturbation": repr(self.perturbation)}

    def perturb(self, states: xr.Dataset, seed: int) -> xr.Dataset | None:
        """``states`` (dims ``(time, *grid)``, the model's history) perturbed by the Earth2Studio method.

        ``perturbation(seed)`` must return an Earth2Studio perturbation (``earth2studio.perturbation``:
        ``Gaussian``, ``CorrelatedSphericalGaussian``, ``BredVector``...), called as
        ``perturbation(x, coords)``; the global torch generator is seeded with ``seed`` too, for the
        methods that draw from it. Returns ``None`` without a perturbation, so that the workbench's own
        correlated noise is used.
        """
        if self.perturbation is None:
            return None
        import torch

        on_grid = self._on_model_grid(states).transpose("time", ...)
        x = np.stack([on_grid[v].values for v in self.input_variables], axis=1)[None]  # (1, lead, var, *grid)
        coords = OrderedDict(
            time=np.asarray([states["time"].values[-1]], dtype="datetime64[ns]"),
            lead_time=np.asarray(self.history.values, dtype="timedelta64[ns]"),
            variable=np.asarray(self._in_names),
            **{k: np.asarray(self._in[k]) for k in self._spatial},
        )
        method = self.perturbation(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out, _ = method(torch.as_tensor(x.astype(np.float32), device=self.device), coords)
        arr = out.detach().to("cpu").numpy()[0]
        result = on_grid.copy()
        for c, v in enumerate(self.input_variables):
            result[v] = (on_grid[v].dims, arr[:, c].astype(on_grid[v].dtype))
        return result

    def __repr__(self) -> str:
        return f"Earth2Forecaster({self.name}, {len(self.variables)} variables, step {self.time_step})"

    def _initial(self, initial: xr.Dataset, init: pd.Timestamp) -> tuple[np.ndarray, xr.Dataset]:
        """The model's input ``(lead_time, variable, *grid)`` at ``init``, from canonical data."""
        times = init + self.history
        have = pd.DatetimeIndex(initial["time"].values)
        absent = [str(t) for t in times if t not in have]
        if absent:
            raise DataError(
                f"{self.name} needs the states at {absent} (its history); the initial data lack them."
            )
        missing = [v for v in self.input_variables if v not in initial]
        if missing:
            raise DataError(
                f"{self.name} needs {missing} in the initial data; it has {list(initial.data_vars)}."
            )
        on_grid = self._on_model_grid(initial)
        stack = np.stack([on_grid[v].sel(time=times).values for v in self.input_variables], axis=1)
        return stack.astype(np.float32), on_grid

    def _on_model_grid(self, initial: xr.Dataset) -> xr.Dataset:
        """The initial data in the model's grid order (Earth2Studio: latitude 90 to -90, longitude 0 to 360)."""
        if self._spatial != ["lat", "lon"]:
            dims = [d for d in initial.dims if d != "time"]
            sizes = [initial.sizes[d] for d in dims]
            if sizes != self.grid["shape"]:
                raise GridError(f"{self.name} runs on a {self.grid['shape']} grid; the data are {sizes}.")
            return initial
        if "latitude" not in initial.dims or "longitude" not in initial.dims:
            raise GridError(f"{self.name} runs on a lat-lon grid; the data have dims {tuple(initial.dims)}.")
        lat, lon = (
            np.asarray(self._in["lat"], dtype=np.float64),
            np.asarray(self._in["lon"], dtype=np.float64),
        )
        try:
            return initial.sel(latitude=lat, longitude=lon, method="nearest", tolerance=1e-6)
        except KeyError:
            raise GridError(
                f"{self.name} runs on a {lat.size} x {lon.size} lat-lon grid ({abs(lat[1] - lat[0]):g} degrees); "
                "the data are on another one. Put them on the model's grid first (workbench.regrid.regrid)."
            ) from None

    def forecast(self, initial: xr.Dataset, init_times: Any, lead_times: Any) -> xr.Dataset:
        """Forecast by iterating the Earth2Studio model; see :class:`workbench.models.Forecaster`."""
        import torch

        inits = as_init_times(init_times)
        leads = as_lead_times(lead_times)
        ratio = leads / self.time_step
        if (leads <= pd.Timedelta(0)).any() or not np.allclose(ratio, np.round(ratio)):
            raise DataError(
                f"{self.name} steps by {self.time_step}; lead times must be positive multiples of it, got "
                f"{[str(t) for t in leads]}."
            )
        n_steps = int(np.round(ratio.max()))
        wanted = {int(r): i for i, r in enumerate(np.round(ratio).astype(int))}
        values = {v: None for v in self.variables}
        template = None
        for k, init in enumerate(inits):
            x, template = self._initial(initial, init)
            coords = dict(self._in)
            coords.pop("batch", None)
            coords = {"time": np.array([np.datetime64(init, "ns")]), **coords}
            tensor = torch.as_tensor(x[None], device=self.device)  # (time, lead_time, variable, *grid)
            iterator = self.model.create_iterator(tensor, OrderedDict(coords))
            for step, (state, out_coords) in enumerate(iterator):
                if step in wanted:
                    arr = state.detach().to("cpu").numpy()[0, -1]  # (variable, *grid) at the newest lead
                    names = [str(v) for v in np.asarray(out_coords["variable"]).tolist()]
                    for name in self._out_names:
                        canonical = lexicon.earth2_name(name)
                        if values[canonical] is None:
                            values[canonical] = np.full(
                                (len(inits), len(leads), *arr.shape[1:]), np.nan, np.float32
                            )
                        values[canonical][k, wanted[step]] = arr[names.index(name)]
                if step >= n_steps:
                    break
        template = template.isel(time=0, drop=True)
        ds = forecast_dataset(values, inits, leads, template, model=self.name)
        if "latitude" in ds.dims and ds["latitude"].values[0] > ds["latitude"].values[-1]:
            ds = ds.isel(latitude=slice(None, None, -1))  # back to the workbench's orientation
        return ds
