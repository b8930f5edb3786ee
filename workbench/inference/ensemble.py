"""Ensemble layout: epistemic (weight) members crossed with aleatoric (noise) members.

Epistemic members are draws of the weights. Two ways to get them:

* a **deep ensemble**: several independently trained checkpoints, one per weight member (pass a list of
  models to :func:`workbench.inference.run_forecast`);
* **MC dropout**: one checkpoint whose dropout layers stay on at inference. Each weight member is one
  fixed thinned network: its dropout masks are drawn once from ``(seed, member, layer)`` and reused at
  every time step, for every initial time and every noise member, and shared across the batch. A mask that
  changed between steps or between noise members would leak weight uncertainty into the aleatoric part
  of the split.

  The masks go on every ``nn.Dropout`` layer (in the workbench's transformers: the dropout of the MLPs,
  and ClimaX's embedding dropout); stochastic depth (``DropPath``) is not sampled. The shipped ClimaX-like
  checkpoint was trained with dropout 0.1, which MC dropout reuses. The Pangu-like and HR-Heim-like
  checkpoints were trained without dropout (their layers have rate 0): MC dropout refuses them unless a
  rate is given (``EnsembleSpec(dropout=0.1)``, ``--dropout 0.1``), and since that rate was not used in
  training its spread is a rough sensitivity, not a calibrated one; a deep ensemble of checkpoints is the
  better epistemic estimate there. A rate of 0 (given or trained) is refused rather than returning
  identical weight members, which would report zero epistemic spread.

Aleatoric members are initial-condition perturbations (:mod:`workbench.inference.perturb`) and, when
``EnsembleSpec.model_error`` is set, stochastic model error at every step
(:mod:`workbench.inference.model_error`).
The forecast carries both on two dims, ``weight_member`` x ``noise_member``, so that the scorer can split
the predictive variance by the law of total variance.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.inference.model_error import ModelError


class EnsembleError(WorkbenchError, ValueError):
    """An ensemble request the model cannot honour."""


@dataclass(frozen=True)
class EnsembleSpec:
    """How many members of each kind, and how to draw them.

    Parameters
    ----------
    weight_members
        Epistemic members. With one model this many MC-dropout draws (default 1: none); with a list of
        models (a deep ensemble) one per model, and if given it must equal the number of models.
    noise_members
        Aleatoric members: perturbed initial conditions.
    noise_scale
        Perturbation amplitude in units of each variable's normalisation std (a float for all, or a
        mapping variable -> amplitude; unlisted variables are not perturbed).
    length_scale
        Correlation length of the perturbations in grid cells.
    dropout
        Dropout probability for MC dropout, in (0, 1), put on every ``nn.Dropout`` layer of the network;
        ``None`` keeps each layer's own rate (which must not be 0 everywhere, see the module notes).
    seed
        Seed for perturbations and dropout masks.
    model_error
        Stochastic model error added at every step (:class:`~workbench.inference.model_error.ModelError`),
        or None for none.
    centred
        Centre the initial-condition perturbations over the noise members of each initial time (their
        mean is then the unperturbed analysis, and a few members add no sampling noise to the ensemble
        mean; the ``ddof=1`` spread is unchanged). The model error's innovations are always centred.
    """

    weight_members: int | None = None
    noise_members: int = 1
    noise_scale: float | Mapping[str, float] = 0.05
    length_scale: float = 4.0
    dropout: float | None = None
    seed: int = 0
    model_error: ModelError | None = None
    centred: bool = False

    def __post_init__(self) -> None:
        if (self.weight_members is not None and self.weight_members < 1) or self.noise_members < 1:
            raise EnsembleError(
                f"weight_members and noise_members must be at least 1, got {self.weight_members}, "
                f"{self.noise_members}"
            )
        if self.dropout is not None and not 0.0 <= float(self.dropout) < 1.0:
            raise EnsembleError(f"dropout must be a probability in [0, 1), got {self.dropout}")

    def signature(self) -> dict:
        scale = dict(self.noise_scale) if isinstance(self.noise_scale, Mapping) else float(self.noise_scale)
        return {
            "weight_members": self.weight_members,
            "noise_members": self.noise_members,
            "noise_scale": scale,
            "length_scale": float(self.length_scale),
            "dropout": self.dropout,
            "seed": self.seed,
            # only when set, so that the signatures (store keys) of ensembles without it do not change
            **({"model_error": self.model_error.signature()} if self.model_error is not None else {}),
            **({"centred": True} if self.centred else {}),
        }


def as_spec(members: None | int | tuple[int, int] | EnsembleSpec) -> tuple[EnsembleSpec | None, str]:
    """Normalise the ``members`` argument of ``run_forecast``.

    Returns
    -------
    (spec, layout)
        ``layout`` is ``"none"`` (deterministic), ``"member"`` (an int: noise members on a plain
        ``member`` dim) or ``"split"`` (``weight_member`` x ``noise_member``).
    """
    if members is None:
        return None, "none"
    if isinstance(members, EnsembleSpec):
        return members, "split"
    if isinstance(members, (int, np.integer)):
        return EnsembleSpec(weight_members=1, noise_members=int(members)), "member"
    if isinstance(members, tuple) and len(members) == 2:
        return EnsembleSpec(weight_members=int(members[0]), noise_members=int(members[1])), "split"
    raise EnsembleError(
        f"members must be None, an int, a (weight_members, noise_members) tuple or an EnsembleSpec, "
        f"got {members!r}"
    )


def dropout_layers(module: nn.Module) -> list[nn.Module]:
    """The dropout layers of ``module`` in a fixed order."""
    kinds = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
    return [m for m in module.modules() if isinstance(m, kinds)]


def _mask_dim(layer: nn.Module, ndim: int) -> int:
    # Channel dropout (Dropout1d/2d/3d) drops whole channels (dim 1); plain Dropout acts on features,
    # which in the workbench's transformers are the last dim.
    if isinstance(layer, (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)):
        return 1
    return ndim - 1


def check_mc_dropout(module: nn.Module, p: float | None = None, name: str | None = None) -> list[nn.Module]:
    """The dropout layers MC dropout will use on ``module`` at rate ``p`` (``None``: each layer's own).

    ``name`` (the model's) is used in the error messages.

    Raises
    ------
    EnsembleError
        If the module has no dropout layers, or every rate is 0 (``p=0``, or ``p=None`` and every layer's
        own rate 0): each member would be the same network, with no epistemic spread.
    """
    what = name or type(module).__name__
    layers = dropout_layers(module)
    if not layers:
        raise EnsembleError(
            f"{what} has no dropout layers, so MC dropout cannot draw weight members; "
            "pass a list of checkpoints (a deep ensemble) instead, or use weight_members=1"
        )
    if p is None and all(float(layer.p) <= 0 for layer in layers):
        raise EnsembleError(
            f"every dropout layer of {what} has rate 0 (it was trained without dropout), so MC dropout "
            "draws identical members; give a rate (EnsembleSpec(dropout=0.1), --dropout 0.1) or use a "
            "deep ensemble of checkpoints"
        )
    if p is not None and float(p) <= 0:
        raise EnsembleError(
            f"MC dropout of {what} with dropout={p} draws identical weight members (no epistemic spread); "
            "give a rate in (0, 1) (EnsembleSpec(dropout=0.1), --dropout 0.1), use weight_members=1, or "
            "pass a list of checkpoints (a deep ensemble)"
        )
    return layers


@contextmanager
def mc_dropout(module: nn.Module, member: int, *, seed: int, p: float | None = None) -> Iterator[None]:
    """Run ``module`` as the ``member``-th thinned network of MC dropout.

    Inside the context every dropout layer multiplies its input by a fixed mask (one per layer, drawn
    from ``(seed, member, layer index)``, broadcast over the batch and over positions) scaled by
    ``1 / (1 - p)``; the module itself stays in eval mode so nothing else (e.g. normalisation statistics)
    changes.

    Raises
    ------
    EnsembleError
        If the module has no dropout layers, or every rate is 0 (``p=0``, or ``p=None`` and every layer's
        own rate 0): each member would be the same network, with no epistemic spread.
    """
    layers = check_mc_dropout(module, p)
    masks: dict[int, torch.Tensor] = {}
    handles = []

    def make_hook(index: int, layer: nn.Module):
        rate = float(layer.p if p is None else p)

        def hook(_mod, inputs, _output):
            x = inputs[0]
            if rate <= 0:
                return x
            dim = _mask_dim(layer, x.ndim)
            key = index
            mask = masks.get(key)
            if mask is None or mask.shape[0] != x.shape[dim] or mask.device != x.device:
                gen = torch.Generator(device="cpu")
                gen.manual_seed(int(np.random.SeedSequence([seed, member, index]).generate_state(1)[0]))
                keep = (torch.rand(x.shape[dim], generator=gen) >= rate).to(torch.float32) / (1.0 - rate)
                mask = keep.to(x.device)
                masks[key] = mask
            shape = [1] * x.ndim
            shape[dim] = x.shape[dim]
            return x * mask.to(x.dtype).view(shape)

        return hook

    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_hook(make_hook(i, layer)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
