"""Inputs shared by the commands (``workbench events``, ``score``, ``infer``), checked before any work.

``--param KEY=VALUE`` options become a dict (:func:`parse_params`), times and lead times become pandas
objects (:func:`parse_time`, :func:`parse_times`, :func:`parse_time_range`, :func:`parse_leads`), an
output path is checked up front (:func:`check_output`), a Dask scheduler is reached within a few seconds
(:func:`connect_scheduler`), and an argument that is a path or a catalog entry becomes a lazily opened
Dataset (:func:`open_source`). Every mistake raises a :class:`~workbench.errors.WorkbenchError` with one
line that names the bad value and what is expected, so the command line can print it and exit with 2.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import CatalogError, DataError

if TYPE_CHECKING:  # pandas loads with the first time parsed, not with `workbench --help`
    import pandas as pd

__all__ = [
    "MAX_LEAD_HOURS",
    "check_output",
    "connect_scheduler",
    "open_path",
    "open_source",
    "parse_leads",
    "parse_params",
    "parse_time",
    "parse_time_range",
    "parse_times",
]

#: Longest lead time the command line accepts (one year): far beyond any weather model, yet it keeps
#: ``init_time + lead_time`` inside the datetime64[ns] range instead of overflowing.
MAX_LEAD_HOURS = 24 * 366

#: Most lead times one ``START:STOP:STEP`` range may expand to (a typo such as 0:8760:0.001 would
#: otherwise plan millions of model steps).
MAX_LEADS = 10_000

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# An absolute date starts with a four-digit year; words such as 'now', 'today' or 'yesterday' (which
# pandas reads relative to the clock, or not at all) would make a run depend on when it was started.
_ISO_START = re.compile(r"^\d{4}-?\d{2}")


def parse_params(items: list[str]) -> dict[str, str]:
    """``["size=tiny", "model=pangu"]`` -> ``{"size": "tiny", "model": "pangu"}`` (whitespace stripped).

    Raises
    ------
    DataError
        For an item without ``=`` or without a key.
    """
    params = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise DataError(f"--param takes KEY=VALUE with KEY a name such as size or model, not {item!r}.")
        if key in params and params[key] != value.strip():
            raise DataError(f"--param {key} is given twice ({params[key]!r} and {value.strip()!r}).")
        params[key] = value.strip()
    return params


def parse_time(text: str, what: str = "time") -> pd.Timestamp:
    """An absolute ISO date or date-time (``2020-06-15``, ``2020-06-15T12``, ``2020-06-15 12:00``), UTC.

    A time-zone suffix is converted to UTC and dropped, as every time in the workbench is tz-naive UTC.

    Raises
    ------
    DataError
        For anything else (``yesterday``, ``now``, ``banana``, ``2020-13-40``), naming ``what``.
    """
    import pandas as pd

    value = str(text).strip()
    if not _ISO_START.match(value):
        raise DataError(f"{what} {text!r} is not an ISO date such as 2020-06-15 or 2020-06-15T12:00.")
    try:
        # in nanoseconds, as xarray and the stores hold times: years 1678 to 2261
        stamp = pd.Timestamp(value).as_unit("ns")
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"{what} {text!r} is not a valid ISO date ({_one_line(exc)}).") from None
    if pd.isna(stamp):
        raise DataError(f"{what} {text!r} is not a valid ISO date.")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def parse_times(items: list[str], what: str = "--init") -> pd.DatetimeIndex:
    """Several :func:`parse_time` values, sorted and without repeats; at least one."""
    import pandas as pd

    times = [parse_time(item, what) for item in items]
    if not times:
        raise DataError(f"{what} needs at least one time.")
    return pd.DatetimeIndex(times).unique().sort_values()


def parse_time_range(start: str, end: str, every: str, what: str = "--init-range") -> pd.DatetimeIndex:
    """Times from ``start`` to ``end`` inclusive every ``every`` (a timedelta such as ``12h``); at least one."""
    import pandas as pd

    first, last = parse_time(start, f"{what} START"), parse_time(end, f"{what} END")
    step = _parse_timedelta(every, f"{what} EVERY")
    if step <= pd.Timedelta(0):
        raise DataError(f"{what} EVERY must be a positive time step such as 6h, not {every!r}.")
    if last < first:
        raise DataError(f"{what} selects no times: END {end!r} is before START {start!r}.")
    count = (last.value - first.value) // step.value + 1  # integers: the span may exceed a Timedelta
    if count > MAX_LEADS:
        raise DataError(f"{what} {start} {end} {every} gives {count} initial times; at most {MAX_LEADS}.")
    return pd.date_range(first, last, freq=step)


def _parse_timedelta(text: str, what: str) -> pd.Timedelta:
    import pandas as pd

    value = str(text).strip()
    try:
        delta = pd.Timedelta(value).as_unit("ns")
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(
            f"{what} {text!r} is not a time step such as 6h or 90min ({_one_line(exc)})."
        ) from None
    if pd.isna(delta):
        raise DataError(f"{what} {text!r} is not a time step such as 6h or 90min.")
    return delta


def _lead_hours(text: str) -> pd.Timedelta:
    import pandas as pd

    value = str(text).strip()
    try:
        hours = float(value)
    except ValueError:
        delta = _parse_timedelta(value, "lead time")  # a timedelta string such as "90min" or "2 days"
    else:
        if not math.isfinite(hours):
            raise DataError(f"lead time {text!r} is not a number of hours.")
        if abs(hours) > MAX_LEAD_HOURS:
            raise DataError(f"lead time {text!r} h is beyond the longest accepted, {MAX_LEAD_HOURS} h.")
        delta = pd.Timedelta(hours=hours)
    if delta < pd.Timedelta(0):
        raise DataError(f"lead time {text!r} is negative; leads count forward from the initial time.")
    if delta > pd.Timedelta(hours=MAX_LEAD_HOURS):
        raise DataError(f"lead time {text!r} is beyond the longest accepted, {MAX_LEAD_HOURS} h.")
    return delta


def parse_leads(items: list[str]) -> list[pd.Timedelta]:
    """Lead times from hours (``6``), timedeltas (``90min``) or inclusive ranges ``START:STOP:STEP`` (hours).

    Raises
    ------
    DataError
        For a value that is not a finite, non-negative lead of at most :data:`MAX_LEAD_HOURS` hours, a
        range without exactly three parts or with a step that is not positive, or more than
        :data:`MAX_LEADS` leads in all.
    """
    import pandas as pd

    leads: list[pd.Timedelta] = []
    for item in items:
        text = str(item).strip()
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise DataError(f"lead range {item!r} must be START:STOP:STEP in hours, e.g. 1:24:1.")
            start, stop, step = (_lead_hours(p) for p in parts)
            if step <= pd.Timedelta(0):
                raise DataError(f"lead range {item!r} needs a positive STEP.")
            if stop < start:
                raise DataError(f"lead range {item!r} is empty: STOP is before START.")
            count = (stop - start) // step + 1
            if len(leads) + count > MAX_LEADS:
                raise DataError(f"lead range {item!r} gives {count} lead times; at most {MAX_LEADS} in all.")
            leads += [start + i * step for i in range(count)]
        else:
            leads.append(_lead_hours(text))
    if not leads:
        raise DataError("No lead times given; pass e.g. --leads 1 6 24.")
    if len(leads) > MAX_LEADS:
        raise DataError(f"{len(leads)} lead times given; at most {MAX_LEADS}.")
    return leads


def check_output(spec: str, overwrite: bool, suffixes: tuple[str, ...] = (".nc", ".zarr")) -> Path:
    """Check before any work that ``spec`` can be written: right suffix, free (or ``overwrite``), writable.

    Raises
    ------
    DataError
        When the suffix is wrong, the path exists without ``overwrite``, a ``.nc`` path is a directory,
        a ``.zarr`` path is a directory that is not a zarr store (which ``--overwrite`` would delete), or
        the nearest existing parent is not a writable directory.
    """
    output = Path(spec).expanduser()
    if output.suffix.lower() not in suffixes:
        raise DataError(f"-o/--output must end in {' or '.join(suffixes)}, not {spec!r}.")
    if output.exists() or output.is_symlink():
        if output.suffix.lower() != ".zarr" and output.is_dir():
            raise DataError(f"-o/--output {spec!r} is a directory; name a file instead.")
        if output.suffix.lower() == ".zarr" and output.is_dir() and not _is_zarr(output):
            raise DataError(f"-o/--output {spec!r} is a directory but not a zarr store; it is left alone.")
        if output.suffix.lower() == ".zarr" and not output.is_dir():
            raise DataError(f"-o/--output {spec!r} is a file, not a zarr store.")
        if not overwrite:
            raise DataError(f"{spec!r} exists; pass --overwrite to replace it.")
    parent = output.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"-o/--output {spec!r} cannot be written: {parent} is not a directory.")
    try:  # os.access says yes to root even on read-only mounts: try the real thing
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise DataError(f"-o/--output {spec!r} cannot be written in {parent} ({exc.strerror}).") from None
    return output


def _is_zarr(path: Path) -> bool:
    return any((path / name).exists() for name in (".zgroup", ".zarray", "zarr.json"))


def connect_scheduler(address: str, timeout: float = 5.0):
    """A ``dask.distributed`` client for ``address``, or a :class:`DataError` within ``timeout`` seconds.

    ``"local"`` starts a ``LocalCluster`` on this machine (one worker process per core pair, closed with
    the client); anything else is the address of a running scheduler (``tcp://host:8786``).
    """
    import socket
    import time
    from urllib.parse import urlsplit

    from distributed import Client

    if address == "local":
        return _local_cluster(Client)
    started = time.monotonic()
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls"):
        raise DataError(
            f"--scheduler {address!r} must be a tcp:// or tls:// address such as tcp://host:8786."
        )
    if parts.scheme == "tcp":
        # distributed retries a refused connection until its timeout; a plain socket knows at once.
        try:
            port = parts.port or 8786
            with socket.create_connection((parts.hostname or "localhost", port), timeout=timeout):
                pass
        except (OSError, ValueError) as exc:
            raise DataError(
                f"--scheduler {address!r} cannot be reached ({_one_line(exc)}); start it (dask scheduler) "
                "or leave --scheduler out to score in this process."
            ) from None
    try:
        return Client(address, timeout=max(timeout - (time.monotonic() - started), 1.0))
    except Exception as exc:  # noqa: BLE001 - whatever answers there is not a usable scheduler
        raise DataError(
            f"--scheduler {address!r} cannot be reached within {timeout:g} s ({_one_line(exc)}); start "
            "it (dask scheduler) or leave --scheduler out to score in this process."
        ) from None


def _local_cluster(client_type):
    """A client of a new ``LocalCluster`` that it closes with itself: worker processes of two threads
    each (the kernels release the GIL; two threads per process halve the copies of the masks and
    weights a process holds), no dashboard port to collide with another run's."""
    import os

    n_cores = os.cpu_count() or 1
    threads = min(2, n_cores)
    return client_type(
        n_workers=max(1, n_cores // threads),
        threads_per_worker=threads,
        processes=True,
        dashboard_address=None,
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


def open_path(path: Path):
    """A zarr store (``*.zarr`` or a directory holding zarr metadata) or a netCDF file, opened lazily."""
    import xarray as xr

    is_zarr_dir = path.is_dir() and ((path / ".zgroup").exists() or (path / "zarr.json").exists())
    try:
        if path.suffix == ".zarr" or is_zarr_dir:
            return xr.open_zarr(path)
        return xr.open_dataset(path, chunks={})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a readable zarr store or netCDF file ({_one_line(exc)}).") from None


def open_source(spec: str, params: dict[str, Any], catalog_path: str | None = None):
    """A Dataset from a path, or from a catalog entry given the parameters it declares.

    Parameters the entry does not declare are left out, so one ``--param`` list can serve several
    entries (``size=tiny`` for the sample, ``model=pangu`` for the forecasts).

    Raises
    ------
    CatalogError
        When ``spec`` is neither an existing path nor an entry of the catalog (the entries are listed).
    UnitsError
        When a canonical variable of a Dataset lacks its canonical units or holds implausible values
        (checked on a few fields, so opening stays lazy).
    """
    path = Path(spec).expanduser()
    if path.exists():
        return _checked(open_path(path), spec)
    from workbench.catalog import open_catalog

    cat = open_catalog(catalog_path)
    if spec not in cat:
        raise CatalogError(
            f"{spec!r} is neither an existing file nor a catalog entry; entries: {', '.join(cat)}."
        )
    declared = {p["name"] for p in cat[spec].describe().get("user_parameters", [])}
    given = {k: v for k, v in params.items() if k in declared}
    try:
        entry = cat[spec](**given)
    except (ValueError, TypeError) as exc:  # Intake checks each value against the entry's declaration
        raise DataError(f"catalog entry {spec!r}: bad --param ({_one_line(exc)}).") from None
    return _checked(entry.to_dask(), spec)


def _checked(data, spec: str):
    """Gridded data with the units and plausible values of its canonical variables checked on a sample."""
    import xarray as xr

    if isinstance(data, xr.Dataset):
        from workbench.lexicon import check_dataset

        check_dataset(data, repr(spec))
    return data
