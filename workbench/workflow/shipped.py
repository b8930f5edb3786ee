"""Shipped scores of the shipped checkpoints on the embedded sample, so a first start shows them at once.

The learned models' forecasts take minutes of CPU per model on the ``default`` sample, while their
*scores* (what the skill curves and the scorecard draw) are a few hundred kilobytes. This module keeps
those scores, pre-computed by :func:`workbench.workflow.precompute.precompute`, in the package
(``workbench/data/shipped-<size>.npz`` with ``shipped-<size>.json``) and hands them to the dashboard's
pipeline (:func:`workbench.workflow.pipeline.build_baselines`) when, and only when, every key of the
manifest matches this installation:

* the checksum (``sha256`` of :mod:`workbench.models.weights`, verified against the files) of every
  checkpoint of the model, per model: a retrained or replaced model is computed as before;
* the sample generator's ``VERSION``, the dashboard pipeline's ``PIPELINE_VERSION``, and the initial and
  lead times the dashboard verifies;
* :func:`code_digest`, a digest of the source of the code that turns weights and sample into scores
  (models, inference, events, scoring, and the workflow's start and scoring modules).

Otherwise the scores are computed as before, and one log line says why. The maps of the learned models
still need their forecasts: those are made in the background as before, and replace the shipped scores
with freshly computed ones when they are done.

The file holds arrays only (``numpy.load(..., allow_pickle=False)``) and a JSON description of the
dataset; nothing is unpickled. Regenerate both files with :mod:`workbench.workflow.precompute`:

``python -m workbench.workflow.precompute --size tiny default``

(about 5 minutes of CPU for ``tiny``; about 20 minutes for ``default`` on two cores, a minute when the
dashboard's cache already holds the learned models' forecasts of the same checkpoints, which it reuses).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from workbench._io import atomic_write, write_text

log = logging.getLogger(__name__)

__all__ = [
    "SHIPPED_DIR",
    "checkpoint_checksums",
    "code_digest",
    "dataset_from_npz",
    "dataset_to_npz",
    "keys",
    "paths",
    "shipped_scores",
    "write_shipped",
]

#: Where the shipped files live (package data).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data"

#: Bump when the files' layout changes.
FORMAT_VERSION = 1

#: Source whose code decides the shipped numbers, relative to the package: a change to any of them makes
#: the shipped scores stale. (The pipeline's own choices - sample version, times - are keys of their own.)
CODE_SOURCES = ("models", "inference", "events", "scoring", "workflow/start.py", "workflow/build.py")

_PACKAGE = Path(__file__).resolve().parents[1]


def paths(size: str, directory: Path | None = None) -> tuple[Path, Path]:
    d = SHIPPED_DIR if directory is None else Path(directory)
    return d / f"shipped-{size}.npz", d / f"shipped-{size}.json"


def code_digest() -> str:
    """SHA-256 (first 16 hex digits) of the sources in :data:`CODE_SOURCES`, by relative path and bytes."""
    h = hashlib.sha256()
    files: list[Path] = []
    for entry in CODE_SOURCES:
        path = _PACKAGE / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    for path in files:
        h.update(path.relative_to(_PACKAGE).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def checkpoint_checksums(name: str) -> dict[str, str]:
    """The verified checksum of each checkpoint of model ``name``, by file stem.

    Raises
    ------
    CheckpointError
        When the model has no checkpoint, or a file does not match its recorded checksum.
    """
    from workbench.models.registry import find_checkpoints
    from workbench.models.weights import checkpoint_paths, verify_checksum

    sums = {}
    for stem in find_checkpoints(name):
        weights, config = checkpoint_paths(stem)
        document = json.loads(config.read_text())
        # verified, not just read: a replaced weights file under an old config must not match
        verify_checksum(document, weights, config)
        sums[stem.name] = str(document.get("sha256", ""))
    return sums


# -- a dataset as plain arrays -----------------------------------------------------------------------------
def _plain(value):
    """An attribute value as JSON can hold it."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def dataset_to_npz(ds: xr.Dataset) -> bytes:
    """``ds`` as the bytes of a compressed ``.npz``: one array per variable, JSON for names, dims, attrs."""
    arrays, meta = {}, {"attrs": {k: _plain(v) for k, v in ds.attrs.items()}, "variables": []}
    for i, (name, var) in enumerate(ds.variables.items()):
        values = var.values
        if values.dtype == object:
            values = values.astype(str)  # strings only; anything else fails loudly in savez below
        arrays[f"v{i}"] = values
        meta["variables"].append(
            {
                "name": str(name),
                "dims": list(var.dims),
                "coord": name in ds.coords,
                "attrs": {k: _plain(v) for k, v in var.attrs.items()},
            }
        )
    arrays["meta"] = np.array(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def dataset_from_npz(path: str | os.PathLike) -> xr.Dataset:
    """The dataset :func:`dataset_to_npz` wrote (read with ``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        coords, data = {}, {}
        for i, var in enumerate(meta["variables"]):
            target = coords if var["coord"] else data
            target[var["name"]] = xr.Variable(var["dims"], npz[f"v{i}"], attrs=var["attrs"])
    return xr.Dataset(data, coords=coords, attrs=meta["attrs"])


# -- keys --------------------------------------------------------------------------------------------------
def keys(size: str, init_times: Sequence, lead_hours: Sequence[int], pipeline_version: int) -> dict:
    """The keys this installation has for ``size`` (checkpoints apart): what a shipped file must match."""
    from workbench.sample import VERSION

    return {
        "format_version": FORMAT_VERSION,
        "size": size,
        "sample_version": VERSION,
        "pipeline_version": int(pipeline_version),
        "code_digest": code_digest(),
        "init_times": [str(np.datetime64(t, "ns")) for t in init_times],
        "lead_hours": [int(h) for h in lead_hours],
    }


def shipped_scores(
    size: str,
    models: Sequence[str],
    init_times: Sequence,
    lead_hours: Sequence[int],
    pipeline_version: int,
    directory: str | os.PathLike | None = None,
) -> tuple[xr.Dataset | None, str]:
    """The shipped scores of those of ``models`` whose keys all match, and why others are left out.

    Parameters
    ----------
    size : str
        Sample size.
    models : sequence of str
        The learned models installed here.
    init_times, lead_hours
        What the dashboard verifies (:func:`workbench.workflow.pipeline.choose_times`).
    pipeline_version : int
        The dashboard pipeline's ``PIPELINE_VERSION``.
    directory : path, optional
        Where the shipped files are (default :data:`SHIPPED_DIR`).

    Returns
    -------
    (xarray.Dataset or None, str)
        Scores ``(model, ...)`` of the matching models (None when none matches) and a one-line reason for
        what was not used ('' when every model matched).
    """
    npz_path, manifest_path = paths(size, directory)
    if not manifest_path.exists() or not npz_path.exists():
        return None, f"no shipped scores for the {size!r} sample"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:  # a damaged install: computed as before, and said so
        return None, f"shipped scores of the {size!r} sample not used: {manifest_path.name} unreadable ({exc})"
    if hashlib.sha256(npz_path.read_bytes()).hexdigest() != manifest.get("file_sha256"):
        return None, f"shipped scores of the {size!r} sample not used: {npz_path.name} differs from its manifest"
    for key, value in keys(size, init_times, lead_hours, pipeline_version).items():
        if manifest.get("keys", {}).get(key) != value:
            return None, f"shipped scores of the {size!r} sample not used: {key} differs"
    usable, reasons = [], []
    for name in models:
        shipped = manifest.get("checkpoints", {}).get(name)
        if shipped is None:
            reasons.append(f"{name}: not in the shipped scores")
            continue
        try:
            here = checkpoint_checksums(name)
        except Exception as exc:  # a checkpoint that fails its own check is computed (and fails) as before
            reasons.append(f"{name}: {exc}")
            continue
        if here != shipped:
            reasons.append(f"{name}: checkpoint checksum differs")
            continue
        usable.append(name)
    if not usable:
        return None, "shipped scores not used: " + "; ".join(reasons)
    try:
        scores = dataset_from_npz(npz_path)
    except (OSError, ValueError, KeyError) as exc:
        return None, f"shipped scores of the {size!r} sample not used: {npz_path.name} unreadable ({exc})"
    missing = [m for m in usable if m not in scores["model"].values.tolist()]
    if missing:
        return None, f"shipped scores of the {size!r} sample not used: {npz_path.name} lacks {missing}"
    scores = scores.sel(model=usable)
    if "lead_time" in scores.coords:
        scores["lead_time"] = scores["lead_time"].astype("timedelta64[ns]")
    return scores, ("; ".join(reasons) if reasons else "")


# -- writing ----------------------------------------------------------------------------------------------
def write_shipped(
    scores: xr.Dataset,
    size: str,
    init_times: Sequence,
    lead_hours: Sequence[int],
    pipeline_version: int,
    checksums: dict[str, dict[str, str]],
    made_by: dict,
    directory: str | os.PathLike | None = None,
) -> tuple[Path, Path]:
    """Write ``scores`` (``model`` along one dim) and their manifest, each atomically; returns both paths."""
    npz_path, manifest_path = paths(size, directory)
    atomic_write(npz_path, lambda tmp: tmp.write_bytes(dataset_to_npz(scores)))
    manifest = {
        "what": f"scores of the shipped checkpoints' forecasts on the {size!r} sample (dashboard pipeline)",
        "keys": keys(size, init_times, lead_hours, pipeline_version),
        "checkpoints": checksums,
        "made_by": made_by,
        "file": npz_path.name,
        "file_sha256": hashlib.sha256(npz_path.read_bytes()).hexdigest(),
    }
    write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return npz_path, manifest_path
