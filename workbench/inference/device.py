"""Device placement and precision: one place that decides where and how tensors run."""

from __future__ import annotations

import contextlib

import torch

from workbench.errors import WorkbenchError


class DeviceError(WorkbenchError, ValueError):
    """A device or precision that this machine cannot provide."""


PRECISIONS = ("bf16", "fp32")


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


def check_precision(dtype: str) -> str:
    """Return ``dtype`` if it is a known precision, else raise DeviceError."""
    if dtype not in PRECISIONS:
        raise DeviceError(f"dtype must be one of {PRECISIONS}, got {dtype!r}")
    return dtype


def resolve_precision(dtype: str, device: torch.device) -> str:
    """The precision to run in: ``"auto"`` is bf16 autocast on a GPU and fp32 on a CPU.

    bf16 autocast is fast on GPUs with bf16 tensor cores; on a CPU it is usually slower than fp32 and
    loses precision, so ``"auto"`` keeps fp32 there. ``"bf16"`` and ``"fp32"`` are returned as they are.

    Raises
    ------
    DeviceError
        For any other value.
    """
    if dtype == "auto":
        return "bf16" if torch.device(device).type == "cuda" else "fp32"
    if dtype not in PRECISIONS:
        raise DeviceError(f"dtype must be 'auto' or one of {PRECISIONS}, got {dtype!r}")
    return dtype


def autocast(device: torch.device, dtype: str):
    """bf16 autocast on the device (CPU included) for ``"bf16"``; a no-op context for ``"fp32"``."""
    if dtype == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def host_buffer(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A float32 host tensor; page-locked when the device is a GPU so copies into it run asynchronously."""
    return torch.empty(shape, dtype=torch.float32, pin_memory=device.type == "cuda")


def to_device(array, device: torch.device) -> torch.Tensor:
    """Copy a host array to ``device`` (through page-locked memory, asynchronously, on a GPU)."""
    t = torch.as_tensor(array, dtype=torch.float32)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


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
