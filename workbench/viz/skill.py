"""Skill curves: a metric against lead time, one line per model, overall beside an extreme region."""

from __future__ import annotations

from collections.abc import Sequence

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError
from workbench.viz.style import lead_hours, metric_info, model_colors, units_of
from workbench.workflow.derive import with_model_dim

#: Pixels added to the panel that carries the legend outside its plot area.
LEGEND_WIDTH = 110


def _check(scores: xr.Dataset, metric: str, variable: str, regions: Sequence[str]) -> None:
    if metric not in scores.data_vars:
        raise DataError(
            f"The scores have no metric {metric!r}; they have {sorted(scores.data_vars)}. "
            "Pick one of those (ACC needs a climatology, CRPS an ensemble)."
        )
    for dim in ("variable", "lead_time", "region"):
        if dim not in scores.dims:
            raise DataError(
                f"Scores need dims (variable, lead_time, region[, model]); {dim!r} is missing "
                f"(dims are {tuple(scores.dims)})."
            )
    if variable not in scores["variable"].values:
        raise DataError(
            f"No scores for variable {variable!r}; scored variables: {list(scores['variable'].values)}."
        )
    missing = [r for r in regions if r not in scores["region"].values]
    if missing:
        raise DataError(f"No scores for region(s) {missing}; regions are {list(scores['region'].values)}.")


def skill_frame(
    scores: xr.Dataset,
    metric: str = "rmse",
    variable: str = "t2m",
    regions: Sequence[str] = ("all", "extreme"),
    models: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The numbers behind :func:`skill_curves` as a tidy table.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, region, lead_hours, value, low, high`` (NaN scores dropped), sorted by model,
        region, lead; ``low``/``high`` are the confidence bounds ``<metric>_low``/``_high`` when the
        scores have them (e.g. ``decompose(..., confidence=0.9)``), else NaN.
    """
    scores = with_model_dim(scores)
    _check(scores, metric, variable, regions)
    da = scores[metric].sel(variable=variable, region=list(regions))
    if models is not None:
        da = da.sel(model=list(models))
    da = da.transpose("model", "region", "lead_time")
    hours = lead_hours(da["lead_time"])
    m, r, h = np.meshgrid(
        da["model"].values.astype(str), da["region"].values.astype(str), hours, indexing="ij"
    )
    bounds = {}
    for side in ("low", "high"):
        name = f"{metric}_{side}"
        if name in scores.data_vars:
            b = scores[name].sel(variable=variable, region=list(regions))
            if models is not None:
                b = b.sel(model=list(models))
            bounds[side] = np.asarray(b.transpose("model", "region", "lead_time"), dtype=float).ravel()
        else:
            bounds[side] = np.full(m.size, np.nan)
    frame = pd.DataFrame(
        {
            "model": m.ravel(),
            "region": r.ravel(),
            "lead_hours": h.ravel(),
            "value": np.asarray(da).ravel(),
            "low": bounds["low"],
            "high": bounds["high"],
        }
    )
    return (
        frame.dropna(subset=["value"]).sort_values(["model", "region", "lead_hours"]).reset_index(drop=True)
    )


def skill_curves(
    scores: xr.Dataset,
    metric: str = "rmse",
    variable: str = "t2m",
    regions: Sequence[str] = ("all", "extreme"),
    models: Sequence[str] | None = None,
    highlight: str | None = None,
    width: int = 420,
    height: int = 300,
    bands: bool = True,
    legend: str = "right",
) -> hv.Layout:
    """A metric against lead time, one line per model, one panel per region (same y-axis), with a
    shaded confidence band per model where the scores carry ``<metric>_low``/``_high``.

    Parameters
    ----------
    scores : xarray.Dataset
        Scores with dims ``(variable, lead_time, region[, model])``.
    metric : str
        Data variable to plot (``rmse``, ``acc``, ``bias``, ``crps``, ...).
    variable : str
        Canonical variable.
    regions : sequence of str
        Regions side by side; the default compares ``all`` with the union of extreme events.
    models : sequence of str, optional
        Models to draw (all by default).
    highlight : str, optional
        A model drawn with a thicker line.
    width, height : int
        Size of each panel in pixels.
    bands : bool
        Draw the confidence bands (when the scores have bounds).
    legend : {"right", "inside"}
        ``"right"``: one legend, outside the last panel's plot area (its width grows by
        :data:`LEGEND_WIDTH`), so no curve is hidden; the panels share the models' colours. ``"inside"``:
        a legend in every panel, in the corner where the curves usually are not.

    Returns
    -------
    holoviews.Layout
        One :class:`holoviews.Overlay` of :class:`holoviews.Curve` (labelled by model) per region, with a
        hover tool showing model, lead time and value.
    """
    if legend not in ("right", "inside"):
        raise DataError(f"legend must be 'right' or 'inside', not {legend!r}.")
    frame = skill_frame(scores, metric, variable, regions, models)
    all_models = [str(m) for m in with_model_dim(scores)["model"].values]
    colors = model_colors(all_models)
    info = metric_info(metric)
    units = units_of(scores, variable) if info.has_units else ""
    ylabel = f"{info.label} of {variable}" + (f" ({units})" if units else "")
    lead_dim = hv.Dimension("lead_hours", label="lead time", unit="h")
    # One y-range for all panels, so overall and extreme are read on the same scale.
    has_bands = bands and bool(np.isfinite(frame[["low", "high"]].to_numpy(dtype=float)).any())
    values = frame["value"].to_numpy(dtype=float)
    if has_bands:
        extra = frame[["low", "high"]].to_numpy(dtype=float).ravel()
        values = np.concatenate([values, extra[np.isfinite(extra)]])
    if values.size:
        lo, hi = float(values.min()), float(values.max())
        if info.better == "lower" and lo >= 0:
            lo = 0.0
        pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
        ylim = (lo - (pad if lo != 0 else 0.0), hi + pad)
    else:
        ylim = (None, None)
    value_dim = hv.Dimension("value", label=ylabel)
    panels = []
    for i, region in enumerate(regions):
        with_legend = legend == "inside" or i == len(regions) - 1
        panel_width = width + (LEGEND_WIDTH if legend == "right" and with_legend else 0)
        sub = frame[frame["region"] == region]
        curves = []
        for model in [m for m in all_models if m in set(sub["model"])]:
            rows = sub[sub["model"] == model]
            if has_bands and np.isfinite(rows[["low", "high"]].to_numpy(dtype=float)).any():
                # the interval first, so the line is drawn over it
                band = rows.dropna(subset=["low", "high"])
                curves.append(
                    hv.Area(band, kdims=[lead_dim], vdims=["low", "high"], label=model).opts(
                        color=colors[model], alpha=0.18, line_alpha=0, show_legend=False
                    )
                )
            curves.append(
                hv.Curve(rows, kdims=[lead_dim], vdims=[value_dim, "model", "region"], label=model).opts(
                    color=colors[model], line_width=4 if model == highlight else 2
                )
            )
        if not curves:
            curves = [hv.Curve([], kdims=[lead_dim], vdims=[value_dim])]
        overlay = hv.Overlay(curves)
        panels.append(
            overlay.opts(
                # One hover line across all models at the pointer's lead time, to compare their values.
                hv.opts.Curve(
                    width=panel_width,
                    height=height,
                    show_grid=True,
                    tools=["hover"],
                    hover_mode="vline",
                    hover_tooltips=[
                        ("model", "@model"),
                        ("lead time", "@lead_hours h"),
                        (info.label, "@value{0.000}"),
                    ],
                ),
                hv.opts.Overlay(
                    title=f"{info.label} of {variable} — {region}"
                    + (f" (bands: {_confidence_label(scores)})" if has_bands else ""),
                    ylim=ylim,
                    show_legend=with_legend,
                    legend_position="right"
                    if legend == "right"
                    else ("top_left" if info.better == "lower" else "bottom_left"),
                    fontsize={"title": "10pt"},
                    width=panel_width,
                    height=height,
                ),
            )
        )
    return hv.Layout(panels).cols(len(panels))


def _confidence_label(scores: xr.Dataset) -> str:
    conf = scores.attrs.get("confidence")
    return f"{100 * float(conf):.0f} % interval" if conf is not None else "confidence interval"
