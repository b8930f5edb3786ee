"""Inference across processes: one process per GPU (or several on a CPU), one shared forecast store.

A multi-process run is a *group* of ``world`` processes numbered ``0 .. world - 1`` (ranks), joined by
``torch.distributed`` (NCCL between GPUs, gloo on CPUs). Each process forecasts its own share of the
blocks (every ``world``-th block still to do, so a resumed run spreads what is left evenly) and writes
them into the same zarr store. A block is a run of initial times with all their members, or, with
``member_batch``, with one weight member and a batch of noise members: then an ensemble of a single
initial time spreads over the processes too. A member's forecast does not depend on the block it is
computed in (its perturbation is seeded by its initial time and number, its dropout masks by its weight
member), so which process draws it makes no difference. The processes are *cooperating writers* under the
store's lock design (:mod:`workbench.inference.store`): rank 0 takes the store's exclusive lock, creates
or resumes the store and tells the others where to write and who holds the lock; they write only whole
blocks (whose zarr chunks no other block shares) and check before each block that the lock still names
their coordinator; rank 0 marks the store complete and releases the lock once every rank has finished.
A killed run resumes like a single-process one, with any number of processes.

The group comes from the environment ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``), so ``torchrun --nproc-per-node 4 -m workbench.cli infer ...`` works;
:func:`launch` starts such a group from one process (``run_forecast(..., devices=N)`` and
``workbench infer --devices N`` use it). Each process computes its blocks exactly as one process would
(same batch, same device kernels), so the store is bit-identical to a single-process run's in fp32.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch

from workbench.errors import DataError
from workbench.inference.device import DeviceError

__all__ = ["Group", "current_group", "device_for_rank", "launch", "shard"]

#: How long a rank waits for the others at a collective before giving up (a crashed peer).
TIMEOUT = timedelta(minutes=30)


@dataclass
class Group:
    """The processes of one run as seen from one of them.

    Attributes
    ----------
    rank, world, local_rank
        This process's number, the number of processes, its number on this host (its GPU).
    backend
        ``"nccl"`` or ``"gloo"``.
    waited
        Seconds this process spent in collectives (waiting for the others), for the time split of the
        scaling benchmark.
    """

    rank: int
    world: int
    local_rank: int
    backend: str
    waited: float = field(default=0.0)

    def _timed(self, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.waited += time.perf_counter() - t0

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj``, on every rank."""
        import torch.distributed as dist

        box = [obj if self.rank == 0 else None]
        self._timed(lambda: dist.broadcast_object_list(box, src=0))
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        self._timed(lambda: dist.all_gather_object(out, obj))
        return out

    def barrier(self) -> None:
        import torch.distributed as dist

        self._timed(dist.barrier)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise DataError(f"environment variable {name}={value!r} is not an integer") from None


def current_group(device: str | torch.device = "auto") -> Group | None:
    """The group this process belongs to (from ``torchrun``'s environment), joined on first use.

    Returns None for a single process (``WORLD_SIZE`` unset or 1). The backend is NCCL when the run is
    on GPUs and gloo otherwise.
    """
    world = _env_int("WORLD_SIZE")
    if world is None or world <= 1:
        return None
    rank = _env_int("RANK")
    if rank is None or not 0 <= rank < world:
        raise DataError(f"RANK must be set to 0..{world - 1} when WORLD_SIZE={world}")
    local = _env_int("LOCAL_RANK")
    local = rank if local is None else local
    on_gpu = str(device) != "cpu" and torch.cuda.is_available()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if on_gpu else "gloo"
        kwargs: dict[str, Any] = {}
        if on_gpu:
            # One GPU per process, fixed before NCCL starts so its communicator uses that device.
            torch.cuda.set_device(local)
            kwargs["device_id"] = torch.device("cuda", local)
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=TIMEOUT, **kwargs)
    return Group(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local, backend=dist.get_backend())


def device_for_rank(device: str | torch.device, group: Group) -> str | torch.device:
    """The device of this rank: its own GPU (``cuda:LOCAL_RANK``) for a GPU run, the CPU otherwise."""
    name = str(device)
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return "cpu"
    if name not in ("auto", "cuda"):
        raise DeviceError(
            f"device {name!r} names one GPU; a run on several processes takes device='cuda' (or 'auto') "
            "and gives each process its own GPU"
        )
    count = torch.cuda.device_count()
    if group.local_rank >= count:
        raise DeviceError(f"process {group.rank} needs GPU {group.local_rank} but this host has {count}")
    return torch.device("cuda", group.local_rank)


def shard(items: Sequence[Any], rank: int, world: int) -> list[Any]:
    """Every ``world``-th item from ``rank``: blocks of equal size, so the shares differ by one at most."""
    return list(items[rank::world])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )
    import torch.distributed as dist

    try:
        fn(*args, **kwargs)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch(n: int, fn: Callable[..., Any], *args: Any, threads: int | None = None, **kwargs: Any) -> None:
    """Run ``fn(*args, **kwargs)`` in ``n`` new processes forming one group (what ``torchrun`` does).

    The processes are spawned (a fresh interpreter each: CUDA cannot be forked), so ``fn`` and its
    arguments must pickle. ``threads`` sets each process's torch intra-op threads (default: this
    machine's cores shared out).

    Raises
    ------
    DataError
        If ``n`` is below 1, or a process failed (its error is named).
    """
    if n < 1:
        raise DataError(f"devices must be at least 1, got {n}")
    import torch.multiprocessing as mp

    threads = threads or max(1, (os.cpu_count() or 1) // n)
    try:
        mp.start_processes(
            _threaded, args=(n, _free_port(), threads, fn, args, kwargs), nprocs=n, start_method="spawn"
        )
    except mp.ProcessRaisedException as err:
        # The child's traceback is in the message; its last line is the error itself.
        last = str(err).strip().splitlines()[-1]
        raise DataError(f"a forecast process failed: {last}") from None
    except mp.ProcessExitedException as err:
        raise DataError(f"a forecast process died ({err}); rerun the same command to resume") from None


def _threaded(rank: int, world: int, port: int, threads: int, fn, args, kwargs) -> None:
    torch.set_num_threads(threads)
    _worker(rank, world, port, fn, args, kwargs)
