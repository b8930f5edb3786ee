"""Every forecast of the sample from one analysis: the fair start of the model comparison.

The sample stores one analysis (``open_sample("analysis", size)``, catalog ``sample_analysis``): the truth
at each NWP initial time plus one modelled analysis error, whose RMS per variable is in its attributes
(``analysis_error_rms``). The NWP forecast integrates exactly that state (its lead 0 is it); here the
learned models and persistence start from it too, so no model starts from the verifying truth and all
carry the same initial error.

* :func:`initial_state` - the analysis (checked to hold the initial times asked for);
* :func:`driving_boundary` - the lateral boundaries of the limited-area networks: the driving NWP
  forecast from the same analysis, smoothed to the global model's scale (as in training; see
  :mod:`workbench.models.inputs`);
* :func:`default_ensemble` - the default ensemble of a learned model: its deep ensemble (independently
  trained members) as epistemic members, times initial-condition perturbations whose amplitude is the
  analysis error, so the aleatoric spread starts at the analysis error, plus the stochastic model error
  calibrated on the validation sample (:mod:`workbench.workflow.calibration`), so that it grows with the
  error;
* :func:`run_from_analysis` - :func:`~workbench.inference.run_forecast` of a learned model (or its
  ensemble) from the analysis, with the boundary.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError

__all__ = [
    "NOISE_LENGTH_KM",
    "NOISE_MEMBERS",
    "analysis_error_rms",
    "default_ensemble",
    "default_model",
    "driving_boundary",
    "initial_state",
    "model_error_spec",
    "run_from_analysis",
]

#: Perturbed initial conditions per weight member of the default ensemble.
NOISE_MEMBERS = 3
#: Correlation length of the perturbations: the scale of the sample's modelled analysis error.
NOISE_LENGTH_KM = 250.0


def initial_state(size: str = "default", init_times=None) -> xr.Dataset:
    """The sample's analysis ``(time, y, x)``; with ``init_times``, checked to hold each of them."""
    from workbench.sample import open_sample

    analysis = open_sample("analysis", size)
    if init_times is not None:
        wanted = pd.DatetimeIndex(np.atleast_1d(init_times))
        absent = wanted.difference(pd.DatetimeIndex(analysis.time.values))
        if len(absent):
            raise DataError(
                f"the {size} sample's analysis has no state at {[str(t) for t in absent[:3]]}; forecasts start "
                "from the NWP initial times"
            )
    return analysis


def analysis_error_rms(analysis: xr.Dataset) -> dict[str, float]:
    """The analysis error RMS per variable that the sample recorded (physical units)."""
    rms = analysis.attrs.get("analysis_error_rms")
    if isinstance(rms, str):
        import json

        rms = json.loads(rms)
    if not isinstance(rms, Mapping) or not rms:
        raise DataError("the analysis has no 'analysis_error_rms' attribute; regenerate the sample (version 3+)")
    return {str(k): float(v) for k, v in rms.items()}


def driving_boundary(nwp: xr.Dataset, init_times, lead_times) -> xr.Dataset:
    """The driving forecast for the lateral boundaries: the NWP forecast from the same analysis at the
    initial and lead times asked for, smoothed to the global model's scale."""
    from workbench.models.inputs import coarse_state

    inits = pd.DatetimeIndex(np.atleast_1d(init_times))
    leads = pd.to_timedelta(np.atleast_1d(lead_times), unit="h") if np.issubdtype(
        np.asarray(lead_times).dtype, np.number) else pd.TimedeltaIndex(np.atleast_1d(lead_times))
    have = pd.TimedeltaIndex(nwp.lead_time.values)
    # every lead up to the longest, so steps of any length find their valid time (interpolated in time)
    keep = have[(have >= pd.Timedelta(0)) & (have <= leads.max())]
    return coarse_state(nwp.sel(init_time=inits, lead_time=keep).load())


def default_model(path=None) -> str:
    """The learned model the default ensemble is built on: the calibration's choice (made on validation
    skill, see ``docs/models.md``), ``pangu`` when there is no calibration."""
    from workbench.workflow.calibration import load_calibration

    return str(load_calibration(path).get("default_model", "pangu"))


def model_error_spec(name: str, members, spacing_km: float, path=None):
    """The calibrated :class:`~workbench.inference.model_error.ModelError` of model ``name`` (amplitudes
    converted from physical units to its normalisation std), or None when it has no calibration."""
    from workbench.inference.model_error import ModelError
    from workbench.models.protocol import step_models
    from workbench.workflow.calibration import model_calibration

    entry = model_calibration(name, path)
    if not entry or not entry.get("model_error"):
        return None
    me = entry["model_error"]
    family = step_models(members[0])
    first = next(iter(family.values()))
    _, std = first.normalization.arrays(list(first.variables))
    std_of = dict(zip(first.variables, (float(s) for s in std), strict=True))
    amplitude = {}
    for hours, amps in me["amplitude"].items():
        unknown = set(amps) - set(std_of)
        if unknown:
            raise DataError(f"the ensemble calibration of {name} has amplitudes for {sorted(unknown)}, which it does "
                            "not forecast; recalibrate (benchmarks/model_skill.py --calibrate)")
        amplitude[int(hours)] = {v: float(a) / std_of[v] for v, a in amps.items()}
    return ModelError(amplitude=amplitude, length_scale=float(me["length_km"]) / spacing_km,
                      time_scale_h=float(me.get("time_scale_h", 6.0)))


def default_ensemble(name: str | None, analysis: xr.Dataset, noise_members: int = NOISE_MEMBERS, seed: int = 0,
                     model_error: bool = True):
    """The default ensemble of learned model ``name``: ``(members, spec)`` for ``run_forecast``.

    ``members`` is its deep ensemble (every trained member); ``spec`` adds ``noise_members``
    initial-condition perturbations per member with the analysis error's amplitude, correlated over
    :data:`NOISE_LENGTH_KM`, and, where the model has a calibration
    (:mod:`workbench.workflow.calibration`) and ``model_error`` is true, its calibrated stochastic model
    error at every step. ``name=None`` takes :func:`default_model`.
    """
    from workbench.inference import EnsembleSpec
    from workbench.inference.perturb import calibrated_scale
    from workbench.models import load_ensemble
    from workbench.models.protocol import step_models

    name = default_model() if name is None else name
    members = load_ensemble(name)
    first = next(iter(step_models(members[0]).values()))
    scale = calibrated_scale(first.variables, first.normalization, analysis_error_rms(analysis))
    spacing_km = float(abs(analysis.y.values[1] - analysis.y.values[0])) / 1000.0 if "y" in analysis.coords else 24.0
    spec = EnsembleSpec(
        weight_members=len(members), noise_members=noise_members, noise_scale=scale,
        length_scale=NOISE_LENGTH_KM / spacing_km, seed=seed,
        model_error=model_error_spec(name, members, spacing_km) if model_error else None,
        centred=True,  # so that three noise members do not put a third of their variance into the mean
    )
    return members, spec


def run_from_analysis(model, analysis: xr.Dataset, nwp: xr.Dataset, init_times, lead_times, **kw) -> xr.Dataset:
    """:func:`~workbench.inference.run_forecast` from the analysis, with the NWP forecast as the driving
    boundary of networks that take one (others ignore it)."""
    from workbench.inference import run_forecast

    boundary = driving_boundary(nwp, init_times, lead_times)
    return run_forecast(model, analysis, init_times, lead_times, boundary=boundary, **kw)
