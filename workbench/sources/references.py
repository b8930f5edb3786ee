"""Kerchunk references: read netCDF runs of a forecast archive as zarr, fetching only the chunks needed.

A run of the AI-model archive (``s3://noaa-oar-mlwp-data``) is one 4-5 GB netCDF-4 (HDF5) file. A
*reference* file maps each zarr key of the run (``t2/0.0.0``, ``.zattrs``...) to a byte range of that
netCDF file, so xarray opens the run through fsspec's ``reference://`` filesystem as a zarr store and
downloads only the chunks of the variables and times asked for. References are JSON (one file per run)
or parquet (a folder per run, kerchunk's lazily loaded format, better for many chunks).

:func:`build_references` writes them with `kerchunk <https://fsspec.github.io/kerchunk/>`_ (the optional
extra ``kerchunk``); :func:`open_reference` reads them with fsspec alone. Kerchunk rather than
VirtualiZarr + icechunk: a kerchunk file is plain JSON/parquet that fsspec (already a dependency, through
xarray and dask) reads without any new package, and building one needs only kerchunk and h5py, both
pure-Python or small wheels; icechunk adds a versioned store written by a compiled engine, which buys
transactions the workbench does not need for read-only archives. Each reference keeps the run's file
name with the suffix changed (``FOUR_v200_GFS_2023100100_f000_f240_06.json``), so the initial time is
still read from the name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from workbench import _io
from workbench.errors import DataError
from workbench.sources.remote import ANONYMOUS_OPTIONS, protocol_of

__all__ = ["REFERENCE_SUFFIXES", "build_references", "is_reference", "open_reference"]

#: Suffixes of reference files (JSON) and folders (parquet).
REFERENCE_SUFFIXES = (".json", ".parq", ".parquet")


def is_reference(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a kerchunk reference (by its suffix)."""
    return os.fspath(path).rstrip("/").lower().endswith(REFERENCE_SUFFIXES)


def _kerchunk():
    try:
        from kerchunk.hdf import SingleHdf5ToZarr
    except ImportError:
        raise DataError(
            "Building references needs the kerchunk extra: pip install 'workbench[kerchunk]'."
        ) from None
    return SingleHdf5ToZarr


def build_references(
    runs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    fmt: str = "json",
    storage_options: dict | None = None,
    inline_threshold: int = 300,
) -> list[Path]:
    """Write one kerchunk reference per netCDF-4 run file.

    Parameters
    ----------
    runs : sequence of paths or URLs
        netCDF-4 (HDF5) files, local or remote (``s3://noaa-oar-mlwp-data/...``: read anonymously).
    out_dir : path
        Folder for the references; each is named after its run (suffix ``.json`` or ``.parq``).
    fmt : {"json", "parquet"}
        JSON files, or parquet folders (needs pandas with pyarrow or fastparquet).
    storage_options : dict, optional
        fsspec options for remote runs (default: anonymous access).
    inline_threshold : int
        Chunks smaller than this many bytes (coordinates) are stored in the reference itself.

    Returns
    -------
    list of Path
        The references written, in the order of ``runs``.

    Raises
    ------
    DataError
        Without kerchunk, on an unknown ``fmt``, or on a run that is not netCDF-4/HDF5.
    """
    if fmt not in ("json", "parquet"):
        raise DataError(f"fmt must be 'json' or 'parquet', got {fmt!r}.")
    single = _kerchunk()
    import fsspec

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for run in runs:
        url = os.fspath(run)
        proto = protocol_of(url)
        options = storage_options if storage_options is not None else ANONYMOUS_OPTIONS.get(proto or "", {})
        stem = Path(url.split("://", 1)[-1]).stem
        try:
            with fsspec.open(url, "rb", **options) as f:
                refs = single(f, url, inline_threshold=inline_threshold).translate()
        except (OSError, ValueError, TypeError, KeyError) as exc:  # h5py and fsspec raise these
            raise DataError(f"Cannot build a reference for {url}: {type(exc).__name__}: {exc}") from None
        if fmt == "json":
            target = out / f"{stem}.json"
            _io.write_text(target, json.dumps(refs))
        else:
            target = out / f"{stem}.parq"
            _write_parquet(refs, target)
        written.append(target)
    return written


def _write_parquet(refs: dict, target: Path) -> None:
    """kerchunk's parquet layout, built beside ``target`` and swapped in whole."""
    from kerchunk.df import refs_to_dataframe

    try:
        with _io.atomic_dir(target) as tmp:
            refs_to_dataframe(refs, str(tmp))
    except ImportError as exc:
        raise DataError(f"parquet references need pyarrow or fastparquet: {exc}") from None


def open_reference(
    reference: str | os.PathLike, *, remote_options: dict | None = None, chunks: dict | None = None
) -> xr.Dataset:
    """Open a run through its kerchunk reference (JSON file or parquet folder), lazily.

    Parameters
    ----------
    reference : path or URL
        The reference; the byte ranges it points to may be local or remote (``s3://``, read
        anonymously unless ``remote_options`` say otherwise).
    remote_options : dict, optional
        fsspec options for the filesystem of the referenced files.
    chunks : dict, optional
        Dask chunks (default: the file's own).

    Raises
    ------
    DataError
        A missing or unreadable reference.
    """
    text = os.fspath(reference)
    if protocol_of(text) is None and not os.path.exists(text):
        raise DataError(f"No reference at {text!r}.")
    target = _target_protocol(text)
    options = {
        "fo": text,
        "remote_protocol": target,
        "remote_options": remote_options if remote_options is not None else ANONYMOUS_OPTIONS.get(target, {}),
    }
    if text.rstrip("/").lower().endswith((".parq", ".parquet")):
        options["lazy"] = True
    try:
        return xr.open_dataset(
            "reference://",
            engine="zarr",
            chunks={} if chunks is None else chunks,
            backend_kwargs={"storage_options": options, "consolidated": False, "zarr_format": 2},
        )
    except Exception as exc:  # fsspec, zarr and json raise many unrelated types on a bad reference
        raise DataError(f"Cannot open the reference {text}: {type(exc).__name__}: {exc}") from None


def _target_protocol(reference: str) -> str:
    """The protocol of the files a reference points to (read from a JSON reference; default ``file``)."""
    if not reference.lower().endswith(".json") or protocol_of(reference) is not None:
        return "file"
    try:
        refs = json.loads(Path(reference).read_text(encoding="utf-8")).get("refs", {})
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read the reference {reference}: {exc}") from None
    for value in refs.values():
        if isinstance(value, list) and value and isinstance(value[0], str):
            return protocol_of(value[0]) or "file"
    return "file"
