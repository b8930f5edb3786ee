"""Shared look of the plots: metric descriptions, colour maps per variable, one colour per model."""

from __future__ import annotations

import re
from dataclasses import dataclass

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh backend, so .opts() works without hv.extension)
import numpy as np
import xarray as xr

from workbench.errors import DataError

# Without hv.extension() (a script, a server, a test) the options builders (hv.opts.Image, ...) exist only
# once a backend is switched to; doing it for bokeh, the default, changes nothing for a notebook user.
if hv.Store.current_backend == "bokeh":
    hv.Store.set_current_backend("bokeh")


@dataclass(frozen=True)
class MetricInfo:
    """How a score is read.

    Attributes
    ----------
    name : str
        Data variable in a scores Dataset.
    label : str
        Axis label.
    better : str
        ``"lower"`` (errors), ``"higher"`` (correlations) or ``"zero"`` (bias: closer to zero is better).
    has_units : bool
        Whether the metric carries the variable's units (RMSE does, ACC does not).
    """

    name: str
    label: str
    better: str
    has_units: bool = True


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("rmse", "RMSE", "lower"),
        MetricInfo("mae", "MAE", "lower"),
        MetricInfo("bias", "bias (forecast - truth)", "zero"),
        MetricInfo("acc", "ACC", "higher", has_units=False),
        MetricInfo("crps", "CRPS", "lower"),
        MetricInfo("spread", "ensemble spread", "lower"),
        MetricInfo("spread_epistemic", "epistemic spread", "lower"),
        MetricInfo("spread_aleatoric", "aleatoric spread", "lower"),
        MetricInfo("error_share", "share of squared error", "lower", has_units=False),
        MetricInfo("area_fraction", "share of area", "lower", has_units=False),
        MetricInfo("pod", "POD (hit rate)", "higher", has_units=False),
        MetricInfo("far", "false alarm ratio", "lower", has_units=False),
        MetricInfo("csi", "CSI", "higher", has_units=False),
        MetricInfo("ets", "ETS", "higher", has_units=False),
        MetricInfo("sedi", "SEDI", "higher", has_units=False),
        MetricInfo("fss", "FSS", "higher", has_units=False),
    )
}

#: Metrics offered by the skill curves and the scorecard, in this order, when present.
CURVE_METRICS: tuple[str, ...] = ("rmse", "acc", "bias", "crps", "mae", "spread", "csi", "ets", "sedi", "fss")

#: Colour maps of the fields, by canonical variable (colorcet / bokeh names HoloViews knows).
FIELD_CMAPS: dict[str, str] = {
    "t2m": "coolwarm",
    "d2m": "coolwarm",
    "t850": "coolwarm",
    "msl": "viridis",
    "sp": "viridis",
    "z500": "viridis",
    "tp": "Blues",
    "tcwv": "Blues",
    "refc": "fire",
    "gust": "plasma",
    "ws10m": "plasma",
    "u10m": "RdBu_r",
    "v10m": "RdBu_r",
    "u850": "RdBu_r",
    "v850": "RdBu_r",
}
ERROR_CMAP = "RdBu_r"
SPREAD_CMAP = "magma"
SKILL_CMAP = "RdBu"

#: Colours of models, assigned in the order of :func:`model_colors` (Tableau 10).
_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
#: Baselines keep fixed colours so the learned models stand out against them.
_FIXED = {"nwp": "#222222", "persistence": "#9c9c9c", "climatology": "#c8b28a"}


#: Groups of variables for the scorecard's tabs, in this order; pressure-level fields (``z500``, ``t850``,
#: ...) are "upper air", anything else "other".
SURFACE_VARIABLES = ("t2m", "d2m", "u10m", "v10m", "ws10m", "gust", "msl", "sp")
PRECIPITATION_VARIABLES = ("tp", "refc", "tcwv")


def variable_groups(variables: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """The variables sorted into named groups (surface, precipitation & radar, upper air, other), keeping
    their order inside each group; empty groups are left out."""
    groups: dict[str, list[str]] = {"surface": [], "precipitation & radar": [], "upper air": [], "other": []}
    for v in variables:
        if v in SURFACE_VARIABLES:
            groups["surface"].append(v)
        elif v in PRECIPITATION_VARIABLES:
            groups["precipitation & radar"].append(v)
        elif re.fullmatch(r"[a-z]+\d{2,4}", v) and int(re.sub(r"\D", "", v)) >= 10:
            groups["upper air"].append(v)  # z500, t850, u250: a letter code and a pressure level (hPa)
        else:
            groups["other"].append(v)
    return {name: members for name, members in groups.items() if members}


def model_colors(models: list[str] | tuple[str, ...]) -> dict[str, str]:
    """One colour per model: fixed greys for the baselines, the palette for everything else."""
    colors: dict[str, str] = {}
    others = [m for m in models if m not in _FIXED]
    for i, m in enumerate(others):
        colors[m] = _PALETTE[i % len(_PALETTE)]
    for m in models:
        if m in _FIXED:
            colors[m] = _FIXED[m]
    return colors


def metric_info(name: str) -> MetricInfo:
    """The :class:`MetricInfo` of a metric; unknown metrics are read as errors (lower is better)."""
    return METRICS.get(name, MetricInfo(name, name, "lower"))


def lead_hours(lead_time: xr.DataArray | np.ndarray) -> np.ndarray:
    """Lead times (timedelta64 or numbers of hours) as float hours."""
    values = np.asarray(getattr(lead_time, "values", lead_time))
    if np.issubdtype(values.dtype, np.timedelta64):
        return values.astype("timedelta64[s]").astype(np.float64) / 3600.0
    if np.issubdtype(values.dtype, np.number):
        return values.astype(np.float64)
    raise DataError(f"lead_time must be timedelta64 or hours, got dtype {values.dtype}.")


def units_of(obj: xr.DataArray | xr.Dataset, variable: str) -> str:
    """Units of ``variable`` from the object's attributes or the lexicon, '' when unknown."""
    if isinstance(obj, xr.Dataset) and variable in obj:
        units = obj[variable].attrs.get("units")
        if units:
            return str(units)
    elif isinstance(obj, xr.DataArray) and obj.attrs.get("units"):
        return str(obj.attrs["units"])
    try:
        from workbench.lexicon import VARIABLES

        return VARIABLES[variable].units
    except (ImportError, KeyError):
        return ""


def format_hours(hours: float) -> str:
    """``6.0`` -> ``'6 h'``; fractional hours keep one decimal."""
    return f"{hours:g} h"
