"""Synthetic results in the pipeline's exact layouts, at any grid spacing, for exercising the views.

The dashboard's tests and its 3-km benchmark need truth, forecasts, masks, events, an ensemble and
scores on grids the sample pipeline would take long to fill (a full 1059 x 1799 HRRR grid). This
module makes them directly: smooth temperature with a diurnal cycle, convective storms that move
east as reflectivity and rain blobs (each storm an event with a mask and a table row), forecasts that
misplace the storms more with lead time and a two-level ensemble. They are bundled and scored by
:func:`~workbench.workflow.build.build_results`, the pipeline's own scoring (the ensemble as model
``<name>-ensemble``; the ACC against each cell's mean over the period). Nothing here stands in for the
real pipeline (:mod:`workbench.workflow.pipeline`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from workbench.grids import hrrr_grid
from workbench.workflow.build import build_results
from workbench.workflow.results import Results

START = np.datetime64("2020-06-01T00", "ns")


def _storms(rng: np.random.Generator, n: int, hours: int, grid) -> pd.DataFrame:
    x_span, y_span = grid.x[-1] - grid.x[0], grid.y[-1] - grid.y[0]
    return pd.DataFrame(
        {
            "t0": rng.integers(0, max(1, hours - 12), n),
            "life": rng.integers(6, 18, n),
            "x0": grid.x[0] + x_span * rng.uniform(0.1, 0.6, n),
            "y0": grid.y[0] + y_span * rng.uniform(0.2, 0.8, n),
            "u": rng.uniform(8.0, 15.0, n),  # m s-1 eastward
            "radius": rng.uniform(60e3, 150e3, n),
            "family": rng.choice(["hail", "wind"], n),
        }
    )


def _fields(grid, times: np.ndarray, storms: pd.DataFrame, shift_m: float = 0.0):
    """t2m (K), refc (dBZ), tp (m) and the storm masks at ``times``; storms displaced by ``shift_m``."""
    x, y = grid.x[None, None, :], grid.y[None, :, None]
    hours = ((times - START) / np.timedelta64(1, "h")).astype(float)[:, None, None]
    lat = grid.latitude[None].astype(np.float32)
    lon = grid.longitude[None].astype(np.float32)
    local_hour = hours + lon / 15.0
    t2m = 300.0 - 0.7 * (lat - 38.0) + 6.0 * np.sin(2 * np.pi * (local_hour - 9.0) / 24.0)
    t2m = t2m + 2.0 * np.sin(x / 6e5 - hours / 30.0) * np.cos(y / 4e5)
    storm = np.zeros((len(times), grid.ny, grid.nx), np.float32)
    masks = {f: np.zeros(storm.shape, bool) for f in ("hail", "wind")}
    for _, s in storms.iterrows():
        age = hours[:, 0, 0] - s["t0"]
        alive = (age >= 0) & (age <= s["life"])
        if not alive.any():
            continue
        idx = np.flatnonzero(alive)
        cx = s["x0"] + s["u"] * age[idx] * 3600.0 + shift_m
        r2 = ((x - cx[:, None, None]) ** 2 + (y - s["y0"]) ** 2) / s["radius"] ** 2
        strength = np.sin(np.pi * age[idx] / s["life"])[:, None, None]
        blob = (strength * np.exp(-r2)).astype(np.float32)
        storm[idx] = np.maximum(storm[idx], blob)
        masks[s["family"]][idx] |= (r2 < 1.0) & (strength > 0.2)
    refc = (55.0 * storm - 5.0).clip(-10.0, None)
    tp = 4e-3 * storm**2
    t2m = t2m - 4.0 * storm
    return {
        "t2m": t2m.astype(np.float32),
        "refc": refc.astype(np.float32),
        "tp": tp.astype(np.float32),
    }, masks


def _events(storms: pd.DataFrame, masks: dict[str, np.ndarray], times: np.ndarray, grid) -> pd.DataFrame:
    rows = []
    for i, s in storms.iterrows():
        t_idx = np.arange(int(s["t0"]), int(s["t0"] + s["life"]) + 1)
        t_idx = t_idx[t_idx < len(times)]
        if not len(t_idx):
            continue
        cells = masks[s["family"]][t_idx]
        hx = np.abs(grid.x - s["x0"]) < 4 * s["radius"] + s["u"] * s["life"] * 3600.0
        hy = np.abs(grid.y - s["y0"]) < s["radius"]
        any_t = cells.any(axis=0) & hy[:, None] & hx[None, :]
        if not any_t.any():
            continue
        ys, xs = np.flatnonzero(any_t.any(axis=1)), np.flatnonzero(any_t.any(axis=0))
        lat, lon = grid.latitude, grid.longitude
        box = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
        rows.append(
            {
                "event_id": f"syn-{i}",
                "event_type": s["family"],
                "start": times[t_idx[0]],
                "end": times[t_idx[-1]],
                "y_min": int(ys[0]),
                "y_max": int(ys[-1]),
                "x_min": int(xs[0]),
                "x_max": int(xs[-1]),
                "lat_min": float(lat[box].min()),
                "lat_max": float(lat[box].max()),
                "lon_min": float(lon[box].min()),
                "lon_max": float(lon[box].max()),
                "source": "synthetic",
                "details": "synthetic storm",
            }
        )
    return pd.DataFrame(rows)


def synthetic_results(
    spacing_km: float = 96.0,
    days: float = 3.0,
    lead_hours: Sequence[int] = (0, 6, 12, 24),
    init_every_hours: int = 12,
    models: Sequence[str] = ("nwp", "persistence", "climatology", "pangu"),
    ensemble_model: str | None = "pangu",
    n_storms: int = 8,
    seed: int = 0,
    score_stride: int = 1,
) -> Results:
    """Build :class:`Results` from synthetic fields (see the module docstring).

    Parameters
    ----------
    spacing_km : float
        HRRR-domain grid spacing; 3 gives the full 1059 x 1799 grid.
    days : float
        Length of the analysis, hourly.
    lead_hours : sequence of int
        Forecast lead times.
    init_every_hours : int
        Spacing of initial times (all verify inside the analysis period).
    models : sequence of str
        ``persistence`` and ``climatology`` behave as those baselines; any other name is a forecast
        whose storms drift by a model-specific distance per hour of lead time.
    ensemble_model : str, optional
        Model that also gets a 3 x 4 (weight x noise) ensemble.
    n_storms : int
        Number of storms (events).
    seed : int
        Random seed.
    score_stride : int
        Score on every ``score_stride``-th cell (speeds up 3-km grids).

    Returns
    -------
    Results
    """
    rng = np.random.default_rng(seed)
    grid = hrrr_grid(spacing_km)
    n_hours = int(round(days * 24))
    times = START + np.arange(n_hours).astype("timedelta64[h]").astype("timedelta64[ns]")
    storms = _storms(rng, n_storms, n_hours, grid)
    truth_v, masks_d = _fields(grid, times, storms)
    coords = grid.coords()
    units = {"t2m": "K", "refc": "dBZ", "tp": "m"}
    truth = xr.Dataset(
        {v: (("time", "y", "x"), a, {"units": units[v]}) for v, a in truth_v.items()},
        coords={"time": times, **coords},
        attrs=grid.attrs(),
    )
    types = ["hail", "wind"]
    masks = xr.DataArray(
        np.stack([masks_d[t] for t in types]),
        dims=("event_type", "time", "y", "x"),
        coords={"event_type": types, "time": times, "y": grid.y, "x": grid.x},
        name="mask",
    )
    events = _events(storms, masks_d, times, grid)
    leads = np.asarray(lead_hours, int)
    inits = times[: n_hours - int(leads.max()) : init_every_hours]
    lead_td = leads.astype("timedelta64[h]").astype("timedelta64[ns]")
    clim_v = {v: a.mean(axis=0) for v, a in truth_v.items()}
    drift = {m: 1500.0 * (k + 1) for k, m in enumerate(models)}  # m per hour of lead

    def model_fields(model: str, init: np.datetime64, lead_h: int, extra_shift: float = 0.0):
        valid = init + np.timedelta64(lead_h, "h")
        ti = int((valid - START) / np.timedelta64(1, "h"))
        if model == "persistence":
            i0 = int((init - START) / np.timedelta64(1, "h"))
            return {v: a[i0] for v, a in truth_v.items()}
        if model == "climatology":
            return clim_v
        fields, _ = _fields(grid, times[ti : ti + 1], storms, shift_m=drift[model] * lead_h + extra_shift)
        return {v: a[0] for v, a in fields.items()}

    forecasts, ensembles = {}, {}
    for model in models:
        data = {v: np.empty((len(inits), len(leads), grid.ny, grid.nx), np.float32) for v in truth_v}
        for i, init in enumerate(inits):
            for j, lead_h in enumerate(leads):
                for v, a in model_fields(model, init, int(lead_h)).items():
                    data[v][i, j] = a
        forecasts[model] = xr.Dataset(
            {v: (("init_time", "lead_time", "y", "x"), a, {"units": units[v]}) for v, a in data.items()},
            coords={"init_time": inits, "lead_time": lead_td, "y": grid.y, "x": grid.x},
        )
        forecasts[model] = forecasts[model].assign_coords(
            valid_time=(("init_time", "lead_time"), inits[:, None] + lead_td[None, :])
        )
    if ensemble_model is not None and ensemble_model in forecasts:
        shape = (len(inits), len(leads), 3, 4, grid.ny, grid.nx)
        data = {v: np.empty(shape, np.float32) for v in truth_v}
        for i, init in enumerate(inits):
            for j, lead_h in enumerate(leads):
                for w in range(3):
                    base = model_fields(
                        ensemble_model, init, int(lead_h), extra_shift=(w - 1) * 800.0 * lead_h
                    )
                    for n in range(4):
                        for v, a in base.items():
                            noise = rng.normal(0.0, 0.02 * (1 + lead_h / 12), a.shape).astype(np.float32)
                            data[v][i, j, w, n] = a + noise * (np.nanstd(a) + 1e-6)
        ensembles[ensemble_model] = xr.Dataset(
            {
                v: (
                    ("init_time", "lead_time", "weight_member", "noise_member", "y", "x"),
                    a,
                    {"units": units[v]},
                )
                for v, a in data.items()
            },
            coords={"init_time": inits, "lead_time": lead_td, "y": grid.y, "x": grid.x},
        )
    clim = xr.Dataset(
        {v: (("y", "x"), a, {"units": units[v]}) for v, a in clim_v.items()},
        coords={"y": grid.y, "x": grid.x},
    )
    return build_results(
        truth,
        forecasts,
        masks=masks,
        events=events,
        ensembles=ensembles,
        climatology=clim,
        climatology_name="mean of the synthetic analysis at each cell",
        score_stride=score_stride,
        label=f"synthetic {spacing_km:g} km",
    )

