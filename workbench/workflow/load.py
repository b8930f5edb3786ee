"""Loading the dashboard's :class:`~workbench.workflow.results.Results`: the sample's pipeline, and scores
the catalog names.

:func:`load_results` is the one builder the dashboard and ``workbench serve`` call; it sits above both
:mod:`~workbench.workflow.pipeline` (which makes the sample's results) and
:mod:`~workbench.workflow.results` (which only holds them), so neither imports the other back.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from workbench.errors import DataError
from workbench.workflow.build import build_results
from workbench.workflow.pipeline import sample_results
from workbench.workflow.results import Results

__all__ = ["load_results", "open_catalog_scores"]


def open_catalog_scores(name_or_path: str) -> xr.Dataset:
    """Open a scores data set that the catalog names (an entry, or a file in a location it names).

    Parameters
    ----------
    name_or_path : str
        A catalog entry name or a path to a ``*.nc`` / ``*.zarr`` scores file written by
        ``workbench score``, inside a location the catalog names.

    Raises
    ------
    CatalogError
        If the path is outside every location the catalog names (nothing is read).
    DataError
        If the file is missing or is not a scores data set.
    """
    from workbench.catalog import resolve_path

    location = resolve_path(name_or_path)
    path = Path(str(location))
    if not path.exists():
        raise DataError(f"No scores file at {path}; write one with `workbench score ... --output {path}`.")
    try:
        ds = xr.open_zarr(path) if path.is_dir() else xr.open_dataset(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable netCDF or zarr scores file: {exc}") from None
    missing = [d for d in ("variable", "lead_time", "region") if d not in ds.dims]
    if missing:
        raise DataError(
            f"{path} is not a scores data set: it lacks dims {missing} (scores have dims variable, "
            "lead_time, region[, model], as written by `workbench score`)."
        )
    ds = ds.load()
    ds["lead_time"] = ds["lead_time"].astype("timedelta64[ns]")
    return ds


def load_results(size: str = "default", scores: str | None = None, learned: str | None = None) -> Results:
    """The dashboard's results: the embedded sample's pipeline, optionally with other scores.

    Parameters
    ----------
    size : str
        Sample size: ``tiny``, ``default`` or ``full``.
    scores : str, optional
        Scores to show in the skill curves and scorecard instead of the sample's (see
        :func:`open_catalog_scores`); the maps and the event browser keep the sample's fields.
    learned : {"background", "wait", "off"}, optional
        How the learned models are run (see :func:`workbench.workflow.pipeline.sample_results`).

    Raises
    ------
    CatalogError
        If ``scores`` names something outside the catalog; it is checked before any work is done.
    """
    other = open_catalog_scores(scores) if scores else None
    results = sample_results(size, learned=learned)
    if other is not None:
        results = build_results(
            results.truth,
            results.forecasts,
            scores=other,
            masks=results.masks,
            events=results.events,
            ensembles=results.ensembles,
            label=f"scores from {scores}; maps from the {results.label}",
            notes=results.notes,
        )
    return results
