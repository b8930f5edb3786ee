"""Extreme Weather Workbench: find where AI weather models fail, on extreme events."""

from __future__ import annotations

from workbench._lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, _lazy_names = lazy_exports(__name__, {"open_catalog": "workbench.catalog"})
__all__ = ["__version__", *_lazy_names]
