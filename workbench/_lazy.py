"""The one way a package of the workbench exposes its public names: loaded on first use.

Each ``__init__`` maps a public name to the module that defines it and calls :func:`lazy_exports`, so
that importing a package costs nothing until one of its names is used (the dashboard's server and the
command line start without torch, HoloViews or the event builders unless they need them)::

    from workbench._lazy import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"run_forecast": "workbench.inference.engine"})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """The module ``__getattr__``, ``__dir__`` and ``__all__`` of a package with lazily loaded names.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping of str to str
        Public name -> the module (absolute dotted path) that defines it.

    Returns
    -------
    (__getattr__, __dir__, __all__)
        ``__getattr__`` imports the defining module on the first look-up and caches the value in the
        package's namespace, so later look-ups are plain attribute reads.
    """
    names = sorted(exports)

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__, names
