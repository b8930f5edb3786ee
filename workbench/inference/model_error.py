"""Stochastic model error: additive, spatially and temporally correlated noise on every model step.

An ensemble that perturbs only the initial conditions and the weights misses the error the model makes
itself at every step (unresolved processes, a network's systematic and random errors), and is
under-dispersive. As additive model-error schemes do in ensemble prediction and data assimilation, each
step's output gets a random field

.. math:: x_{k} = M_{\\Delta t}(x_{k-1}) + a_{\\Delta t, v}\\,\\eta_k,\\qquad
          \\eta_k = \\phi\\,\\eta_{k-1} + \\sqrt{1-\\phi^2}\\,\\xi_k,\\quad \\phi = e^{-\\Delta t/\\tau}

with ``xi`` unit-variance Gaussian fields of correlation length ``length_scale`` (the perturbations of
:func:`workbench.inference.perturb.correlated_noise`), an AR(1) memory of e-folding time ``tau`` along the
steps of one path, and an amplitude per step size and variable in units of the variable's normalisation
std. The amplitudes are calibrated on a validation period (:func:`calibrated_variance`): the variance the
noise must add so that the spread matches the error of the ensemble mean.

The noise of one (initial time, noise member, step end) depends on the seed and those only, never on the
batch, and is the same for every weight member: model-error draws are aleatoric, like the
initial-condition perturbations, so the epistemic part of the spread stays that of the weights. The
innovations are centred over the noise members of each initial time (:func:`centred`): with three
noise members, independent draws would add a third of their variance to the ensemble mean's error and
make the mean worse than the deterministic run; centred, they add spread only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.inference.perturb import correlated_noise

__all__ = [
    "ModelError",
    "ModelErrorError",
    "ar1_coefficient",
    "calibrated_variance",
    "centred",
    "correlation_length",
    "model_error_key",
    "step_noise",
]

# Separates the model-error streams from the initial-condition ones (which use the plain seed).
_STREAM = 0x4D4F44454C  # "MODEL"


class ModelErrorError(WorkbenchError, ValueError):
    """A model-error setting that cannot be used."""


@dataclass(frozen=True)
class ModelError:
    """Additive stochastic model error of a stepped model.

    Parameters
    ----------
    amplitude
        ``{step hours: {variable: amplitude}}``, amplitudes in units of each variable's normalisation
        std; steps or variables not listed get no noise.
    length_scale
        Correlation length of the noise in grid cells (Gaussian kernel std, as the IC perturbations).
    time_scale_h
        e-folding time of the AR(1) memory of the noise along one path of steps, in hours (0: white).
    """

    amplitude: Mapping[int, Mapping[str, float]] = field(default_factory=dict)
    length_scale: float = 4.0
    time_scale_h: float = 6.0

    def __post_init__(self) -> None:
        for dt, amps in self.amplitude.items():
            if int(dt) <= 0:
                raise ModelErrorError(f"model-error step must be a positive number of hours, got {dt}")
            for v, a in amps.items():
                if not np.isfinite(a) or a < 0:
                    raise ModelErrorError(f"model-error amplitude of {v} at {dt} h must be finite and >= 0, got {a}")
        if not np.isfinite(self.length_scale) or self.length_scale < 0:
            raise ModelErrorError(f"model-error length_scale must be >= 0 cells, got {self.length_scale}")
        if not np.isfinite(self.time_scale_h) or self.time_scale_h < 0:
            raise ModelErrorError(f"model-error time_scale_h must be >= 0 hours, got {self.time_scale_h}")

    def amplitudes(self, step_hours: float, variables: Sequence[str]) -> np.ndarray | None:
        """Per-channel amplitudes of a step of ``step_hours``, or None when it gets no noise."""
        amps = self.amplitude.get(int(round(step_hours)))
        if not amps:
            return None
        unknown = set(amps) - set(variables)
        if unknown:
            raise ModelErrorError(f"model-error amplitude given for {sorted(unknown)}, which the model does not use")
        out = np.array([float(amps.get(v, 0.0)) for v in variables], dtype=np.float32)
        return out if (out > 0).any() else None

    def signature(self) -> dict:
        return {
            "amplitude": {str(k): dict(v) for k, v in sorted(self.amplitude.items())},
            "length_scale": float(self.length_scale),
            "time_scale_h": float(self.time_scale_h),
        }


def ar1_coefficient(step_hours: float, time_scale_h: float) -> float:
    """Lag-one correlation ``exp(-dt / tau)`` of the noise between consecutive steps (0 for tau = 0)."""
    if time_scale_h <= 0:
        return 0.0
    return float(np.exp(-float(step_hours) / float(time_scale_h)))


def model_error_key(seed: int, init_time: np.datetime64, member: int, step_end_s: int) -> int:
    """A 63-bit generator seed for the innovation of one (initial time, noise member, step end)."""
    stamp = int(np.datetime64(init_time, "s").astype(np.int64))
    words = [int(seed) & 0xFFFFFFFF, _STREAM & 0xFFFFFFFF, stamp & 0xFFFFFFFF, (stamp >> 32) & 0xFFFFFFFF,
             int(member), int(step_end_s) & 0xFFFFFFFF]
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def step_noise(
    init_times: Sequence[np.datetime64],
    members: int,
    shape: tuple[int, int, int],
    step_end_s: int,
    *,
    length_scale: float,
    seed: int,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Unit-variance innovations ``xi`` of one step for a block: ``(len(init_times) * members, *shape)``.

    ``step_end_s`` (seconds after the initial time at which the step ends) keys the draw, so every step
    of a path, and every path through the same valid time, has its own reproducible innovation.
    """
    device = torch.device(device)
    out = torch.empty((len(init_times) * members, *shape), device=device, dtype=torch.float32)
    for i, t in enumerate(init_times):
        for m in range(members):
            gen = torch.Generator(device=device)
            gen.manual_seed(model_error_key(seed, t, m, step_end_s))
            out[i * members + m] = correlated_noise(shape, length_scale, gen, device)
    return out


def centred(xi: torch.Tensor, members: int) -> torch.Tensor:
    """Innovations ``(b * members, ...)`` minus their mean over the ``members`` of each initial time.

    Centred across the noise members, the model error leaves the ensemble mean of a step unchanged
    (exactly at the step it is added, to first order after later steps), so a few noise members add
    spread without adding their sampling noise to the ensemble mean; the within-member variance
    (``ddof=1``) still grows by the full amplitude squared. With one member nothing is centred.
    """
    if members < 2:
        return xi
    shaped = xi.view(-1, members, *xi.shape[1:])
    return (shaped - shaped.mean(dim=1, keepdim=True)).view_as(xi)


def calibrated_variance(mse: float, var_epistemic: float, var_aleatoric: float, weight_members: int,
                        noise_members: int) -> float:
    """Model-error variance that makes the spread match the error of the ensemble mean.

    The members are ``x_wn = f_w(IC_n) + e_n``: ``W`` weight members crossed with ``N`` noise members
    whose perturbations (initial and model-error) are shared by the weight members. For a consistent
    ensemble the ensemble mean's squared error is the predictive variance plus the sampling variance of
    the mean: ``E[(mean - y)^2] = s_e^2 (1 + 1/W) + s_a^2 (1 + 1/N)`` (the finite-ensemble correction of
    a crossed design; ``(M+1)/M`` when ``W = 1``). Model-error noise centred over the noise members
    (:func:`centred`) with ``ddof=1`` variance ``q`` raises the spread by ``q`` and leaves the mean, hence
    its squared error, unchanged, so the ensemble is consistent for

    .. math:: q = \\mathrm{MSE} - s_e^2 (1 + 1/W) - s_a^2 (1 + 1/N),

    floored at 0 (an ensemble already dispersive enough gets no noise).

    Parameters
    ----------
    mse
        Mean squared error of the ensemble mean without model error.
    var_epistemic, var_aleatoric
        Variance between weight members (of their noise-member means, ``ddof=1``) and within them
        (``ddof=1``, mean over weight members), without model error.
    weight_members, noise_members
        ``W`` and ``N``.

    Raises
    ------
    ModelErrorError
        For negative or non-finite statistics, or fewer than one member of a kind.
    """
    stats = {"mse": mse, "var_epistemic": var_epistemic, "var_aleatoric": var_aleatoric}
    for k, v in stats.items():
        if not np.isfinite(v) or v < 0:
            raise ModelErrorError(f"{k} must be finite and >= 0, got {v}")
    if weight_members < 1 or noise_members < 1:
        raise ModelErrorError(f"weight and noise members must be >= 1, got {weight_members}, {noise_members}")
    epi = var_epistemic * (1.0 + 1.0 / weight_members) if weight_members > 1 else 0.0
    ale = var_aleatoric * (1.0 + 1.0 / noise_members) if noise_members > 1 else 0.0
    return max(0.0, float(mse) - epi - ale)


def correlation_length(field_: np.ndarray, lag: int = 4) -> float:
    """Correlation length (kernel std in cells, as :func:`correlated_noise` uses) of error fields.

    For noise smoothed by a Gaussian kernel of std ``l`` the correlation at distance ``r`` is
    ``exp(-r^2 / (4 l^2))``; the correlation ``rho`` at ``lag`` cells (both axes pooled) gives
    ``l = lag / sqrt(-4 ln rho)``.

    Parameters
    ----------
    field_
        ``(..., ny, nx)`` fields, e.g. errors of many forecasts; their mean over the leading axes is
        removed first (the systematic part is not noise).
    lag
        Distance in cells at which the correlation is measured.

    Raises
    ------
    ModelErrorError
        For fields smaller than the lag, or fields with no variance.
    """
    x = np.asarray(field_, dtype=np.float64)
    if x.ndim < 2 or min(x.shape[-2:]) <= lag or lag < 1:
        raise ModelErrorError(f"correlation_length needs fields larger than the lag {lag}, got shape {x.shape}")
    x = x.reshape(-1, *x.shape[-2:])
    x = x - x.mean(axis=0) if x.shape[0] > 1 else x - x.mean()
    var = (x**2).mean()
    if not var > 0:
        raise ModelErrorError("correlation_length of fields with no variance")
    rho = 0.5 * ((x[:, lag:, :] * x[:, :-lag, :]).mean() + (x[:, :, lag:] * x[:, :, :-lag]).mean()) / var
    rho = float(np.clip(rho, 1e-6, 1 - 1e-9))
    return float(lag / np.sqrt(-4.0 * np.log(rho)))
