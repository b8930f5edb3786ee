"""Parameters of the sample atmosphere: its sizes, its physics and the imperfect NWP model's physics.

The generator is fully defined by a :class:`SizeSpec` (which carries its seed and start) and an
:class:`AtmosphereParams`.
The truth runs with :data:`TRUTH_PARAMS`; the NWP forecast runs the same code with :data:`NWP_PARAMS`,
which differ in the ways a real model differs from the atmosphere (phase speeds a few percent off, a
steering flow slightly too slow, a cooler and moister boundary layer, storms it spawns from its own
random stream).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from workbench.errors import DataError

#: Bump when the generator's output changes; the cache directory carries it (``<size>-v<VERSION>``).
VERSION = 3

#: Master seed of the test period (``default``, ``tiny``, ``full``, ``long``); every random stream of a
#: run is derived from its size's seed.
SEED = 20200601

#: First analysis time of the test period.
START = np.datetime64("2020-06-01T00", "ns")

#: Seed and start of the training period: another June, another seed, so no weather is shared with
#: the test period (the flow's memory is ~200 h; different seeds draw independent initial flows).
TRAIN_SEED = 20190601
TRAIN_START = np.datetime64("2019-06-01T00", "ns")

#: Seed and start of the validation period (early stopping, model selection).
VALIDATION_SEED = 20210601
VALIDATION_START = np.datetime64("2021-06-01T00", "ns")

#: Lead times of the NWP forecast when it is stored at every hour.
HOURLY_LEADS = tuple(range(49))

#: A thinner set of lead times, used where hourly leads would make the store too large.
SPARSE_LEADS = (0, 1, 2, 3, 6, 9, 12, 18, 24, 30, 36, 42, 48)


@dataclass(frozen=True)
class SizeSpec:
    """One size of the sample.

    Attributes
    ----------
    name : str
        ``"tiny"``, ``"default"`` or ``"full"``.
    spacing_km : float
        Spacing of the HRRR-like Lambert grid.
    hours : int
        Number of hourly analysis times (the first is :data:`START`).
    era5_resolution : float
        Spacing of the global ERA5-like grid in degrees.
    nwp_inits : int
        Number of NWP initial times, every ``nwp_init_every_h`` hours from :data:`START`.
    nwp_leads : tuple of int
        Stored lead times in hours.
    nwp_init_every_h : int
        Hours between NWP initial times.
    time_chunk : int
        Time steps per zarr chunk of the analysis stores.
    period : str
        ``"test"``, ``"train"`` or ``"validation"``: which independent period the size samples.
    seed : int
        Master seed of the run; runs with different seeds share no weather.
    start : numpy.datetime64
        First analysis time (June 1 of the period's year; the season is the same in every period).
    """

    name: str
    spacing_km: float
    hours: int
    era5_resolution: float = 5.625
    nwp_inits: int = 1
    nwp_leads: tuple[int, ...] = HOURLY_LEADS
    nwp_init_every_h: int = 12
    time_chunk: int = 24
    period: str = "test"
    seed: int = SEED
    start: np.datetime64 = START


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec("tiny", spacing_km=96.0, hours=96, nwp_inits=4, nwp_leads=HOURLY_LEADS),
    "default": SizeSpec("default", spacing_km=24.0, hours=21 * 24, nwp_inits=39, nwp_leads=SPARSE_LEADS),
    "full": SizeSpec("full", spacing_km=3.0, hours=24, nwp_inits=1, nwp_leads=SPARSE_LEADS, time_chunk=1),
    # the default run continued for eight weeks: the out-of-sample climatology of the test period's
    # percentile events (its hours outside the evaluated week). It shares the test trajectory, so it
    # must not train the models: use ``train``.
    "long": SizeSpec("long", spacing_km=24.0, hours=56 * 24, nwp_inits=1, nwp_leads=SPARSE_LEADS),
    # independent periods on the default grid: eight weeks to train on, two to validate on
    "train": SizeSpec(
        "train", spacing_km=24.0, hours=56 * 24, nwp_inits=1, nwp_leads=SPARSE_LEADS,
        period="train", seed=TRAIN_SEED, start=TRAIN_START,
    ),
    "validation": SizeSpec(
        "validation", spacing_km=24.0, hours=14 * 24, nwp_inits=27, nwp_leads=SPARSE_LEADS,
        period="validation", seed=VALIDATION_SEED, start=VALIDATION_START,
    ),
}  # fmt: skip

#: Which sizes sample which period on the default grid: networks train on ``train`` only, choose
#: hyper-parameters / stop early on ``validation``, and are scored (dashboard, tests, skill notes) on
#: ``default``, the test period. The three have their own seeds and years, so they are independent.
TRAINING_SIZES: tuple[str, ...] = ("train",)
VALIDATION_SIZES: tuple[str, ...] = ("validation",)
TEST_SIZES: tuple[str, ...] = ("default", "tiny", "full", "long")


def size_spec(size: str | SizeSpec) -> SizeSpec:
    """Look up a size by name.

    Raises
    ------
    DataError
        If the name is not one of :data:`SIZES`.
    """
    if isinstance(size, SizeSpec):
        return size
    try:
        return SIZES[size]
    except (KeyError, TypeError):
        raise DataError(f"Unknown sample size {size!r}; choose one of {sorted(SIZES)}.") from None


@dataclass(frozen=True)
class AtmosphereParams:
    """Physical and statistical parameters of the generator's dynamics.

    Large-scale flow: Rossby waves (zonal wavenumbers ``wave_numbers`` in each hemisphere) on a zonal
    jet, each with an amplitude following an Ornstein-Uhlenbeck process and a phase moving at the
    Rossby-wave phase speed ``c = U - beta / K**2`` times ``phase_speed_factor``; travelling cyclones
    born in the storm tracks. Tracers (850 hPa temperature, boundary-layer moisture, boundary-layer
    temperature anomaly) are advected semi-Lagrangian and relaxed toward equilibria tied to the flow.
    Convective systems start where the boundary layer is warm, moist and unstable, spawn cells that
    grow and decay, and move with the steering flow.
    """

    # large-scale flow
    wave_numbers: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    wave_amp_mean_m: float = 60.0  # geopotential height amplitude (m) of a wave, summer hemisphere
    wave_amp_std_m: float = 30.0  # initial spread of amplitudes
    wave_amp_tau_h: float = 200.0  # relaxation of amplitudes toward their means
    wave_rate_tau_h: float = 36.0  # memory of the random amplitude and phase tendencies
    wave_amp_rate_std: float = 0.5  # m/h, random amplitude tendency (growth and decay of waves)
    wave_phase_rate_std: float = 0.004  # rad/h, random departure from the dispersion relation
    wave_width_deg: float = 14.0
    jet_speed_ms: float = 20.0  # annual-mean 500 hPa jet; the seasonal cycle adds +-8 m/s
    phase_speed_factor: float = 1.0
    cyclone_rate_per_day: float = 2.5  # per hemisphere
    cyclone_depth_pa: float = 2600.0  # mean peak depth
    cyclone_steering: float = 0.7
    # synoptic and mesoscale eddies of the limited-area grid (:mod:`workbench.sample.eddies`)
    eddy_rms_ms: float = 6.0  # rms of the eddy wind vector at 850 hPa
    eddy_crossover_km: float = 350.0  # k^-3 above this wavelength, k^-5/3 below
    eddy_large_km: float = 2500.0  # larger scales belong to the analytic waves
    eddy_tau_h: float = 30.0  # turnover time of eddies at and above the crossover
    # tracers
    relax_tau_h: float = 24.0
    thickness_m_per_k: float = 9.0  # Z500 anomaly that makes 1 K of 850 hPa temperature anomaly
    moisture_tau_h: float = 24.0  # the low-level jet resupplies Gulf moisture within a day
    bl_tau_h: float = 8.0
    surface_offset_k: float = 10.5  # t2m minus t850 in a well-mixed boundary layer
    diurnal_amp_land_k: float = 4.4
    diurnal_amp_ocean_k: float = 0.6
    # convection
    storm_rate: float = 1.1e-3  # systems per hour per 10^4 km^2 per K^1.5 of instability
    storm_steering: float = 0.85
    cell_interval_h: float = 0.6
    mcs_share: float = 0.8  # chance that a strong afternoon/evening system in the MCS region becomes one
    # analysis / forecast imperfection (used by the NWP run only)
    ic_temperature_noise_k: float = 0.0
    ic_moisture_noise: float = 0.0  # relative
    ic_noise_scale_km: float = 250.0
    ic_wave_amp_noise_m: float = 0.0
    ic_wave_phase_noise: float = 0.0
    ic_wave_rate_noise: float = 0.0  # fraction of the tendencies' spread
    ic_cyclone_pos_noise_km: float = 0.0
    stochastic: bool = True  # whether the flow carries its random forcing (the truth does, a forecast not)
    ic_cyclone_depth_noise: float = 0.0  # relative
    ic_eddy_noise: float = 0.0  # share of the eddies' spread, at the crossover (more below it)


#: The atmosphere itself.
TRUTH_PARAMS = AtmosphereParams()

#: The imperfect NWP model: same code, slightly wrong physics, no random forcing. Its ``ic_*`` fields
#: are also the sample's one model of the analysis error (see :mod:`workbench.sample.analysis`): the
#: stored analysis is the truth with those errors, and every forecast (NWP, learned, persistence)
#: starts from it.
NWP_PARAMS = dataclasses.replace(
    TRUTH_PARAMS,
    phase_speed_factor=1.05,
    cyclone_steering=0.64,
    storm_steering=0.78,
    relax_tau_h=28.0,
    thickness_m_per_k=9.8,
    diurnal_amp_land_k=4.0,
    surface_offset_k=10.2,
    storm_rate=1.0e-3,
    ic_temperature_noise_k=0.5,
    ic_moisture_noise=0.06,
    ic_wave_amp_noise_m=1.5,
    ic_wave_phase_noise=0.01,
    ic_wave_rate_noise=0.5,
    ic_cyclone_pos_noise_km=25.0,
    ic_cyclone_depth_noise=0.04,
    ic_eddy_noise=0.15,
    stochastic=False,
)
