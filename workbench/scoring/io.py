"""Writing and reading scores data sets: netCDF or zarr, written atomically.

A scores file (or zarr folder) is written under a temporary name beside the target and moved into place
at the end by :mod:`workbench._io` (a folder by an atomic exchange), so a reader (the dashboard, a
notebook) never sees a half-written or missing output, and an interrupted run leaves the previous scores
untouched. A lock beside the target refuses a second concurrent writer.
"""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from workbench._io import ExclusiveLock, atomic_dir, atomic_write, recover_dir
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
    recover_dir(path)
    if path.exists() and not overwrite:
        raise DataError(f"{str(path)!r} exists; pass overwrite=True (--overwrite) to replace it.")
    scores = scores.load()  # computed before anything is replaced: a failing computation changes nothing
    with ExclusiveLock(path.with_name(f".{path.name}.lock"), f"the scores file {path}"):
        if fmt == ".nc":
            atomic_write(path, lambda tmp: scores.to_netcdf(tmp))
        else:
            with atomic_dir(path) as tmp:
                scores.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
    return path


def open_scores(path: str | os.PathLike) -> xr.Dataset:
    """Open a scores file written by :func:`write_scores` (loaded into memory; scores are small)."""
    path = Path(path)
    fmt = _format(path)
    if not path.exists():
        recover_dir(path)  # a folder swap killed between its two renames (file systems without exchange)
    if not path.exists():
        raise DataError(f"No scores at {str(path)!r}.")
    if fmt == ".nc":
        with xr.open_dataset(path) as ds:
            return ds.load()
    with xr.open_zarr(path) as ds:
        return ds.load()
