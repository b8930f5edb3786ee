"""The imperfect NWP forecast: the generator's own dynamics, run from the stored analysis.

For each initial time the forecast starts from the analysis (:mod:`workbench.sample.analysis`: the
truth's state with the modelled analysis error) and runs with :data:`~workbench.sample.params.NWP_PARAMS`: phase speeds 5% fast, steering a little
slow, a slightly different heat-wave response and diurnal cycle, and no random forcing of the waves
(it follows their expected evolution). Storms alive at the initial time continue; later storms and
cyclones come from the forecast's own random stream, so new storms are missed or misplaced. Errors
therefore start small and grow with lead time.
"""

from __future__ import annotations

import numpy as np

from workbench.sample.analysis import perturb_analysis  # noqa: F401 - its former home
from workbench.sample.atmosphere import Atmosphere, Surface
from workbench.sample.params import AtmosphereParams
from workbench.sample.tracers import ModelGrid

OUTPUT_VARIABLES = ("t2m", "u10m", "v10m", "msl", "tp", "refc", "gust", "z500", "t850", "u850", "v850")


def step_schedule(gap_h: int, max_step_h: int = 5) -> list[int]:
    """Time steps (hours) covering ``gap_h`` between two stored leads: long steps, then a 1-hour step.

    The model takes steps of up to ``max_step_h`` hours (the semi-Lagrangian scheme is stable for any
    step; the longer step is one more way the model differs from the hourly truth) but always ends
    with a 1-hour step, so the stored ``tp`` is the last hour's accumulation, as in the analysis.
    """
    if gap_h <= 0:
        return []
    steps = []
    rest = gap_h - 1
    while rest > 0:
        steps.append(min(max_step_h, rest))
        rest -= steps[-1]
    return steps + [1]


def run_forecast(
    mg: ModelGrid,
    surface: Surface,
    analysis: dict,
    leads_h: tuple[int, ...],
    params: AtmosphereParams,
    rngs: tuple[np.random.Generator, np.random.Generator],
) -> dict[str, np.ndarray]:
    """Run one forecast.

    Parameters
    ----------
    mg, surface : ModelGrid, Surface
        The HRRR-like grid and its surface.
    analysis : dict
        :meth:`Atmosphere.snapshot` of the analysis (the truth with its analysis error,
        :func:`~workbench.sample.analysis.make_analysis`) at the initial time.
    leads_h : tuple of int
        Lead times (hours, ascending, from 0) to store.
    params : AtmosphereParams
        The forecast model's physics.
    rngs : tuple of Generator
        Streams for the flow (new cyclones) and new storms.

    Returns
    -------
    dict of str to ndarray
        ``(n_leads, ny, nx)`` float32 arrays of :data:`OUTPUT_VARIABLES`.
    """
    rng_flow, rng_storms = rngs
    atm = Atmosphere(mg, params, analysis["flow"].copy(), surface, True, rng_flow, rng_storms)
    atm.restore(analysis)
    out = {v: np.empty((len(leads_h),) + mg.shape, dtype=np.float32) for v in OUTPUT_VARIABLES}
    t0 = atm.time_h
    done = 0
    for k, lead in enumerate(leads_h):
        for dt in step_schedule(lead - done):
            atm.step(dt)
        done = lead
        assert abs(atm.time_h - (t0 + lead)) < 1e-6
        fields = atm.diagnose()
        for v in OUTPUT_VARIABLES:
            out[v][k] = fields[v]
    return out
