"""Pangu-Weather's released ONNX networks, run with onnxruntime behind the model protocol.

The Pangu-Weather authors (github.com/198808xc/Pangu-Weather) publish four networks,
``pangu_weather_1.onnx``, ``pangu_weather_3.onnx``, ``pangu_weather_6.onnx`` and
``pangu_weather_24.onnx`` (1, 3, 6 and 24-hour steps, about 1.1 GB each, CC BY-NC-SA 4.0). Each takes

* ``input``: float32 ``(5, 13, 721, 1440)`` — upper-air Z (geopotential, m2 s-2), Q, T, U, V on the 13
  levels 1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50 hPa, in that order;
* ``input_surface``: float32 ``(4, 721, 1440)`` — MSLP, U10, V10, T2M, in that order;

with latitude running from 90 to -90 and longitude from 0 to 359.75 (0.25 degrees), in physical units
(the networks normalise internally), and return ``output`` and ``output_surface`` of the same shapes one
step later. Longer lead times chain the networks by hierarchical temporal aggregation (31 h = 24 + 6 +
1).

Here the canonical names are ``z1000 ... z50, q..., t..., u..., v...`` and ``msl, u10m, v10m, t2m``; the
initial data come in the workbench's ERA5-like layout (``(time, latitude, longitude)``, latitude
ascending), which this module flips to Pangu's north-to-south order and back. The grid size is read
from the files, so networks exported at another resolution with the same signature run too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import CheckpointError, DataError, GridError
from workbench.models.hta import hta_schedule
from workbench.models.protocol import (
    as_init_times,
    as_lead_times,
    forecast_dataset,
    select_initial,
    spatial_dims,
)

__all__ = ["PANGU_LEVELS", "PANGU_SURFACE", "PANGU_UPPER_FIELDS", "PanguWeatherONNX", "pangu_variables"]

PANGU_LEVELS = (1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50)
PANGU_UPPER_FIELDS = ("z", "q", "t", "u", "v")
PANGU_SURFACE = ("msl", "u10m", "v10m", "t2m")
_FILE = re.compile(r"pangu_weather_(\d+)\.onnx$")


def pangu_variables() -> tuple[str, ...]:
    """Canonical names of Pangu-Weather's 69 fields: upper-air (field-major, level order) then surface."""
    return tuple(f"{f}{lv}" for f in PANGU_UPPER_FIELDS for lv in PANGU_LEVELS) + PANGU_SURFACE


def _static_dims(shape) -> list:
    return [d if isinstance(d, int) else None for d in shape]


class PanguWeatherONNX:
    """Pangu-Weather's ONNX networks as a workbench forecaster.

    Parameters
    ----------
    path : path-like or mapping of int to path-like
        A directory holding ``pangu_weather_<h>.onnx`` files, one such file, or ``{hours: file}``.
    step_hours : int, optional
        The step of a single file whose name does not say it.
    providers : list of str, optional
        onnxruntime execution providers (default: CUDA when available, then CPU).
    threads : int, optional
        Intra-op threads for onnxruntime (default: its own choice).

    Raises
    ------
    CheckpointError
        A missing or corrupt file, or one whose inputs/outputs are not Pangu-Weather's.
    """

    name = "pangu_weather"
    input_variables = pangu_variables()
    variables = pangu_variables()

    def __init__(
        self,
        path: str | os.PathLike | Mapping[int, str | os.PathLike],
        step_hours: int | None = None,
        providers: list[str] | None = None,
        threads: int | None = None,
    ) -> None:
        files = self._files(path, step_hours)
        self.runtimes: dict[int, Any] = {}
        self.grid_shape: tuple[int, int] | None = None
        for hours, file in sorted(files.items()):
            self.runtimes[hours] = self._open(file, providers, threads)
        self.steps = tuple(sorted(self.runtimes, reverse=True))
        self.time_step = pd.Timedelta(hours=min(self.steps))
        self.grid = {"kind": "latlon", "shape": list(self.grid_shape) if self.grid_shape else None}
        self.model_calls = 0

    def __repr__(self) -> str:
        return f"PanguWeatherONNX(steps={list(self.steps)} h, grid={self.grid_shape})"

    @staticmethod
    def _files(path, step_hours) -> dict[int, Path]:
        if isinstance(path, Mapping):
            return {int(h): Path(p) for h, p in path.items()}
        p = Path(path)
        if p.is_dir():
            found = {}
            for f in sorted(p.glob("pangu_weather_*.onnx")):
                m = _FILE.search(f.name)
                if m:
                    found[int(m.group(1))] = f
            if not found:
                raise CheckpointError(f"{p}: no pangu_weather_<hours>.onnx files in this directory.")
            return found
        m = _FILE.search(p.name)
        if step_hours is None and m is None:
            raise CheckpointError(f"{p}: cannot tell the time step from the name; pass step_hours=.")
        return {int(step_hours if step_hours is not None else m.group(1)): p}

    def _open(self, file: Path, providers, threads):
        import onnxruntime as ort

        if not file.exists():
            raise CheckpointError(f"{file}: the ONNX file does not exist.")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            runtime = ort.InferenceSession(str(file), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own classes for corrupt or invalid graphs
            raise CheckpointError(f"{file}: not a loadable ONNX model ({str(exc).splitlines()[0]}).") from exc
        inputs = {i.name: _static_dims(i.shape) for i in runtime.get_inputs()}
        outputs = {o.name for o in runtime.get_outputs()}
        if set(inputs) != {"input", "input_surface"} or not {"output", "output_surface"} <= outputs:
            raise CheckpointError(
                f"{file}: not a Pangu-Weather network: inputs {sorted(inputs)} and outputs {sorted(outputs)}, "
                "expected inputs ['input', 'input_surface'] and outputs ['output', 'output_surface']."
            )
        upper, surface = inputs["input"], inputs["input_surface"]
        if len(upper) != 4 or len(surface) != 3:
            raise CheckpointError(
                f"{file}: input ranks {len(upper)} and {len(surface)}; Pangu-Weather takes input (5, 13, lat, lon) "
                "and input_surface (4, lat, lon)."
            )
        for got, want, label in ((upper[:2], [5, 13], "input"), (surface[:1], [4], "input_surface")):
            if any(g is not None and g != w for g, w in zip(got, want, strict=True)):
                raise CheckpointError(f"{file}: {label} has leading dims {got}; Pangu-Weather's are {want}.")
        grid = tuple(upper[2:])
        if tuple(surface[1:]) != grid:
            raise CheckpointError(
                f"{file}: upper-air grid {grid} differs from the surface grid {tuple(surface[1:])}."
            )
        if None not in grid:
            if self.grid_shape is not None and self.grid_shape != grid:
                raise CheckpointError(f"{file}: grid {grid} differs from the other files' {self.grid_shape}.")
            self.grid_shape = (int(grid[0]), int(grid[1]))
        return runtime

    def step(self, upper: np.ndarray, surface: np.ndarray, hours: int) -> tuple[np.ndarray, np.ndarray]:
        """One call of the ``hours`` network on Pangu-ordered arrays ``(5, 13, lat, lon)``, ``(4, lat, lon)``."""
        if hours not in self.runtimes:
            raise DataError(f"No Pangu-Weather network with a {hours} h step; have {list(self.steps)} h.")
        out, out_surface = self.runtimes[hours].run(
            ["output", "output_surface"],
            {
                "input": np.ascontiguousarray(upper, np.float32),
                "input_surface": np.ascontiguousarray(surface, np.float32),
            },
        )
        self.model_calls += 1
        return out, out_surface

    def forecast(self, initial: xr.Dataset, init_times: Any, lead_times: Any) -> xr.Dataset:
        """Forecast with hierarchical temporal aggregation; see :class:`workbench.models.Forecaster`.

        ``initial`` holds the 69 fields by canonical name on the networks' lat-lon grid.
        """
        inits, leads = as_init_times(init_times), as_lead_times(lead_times)
        sdims = spatial_dims(initial)
        shape = (initial.sizes[sdims[0]], initial.sizes[sdims[1]])
        if self.grid_shape is not None and shape != self.grid_shape:
            raise GridError(f"The initial data's grid {shape} is not the networks' grid {self.grid_shape}.")
        lat = initial[sdims[0]].values if sdims[0] in initial.coords else None
        flip = lat is not None and len(lat) > 1 and lat[0] < lat[-1]  # Pangu runs north to south
        state = select_initial(initial, inits, self.variables).transpose("init_time", *sdims)
        n_up = len(PANGU_UPPER_FIELDS) * len(PANGU_LEVELS)
        lead_hours = [int(round(lt / pd.Timedelta(hours=1))) for lt in leads]
        if any(abs(lt / pd.Timedelta(hours=1) - h) > 1e-9 for lt, h in zip(leads, lead_hours, strict=True)):
            raise DataError("Pangu-Weather lead times must be whole hours.")
        out = np.empty((len(inits), len(leads), len(self.variables)) + shape, dtype=np.float32)
        for i in range(len(inits)):
            fields = np.stack([state[v].values[i] for v in self.variables]).astype(np.float32)
            if flip:
                fields = fields[:, ::-1]
            cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {
                (): (fields[:n_up].reshape(len(PANGU_UPPER_FIELDS), len(PANGU_LEVELS), *shape), fields[n_up:])
            }
            for j, hours in enumerate(lead_hours):
                path = tuple(hta_schedule(hours, self.steps))
                for k in range(1, len(path) + 1):
                    if path[:k] not in cache:
                        cache[path[:k]] = self.step(*cache[path[: k - 1]], path[k - 1])
                upper, surface = cache[path]
                result = np.concatenate([upper.reshape(n_up, *shape), surface])
                out[i, j] = result[:, ::-1] if flip else result
        values = {v: out[:, :, c] for c, v in enumerate(self.variables)}
        return forecast_dataset(values, inits, leads, initial, model=self.name)
