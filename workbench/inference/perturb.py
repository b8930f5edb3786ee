"""Aleatoric members: spatially correlated, seeded initial-condition perturbations.

A perturbation is white Gaussian noise smoothed by a Gaussian kernel (in Fourier space) and rescaled to
unit variance, one independent field per variable, times an amplitude in units of each variable's
normalisation standard deviation. Added to the *normalised* state, an amplitude ``a`` therefore moves a
variable by ``a * std`` in physical units.

Noise for one (initial time, noise member) pair depends on the seed, the initial time's value and the
member index only, never on the batch it is computed in: a resumed or re-batched run draws the same
perturbations, and every weight member sees the same perturbations, so with identical weights the
epistemic spread is exactly zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch


def noise_key(seed: int, init_time: np.datetime64, member: int) -> int:
    """A 63-bit generator seed for one (initial time, member) pair."""
    stamp = int(np.datetime64(init_time, "s").astype(np.int64))
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, stamp & 0xFFFFFFFF, (stamp >> 32) & 0xFFFFFFFF,
                                    int(member)]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def _gaussian_transfer(ny: int, nx: int, length_scale: float, device: torch.device) -> torch.Tensor:
    """Fourier transfer function of a unit-sum Gaussian kernel of std ``length_scale`` cells."""
    ky = torch.fft.fftfreq(ny, device=device, dtype=torch.float64)
    kx = torch.fft.rfftfreq(nx, device=device, dtype=torch.float64)
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    return torch.exp(-2.0 * (np.pi * length_scale) ** 2 * k2)


def correlated_noise(
    shape: tuple[int, int, int],
    length_scale: float,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Unit-variance Gaussian random fields with a Gaussian correlation of ``length_scale`` grid cells.

    Parameters
    ----------
    shape
        ``(channels, ny, nx)``; each channel is an independent field.
    length_scale
        Standard deviation of the smoothing kernel in grid cells (0 gives white noise).
    generator
        Seeded generator on ``device``.

    Returns
    -------
    torch.Tensor
        float32 tensor of ``shape`` whose every point has variance 1 (in expectation).
    """
    c, ny, nx = shape
    device = torch.device(device)
    if length_scale <= 0:
        return torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    # Pad so that the periodic FFT does not correlate opposite edges of the domain.
    pad = int(np.ceil(3 * length_scale))
    py, px = ny + 2 * pad, nx + 2 * pad
    white = torch.randn((c, py, px), generator=generator, device=device, dtype=torch.float64)
    transfer = _gaussian_transfer(py, px, length_scale, device)
    smooth = torch.fft.irfft2(torch.fft.rfft2(white) * transfer, s=(py, px))
    # Filtered unit white noise has variance mean(|H|^2) over the full spectrum; divide it out.
    kx_full = torch.fft.fftfreq(px, device=device, dtype=torch.float64)
    ky = torch.fft.fftfreq(py, device=device, dtype=torch.float64)
    full = torch.exp(-2.0 * (np.pi * length_scale) ** 2 * (ky[:, None] ** 2 + kx_full[None, :] ** 2))
    variance = (full**2).mean()
    smooth = smooth / variance.sqrt()
    return smooth[:, pad : pad + ny, pad : pad + nx].to(torch.float32).contiguous()


def amplitudes(variables: Sequence[str], scale: float | Mapping[str, float]) -> np.ndarray:
    """Per-variable amplitude (in normalisation std units) as an array in ``variables`` order."""
    if isinstance(scale, Mapping):
        unknown = set(scale) - set(variables)
        if unknown:
            raise KeyError(f"noise scale given for {sorted(unknown)}, which the model does not use")
        return np.array([float(scale.get(v, 0.0)) for v in variables], dtype=np.float32)
    return np.full(len(variables), float(scale), dtype=np.float32)


def perturbations(
    init_times: Sequence[np.datetime64],
    members: int,
    shape: tuple[int, int, int],
    *,
    scale: np.ndarray,
    length_scale: float,
    seed: int,
    device: torch.device | str = "cpu",
    first_member: int = 0,
) -> torch.Tensor:
    """Perturbations for a block of initial times and ``members`` noise members.

    ``first_member`` is the number of the first of them: members ``first_member ..
    first_member + members - 1`` are drawn, each from its own seed, so a block holding some of the
    members gets exactly the perturbations a block holding all of them would.

    Returns
    -------
    torch.Tensor
        ``(len(init_times), members, *shape)`` on ``device``, already multiplied by ``scale``
        (one amplitude per channel).
    """
    device = torch.device(device)
    out = torch.empty((len(init_times), members, *shape), device=device, dtype=torch.float32)
    amp = torch.as_tensor(np.asarray(scale, dtype=np.float32), device=device)[:, None, None]
    for i, t in enumerate(init_times):
        for m in range(members):
            gen = torch.Generator(device=device)
            gen.manual_seed(noise_key(seed, t, first_member + m))
            out[i, m] = correlated_noise(shape, length_scale, gen, device) * amp
    return out


def calibrated_scale(
    variables: Sequence[str], normalization, error_rms: Mapping[str, float]
) -> dict[str, float]:
    """Perturbation amplitudes (normalisation-std units) equal to the analysis error of each variable.

    A forecast starts from an analysis whose error has RMS ``error_rms[v]`` (physical units; the
    sample's analysis store keeps it in ``attrs["analysis_error_rms"]``). Perturbing the analysis by
    other draws of that error gives members whose spread at lead 0 is the analysis error: the
    aleatoric spread starts where the forecast error starts, and grows with it.

    Parameters
    ----------
    variables
        The model's state variables.
    normalization
        The model's statistics (``arrays(variables) -> (mean, std)``).
    error_rms
        Analysis error RMS per variable; variables without one are not perturbed.

    Raises
    ------
    ValueError
        For a negative or non-finite RMS.
    """
    _, std = normalization.arrays(list(variables))
    out = {}
    for v, s in zip(variables, std, strict=True):
        if v not in error_rms:
            continue
        rms = float(error_rms[v])
        if not np.isfinite(rms) or rms < 0:
            raise ValueError(f"analysis error RMS of {v} must be finite and >= 0, got {rms}")
        out[v] = rms / float(s)
    return out
