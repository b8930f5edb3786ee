"""Skill of trained models on the held-out part of the sample, against persistence and the NWP forecast.

Every model forecasts from the same initial times (the NWP forecast's initial times inside the held-out
hours, whose lead times all end inside them) through :func:`workbench.inference.run_forecast`, and is
scored by the area-weighted RMSE against the analysis at the valid time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError
from workbench.inference import run_forecast

#: Variables shown in the skill table.
MAIN_VARIABLES = ("t2m", "z500", "u10m", "gust", "tp", "msl", "refc")


def heldout_inits(truth: xr.Dataset, start: pd.Timestamp, max_lead_h: float, nwp: xr.Dataset | None = None,
                  every_h: int = 12) -> pd.DatetimeIndex:
    """Initial times from ``start`` whose longest lead still has an analysis (NWP inits when given)."""
    end = pd.Timestamp(truth.time.values[-1]) - pd.Timedelta(hours=max_lead_h)
    if nwp is not None:
        inits = pd.DatetimeIndex(nwp.init_time.values)
    else:
        inits = pd.date_range(start, end, freq=f"{every_h}h")
    inits = inits[(inits >= start) & (inits <= end)]
    if len(inits) == 0:
        raise DataError(f"no initial time between {start} and {end} to evaluate on")
    return inits


def rmse(forecast: xr.Dataset, truth: xr.Dataset, variables: Sequence[str]) -> xr.Dataset:
    """Area-weighted RMSE per lead time, over initial times and the grid."""
    from workbench.grids import area_weights

    weights = area_weights(truth)
    out = {}
    for v in variables:
        if v not in forecast:
            continue
        fc = forecast[v]
        obs = truth[v].sel(time=forecast.valid_time)  # (init_time, lead_time, y, x)
        err2 = ((fc - obs) ** 2 * weights).mean(["y", "x"]) / weights.mean()
        out[v] = np.sqrt(err2.mean("init_time"))
    return xr.Dataset(out)


def skill_table(
    models: Mapping[str, object],
    truth: xr.Dataset,
    inits: pd.DatetimeIndex,
    leads_h: Sequence[float] = (1, 6, 24),
    variables: Sequence[str] = MAIN_VARIABLES,
    *,
    device: str = "auto",
    dtype: str = "fp32",
    run_options: Mapping[str, dict] | None = None,
) -> pd.DataFrame:
    """RMSE of each model for each variable and lead: a DataFrame indexed by model, columns (variable, lead).

    Parameters
    ----------
    models
        Label -> model (torch or baseline).
    truth
        The analysis ``(time, y, x)``.
    inits
        Initial times.
    run_options
        Label -> extra keyword arguments of :func:`run_forecast` (e.g. ``{"hta": False}``).
    """
    rows = {}
    for label, model in models.items():
        extra = dict((run_options or {}).get(label, {}))
        fc = run_forecast(model, truth, inits, list(leads_h), device=device, dtype=dtype, progress=False,
                          batch_size=len(inits), **extra)
        scores = rmse(fc, truth, variables)
        row = {}
        for v in variables:
            if v not in scores:
                continue
            for lead in leads_h:
                row[(v, f"{lead:g}h")] = float(scores[v].sel(lead_time=pd.Timedelta(hours=lead)))
        rows[label] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["variable", "lead"])
    return table


def to_markdown(table: pd.DataFrame, units: Mapping[str, str] | None = None, caption: str = "") -> str:
    """The skill table as GitHub markdown, one block of columns per variable, best per column in bold."""
    lines = []
    if caption:
        lines += [caption, ""]
    cols = list(table.columns)
    header = "| model | " + " | ".join(
        f"{v} {lead}" + (f" ({units[v]})" if units and v in units else "") for v, lead in cols
    ) + " |"
    lines += [header, "|" + " --- |" * (len(cols) + 1)]
    best = {c: table[c].min() for c in cols}
    for label, row in table.iterrows():
        cells = []
        for c in cols:
            val = row[c]
            text = "" if pd.isna(val) else _fmt(val)
            cells.append(f"**{text}**" if not pd.isna(val) and val == best[c] else text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _periods(periods) -> str:
    return ", ".join(f"{a:%Y-%m-%d %H}h to {b:%Y-%m-%d %H}h" for a, b in periods)


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    return format_magnitude(x)


def format_magnitude(x: float) -> str:
    """``x`` with as many decimals as its size calls for: 0 from 100 up, 2 from 1, 4 from 0.001, else
    two-digit scientific notation (0 itself included)."""
    mag = abs(x)
    if mag >= 100:
        return f"{x:.0f}"
    if mag >= 1:
        return f"{x:.2f}"
    if mag >= 1e-3:
        return f"{x:.4f}"
    return f"{x:.2e}"


def evaluate_checkpoints(
    checkpoints: str,
    data,
    *,
    size: str = "default",
    leads_h: Sequence[float] = (1, 6, 24),
    variables: Sequence[str] = MAIN_VARIABLES,
    device: str = "auto",
    models: Sequence[str] = ("pangu", "climax", "hrheim"),
) -> tuple[pd.DataFrame, str]:
    """Skill of the trained models in ``checkpoints`` on the held-out hours of ``data``.

    Compares with persistence, the sample NWP forecast (when the sample has one) and, for an HTA
    family, the same networks rolled out with their shortest step only.

    Returns
    -------
    (table, markdown)
    """
    from workbench.errors import CheckpointError
    from workbench.inference.runner import step_models
    from workbench.models import NWPForecast, Persistence, find_checkpoints, load

    truth = data.source
    start = data.heldout_period[0]
    nwp = None
    try:
        nwp = NWPForecast(size=size)
        same_grid = all(nwp.data.sizes.get(d) == truth.sizes[d] for d in ("y", "x"))
        nwp = nwp if same_grid else None
    except Exception:  # no NWP forecast for this data: compare with persistence only
        nwp = None
    try:
        inits = heldout_inits(truth, start, max(leads_h), nwp.data if nwp is not None else None)
    except DataError:  # the NWP forecast has no initial time in the held-out hours: score without it
        nwp = None
        inits = heldout_inits(truth, start, max(leads_h), None, every_h=3)
    zoo: dict[str, object] = {}
    options: dict[str, dict] = {}
    edges = {}
    if data.boundary is not None:  # the held-out hours' global analysis drives the networks' edges, as in training
        held = np.flatnonzero(data.heldout)
        edges = {"boundary": xr.Dataset(
            {v: (("time", "y", "x"), data.boundary[held, i]) for i, v in enumerate(data.boundary_variables)},
            coords={"time": data.times[held]},
        )}
    for name in models:
        try:
            find_checkpoints(name, checkpoints)
        except CheckpointError:
            continue
        model = load(name, checkpoint=checkpoints)
        zoo[name] = model
        options[name] = dict(edges)
        if len(step_models(model)) > 1:  # an HTA family: also roll out with its shortest step alone
            zoo[f"{name} (1 h steps only)"] = model
            options[f"{name} (1 h steps only)"] = {"hta": False, **edges}
    zoo["persistence"] = Persistence(variables=data.variables)
    if nwp is not None:
        zoo["nwp"] = NWPForecast(size=size, variables=[v for v in data.variables if v in nwp.data])
    table = skill_table(zoo, truth, inits, leads_h, variables, device=device, run_options=options)
    units = {v: str(truth[v].attrs.get("units", "")) for v in variables if v in truth}
    caption = (
        f"Area-weighted RMSE on the held-out sample hours ({start:%Y-%m-%d %H}h to "
        f"{data.heldout_period[1]:%Y-%m-%d %H}h; {len(inits)} initial times {inits[0]:%m-%d %H}h .. "
        f"{inits[-1]:%m-%d %H}h); training used {_periods(data.train_periods)}. Lowest per column in bold."
    )
    return table, to_markdown(table, units, caption)
