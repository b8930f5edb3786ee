"""Inputs shared by the data commands (``workbench events``, ``workbench score``).

``--param KEY=VALUE`` options become a dict (:func:`parse_params`), and an argument that is a path or a
catalog entry becomes a lazily opened Dataset (:func:`open_source`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.errors import CatalogError, DataError

__all__ = ["open_path", "open_source", "parse_params"]


def parse_params(items: list[str]) -> dict[str, str]:
    """``["size=tiny", "model=pangu"]`` -> ``{"size": "tiny", "model": "pangu"}`` (whitespace stripped).

    Raises
    ------
    DataError
        For an item without ``=`` or without a key.
    """
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DataError(f"--param takes KEY=VALUE, not {item!r}.")
        params[key.strip()] = value.strip()
    return params


def open_path(path: Path):
    """A zarr store (``*.zarr`` or a directory holding zarr metadata) or a netCDF file, opened lazily."""
    import xarray as xr

    is_zarr_dir = path.is_dir() and ((path / ".zgroup").exists() or (path / "zarr.json").exists())
    if path.suffix == ".zarr" or is_zarr_dir:
        return xr.open_zarr(path)
    return xr.open_dataset(path, chunks={})


def open_source(spec: str, params: dict[str, Any], catalog_path: str | None = None):
    """A Dataset from a path, or from a catalog entry given the parameters it declares.

    Parameters the entry does not declare are left out, so one ``--param`` list can serve several
    entries (``size=tiny`` for the sample, ``model=pangu`` for the forecasts).

    Raises
    ------
    CatalogError
        When ``spec`` is neither an existing path nor an entry of the catalog (the entries are listed).
    """
    path = Path(spec).expanduser()
    if path.exists():
        return open_path(path)
    from workbench.catalog import open_catalog

    cat = open_catalog(catalog_path)
    if spec not in cat:
        raise CatalogError(
            f"{spec!r} is neither an existing file nor a catalog entry; entries: {', '.join(cat)}."
        )
    declared = {p["name"] for p in cat[spec].describe().get("user_parameters", [])}
    entry = cat[spec](**{k: v for k, v in params.items() if k in declared})
    return entry.to_dask()
