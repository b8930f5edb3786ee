"""The workbench's Intake catalog: every data set, opened lazily, in canonical names and units.

The catalog is a version-1 Intake YAML file (``workbench/catalogs/workbench.yaml``, also at
``catalogs/workbench.yaml`` in the repository), which Intake 2 still reads: each entry names a
:mod:`workbench.sources.intake_sources` class as its ``driver`` and declares typed user ``parameters``.

>>> import workbench
>>> cat = workbench.open_catalog()
>>> ds = cat.sample_hrrr(size="tiny").read()          # doctest: +SKIP
>>> cat["forecasts"](model="pangu").to_dask()         # doctest: +SKIP

:func:`forecast_store_path` (``model`` -> ``<cache>/forecasts/<model>.zarr``) is where ``workbench
infer`` writes by default and what the ``forecasts`` entry reads.

An unknown entry raises :class:`workbench.errors.CatalogError` naming the nearest entry and all others.
:func:`resolve_path` gives apps one gate for file access: it turns an entry name into the path it
reads, and refuses any path that no entry names.
"""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path
from typing import Any

from intake.catalog.local import YAMLFileCatalog

from workbench.errors import CatalogError
from workbench.sources.intake_sources import forecast_store_path, forecasts_dir, quiet_intake
from workbench.sources.remote import cache_root, is_remote

CATALOG_NAME = "workbench.yaml"

__all__ = [
    "CATALOG_NAME",
    "WorkbenchCatalog",
    "default_catalog_path",
    "forecast_store_path",
    "forecasts_dir",
    "open_catalog",
    "resolve_path",
]


def default_catalog_path() -> Path:
    """The catalog shipped with the package (the repository's ``catalogs/workbench.yaml`` is a link to it)."""
    return Path(str(resources.files("workbench") / "catalogs" / CATALOG_NAME))


class WorkbenchCatalog(YAMLFileCatalog):
    """An Intake YAML catalog whose unknown entries raise :class:`CatalogError` with a suggestion."""

    def __getitem__(self, key):
        if isinstance(key, str) and key not in self and "." not in key:
            raise CatalogError(_unknown_entry_message(key, list(self)))
        try:
            with quiet_intake():
                return super().__getitem__(key)
        except CatalogError:
            raise
        except KeyError:
            raise CatalogError(_unknown_entry_message(str(key), list(self))) from None


def _unknown_entry_message(name: str, names: list[str]) -> str:
    nearest = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f" Did you mean {nearest[0]!r}?" if nearest else ""
    return f"No catalog entry named {name!r}.{hint} Available entries: {', '.join(names)}."


def open_catalog(path: str | os.PathLike | None = None) -> WorkbenchCatalog:
    """Open the workbench's Intake catalog.

    Parameters
    ----------
    path : str or path, optional
        Another catalog YAML file; by default the one shipped with the package.

    Returns
    -------
    WorkbenchCatalog
        ``list(cat)`` gives the entry names; ``cat[name](**params).read()`` (or ``.to_dask()``) returns a
        lazy xarray Dataset, or a pandas DataFrame for reports.

    Raises
    ------
    CatalogError
        If ``path`` does not exist, is not a valid Intake YAML catalog, or has no entries.
    """
    target = default_catalog_path() if path is None else Path(path)
    if not target.is_file():
        raise CatalogError(f"No catalog file at {target}; pass the path of a YAML catalog or leave it empty.")
    return _load_catalog(target)


def _load_catalog(target: Path) -> WorkbenchCatalog:
    """Open and fully parse ``target``, so a malformed file fails here with one line, not on first use."""
    import yaml
    from intake.catalog.exceptions import CatalogException

    try:
        with quiet_intake():
            cat = WorkbenchCatalog(str(target))
            names = list(cat)
    except (yaml.YAMLError, CatalogException, ValueError, TypeError, KeyError, AttributeError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CatalogError(
            f"{target} is not a valid Intake catalog ({reason}); it needs a top-level 'sources:' mapping "
            "of entries, each with a 'driver' and 'args'."
        ) from None
    if not names:
        raise CatalogError(f"{target} is a catalog without entries; add entries under 'sources:'.")
    return cat


def _catalog_roots() -> list[Path]:
    """Directories whose files belong to catalog entries: the sample data and the forecast stores."""
    root = cache_root()
    return [root / "sample", forecasts_dir()]


def resolve_path(entry_or_path: str | os.PathLike, catalog: WorkbenchCatalog | None = None, **params: Any):
    """The location behind a catalog entry, or a path checked against what the catalog names.

    Apps call this before opening anything a user names (a URL parameter, a widget value), so a request
    can never reach files the catalog does not describe.

    Parameters
    ----------
    entry_or_path : str or path
        A catalog entry name (``"sample_hrrr"``, ``"forecasts"``) or a path.
    catalog : WorkbenchCatalog, optional
        The catalog to check against; by default :func:`open_catalog`.
    **params
        The entry's user parameters (``size="tiny"``, ``model="pangu"``).

    Returns
    -------
    pathlib.Path or str
        The local path (resolved), or the URL of a remote entry.

    Raises
    ------
    CatalogError
        If a path lies outside every location the catalog names (the sample data, the forecast stores),
        or names no entry; the message says what is allowed.
    """
    cat = catalog if catalog is not None else open_catalog()
    text = os.fspath(entry_or_path)
    if text in cat:
        location = cat[text](**params).path
        return location if isinstance(location, str) and is_remote(location) else Path(location).resolve()
    if params:
        raise CatalogError(
            f"{text!r} is not a catalog entry, so it takes no parameters; entries: {', '.join(cat)}."
        )
    if is_remote(text):
        raise CatalogError(
            f"Refusing {text}: remote data are opened through catalog entries (era5, hrrr, storm_events), "
            "not by URL."
        )
    candidate = Path(text).expanduser().resolve()
    for root in _catalog_roots():
        root = root.resolve()
        if candidate == root or root in candidate.parents:
            return candidate
    raise CatalogError(
        f"Refusing {text!r}: it is not a catalog entry nor inside a location the catalog names "
        f"({', '.join(str(r) for r in _catalog_roots())}). Use an entry name such as "
        f"{', '.join(list(cat)[:4])}, or add an entry to the catalog."
    )
