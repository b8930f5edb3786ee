"""Exceptions raised by the workbench.

Every error names what is wrong and how to fix it. They subclass the built-in exception a caller would
expect (``ValueError``, ``KeyError``) so generic handlers keep working.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of all workbench errors."""


class DataError(WorkbenchError, ValueError):
    """Input data is missing, malformed or inconsistent (variables, columns, coordinates, NaNs)."""


class GridError(WorkbenchError, ValueError):
    """A grid specification makes no sense, or two grids do not match."""


class UnitsError(DataError):
    """A variable carries no units, units other than the canonical ones, or values outside what its
    units make plausible (a temperature in degrees C labelled K)."""


class CatalogError(WorkbenchError, KeyError):
    """An unknown catalog entry, or a path the catalog does not name."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly instead
        return str(self.args[0]) if self.args else ""


class CheckpointError(WorkbenchError, ValueError):
    """A weights file is corrupt, of the wrong format, or does not match the model."""


class LockError(WorkbenchError, RuntimeError):
    """Another process is writing the same output (its lock names the holder)."""


class DataNote(UserWarning):
    """What the workbench did with the data that the user should know but need not act on (reports without
    coordinates skipped, cases outside the period left out). A ``UserWarning``, so filters keep working;
    the command line prints it as a ``note:`` line rather than a ``warning:``."""
