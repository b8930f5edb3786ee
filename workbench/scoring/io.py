"""Writing and reading scores data sets: netCDF or zarr, written atomically.

A scores file is written under a temporary name beside the target and moved into place at the end,
so a reader (the dashboard, a notebook) never sees a half-written file, and an interrupted run leaves
the previous scores untouched.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import xarray as xr

from workbench.errors import DataError

SUFFIXES = (".nc", ".zarr")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"Cannot tell the format of {str(path)!r}: name it *.nc (netCDF) or *.zarr.")
    return suffix


def write_scores(scores: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a scores Dataset to ``path`` (``*.nc`` or ``*.zarr``), atomically.

    Parameters
    ----------
    scores : xarray.Dataset
        For example the result of :func:`workbench.scoring.decompose`.
    path : str or path-like
        Target file; the suffix picks the format.
    overwrite : bool
        Replace an existing file; otherwise an existing target is an error.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    fmt = _format(path)
    if path.exists() and not overwrite:
        raise DataError(f"{str(path)!r} exists; pass overwrite=True (--overwrite) to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        if fmt == ".nc":
            scores.load().to_netcdf(tmp)
            os.replace(tmp, path)
        else:
            scores.load().to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
            _replace_dir(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    return path


def _replace_dir(new: Path, target: Path) -> None:
    """Move directory ``new`` onto ``target``; each rename is atomic, the old copy goes last."""
    if not target.exists():
        os.replace(new, target)
        return
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(old, target)
        raise
    if old.is_dir():
        shutil.rmtree(old)
    else:
        old.unlink()


def open_scores(path: str | os.PathLike) -> xr.Dataset:
    """Open a scores file written by :func:`write_scores` (loaded into memory; scores are small)."""
    path = Path(path)
    fmt = _format(path)
    if not path.exists():
        raise DataError(f"No scores at {str(path)!r}.")
    if fmt == ".nc":
        with xr.open_dataset(path) as ds:
            return ds.load()
    with xr.open_zarr(path) as ds:
        return ds.load()
