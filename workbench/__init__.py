"""Extreme Weather Workbench: find where AI weather models fail, on extreme events."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "open_catalog"]


def open_catalog(path: str | None = None):
    """Open the workbench's Intake catalog (see :func:`workbench.catalog.open_catalog`)."""
    from workbench.catalog import open_catalog as _open

    return _open(path)
