"""Guarding access to remote data: fail fast, with a message that says what to do.

Public archives (WeatherBench 2 and ARCO-ERA5 on Google Cloud Storage, the HRRR zarr archive on AWS S3,
NCEI's Storm Events CSVs over HTTPS) are opened through fsspec. Without the right filesystem package,
or without a network, fsspec either raises an obscure import error or retries for minutes. Every reader
calls :func:`check_remote` first, which answers within a few seconds:

* the fsspec implementation for the protocol must be importable (``gcsfs`` for ``gs://``, ``s3fs`` for
  ``s3://``, ``aiohttp`` for ``https://`` through fsspec);
* the host must resolve and accept a TCP connection within ``timeout`` seconds;
* ``WORKBENCH_OFFLINE=1`` in the environment refuses all remote paths at once.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from workbench import _io
from workbench._io import atomic_write
from workbench.errors import DataError

#: protocol -> (module that fsspec needs, pip package that provides it)
_FSSPEC_PACKAGES = {
    "gs": ("gcsfs", "gcsfs"),
    "gcs": ("gcsfs", "gcsfs"),
    "s3": ("s3fs", "s3fs"),
    "http": ("aiohttp", "aiohttp"),
    "https": ("aiohttp", "aiohttp"),
}

#: Anonymous access to the public buckets; without it gcsfs/s3fs look for credentials first.
ANONYMOUS_OPTIONS = {"gs": {"token": "anon"}, "gcs": {"token": "anon"}, "s3": {"anon": True}}

_REACHABLE: set[tuple[str, int]] = set()


def protocol_of(path: str | os.PathLike) -> str | None:
    """The URL protocol of ``path`` (``"gs"``, ``"s3"``, ``"https"``), or ``None`` for a local path."""
    if isinstance(path, Path):
        return None
    text = os.fspath(path)
    if "://" not in text:
        return None
    scheme = text.split("://", 1)[0].lower()
    return None if scheme in ("file", "") else scheme


def is_remote(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a remote object (any protocol other than ``file://``)."""
    return protocol_of(path) is not None


def _host_port(url: str) -> tuple[str, int]:
    """The host and port that serve ``url``."""
    proto = protocol_of(url)
    parsed = urlparse(url)
    if proto in ("gs", "gcs"):
        return "storage.googleapis.com", 443
    if proto == "s3":
        # Virtual-hosted bucket endpoint; anonymous public buckets answer here from any region.
        return f"{parsed.netloc}.s3.amazonaws.com", 443
    port = parsed.port or (80 if proto == "http" else 443)
    return parsed.hostname or "", port


def _resolve_and_connect(host: str, port: int, timeout: float) -> None:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, socktype, proto, _, address = infos[0]
    with socket.socket(family, socktype, proto) as sock:
        sock.settimeout(timeout)
        sock.connect(address)


def check_remote(url: str, *, needs_fsspec: bool = True, timeout: float = 3.0) -> None:
    """Fail fast, with a clear message, if ``url`` cannot be read from here.

    Parameters
    ----------
    url : str
        A remote URL (``gs://``, ``s3://``, ``https://``). Local paths pass without any check.
    needs_fsspec : bool
        Whether the caller reads through fsspec (so the protocol's filesystem package is required).
        Readers that use only the standard library (plain HTTPS downloads) pass ``False``.
    timeout : float
        Seconds allowed for name resolution and the TCP connection together.

    Raises
    ------
    DataError
        If the workbench is told to stay offline (``WORKBENCH_OFFLINE=1``), the filesystem package is
        missing (the message names the package to install), or the host cannot be reached.
    """
    proto = protocol_of(url)
    if proto is None:
        return
    if os.environ.get("WORKBENCH_OFFLINE", "").strip().lower() in ("1", "true", "yes"):
        raise DataError(
            f"Cannot read {url}: remote data are disabled (WORKBENCH_OFFLINE is set). Unset "
            "WORKBENCH_OFFLINE, or use a local copy or the embedded sample entries (sample_*)."
        )
    if needs_fsspec:
        if proto not in _FSSPEC_PACKAGES:
            raise DataError(
                f"Cannot read {url}: the protocol {proto!r} is not supported; use one of "
                f"{sorted(_FSSPEC_PACKAGES)} or a local path."
            )
        module, package = _FSSPEC_PACKAGES[proto]
        if importlib.util.find_spec(module) is None:
            raise DataError(
                f"Cannot read {url}: reading {proto}:// paths needs the '{package}' package, which is not "
                f"installed. Install it with `pip install {package}`."
            )
    host, port = _host_port(url)
    if (host, port) in _REACHABLE:
        return
    # getaddrinfo has no timeout of its own: a daemon thread bounds the whole check, so an offline
    # machine never hangs here (nor at interpreter exit, as a thread pool's worker would).
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            _resolve_and_connect(host, port, timeout)
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=attempt, name=f"workbench-check-{host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome or outcome[0] is not None:
        reason = f"no answer within {timeout:.0f} s" if not outcome else str(outcome[0])
        raise DataError(
            f"Cannot read {url}: the host {host} cannot be reached ({reason}). Are you offline? Check the "
            "network, or use a local copy of the data or the embedded sample entries (sample_*)."
        )
    _REACHABLE.add((host, port))


def storage_options_for(url: str, storage_options: dict | None = None) -> dict:
    """fsspec options for ``url``: anonymous access to the public buckets unless the caller says otherwise."""
    proto = protocol_of(url)
    options = dict(ANONYMOUS_OPTIONS.get(proto or "", {}))
    options.update(storage_options or {})
    return options


def cache_root() -> Path:
    """The workbench's cache directory: ``$WORKBENCH_CACHE`` or ``~/.cache/workbench``."""
    return _io.cache_root()


def fetch(url: str, subdir: str, *, timeout: float = 30.0) -> Path:
    """Download ``url`` once into ``<cache>/downloads/<subdir>/`` and return the local path.

    Uses only the standard library (no fsspec), checks the host first with :func:`check_remote`, and
    writes to a temporary name then renames, so an interrupted download never leaves a partial file.

    Raises
    ------
    DataError
        If the host cannot be reached or the server answers with an error.
    """
    import shutil
    import urllib.error
    import urllib.request

    name = os.path.basename(urlparse(url).path) or "download"
    target = cache_root() / "downloads" / subdir / name
    if target.exists():
        return target
    check_remote(url, needs_fsspec=False)
    target.parent.mkdir(parents=True, exist_ok=True)

    def write(partial) -> None:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)

    try:
        atomic_write(target, write)
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"Could not download {url}: {exc}. Check the URL and the network.") from None
    return target
