"""Device placement and precision: one place that decides where and how tensors run."""

from __future__ import annotations

import contextlib
import threading

import torch

from workbench.errors import WorkbenchError


class DeviceError(WorkbenchError, ValueError):
    """A device or precision that this machine cannot provide."""


PRECISIONS = ("bf16", "fp32", "tf32")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks the GPU when there is one, else the CPU; other names are checked."""
    if isinstance(device, torch.device):
        dev = device
    elif device in (None, "auto"):
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise DeviceError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' was asked for but this machine has no usable GPU; use device='cpu'")
    return dev

#: What a model declares (``model.autocast_bf16 = True``) once its bf16 forecasts were shown to stay
#: within :data:`BF16_TOLERANCE` of fp32 at 24 h; ``"auto"`` runs only such models in bf16.
BF16_ATTR = "autocast_bf16"

#: The largest RMS difference from fp32 at 24 chained hours, in standard deviations of each variable,
#: that the default precision may add (the precision-drift test checks it for every shipped model).
BF16_TOLERANCE = 0.05


def check_precision(dtype: str) -> str:
    """Return ``dtype`` if it is a known precision, else raise DeviceError."""
    if dtype not in PRECISIONS:
        raise DeviceError(f"dtype must be one of {PRECISIONS}, got {dtype!r}")
    return dtype


def resolve_precision(dtype: str, device: torch.device, models=()) -> str:
    """The precision to run in; ``"auto"`` is fp32 unless bf16 is known to be accurate enough.

    The policy, and why:

    * ``"auto"`` is bf16 autocast only on a GPU and only when every model declares ``autocast_bf16``
      (:data:`BF16_ATTR`), i.e. its bf16 rollout was measured within :data:`BF16_TOLERANCE` standard
      deviations of fp32 at 24 h. Chained steps amplify bf16's rounding: the shipped HR-Heim-like and
      Pangu-like networks drift by more than one standard deviation of precipitation in 24 one-hour
      steps, so they run in fp32 by default. On a CPU bf16 is slower than fp32 anyway.
    * ``"fp32"`` is true float32: TF32 matrix products and convolutions are switched off for the run
      (:func:`precision`), so a GPU forecast matches a CPU one to float32 rounding.
    * ``"tf32"`` allows TF32 tensor cores for float32 matrix products and convolutions (faster, about
      1e-3 relative error per product); ``"bf16"`` asks for bf16 autocast outright. In bf16 the
      state between steps, the residual add and the normalisation stay float32 (the runner's job);
      only the networks' layers run in bf16.

    Raises
    ------
    DeviceError
        For any other value.
    """
    if dtype == "auto":
        if torch.device(device).type != "cuda":
            return "fp32"
        safe = bool(models) and all(getattr(m, BF16_ATTR, False) for m in models)
        return "bf16" if safe else "fp32"
    if dtype not in PRECISIONS:
        raise DeviceError(f"dtype must be 'auto' or one of {PRECISIONS}, got {dtype!r}")
    return dtype


def autocast(device: torch.device, dtype: str):
    """bf16 autocast on the device (CPU included) for ``"bf16"``; a no-op context otherwise."""
    if dtype == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def precision(dtype: str):
    """TF32 on for ``"tf32"`` and off otherwise, for the duration of a run (restored afterwards).

    PyTorch leaves TF32 on for cuDNN convolutions by default, which made GPU "fp32" forecasts differ
    from CPU ones by 1e-3 after one step; the run decides explicitly instead.
    """
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    allow = dtype == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


class PinnedPool:
    """Page-locked host buffers kept for reuse within a process.

    Allocating page-locked memory is slow (``cudaHostAlloc`` maps and locks every page: about 1.4 s for
    the 2 GB of a 64-init x 24-lead block in a fresh process) while reusing it is free, so the runners
    of one process share a few of them: :meth:`take` hands out a buffer at least as large as asked
    (at most twice as large, so a small run does not pin a huge one), :meth:`put` returns it.
    """

    def __init__(self, keep_bytes: int = 16 * 2**30) -> None:
        self.keep_bytes = int(keep_bytes)
        self._free: list[torch.Tensor] = []
        self._lock = threading.Lock()

    def take(self, numel: int) -> torch.Tensor:
        """A flat page-locked float32 tensor of at least ``numel`` elements."""
        with self._lock:
            fits = [i for i, t in enumerate(self._free) if numel <= t.numel() <= 2 * numel]
            if fits:
                # By position: list.remove would compare tensors with ==, element by element.
                return self._free.pop(min(fits, key=lambda i: self._free[i].numel()))
        return torch.empty(max(int(numel), 1), dtype=torch.float32, pin_memory=True)

    def put(self, buffer: torch.Tensor) -> None:
        """Return a buffer from :meth:`take`; the oldest are dropped beyond ``keep_bytes`` in all."""
        with self._lock:
            self._free.append(buffer)
            while sum(t.numel() * 4 for t in self._free) > self.keep_bytes:
                self._free.pop(0)


#: The process's pool of page-locked buffers (the runners' host outputs and input staging).
PINNED = PinnedPool()


def host_buffer(shape: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A float32 host tensor of ``shape`` and its pooled flat base (None when not pooled).

    On a GPU it is page-locked, from :data:`PINNED`, so that copies into it run asynchronously; give
    the base back with ``PINNED.put`` when done with it.
    """
    if device.type != "cuda":
        return torch.empty(shape, dtype=torch.float32), None
    n = 1
    for s in shape:
        n *= int(s)
    base = PINNED.take(n)
    return base[:n].view(shape), base


def to_device(array, device: torch.device, staging: torch.Tensor | None = None) -> torch.Tensor:
    """Copy a host array to ``device``: on a GPU asynchronously, through the page-locked ``staging``
    tensor when given (its first ``array.size`` elements; it must not be reused before the copy is
    done), else through fresh page-locked memory."""
    t = torch.as_tensor(array, dtype=torch.float32)
    if device.type != "cuda":
        return t.to(device)
    if staging is not None and staging.numel() >= t.numel():
        pinned = staging[: t.numel()].view(t.shape)
        pinned.copy_(t)
        return pinned.to(device, non_blocking=True)
    return t.pin_memory().to(device, non_blocking=True)


def attention_backends(device: torch.device):
    """Restrict scaled-dot-product attention to the flash, memory-efficient and math kernels on a GPU.

    cuDNN's attention kernel failed on an H100 (torch 2.11, cuDNN frontend ``mha_graph.execute``) for the
    ClimaX-like variable aggregation, whose batch is every patch of every state (over 10^5 sequences);
    the other kernels handle any batch.
    """
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])
