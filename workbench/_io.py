"""Safe writes: atomic files and folders, exclusive locks, the cache root and process liveness.

Every writer in the package goes through this module, so that a crash, a ``kill -9`` or a full disk at
any instant leaves either the complete old output or the complete new one, never a half-written or
missing one.

Files
    :func:`atomic_write` / :func:`write_text` / :func:`write_bytes`: the content is written to a
    temporary file in the *same* directory (a rename is only atomic within one file system), flushed and
    ``fsync``-ed, moved onto the target with ``os.replace`` (atomic on POSIX) and the directory is
    ``fsync``-ed so that the rename itself survives a power cut.

Folders (zarr stores, output folders)
    :func:`atomic_dir` builds the new folder beside the target and swaps it in with
    ``renameat2(RENAME_EXCHANGE)`` where the kernel offers it (Linux >= 3.15, on the local file systems
    and overlayfs): the two names are exchanged in one atomic step, so *at every instant* the target path
    holds the complete old or the complete new folder and a reader never finds it missing. The old
    folder, now under the temporary name, is deleted afterwards; a kill before that leaves only a hidden
    leftover that :func:`recover_dir` removes. We chose the exchange over a symlink-pointer swap because
    the target stays an ordinary folder (``cp -r``, ``rm -r``, zarr, xarray and users see no indirection)
    and existing stores need no migration.

    Where the exchange is not available (macOS, some network file systems) the swap falls back to two
    renames: old aside to ``.<name>.old-<id>``, new in. Between the two the path is briefly missing; a
    kill right there is repaired by :func:`recover_dir`, which every reader and writer of such folders
    calls first: a leftover aside is moved back when the target is missing and deleted otherwise.

Locks
    :class:`ExclusiveLock`: a lock file created with ``O_EXCL`` holding the writer's pid, host and start
    time. A second writer gets :class:`~workbench.errors.LockError` naming the holder. A lock whose pid
    is dead on this host is stale and taken over; a lock from another host is never broken automatically
    (the error says how to remove it by hand).

Fault injection
    ``WORKBENCH_FAULT=<point>[:<n>]`` makes the process ``SIGKILL`` itself the ``n``-th time (default 1st)
    it reaches the named point (see :data:`FAULT_POINTS`); the fault-injection tests use it to kill
    inside a rename. ``WORKBENCH_FAULT_SLEEP=<seconds>[@<point>]`` sleeps at every point (or at the named
    one) instead, to widen the windows for kills sent from outside at random times.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from workbench.errors import LockError

__all__ = [
    "FAULT_POINTS",
    "ExclusiveLock",
    "atomic_dir",
    "atomic_write",
    "cache_root",
    "fault_point",
    "fsync_dir",
    "lock_holder",
    "pid_alive",
    "recover_dir",
    "remove_tree",
    "swap_dir",
    "temp_name",
    "write_bytes",
    "write_text",
]

#: Named points where :func:`fault_point` may kill or slow the process (for the fault-injection tests).
FAULT_POINTS = (
    "file.written",  # temporary file complete, before os.replace
    "file.replaced",  # after os.replace, before the directory fsync
    "dir.written",  # new folder complete beside the target, before the swap
    "dir.aside",  # fallback swap only: old folder moved aside, new one not yet in
    "dir.swapped",  # new folder in place, old one not yet deleted
    "store.block",  # forecast store: a block's chunks written, its completion record not yet
)


# -- cache root and processes ----------------------------------------------------------------------------
def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``cache_dir``, else ``$WORKBENCH_CACHE``, else ``~/.cache/workbench``."""
    if cache_dir is None:
        env = os.environ.get("WORKBENCH_CACHE", "").strip()
        return Path(env).expanduser() if env else Path.home() / ".cache" / "workbench"
    return Path(cache_dir).expanduser()


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


# -- fault injection -------------------------------------------------------------------------------------
_fault_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Kill (``WORKBENCH_FAULT``) or slow (``WORKBENCH_FAULT_SLEEP``) the process at point ``name``."""
    spec = os.environ.get("WORKBENCH_FAULT")
    if spec:
        point, _, nth = spec.partition(":")
        if point == name:
            _fault_hits[name] = _fault_hits.get(name, 0) + 1
            if _fault_hits[name] >= int(nth or 1):
                os.kill(os.getpid(), signal.SIGKILL)
    pause = os.environ.get("WORKBENCH_FAULT_SLEEP")
    if pause:
        seconds, _, where = pause.partition("@")
        if not where or where == name:
            time.sleep(float(seconds))


# -- files -----------------------------------------------------------------------------------------------
def fsync_dir(path: str | os.PathLike) -> None:
    """``fsync`` a directory so that renames inside it are durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory; the rename is still atomic
        pass
    finally:
        os.close(fd)


def temp_name(path: Path, tag: str) -> Path:
    """A hidden sibling name of ``path`` for a temporary (``tag`` "tmp") that :func:`recover_dir` sweeps."""
    # Host and pid in the name: a leftover is swept only by a process that can tell its writer is dead.
    return path.with_name(f".{path.name}.{tag}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


_HOST = socket.gethostname().replace("/", "_")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Write a file atomically: ``write(tmp)`` fills a temporary file beside ``path``, then it is renamed.

    Parameters
    ----------
    path
        The target file; its parent directory is created.
    write
        Called with the temporary path; it must write the whole content there (any writer: ``to_csv``,
        ``to_netcdf``, ``save_file``, ...).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)  # sweeps temporary files of writers that were killed
    tmp = temp_name(path, "tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # the writer may not have fsync-ed; do it here, once for all
            os.fsync(f.fileno())
        fault_point("file.written")
        os.replace(tmp, path)
        fault_point("file.replaced")
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


# -- folders ---------------------------------------------------------------------------------------------
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths with ``renameat2``; False where the system cannot.

    ``WORKBENCH_IO_NO_EXCHANGE=1`` forces the two-rename fallback (for file systems that misreport
    support, and for testing the fallback's recovery).
    """
    if os.environ.get("WORKBENCH_IO_NO_EXCHANGE"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(a))


def remove_tree(path: str | os.PathLike) -> None:
    """Delete a folder or file; first renamed to a hidden name so a half-deleted tree is never visible."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink():
        doomed = temp_name(path, "del")
        os.replace(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    else:
        path.unlink()


def swap_dir(new: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the complete folder ``new`` at ``target``, replacing any old one; see the module notes."""
    new, target = Path(new), Path(target)
    fsync_dir(new)
    fault_point("dir.written")
    if not target.exists():
        os.replace(new, target)
        fsync_dir(target.parent)
        return
    if _exchange(new, target):
        fsync_dir(target.parent)
        fault_point("dir.swapped")
        remove_tree(new)  # now the old folder
        return
    aside = temp_name(target, "old")
    os.replace(target, aside)
    fault_point("dir.aside")
    os.replace(new, target)
    fsync_dir(target.parent)
    fault_point("dir.swapped")
    remove_tree(aside)


def recover_dir(target: str | os.PathLike) -> None:
    """Repair what a killed :func:`swap_dir` or :func:`atomic_dir` left beside ``target``.

    A leftover ``.<name>.old-*`` is the complete old folder: moved back when ``target`` is missing (a
    kill between the two renames of the fallback swap), deleted otherwise. Leftover ``.<name>.tmp-*``
    and ``.<name>.del-*`` of dead processes of this host are deleted (another host's are left alone: their
    writer may be alive).
    """
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return
    for aside in sorted(parent.glob(f".{target.name}.old-*")):
        if not target.exists():
            os.replace(aside, target)
            fsync_dir(parent)
        else:
            shutil.rmtree(aside, ignore_errors=True)
    for tag in ("tmp", "del"):
        prefix = f".{target.name}.{tag}-"
        for left in parent.glob(f"{prefix}*"):
            host, _, rest = left.name[len(prefix):].rpartition("-")[0].rpartition("-")
            try:
                pid = int(rest)
            except ValueError:
                continue
            if host == _HOST and pid != os.getpid() and not pid_alive(pid):
                shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Build a folder beside ``target`` and swap it in when the block exits without an error.

    Yields the temporary path to fill (it does not exist yet: writers such as ``to_zarr`` create it).
    On an error the temporary folder is deleted and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(target)
    tmp = temp_name(target, "tmp")
    try:
        yield tmp
        swap_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink()


# -- locks -----------------------------------------------------------------------------------------------
_held: set[str] = set()  # lock files held by live ExclusiveLock objects of this process


def lock_holder(path: str | os.PathLike) -> dict[str, Any] | None:
    """The record (pid, host, since) of whoever holds the lock file ``path``; None when it is free.

    Cooperating writers (the processes of one multi-process run) check it before each write: they write
    under the lock their coordinator holds, and stop if that lock has gone or changed hands.
    """
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return None


class ExclusiveLock:
    """An exclusive, inter-process lock: a file holding the pid and host of its holder.

    Parameters
    ----------
    path
        The lock file (e.g. ``.<store>.lock`` beside the thing it protects).
    what
        Words for the error message ("the forecast store /x/y.zarr").

    Examples
    --------
    >>> with ExclusiveLock(path, "the store"):  # doctest: +SKIP
    ...     write()
    """

    def __init__(self, path: str | os.PathLike, what: str = ""):
        self.path = Path(path)
        self.what = what or str(self.path)
        self.acquired = False

    def _holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # A lock file caught between creation and its first write, or garbled: judge it by age.
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return None
            return {"pid": -1, "host": "?", "unreadable": True, "age": age}

    def _stale(self, holder: dict[str, Any]) -> bool:
        if holder.get("unreadable"):
            return holder.get("age", 0) > 60
        if holder.get("host") != socket.gethostname():
            return False  # cannot check a process on another machine
        pid = int(holder.get("pid", -1))
        if pid == os.getpid():
            return str(self.path) not in _held  # ours, but its owner object is gone (an earlier error)
        return not pid_alive(pid)

    def acquire(self) -> ExclusiveLock:
        """Take the lock or raise :class:`LockError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        )
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None:
                    continue  # released meanwhile: try again
                if self._stale(holder):
                    # Take over by renaming the stale file away first: of two processes breaking the
                    # same stale lock only one rename succeeds.
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(self.path, temp_name(self.path, "stale"))
                        for p in self.path.parent.glob(f".{self.path.name}.stale-*"):
                            p.unlink(missing_ok=True)
                    continue
                raise LockError(
                    f"{self.what} is locked by process {holder.get('pid')} on {holder.get('host')} "
                    f"(since {holder.get('since', '?')}); wait for it to finish, or if that process is gone "
                    f"delete {self.path}"
                ) from None
            with os.fdopen(fd, "w") as f:
                f.write(record)
                f.flush()
                os.fsync(f.fileno())
            self.acquired = True
            _held.add(str(self.path))
            return self
        raise LockError(f"could not take the lock {self.path} for {self.what}; retry")

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self.acquired:
            self.acquired = False
            _held.discard(str(self.path))
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> ExclusiveLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # an owner dropped without release (an exception): free the lock
        with contextlib.suppress(Exception):
            self.release()
