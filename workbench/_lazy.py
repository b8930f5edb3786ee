"""The one way a package of the workbench exposes its public names: loaded on first use.

Each ``__init__`` maps a public name to the module that defines it and calls :func:`lazy_exports`, so
that importing a package costs nothing until one of its names is used (the dashboard's server and the
command line start without torch, HoloViews or the event builders unless they need them)::

    from workbench._lazy import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"run_forecast": "workbench.inference.engine"})

An exported name always means the exported object, also where a submodule has the same name
(``workbench.events.climatology`` is the function; ``import workbench.events.climatology`` still loads
the module, which ``sys.modules`` holds).
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


class _LazyPackage(types.ModuleType):
    """A package whose exported names win over its submodules of the same name."""

    _lazy_exports: Mapping[str, str] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        # The import system binds every imported submodule on its package; an exported object of that
        # name (the climatology function of events/climatology.py) keeps the name instead.
        if isinstance(value, types.ModuleType) and name in self._lazy_exports and (
            value.__name__ == f"{self.__name__}.{name}"
        ):
            return
        super().__setattr__(name, value)


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
    module = sys.modules[package]
    module.__class__ = _LazyPackage
    vars(module)["_lazy_exports"] = dict(exports)
    for name in names:  # a submodule bound before this call gives its name back to the export
        if isinstance(vars(module).get(name), types.ModuleType):
            del vars(module)[name]

    def __getattr__(name: str) -> Any:
        source = exports.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        vars(sys.modules[package])[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__, names
