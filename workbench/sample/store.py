"""The on-disk cache of the sample: where it lives, atomic generation, and opening its products.

Layout: ``<cache>/sample/<size>-v<VERSION>/`` holding ``hrrr.zarr``, ``era5.zarr``, ``nwp.zarr``,
``analysis.zarr`` (the analysis every forecast starts from, at the NWP initial times),
``reports/storm_events.csv``, ``reports/spc/YYMMDD_rpts_{torn,hail,wind}.csv`` and a completion
marker ``COMPLETE.json``. ``<cache>`` is the ``cache_dir`` argument, else ``$WORKBENCH_CACHE``, else
``~/.cache/workbench``.

Generation writes into a hidden temporary sibling directory and renames it into place only when every
product and the marker are written, so a killed generation never leaves a half cache; leftovers of a
killed run (temporary directories whose process is gone) are removed by the next call.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import xarray as xr

from workbench import _io
from workbench.errors import DataError
from workbench.sample.params import VERSION, SizeSpec, size_spec

MARKER = "COMPLETE.json"
_KINDS = ("hrrr", "era5", "nwp", "analysis", "reports", "spc")


@dataclass(frozen=True)
class SamplePaths:
    """Paths of one generated sample.

    Attributes
    ----------
    root : Path
        The sample directory.
    hrrr, era5, nwp : Path
        The zarr stores.
    analysis : Path
        The analysis zarr store (truth plus the modelled analysis error at each NWP initial time).
    storm_events : Path
        NCEI-layout storm events CSV.
    spc_dir : Path
        Directory of SPC-style daily report CSVs.
    size : str
        Size name.
    """

    root: Path
    hrrr: Path
    era5: Path
    nwp: Path
    storm_events: Path
    spc_dir: Path
    size: str
    analysis: Path | None = None

    @property
    def reports(self) -> Path:
        """Directory holding all report files."""
        return self.root / "reports"

    @classmethod
    def at(cls, root: Path, size: str) -> SamplePaths:
        """The paths of a sample rooted at ``root``."""
        return cls(
            root=root,
            hrrr=root / "hrrr.zarr",
            era5=root / "era5.zarr",
            nwp=root / "nwp.zarr",
            storm_events=root / "reports" / "storm_events.csv",
            spc_dir=root / "reports" / "spc",
            size=size,
            analysis=root / "analysis.zarr",
        )


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``cache_dir``, else ``$WORKBENCH_CACHE``, else ``~/.cache/workbench``."""
    return _io.cache_root(cache_dir)


def sample_dir(size: str | SizeSpec, cache_dir: str | os.PathLike | None = None) -> Path:
    """Directory of a sample size in the cache (whether or not it exists yet)."""
    spec = size_spec(size)
    return cache_root(cache_dir) / "sample" / f"{spec.name}-v{VERSION}"


def is_complete(root: Path) -> bool:
    """Whether ``root`` holds a finished sample of this generator version."""
    marker = root / MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return info.get("version") == VERSION and info.get("seed") == _seed_of(root)


def _seed_of(root: Path) -> int | None:
    """The seed a sample directory ``<size>-v<VERSION>`` must have been generated with."""
    try:
        return size_spec(root.name.rsplit("-v", 1)[0]).seed
    except DataError:
        return None


def _prepare_parent(parent: Path) -> None:
    if parent.exists() and not parent.is_dir():
        raise DataError(
            f"The sample cache path {parent} exists but is not a directory. Point WORKBENCH_CACHE "
            "(or cache_dir) at a directory."
        )
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"Cannot create the sample cache directory {parent}: {exc.strerror or exc}. Set WORKBENCH_CACHE "
            "(or pass cache_dir) to a writable directory."
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(
            f"The sample cache directory {parent} is not writable. Set WORKBENCH_CACHE (or pass cache_dir) "
            "to a writable directory."
        )


def _pid_alive(pid: int) -> bool:
    return _io.pid_alive(pid)


def _remove_stale(parent: Path, name: str) -> None:
    """Delete temporary directories of generations that died (their process is gone)."""
    host = socket.gethostname()
    for tmp in parent.glob(f".{name}.tmp.*"):
        try:
            pid = int(tmp.name.split(".")[-2])
        except (IndexError, ValueError):
            pid = -1
        try:
            owner_host = (tmp / "OWNER").read_text().strip()
        except OSError:
            owner_host = host
        if owner_host != host:
            # another machine's run on a shared disk: only clean it once it is clearly abandoned
            stale = time.time() - tmp.stat().st_mtime > 6 * 3600
        else:
            stale = pid <= 0 or pid == os.getpid() or not _pid_alive(pid)
        if stale:
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_sample(
    size: str = "default", cache_dir: str | os.PathLike | None = None, progress: bool = True
) -> SamplePaths:
    """Generate the sample of ``size`` on first use (with a progress bar), then reuse it.

    Parameters
    ----------
    size : str
        ``tiny`` for tests (96 km, 4 days), ``default`` (24 km, 3 weeks hourly from 2020-06-01: the test
        period), ``full`` (the real 3-km HRRR grid, 24 hours), ``long`` (the default run continued to
        eight weeks), ``train`` and ``validation`` (24 km, independent periods of 8 and 2 weeks, see
        :data:`~workbench.sample.params.TRAINING_SIZES`).
    cache_dir : path, optional
        Cache directory; defaults to ``$WORKBENCH_CACHE`` or ``~/.cache/workbench``.
    progress : bool
        Show a tqdm progress bar while generating.

    Returns
    -------
    SamplePaths

    Raises
    ------
    DataError
        For an unknown size, or a cache directory that cannot be created or written.
    """
    spec = size_spec(size)
    root = sample_dir(spec, cache_dir)
    paths = SamplePaths.at(root, spec.name)
    if is_complete(root):
        return paths
    from workbench.sample.generate import generate  # the generator's imports cost seconds: only now

    parent = root.parent
    _prepare_parent(parent)
    # one generation at a time per sample: a second caller waits, then finds the sample complete
    with _exclusive(parent / f".{root.name}.lock"):
        if is_complete(root):
            return paths
        _remove_stale(parent, root.name)
        _generate_into(root, spec, progress, generate)
    return paths


@contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive advisory lock on ``lock_path`` (no-op where ``fcntl`` is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _generate_into(root: Path, spec: SizeSpec, progress: bool, generate) -> None:
    """Generate into a temporary sibling of ``root`` and rename it into place when complete."""
    parent = root.parent
    tmp = parent / f".{root.name}.tmp.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    (tmp / "OWNER").write_text(socket.gethostname())
    try:
        t0 = time.perf_counter()
        counts = generate(spec, tmp, progress=progress)
        info = {
            "version": VERSION,
            "seed": spec.seed,
            "period": spec.period,
            "size": spec.name,
            "seconds": round(time.perf_counter() - t0, 2),
            "created": pd.Timestamp.now("UTC").isoformat(),
            **counts,
        }
        (tmp / "OWNER").unlink()
        (tmp / MARKER).write_text(json.dumps(info, indent=1))
        if root.exists() and not is_complete(root):
            _io.remove_tree(root)  # an incomplete sample from an older layout
        try:
            # A plain rename on purpose, not _io.swap_dir: it fails when another process has put a
            # complete sample there first, and a complete sample is never replaced.
            _io.fsync_dir(tmp)
            os.rename(tmp, root)
            _io.fsync_dir(parent)
        except OSError:
            if not is_complete(root):  # lost a race to another process that finished first: fine
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def open_sample(
    kind: str, size: str = "default", cache_dir: str | os.PathLike | None = None, progress: bool = True
) -> xr.Dataset | pd.DataFrame:
    """Open one product of the sample, generating the sample first if needed.

    Parameters
    ----------
    kind : {"hrrr", "era5", "nwp", "analysis", "reports", "spc"}
        ``hrrr``/``era5``/``nwp``/``analysis`` give lazy (dask-backed) xarray Datasets (``analysis``:
        dims ``(time, y, x)`` at the NWP initial times, the state every forecast starts from); ``reports`` the NCEI-layout
        storm events DataFrame; ``spc`` all SPC-style reports in one DataFrame (a ``kind`` column says
        torn, hail or wind; the magnitude column is ``magnitude``; ``date`` is the SPC day).
    size, cache_dir, progress
        As for :func:`ensure_sample`.
    """
    if kind not in _KINDS:
        raise DataError(f"Unknown sample product {kind!r}; choose one of {list(_KINDS)}.")
    paths = ensure_sample(size, cache_dir=cache_dir, progress=progress)
    if kind in ("hrrr", "era5", "nwp", "analysis"):
        return xr.open_zarr(getattr(paths, kind), consolidated=True)
    if kind == "reports":
        return pd.read_csv(paths.storm_events, keep_default_na=False, na_values=[""], low_memory=False)
    frames = []
    for f in sorted(paths.spc_dir.glob("*_rpts_*.csv")):
        df = pd.read_csv(f, dtype={"Time": str}, keep_default_na=False, na_values=[""])
        if df.empty:
            continue
        kind_name = f.stem.split("_")[-1]
        df = df.rename(columns={df.columns[1]: "magnitude"}).assign(kind=kind_name, date=f.name[:6])
        frames.append(df)
    cols = ["Time", "magnitude", "Location", "County", "State", "Lat", "Lon", "Comments", "kind", "date"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
