"""The sample's analysis: the truth at an initial time plus one modelled analysis error.

Every forecast of the sample starts from this analysis, not from the truth: the NWP integrates the
perturbed state itself (its lead-0 fields *are* the analysis), and the learned models and persistence
read the stored analysis fields (``analysis.zarr``, catalog entry ``sample_analysis``). So all of them
carry the same initial error and a comparison of their skill is fair.

The error model (the ``ic_*`` fields of :data:`~workbench.sample.params.NWP_PARAMS`):

* the Rossby waves' amplitudes (1.5 m) and phases (0.01 rad) and their tendencies (half their spread)
  are off, and the cyclones are misplaced by ~25 km and 4% too deep or shallow;
* 850 hPa temperature (0.5 K) and boundary-layer moisture (6%) carry spatially correlated noise on
  a ~250 km scale (an analysis cannot resolve smaller structures of its own errors);
* the synoptic and mesoscale eddies (:mod:`eddies`) are partly replaced by independent ones: 15% of
  their spread at 400 km and above, more at smaller scales (an analysis resolves the mesoscale worst);
* storms alive at the analysis time are kept as they are (radar sees them).

The resulting RMS of analysis minus truth per variable is measured by the generator and stored in the
analysis store's attributes (``analysis_error_rms``); docs/sample.md lists it.
"""

from __future__ import annotations

import numpy as np

from workbench.sample.atmosphere import Atmosphere
from workbench.sample.flow import displace
from workbench.sample.params import AtmosphereParams
from workbench.sample.tracers import correlated_noise


def perturb_analysis(atm: Atmosphere, params: AtmosphereParams, rng: np.random.Generator) -> None:
    """Add the analysis error (``params.ic_*``) to an atmosphere's state, in place."""
    flow = atm.flow
    flow.amp = flow.amp + params.ic_wave_amp_noise_m * rng.standard_normal(flow.amp.size)
    flow.phase = flow.phase + params.ic_wave_phase_noise * rng.standard_normal(flow.phase.size)
    noise = params.ic_wave_rate_noise
    flow.amp_rate = flow.amp_rate + noise * params.wave_amp_rate_std * rng.standard_normal(flow.amp.size)
    flow.phase_rate = flow.phase_rate + noise * params.wave_phase_rate_std * rng.standard_normal(
        flow.phase.size
    )
    n = flow.cyc_lat.size
    if n:
        d = params.ic_cyclone_pos_noise_km * 1e3 * rng.standard_normal((2, n))
        flow.cyc_lat, flow.cyc_lon = displace(flow.cyc_lat, flow.cyc_lon, d[0], d[1])
        flow.cyc_depth = flow.cyc_depth * np.exp(params.ic_cyclone_depth_noise * rng.standard_normal(n))
    scale = params.ic_noise_scale_km * 1e3 / atm.mg.spacing_m
    atm.t850 = atm.t850 + params.ic_temperature_noise_k * correlated_noise(rng, atm.mg.shape, scale)
    atm.q = atm.q * (1 + params.ic_moisture_noise * correlated_noise(rng, atm.mg.shape, scale))
    eddies = getattr(atm, "eddies", None)
    if eddies is not None and params.ic_eddy_noise > 0:
        eddies.perturb(rng, params.ic_eddy_noise, params.eddy_crossover_km)
    atm.invalidate()


def make_analysis(
    truth: Atmosphere, error: AtmosphereParams, rng: np.random.Generator
) -> tuple[dict, dict[str, np.ndarray]]:
    """The analysis of the truth's current state.

    Parameters
    ----------
    truth : Atmosphere
        The truth run, at the analysis time (left unchanged).
    error : AtmosphereParams
        Parameters whose ``ic_*`` fields set the analysis error.
    rng : numpy.random.Generator
        The stream of this analysis's errors.

    Returns
    -------
    (snapshot, fields)
        The perturbed state (:meth:`Atmosphere.snapshot` layout, for a forecast to start from) and its
        diagnosed fields (the truth's diagnostics of that state: the analysis as stored).
    """
    atm = Atmosphere.__new__(Atmosphere)
    atm.__dict__.update(truth.__dict__)  # a shallow twin: same grid, surface and caches' owners
    atm.ev = type(truth.ev)(truth.coarse.lat, truth.coarse.lon)  # its own flow cache
    atm._ff_key = None
    atm._diag = None
    atm.restore(truth.snapshot())  # copies every state array, eddies included
    perturb_analysis(atm, error, rng)
    fields = {k: np.array(v, dtype=np.float64, copy=True) for k, v in atm.diagnose().items()}
    return atm.snapshot(), fields
