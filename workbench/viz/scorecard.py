"""Scorecard: models x variables x lead times, coloured by skill relative to a reference model.

Read as the WeatherBench 2 and ECMWF scorecards: every cell prints the percentage by which the model
improves on the reference (positive = better, whatever the metric's direction); the colour scale is
diverging and centred on the reference (white = as good, blue = better, red = worse, clipped at
``±limit``); cells whose difference is not significant are drawn faded. Rows are grouped by variable
(one block of models per variable), so the card stays readable at 65 rows. :func:`scorecard_legend`
explains the symbols in words.

Significance comes from, in this order: a ``significance`` DataArray of p-values of a paired test
(:func:`workbench.scoring.significance.paired_bootstrap` or ``diebold_mariano`` of the per-init
scores), or the confidence bounds ``<metric>_low``/``_high`` of the scores (``decompose(...,
confidence=0.9)``): then a cell is significant when the reference's value lies outside the model's
interval (a conservative rule: unpaired intervals overlap more often than a paired test rejects).
Without either, no cell is faded and the legend says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError
from workbench.viz.style import SKILL_CMAP, format_hours, lead_hours, metric_info
from workbench.workflow.derive import with_model_dim


def relative_skill(scores: xr.Dataset, metric: str = "rmse", reference: str = "nwp") -> xr.DataArray:
    """Percentage improvement of every model over ``reference``; positive means better.

    For errors (RMSE, MAE, CRPS): ``100 (ref - m) / ref``. For the bias, the same on ``|bias|``. For
    ACC (higher is better): ``100 (m - ref) / ref``. Cells where the reference is zero or missing are NaN.

    Parameters
    ----------
    scores : xarray.Dataset
        Scores with dims ``(model, variable, lead_time, region)``.
    metric : str
        The metric compared.
    reference : str
        The model the others are measured against (NWP by default, as in WeatherBench 2 scorecards).

    Returns
    -------
    xarray.DataArray
        Named ``skill``, units ``%``, same dims as ``scores[metric]``.
    """
    scores = with_model_dim(scores)
    if metric not in scores.data_vars:
        raise DataError(f"The scores have no metric {metric!r}; they have {sorted(scores.data_vars)}.")
    models = [str(m) for m in scores["model"].values]
    if reference not in models:
        raise DataError(f"Reference model {reference!r} is not in the scores; models are {models}.")
    value = scores[metric]
    ref = value.sel(model=reference, drop=True)
    better = metric_info(metric).better
    if better == "zero":
        value, ref = np.abs(value), np.abs(ref)
    ref = ref.where(ref != 0)
    skill = 100.0 * (value - ref) / ref if better == "higher" else 100.0 * (ref - value) / ref
    return skill.rename("skill").assign_attrs(
        units="%", long_name=f"{metric} improvement over {reference}", reference=reference, metric=metric
    )


def scorecard_frame(
    scores: xr.Dataset,
    metric: str = "rmse",
    reference: str = "nwp",
    region: str = "all",
    variables: Sequence[str] | None = None,
    significance: xr.DataArray | None = None,
    alpha: float = 0.1,
) -> pd.DataFrame:
    """The cells of one scorecard panel.

    Parameters
    ----------
    significance : xarray.DataArray, optional
        p-values (or booleans, True = significant) with dims among ``(model, variable, lead_time,
        region)``; see the module notes for the fallback on confidence bounds.
    alpha : float
        Significance level of the p-values.

    Returns
    -------
    pandas.DataFrame
        Columns ``lead, row, model, variable, lead_hours, skill, value, reference_value, low, high,
        significant``; ``lead`` is a label such as ``"6 h"``, ``row`` is ``"<variable> · <model>"``.
        The reference model has no rows. ``frame.attrs["significance"]`` says how significance was
        decided (``"p-values"``, ``"intervals"`` or ``"none"``).
    """
    scores = with_model_dim(scores)
    if region not in scores["region"].values:
        raise DataError(f"No scores for region {region!r}; regions are {list(scores['region'].values)}.")
    skill = relative_skill(scores, metric, reference).sel(region=region)
    value = scores[metric].sel(region=region)
    ref = value.sel(model=reference)
    if variables is not None:
        skill, value, ref = (a.sel(variable=list(variables)) for a in (skill, value, ref))
    models = [str(m) for m in skill["model"].values if str(m) != reference]
    skill = skill.sel(model=models).transpose("variable", "model", "lead_time")
    value = value.sel(model=models).transpose("variable", "model", "lead_time")
    ref = ref.transpose("variable", "lead_time")
    variables_ = [str(v) for v in skill["variable"].values]
    hours = lead_hours(scores["lead_time"])
    n_v, n_m, n_l = len(variables_), len(models), len(hours)
    low = high = np.full(n_v * n_m * n_l, np.nan)
    if f"{metric}_low" in scores and f"{metric}_high" in scores:
        bounds = [
            scores[f"{metric}_{side}"]
            .sel(region=region, model=models, variable=variables_)
            .transpose("variable", "model", "lead_time")
            for side in ("low", "high")
        ]
        low, high = (np.asarray(b, dtype=float).ravel() for b in bounds)
    # Rows in the order variable, model, lead time (the order the panel lists them).
    var_idx, mod_idx, lead_idx = (
        a.ravel() for a in np.meshgrid(np.arange(n_v), np.arange(n_m), np.arange(n_l), indexing="ij")
    )
    var_names = np.array(variables_, dtype=object)[var_idx]
    mod_names = np.array(models, dtype=object)[mod_idx]
    ref_values = np.asarray(ref, dtype=float)[var_idx, lead_idx]
    how = "none"
    significant = np.ones(n_v * n_m * n_l, dtype=bool)
    if significance is not None:
        sig = significance
        if "region" in sig.dims:
            sig = sig.sel(region=region)
        sel = {k: v for k, v in (("model", models), ("variable", variables_)) if k in sig.dims}
        sig = sig.sel(sel)
        full = xr.broadcast(sig, skill.isel(region=0, drop=True) if "region" in skill.dims else skill)[0]
        full = full.transpose("variable", "model", "lead_time")
        values = np.asarray(full).ravel()
        significant = values.astype(bool) if values.dtype == bool else values < alpha
        how = "p-values"
    elif np.isfinite(low).any():
        significant = ~((ref_values >= low) & (ref_values <= high))
        how = "intervals"
    frame = pd.DataFrame(
        {
            "lead": np.array([format_hours(h) for h in hours], dtype=object)[lead_idx],
            "row": var_names + " · " + mod_names,
            "model": mod_names,
            "variable": var_names,
            "lead_hours": hours[lead_idx].astype(float),
            "skill": np.asarray(skill, dtype=float).ravel(),
            "value": np.asarray(value, dtype=float).ravel(),
            "reference_value": ref_values,
            "low": low,
            "high": high,
            "significant": significant,
        },
        columns=[
            "lead",
            "row",
            "model",
            "variable",
            "lead_hours",
            "skill",
            "value",
            "reference_value",
            "low",
            "high",
            "significant",
        ],
    )
    frame.attrs["significance"] = how
    return frame


def scorecard_legend(metric: str = "rmse", reference: str = "nwp", significance: str = "intervals") -> str:
    """The symbols of the scorecard in words (Markdown), for a caption under it."""
    info = metric_info(metric)
    direction = {"lower": "lower is better", "higher": "higher is better", "zero": "closer to 0 is better"}[
        info.better
    ]
    faded = {
        "p-values": "Faded cells: the difference is not significant (paired test, p ≥ 0.1).",
        "intervals": "Faded cells: the reference's value lies inside the model's 90 % bootstrap interval "
        "over initial times (not significant).",
        "none": "No interval was computed: no cell is faded, and no difference is shown to be significant.",
    }[significance]
    return (
        f"**Cells**: % by which each model improves {info.label} on **{reference}** ({direction}; "
        "positive = better). **Colour**: diverging scale centred on the reference — white as good, blue "
        "better, red worse, saturated beyond the colour limit. **≫ / ≪**: more than 100 % better / worse. "
        f"{faded} Rows are grouped by variable; hover a cell for both scores and the interval."
    )


def _cell_text(skill: float) -> str:
    # Three characters at most, so the numbers fit the cells; the hover has the exact value.
    if np.isnan(skill):
        return ""
    if abs(skill) >= 100:
        return "≫" if skill > 0 else "≪"
    return f"{skill:+.0f}"


def scorecard(
    scores: xr.Dataset,
    metric: str = "rmse",
    reference: str = "nwp",
    regions: Sequence[str] = ("all", "extreme"),
    variables: Sequence[str] | None = None,
    limit: float = 50.0,
    width: int = 460,
    labels: bool | None = None,
    significance: xr.DataArray | None = None,
) -> hv.Layout:
    """Scorecard panels, one per region: rows are ``variable · model``, columns lead times.

    Colour is :func:`relative_skill` (blue: better than the reference, red: worse), clipped to
    ``±limit`` percent; hover shows the model's score and the reference's.

    Parameters
    ----------
    scores : xarray.Dataset
        Scores with dims ``(model, variable, lead_time, region)``.
    metric, reference : str
        Compared metric and reference model.
    regions : sequence of str
        One panel per region (``all`` and ``extreme`` by default).
    variables : sequence of str, optional
        Rows to show (all scored variables by default).
    limit : float
        Colour range in percent.
    width : int
        Width of each panel in pixels; the height follows the number of rows.
    labels : bool, optional
        Print the percentages in the cells (default: when there are at most 1200 cells, 65 rows of 9
        lead times x 2 panels).
    significance : xarray.DataArray, optional
        p-values of a paired test per cell (see the module notes); cells not significant are faded.

    Returns
    -------
    holoviews.Layout
        Of :class:`holoviews.HeatMap` (with :class:`holoviews.Labels` overlaid when labelled).
    """
    info = metric_info(metric)
    panels = []
    for region in regions:
        frame = scorecard_frame(scores, metric, reference, region, variables, significance)
        n_rows = max(frame["row"].nunique(), 1)
        show_labels = labels if labels is not None else len(frame) <= 1200
        # Rows top to bottom in the order variables and models appear; HoloViews draws y from the bottom.
        row_order = list(dict.fromkeys(frame["row"]))[::-1]
        lead_order = list(dict.fromkeys(frame.sort_values("lead_hours")["lead"]))
        frame = frame.assign(
            skill_clipped=frame["skill"].clip(-limit, limit),
            cell_alpha=np.where(frame["significant"], 1.0, 0.3),
            significance=np.where(frame["significant"], "significant", "not significant"),
        )
        # HoloViews reshapes every value dimension with numpy; the Arrow-backed strings pandas uses when
        # pyarrow is installed cannot be reshaped, so text columns go in as plain objects.
        frame = frame.astype({c: object for c in frame.columns if pd.api.types.is_string_dtype(frame[c])})
        heat = hv.HeatMap(
            frame,
            kdims=[hv.Dimension("lead", label="lead time"), hv.Dimension("row", label="variable · model")],
            vdims=[
                hv.Dimension("skill_clipped", label=f"% better than {reference}"),
                "skill",
                "value",
                "reference_value",
                "model",
                "variable",
                "low",
                "high",
                "cell_alpha",
                "significance",
            ],
        ).opts(
            alpha=hv.dim("cell_alpha"),
            cmap=SKILL_CMAP,
            clim=(-limit, limit),
            colorbar=True,
            width=width,
            height=max(160, 100 + (14 if n_rows > 30 else 20) * n_rows),
            fontsize={"yticks": "7pt" if n_rows > 30 else "9pt", "xticks": "9pt", "title": "10pt"},
            tools=["hover"],
            hover_tooltips=[
                ("model", "@model"),
                ("variable", "@variable"),
                ("lead time", "@lead"),
                (f"{info.label} vs {reference}", "@skill{+0.0} %"),
                (info.label, "@value{0.000}"),
                (f"{info.label} {reference}", "@reference_value{0.000}"),
                ("interval", "@low{0.000} – @high{0.000}"),
                ("", "@significance"),
            ],
            xrotation=45,
            # Short enough for the panel: the legend (scorecard_legend) says what the cells mean.
            title=f"{info.label} vs {reference} — {region}",
            invert_yaxis=False,
        )
        heat = heat.redim.values(row=row_order, lead=lead_order)
        if show_labels and len(frame):
            # White text on the saturated cells, black on the pale ones.
            text = hv.Labels(
                frame.assign(
                    text=frame["skill"].map(_cell_text),
                    # white on saturated significant cells, grey on faded ones, black otherwise
                    text_color=np.where(
                        ~frame["significant"],
                        "#777777",
                        np.where(frame["skill"].abs() > 0.6 * limit, "white", "black"),
                    ),
                ),
                kdims=["lead", "row"],
                vdims=["text", "text_color"],
            ).opts(text_font_size="7pt" if n_rows > 30 else "8pt", text_color="text_color")
            panels.append(heat * text)
        else:
            panels.append(heat)
    return hv.Layout(panels).cols(len(panels))
