"""The large-scale flow: Rossby waves on a zonal jet plus travelling extratropical cyclones.

The flow is held as a small spectral state (wave amplitudes and phases, cyclone tracks) and evaluated
analytically at any points, so the same atmosphere can be sampled on the HRRR-like Lambert grid and on
the global lat-lon grid. Heights are geopotential heights in metres; winds are geostrophic,
``u = -(g / f a) dZ/dphi``, ``v = (g / f a cos phi) dZ/dlambda``, with ``|f|`` floored near the equator.

Rossby-wave phase speed follows the barotropic dispersion relation on a beta plane at the wave's
latitude, ``c = U - beta / (k**2 + l**2)``: long waves drift west, short waves ride east with the jet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workbench.sample.params import AtmosphereParams

EARTH_RADIUS = 6.371229e6
OMEGA = 7.292e-5
GRAVITY = 9.80665
RHO_AIR = 1.2
P_REF = 101325.0
_F_FLOOR = 2 * OMEGA * np.sin(np.deg2rad(12.0))

# Vertical structure of the three levels the generator knows: (wave coefficient, eastward phase
# shift of the pattern relative to 500 hPa in radians of the wave's phase, cyclone height depth in m
# per Pa of surface depth, westward tilt of the cyclone centre in km). Upper troughs lie west of
# surface lows, as in growing baroclinic waves.
_LEVELS = {
    "z500": (1.0, 0.0, 0.035, 350.0),
    "z850": (0.7, np.pi / 8, 0.06, 150.0),
    "sfc": (0.45, np.pi / 4, 1.0 / (RHO_AIR * GRAVITY), 0.0),
}


def day_of_year(time_h: float, start_doy: float = 152.0) -> float:
    """Day of year (fractional) of a time given in hours since the sample start (2020-06-01)."""
    return start_doy + time_h / 24.0


def _jet(doy: float, params: AtmosphereParams) -> tuple[float, float, float, float]:
    """Jet speeds (m/s) and latitudes (deg) of the two hemispheres on a day of the year."""
    season = np.cos(2 * np.pi * (doy - 20.0) / 365.25)  # +1 in northern winter
    u_n = params.jet_speed_ms + 8.0 * season
    u_s = params.jet_speed_ms - 8.0 * season
    return u_n, u_s, 45.0 - 5.0 * season, -(45.0 + 5.0 * season)


@dataclass
class FlowState:
    """Spectral state of the large-scale flow at one time (hours since the sample start)."""

    time_h: float
    m: np.ndarray  # zonal wavenumber per wave
    lat0: np.ndarray  # central latitude (deg)
    amp: np.ndarray  # geopotential height amplitude (m)
    amp_mean: np.ndarray
    phase: np.ndarray  # radians; the pattern is cos(m * lambda - phase)
    amp_rate: np.ndarray  # random amplitude tendency (m/h)
    phase_rate: np.ndarray  # random phase tendency (rad/h) on top of the dispersion relation
    cyc_lat: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cyc_lon: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cyc_age: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cyc_life: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cyc_depth: np.ndarray = field(default_factory=lambda: np.zeros(0))  # peak surface depth (Pa)
    cyc_radius: np.ndarray = field(default_factory=lambda: np.zeros(0))  # e-folding radius (m)

    def copy(self) -> FlowState:
        """A deep copy."""
        return FlowState(
            **{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}
        )

    def cyclone_depth_now(self) -> np.ndarray:
        """Current surface depth (Pa) of each cyclone: fast deepening, slower filling."""
        x = np.clip(self.cyc_age / self.cyc_life, 0.0, 1.0)
        return self.cyc_depth * np.sin(np.pi * x**0.7) ** 1.3


def initial_flow(rng: np.random.Generator, params: AtmosphereParams) -> FlowState:
    """A random but climatological initial flow (waves in both hemispheres, a few cyclones)."""
    ms, lats, means = [], [], []
    for hemi in (1, -1):
        for m in params.wave_numbers:
            ms.append(m)
            lats.append(hemi * 47.0)
            # the winter (southern, in June) hemisphere has stronger waves
            means.append(params.wave_amp_mean_m * (1.0 if hemi == 1 else 1.4) * (1.0 if m <= 6 else 0.6))
    m = np.array(ms, dtype=np.int64)
    amp_mean = np.array(means)
    amp = amp_mean + params.wave_amp_std_m * rng.standard_normal(m.size)
    state = FlowState(
        time_h=0.0,
        m=m,
        lat0=np.array(lats, dtype=float),
        amp=amp,
        amp_mean=amp_mean,
        phase=rng.uniform(0, 2 * np.pi, m.size),
        amp_rate=params.wave_amp_rate_std * rng.standard_normal(m.size),
        phase_rate=params.wave_phase_rate_std * rng.standard_normal(m.size),
    )
    # seed the storm tracks with cyclones of random ages
    for _ in range(int(2 * params.cyclone_rate_per_day * 2)):
        _spawn_cyclone(state, rng, params, hemi=1 if rng.random() < 0.5 else -1, age=rng.uniform(0, 60))
    return state


def phase_speed(state: FlowState, params: AtmosphereParams) -> np.ndarray:
    """Angular phase speed (rad of the wave's phase per hour) from the Rossby-wave dispersion relation."""
    u_n, u_s, _, _ = _jet(day_of_year(state.time_h), params)
    u = np.where(state.lat0 > 0, u_n, u_s)
    phi0 = np.deg2rad(np.abs(state.lat0))
    beta = 2 * OMEGA * np.cos(phi0) / EARTH_RADIUS
    k = state.m / (EARTH_RADIUS * np.cos(phi0))
    l_mer = np.pi / (2.5 * np.deg2rad(params.wave_width_deg) * EARTH_RADIUS)
    c = u - beta / (k**2 + l_mer**2)
    return params.phase_speed_factor * k * c * 3600.0


def _spawn_cyclone(
    state: FlowState, rng: np.random.Generator, params: AtmosphereParams, hemi: int, age: float = 0.0
) -> None:
    lat = hemi * rng.uniform(36.0, 58.0)
    # cyclones form east of upper troughs: accept longitudes where the wave pattern rises eastward
    for _ in range(8):
        lon = rng.uniform(-180.0, 180.0)
        lam = np.deg2rad(lon)
        sel = np.sign(state.lat0) == hemi
        slope = np.sum(-state.amp[sel] * state.m[sel] * np.sin(state.m[sel] * lam - state.phase[sel]))
        if slope > 0 or rng.random() < 0.25:
            break
    state.cyc_lat = np.append(state.cyc_lat, lat)
    state.cyc_lon = np.append(state.cyc_lon, lon)
    state.cyc_age = np.append(state.cyc_age, age)
    state.cyc_life = np.append(state.cyc_life, rng.uniform(70.0, 140.0))
    radius = rng.uniform(450e3, 850e3)
    # summer lows are shallower; deep lows are also wide (a cap on the pressure gradient, which stands
    # in for the gradient-wind balance that keeps real lows' winds below geostrophic)
    summer = np.cos(2 * np.pi * (day_of_year(state.time_h) - 196.0) / 365.25) * hemi
    depth = params.cyclone_depth_pa * rng.gamma(4.0, 0.25) * (1.0 - 0.25 * max(summer, 0.0))
    state.cyc_depth = np.append(state.cyc_depth, min(depth, 4.5e-3 * radius))
    state.cyc_radius = np.append(state.cyc_radius, radius)


def step_flow(
    state: FlowState, dt_h: float, params: AtmosphereParams, rng: np.random.Generator | None
) -> None:
    """Advance the flow by ``dt_h`` hours in place.

    With ``params.stochastic`` the wave amplitudes and phases receive their random forcing and new
    cyclones are born from ``rng``; without it the amplitudes relax deterministically toward their
    means (the forecast's expectation). ``rng`` may still spawn cyclones in a forecast, from the
    forecast's own stream.
    """
    omega = phase_speed(state, params)
    # amplitudes and phases change smoothly: their random part enters through tendencies with a
    # memory of a day or two, so the near future follows from the present state and errors grow
    decay = np.exp(-dt_h / params.wave_amp_tau_h)
    state.amp = state.amp_mean + (state.amp - state.amp_mean) * decay + state.amp_rate * dt_h
    state.phase = state.phase + (omega + state.phase_rate) * dt_h
    decay_r = np.exp(-dt_h / params.wave_rate_tau_h)
    state.amp_rate = state.amp_rate * decay_r
    state.phase_rate = state.phase_rate * decay_r
    if params.stochastic and rng is not None:
        kick = np.sqrt(1 - decay_r**2)
        state.amp_rate += params.wave_amp_rate_std * kick * rng.standard_normal(state.amp.size)
        state.phase_rate += params.wave_phase_rate_std * kick * rng.standard_normal(state.phase.size)
    # cyclones drift with the 500 hPa flow at their centre (plus a poleward drift)
    if state.cyc_lat.size:
        u, v = geostrophic_wind(state, state.cyc_lat, state.cyc_lon, "z500", params, include_cyclones=False)
        u = params.cyclone_steering * u
        v = params.cyclone_steering * v + 2.0 * np.sign(state.cyc_lat)
        lat, lon = displace(state.cyc_lat, state.cyc_lon, u * dt_h * 3600, v * dt_h * 3600)
        state.cyc_lat, state.cyc_lon = np.clip(lat, -80, 80), lon
        state.cyc_age = state.cyc_age + dt_h
    alive = state.cyc_age < state.cyc_life
    for name in ("cyc_lat", "cyc_lon", "cyc_age", "cyc_life", "cyc_depth", "cyc_radius"):
        setattr(state, name, getattr(state, name)[alive])
    if rng is not None:
        for hemi in (1, -1):
            n_new = rng.poisson(params.cyclone_rate_per_day * dt_h / 24.0)
            for _ in range(n_new):
                # born as an invisible precursor (an upper-level disturbance) that deepens into a
                # surface low 12-36 h later, so an analysis of the flow already holds it
                _spawn_cyclone(state, rng, params, hemi, age=-rng.uniform(12.0, 36.0))
    state.time_h += dt_h


def displace(
    lat: np.ndarray, lon: np.ndarray, dx: np.ndarray, dy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Move points by ``dx`` metres east and ``dy`` metres north (small-displacement formula)."""
    lat = np.asarray(lat, dtype=float)
    coslat = np.maximum(np.cos(np.deg2rad(lat)), 0.02)
    new_lat = lat + np.rad2deg(dy / EARTH_RADIUS)
    new_lon = np.asarray(lon, dtype=float) + np.rad2deg(dx / (EARTH_RADIUS * coslat))
    new_lat = np.clip(new_lat, -89.9, 89.9)
    new_lon = (new_lon + 180.0) % 360.0 - 180.0
    return new_lat, new_lon


def _base_height(level: str, lat_deg: np.ndarray, doy: float, params: AtmosphereParams) -> np.ndarray:
    """Zonal-mean geopotential height (m) of a level, in geostrophic balance with the jets."""
    u_n, u_s, lat_n, lat_s = _jet(doy, params)
    w = np.deg2rad(9.0)
    f_n = 2 * OMEGA * np.sin(np.deg2rad(abs(lat_n)))
    f_s = 2 * OMEGA * np.sin(np.deg2rad(abs(lat_s)))
    dz_n = 2 * w * f_n * EARTH_RADIUS * u_n / GRAVITY
    dz_s = 2 * w * f_s * EARTH_RADIUS * u_s / GRAVITY
    phi = np.deg2rad(lat_deg)
    s_n = 0.5 * (1 + np.tanh((phi - np.deg2rad(lat_n)) / w))
    s_s = 0.5 * (1 + np.tanh((np.deg2rad(lat_s) - phi) / w))
    if level == "z500":
        return 5880.0 - dz_n * s_n - dz_s * s_s
    if level == "z850":
        return 1520.0 - 0.4 * (dz_n * s_n + dz_s * s_s)
    # sea-level pressure expressed as a 1000 hPa height: subtropical highs, subpolar lows, equatorial trough
    alat = np.abs(lat_deg)
    pa = 500.0 * np.exp(-(((alat - 33.0) / 10.0) ** 2)) - 900.0 * np.exp(-(((alat - 62.0) / 9.0) ** 2))
    pa = pa - 300.0 * np.exp(-((lat_deg / 10.0) ** 2))
    return pa / (RHO_AIR * GRAVITY)


#: Soft bounds of 500 hPa heights (m): above ``_Z500_HIGH`` ridges saturate toward
#: ``_Z500_HIGH + _Z500_HIGH_SPAN`` (the summer subtropical high, 594-597 dam over the US, does not build
#: further), below ``_Z500_LOW`` troughs toward ``_Z500_LOW - _Z500_LOW_SPAN`` (June troughs over the
#: US rarely reach below 535 dam). Linear waves, cyclones and eddies would otherwise add up to 610 and
#: 518 dam. Applied to the heights on the output grids (:func:`bounded_z500`).
_Z500_HIGH, _Z500_HIGH_SPAN = 5880.0, 90.0
_Z500_LOW, _Z500_LOW_SPAN = 5440.0, 120.0


def bounded_z500(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """500 hPa heights squashed beyond the soft bounds with tanh, and the factor ``dz_out / dz_in``.

    The factor scales the geostrophic wind of the bounded heights (chain rule).
    """
    hi = (z - _Z500_HIGH) / _Z500_HIGH_SPAN
    lo = (_Z500_LOW - z) / _Z500_LOW_SPAN
    out = np.array(z, dtype=float, copy=True)
    slope = np.ones_like(out)
    up, down = hi > 0, lo > 0
    if up.any():
        t = np.tanh(hi[up])
        out[up] = _Z500_HIGH + _Z500_HIGH_SPAN * t
        slope[up] = 1 - t**2
    if down.any():
        t = np.tanh(lo[down])
        out[down] = _Z500_LOW - _Z500_LOW_SPAN * t
        slope[down] = 1 - t**2
    return out, slope


class Evaluator:
    """Evaluates the flow on a fixed set of points, caching what does not change in time.

    The wave sum is held in complex form, ``W = sum_k A_k exp(i (m_k lambda - theta_k))``, so each
    level (a phase shift and a coefficient) costs one complex multiplication, and it is evaluated once
    per flow time for all levels.

    Parameters
    ----------
    lat, lon : ndarray
        Points in degrees (any shape).
    """

    def __init__(self, lat: np.ndarray, lon: np.ndarray) -> None:
        self.lat = np.asarray(lat, dtype=float)
        self.lon = np.asarray(lon, dtype=float)
        self.phi = np.deg2rad(self.lat)
        self.coslat = np.maximum(np.cos(self.phi), 0.02)
        f = 2 * OMEGA * np.sin(self.phi)
        self.f = np.where(f >= 0, np.maximum(f, _F_FLOOR), np.minimum(f, -_F_FLOOR))
        self._e1 = np.exp(1j * np.deg2rad(self.lon))
        self._em: dict[int, np.ndarray] = {}
        self._env: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}
        self._base: dict[tuple[str, float], tuple[np.ndarray, np.ndarray]] = {}
        self._lat_range = (float(self.lat.min()), float(self.lat.max()))
        lon_w = (self.lon + 180.0) % 360.0 - 180.0
        self._lon_range = (float(lon_w.min()), float(lon_w.max()))
        self._cache_key: tuple | None = None
        self._cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def clear(self) -> None:
        """Forget cached evaluations (call after changing a flow state in place at the same time)."""
        self._cache_key = None
        self._cache = {}
        self._off_key = None

    def _exp_m(self, m: int) -> np.ndarray:
        if m not in self._em:
            self._em[m] = self._e1**m
        return self._em[m]

    def _envelope(self, lat0: float, width: float) -> tuple[np.ndarray, np.ndarray] | None:
        key = (lat0, width)
        if key not in self._env:
            s = np.deg2rad(width)
            d = self.phi - np.deg2rad(lat0)
            g = np.exp(-((d / s) ** 2))
            self._env[key] = (g, g * (-2 * d / s**2)) if g.max() > 1e-5 else None
        return self._env[key]

    def _base_height(self, level: str, doy: float, params: AtmosphereParams) -> tuple[np.ndarray, np.ndarray]:
        # the zonal mean changes with the season only: cache it per day
        key = (level, float(round(doy)))
        if key not in self._base:
            if len(self._base) > 64:
                self._base.clear()
            d = key[1]
            h = 0.05
            base = _base_height(level, self.lat, d, params)
            dbase = (
                _base_height(level, self.lat + h, d, params) - _base_height(level, self.lat - h, d, params)
            ) / (2 * np.deg2rad(h))
            self._base[key] = (base, dbase)
        return self._base[key]

    def _waves(
        self, state: FlowState, params: AtmosphereParams
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per wave group (one envelope): envelope, its derivative, W and sum of m * W terms."""
        groups = []
        for lat0 in np.unique(state.lat0):
            env = self._envelope(float(lat0), params.wave_width_deg)
            if env is None:
                continue
            w = np.zeros(self.lat.shape, dtype=complex)
            wm = np.zeros(self.lat.shape, dtype=complex)
            for i in np.flatnonzero(state.lat0 == lat0):
                m = int(state.m[i])
                term = (state.amp[i] * np.exp(-1j * state.phase[i])) * self._exp_m(m)
                w += term
                wm += m * term
            groups.append((env[0], env[1], w, wm))
        return groups

    def height(
        self, state: FlowState, level: str, params: AtmosphereParams, include_cyclones: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Geopotential height (m) of ``level`` and its derivatives per radian of longitude and latitude.

        ``level`` is ``"z500"``, ``"z850"`` or ``"sfc"`` (sea-level pressure as a 1000 hPa height).
        """
        key = (id(state), state.time_h, include_cyclones)
        if key != self._cache_key:
            self._cache_key = key
            self._cache = {}
            self._groups = self._waves(state, params)
        if level in self._cache:
            return self._cache[level]
        coef, shift, cyc_coef, tilt_km = _LEVELS[level]
        base, dbase = self._base_height(level, day_of_year(state.time_h), params)
        z = base.copy()
        dz_lam = np.zeros_like(z)
        dz_phi = dbase.copy()
        rot = coef * np.exp(-1j * shift)
        for g, dg, w, wm in self._groups:
            c = (rot * w).real
            z += g * c
            dz_lam -= g * (rot * wm).imag
            dz_phi += dg * c
        if include_cyclones and state.cyc_lat.size:
            self._add_cyclones(z, dz_lam, dz_phi, state, level)
        self._cache[level] = (z, dz_lam, dz_phi)
        return z, dz_lam, dz_phi

    def _near(self, lat_c: np.ndarray, lon_c: np.ndarray, span: np.ndarray) -> np.ndarray:
        """Which centres lie within ``span`` degrees of the points' bounding box."""
        ok = (lat_c + span >= self._lat_range[0]) & (lat_c - span <= self._lat_range[1])
        if self._lon_range[1] - self._lon_range[0] > 300:
            return ok
        lon_span = span / np.maximum(np.cos(np.deg2rad(np.minimum(np.abs(lat_c) + span, 85.0))), 0.05)
        lon_c = (lon_c + 180.0) % 360.0 - 180.0
        return ok & (lon_c + lon_span >= self._lon_range[0]) & (lon_c - lon_span <= self._lon_range[1])

    def _offsets(self, state: FlowState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices of the cyclones near the points and east/north offsets (m) of the points from them.

        Arrays are ``(n_cyclones, n_points)``, computed once per flow time for all levels: a level's
        tilt shifts its centre west, which adds the tilt to the eastward offset.
        """
        key = (id(state), state.time_h)
        if getattr(self, "_off_key", None) != key:
            span = np.rad2deg(3.5 * state.cyc_radius / EARTH_RADIUS) + 4.0
            keep = np.flatnonzero(self._near(state.cyc_lat, state.cyc_lon, span))
            lat_c = state.cyc_lat[keep]
            cos_c = np.maximum(np.cos(np.deg2rad(lat_c)), 0.05)[:, None]
            dlon = (self.lon.ravel()[None, :] - state.cyc_lon[keep][:, None] + 180.0) % 360.0 - 180.0
            dx = EARTH_RADIUS * cos_c * np.deg2rad(dlon)
            dy = EARTH_RADIUS * (self.phi.ravel()[None, :] - np.deg2rad(lat_c)[:, None])
            self._off, self._off_key = (keep, dx, dy), key
        return self._off

    def _add_cyclones(self, z, dz_lam, dz_phi, state: FlowState, level: str) -> None:
        _, _, cyc_coef, tilt_km = _LEVELS[level]
        keep, dx, dy = self._offsets(state)
        if not keep.size:
            return
        depth = (state.cyclone_depth_now() * cyc_coef)[keep]
        r_c = state.cyc_radius[keep][:, None]
        cos_c = np.maximum(np.cos(np.deg2rad(state.cyc_lat[keep])), 0.05)[:, None]
        dxt = dx + tilt_km * 1e3
        val = -depth[:, None] * np.exp(-0.5 * (dxt**2 + dy**2) / r_c**2)
        shape = z.shape
        z += val.sum(axis=0).reshape(shape)
        dz_lam -= (val * dxt * (EARTH_RADIUS / r_c**2) * cos_c).sum(axis=0).reshape(shape)
        dz_phi -= (val * dy * (EARTH_RADIUS / r_c**2)).sum(axis=0).reshape(shape)

    def wind(
        self, state: FlowState, level: str, params: AtmosphereParams
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Height (m) and geostrophic eastward and northward wind (m/s) of a level."""
        z, dz_lam, dz_phi = self.height(state, level, params)
        u = -GRAVITY / (self.f * EARTH_RADIUS) * dz_phi
        v = GRAVITY / (self.f * EARTH_RADIUS * self.coslat) * dz_lam
        return z, u, v

    def base(self, state: FlowState, level: str, params: AtmosphereParams) -> np.ndarray:
        """The zonal-mean height of a level (m) at the state's time."""
        return self._base_height(level, day_of_year(state.time_h), params)[0]

    def cyclone_shield(self, state: FlowState) -> np.ndarray:
        """Strength (0..~1) of the frontal precipitation shields north-east of the cyclones."""
        keep, dx, dy = self._offsets(state)
        if not keep.size:
            return np.zeros_like(self.lat)
        r_c = state.cyc_radius[keep][:, None]
        north = np.sign(state.cyc_lat[keep])[:, None]
        # an elongated band along the warm front, tilted 30 degrees from west-east (mirrored south)
        ex, ey = dx - 0.5 * r_c, dy - 0.35 * r_c * north
        c, s = np.cos(np.deg2rad(30.0)), np.sin(np.deg2rad(30.0)) * north
        along, across = c * ex + s * ey, -s * ex + c * ey
        d2 = (along / (0.9 * r_c)) ** 2 + (across / (0.35 * r_c)) ** 2
        weight = (state.cyclone_depth_now()[keep] / 3000.0)[:, None]
        return (weight * np.exp(-0.5 * d2)).sum(axis=0).reshape(self.lat.shape)


def geostrophic_wind(
    state: FlowState,
    lat: np.ndarray,
    lon: np.ndarray,
    level: str,
    params: AtmosphereParams,
    include_cyclones: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Geostrophic wind of a level at arbitrary points (no caching)."""
    ev = Evaluator(np.atleast_1d(lat), np.atleast_1d(lon))
    z, dz_lam, dz_phi = ev.height(state, level, params, include_cyclones=include_cyclones)
    u = -GRAVITY / (ev.f * EARTH_RADIUS) * dz_phi
    v = GRAVITY / (ev.f * EARTH_RADIUS * ev.coslat) * dz_lam
    return u, v
