"""The one way to make a :class:`~workbench.workflow.results.Results`: score with the workbench, then bundle.

:func:`build_results` is what every :class:`Results` of the workflow comes from: the sample pipeline's
(:mod:`workbench.workflow.pipeline`, whose scores were computed in an earlier stage), the catalog's
scores shown over the sample's maps (:mod:`workbench.workflow.load`) and the synthetic ones
(:mod:`workbench.workflow.synthetic`). Scores it is not given it computes with
:func:`score_forecasts`, the same scoring the pipeline writes to its cache, so every view reads numbers
made one way.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import pandas as pd
import xarray as xr

from workbench.workflow.results import Results

__all__ = ["build_results", "score_forecasts"]


def score_forecasts(
    forecasts: Mapping[str, xr.Dataset],
    truth: xr.Dataset,
    masks: xr.DataArray | None = None,
    *,
    climatology: xr.Dataset | None = None,
    climatology_name: str | None = None,
    forecast_regions: bool = False,
    event_climatology: xr.Dataset | None = None,
) -> xr.Dataset:
    """The dashboard's scores of several models: the one-pass decomposition plus the event metrics.

    Parameters
    ----------
    forecasts : mapping of str to xarray.Dataset
        Per model, ``(init_time, lead_time[, member dims], y, x)``; an ensemble is one more model.
    truth : xarray.Dataset
        ``(time, y, x)`` over (at least) the forecasts' valid times.
    masks : xarray.DataArray, optional
        Event masks ``(event_type, time, y, x)``: the ``extreme``, ``non_extreme`` and per-type regions.
    climatology : xarray.Dataset, optional
        The ACC's climatological mean (any layout :func:`workbench.scoring.decompose` reads).
    climatology_name : str, optional
        What that climatology is, recorded on ``acc``.
    forecast_regions : bool
        Add the forecast-conditioned regions (``hit``, ``miss``, ``false_alarm``, ...): each model's own
        events by the observed rules (an ensemble's by its mean), from :func:`~workbench.events.
        forecast_event_masks` with ``event_climatology``.
    event_climatology : xarray.Dataset, optional
        The percentile climatology of those rules (None: their fixed values).

    Returns
    -------
    xarray.Dataset
        Scores ``(model, variable, lead_time, region)`` of the variables every forecast and the truth have,
        with POD, FAR, CSI, ETS, SEDI and FSS of ``tp``, ``refc`` and ``gust`` merged in.
    """
    from workbench.events import forecast_event_masks
    from workbench.scoring import decompose
    from workbench.scoring.onepass import event_metrics

    order = list(forecasts)
    variables = [v for v in truth.data_vars if all(v in f for f in forecasts.values())]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        forecast_masks = None
        if forecast_regions:
            forecast_masks = {}
            for m in order:
                fc = forecasts[m][variables]
                members = [d for d in fc.dims if d not in ("init_time", "lead_time", "y", "x")]
                forecast_masks[m] = forecast_event_masks(
                    fc.mean(members) if members else fc, event_climatology
                ).load()
        scores = decompose(
            {m: forecasts[m] for m in order},
            truth,
            masks,
            climatology=climatology,
            climatology_name=climatology_name,
            variables=variables,
            forecast_masks=forecast_masks,
        )
        # categorical scores and FSS of tp, refc and gust, for the dashboard's metric and region selectors
        events = event_metrics({m: forecasts[m] for m in order}, truth, masks)
        if events.data_vars:
            scores = xr.merge([scores, events], join="left", combine_attrs="override")
    return scores


def build_results(
    truth: xr.Dataset,
    forecasts: dict[str, xr.Dataset],
    *,
    masks: xr.DataArray | None = None,
    events: pd.DataFrame | None = None,
    ensembles: dict[str, xr.Dataset] | None = None,
    scores: xr.Dataset | None = None,
    climatology: xr.Dataset | None = None,
    climatology_name: str | None = None,
    score_stride: int = 1,
    label: str = "",
    notes: Sequence[str] = (),
) -> Results:
    """Bundle truth, forecasts, masks, events and ensembles as :class:`Results`, scoring them if need be.

    Parameters
    ----------
    truth, forecasts, masks, events, ensembles
        As :class:`Results` holds them (``events`` default: an empty table).
    scores : xarray.Dataset, optional
        Scores already computed (the pipeline's cache, a scores file); default: :func:`score_forecasts`
        of the forecasts and of each ensemble (as model ``<name>-ensemble``, like the pipeline's).
    climatology, climatology_name
        The ACC's climatology when scoring here (see :func:`score_forecasts`).
    score_stride : int
        When scoring here, score every ``score_stride``-th cell in ``y`` and ``x`` only (a quick look at
        a very large grid).
    label : str
        Shown in the page header.
    notes : sequence of str
        What was left out and why.
    """
    ensembles = dict(ensembles or {})
    if scores is None:
        scored = {**forecasts, **{f"{m}-ensemble": e for m, e in ensembles.items()}}
        every = {"y": slice(None, None, score_stride), "x": slice(None, None, score_stride)}
        if score_stride != 1:
            scored = {m: f.isel(every) for m, f in scored.items()}
            truth_s = truth.isel(every)
            masks_s = None if masks is None else masks.isel(every)
            clim_s = None if climatology is None else climatology.isel(every)
        else:
            truth_s, masks_s, clim_s = truth, masks, climatology
        scores = score_forecasts(scored, truth_s, masks_s, climatology=clim_s, climatology_name=climatology_name)
    return Results(
        truth=truth,
        forecasts=forecasts,
        scores=scores,
        masks=masks,
        events=pd.DataFrame() if events is None else events,
        ensembles=ensembles,
        label=label,
        notes=list(notes),
    )
