"""The sample atmosphere on one grid: state, hourly time step and diagnosis of the canonical fields.

State: the large-scale flow (:mod:`flow`), three advected tracers (850 hPa temperature ``t850``,
boundary-layer specific humidity ``q``, boundary-layer temperature anomaly ``tbl`` carrying storm cold
pools) and, on the HRRR-like grid, explicit convective storms (:mod:`storms`). On the coarse global grid
convection is parameterised instead (a grid-mean rate from instability).

Physics per step:

* tracers advected semi-Lagrangian by the 850 hPa geostrophic wind;
* ``t850`` relaxes toward ``T_rad(lat, season) + Z500' / thickness`` (+ continental summer heating), so
  ridges build heat waves and troughs bring cold air, with the lag that advection gives;
* ``q`` relaxes toward a relative humidity of the underlying surface (moist oceans, dry interiors) and
  is removed by rain; ``tbl`` is cooled by rain and decays;
* ``t2m = t850 + offset + diurnal cycle (land, clear sky) + tbl``;
* ``msl``, ``u10m``/``v10m`` from the surface pressure pattern (frictionally reduced and turned toward
  low pressure), ``gust`` from the 10 m wind with daytime mixing, or the storms' gust fronts.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from workbench.sample import storms as st
from workbench.sample.flow import GRAVITY, P_REF, RHO_AIR, Evaluator, FlowState, day_of_year, step_flow
from workbench.sample.geography import grid_land_fraction, state_index
from workbench.sample.params import AtmosphereParams
from workbench.sample.tracers import Coarsened, ModelGrid, advect

NO_ECHO_DBZ = -10.0


def qsat(t_k: np.ndarray) -> np.ndarray:
    """Saturation specific humidity (kg/kg) near 1000 hPa (Bolton's formula)."""
    tc = t_k - 273.15
    es = 6.112 * np.exp(17.67 * tc / (tc + 243.5))
    return 0.622 * es / 1000.0


class _FlowFields(dict):
    """Fields on the coarse points, upsampled to the full grid on first access."""

    def __init__(self, coarse: dict[str, np.ndarray], upsample, ready: dict[str, np.ndarray]) -> None:
        super().__init__(ready)
        self._coarse = coarse
        self._upsample = upsample

    def __missing__(self, key: str) -> np.ndarray:
        value = self._upsample(self._coarse[key])
        self[key] = value
        return value


class Surface:
    """Static surface properties of a grid: land fraction and continentality (0 coast .. 1 interior)."""

    def __init__(self, mg: ModelGrid) -> None:
        subsample = 1 if mg.lat.size > 2e5 else 3
        radius = max(120.0, 0.5 * mg.spacing_m / 1e3)
        land = grid_land_fraction(mg.lat, mg.lon, subsample=subsample, radius_km=radius).astype(np.float64)
        if not mg.periodic and mg.spacing_m < 40e3:
            # outside the US the mask is "near a town": soften its circles over ~40 km (US outlines stay)
            us = (state_index(mg.lat, mg.lon) > 0).astype(np.float64)
            other = ndimage.gaussian_filter(
                np.maximum(land - us, 0.0), sigma=40e3 / mg.spacing_m, mode="nearest"
            )
            land = np.maximum(us, np.clip(1.6 * other - 0.3, 0.0, 1.0))
        self.land = land
        # continentality: land fraction smoothed over ~700 km, computed on a coarse copy for speed
        factor = max(1, int(50e3 // mg.spacing_m))
        coarse = self.land[::factor, ::factor]
        sigma = 700e3 / (mg.spacing_m * factor)
        mode = ("nearest", "wrap") if mg.periodic else "nearest"
        smooth = ndimage.gaussian_filter(coarse, sigma=sigma, mode=mode)
        zoom = (mg.shape[0] / coarse.shape[0], mg.shape[1] / coarse.shape[1])
        cont = ndimage.zoom(smooth, zoom, order=1, mode="nearest")[: mg.shape[0], : mg.shape[1]]
        self.continentality = np.clip((cont - 0.35) / 0.55, 0.0, 1.0) * self.land


class Atmosphere:
    """One run of the sample atmosphere on one grid.

    Parameters
    ----------
    mg : ModelGrid
        The grid.
    params : AtmosphereParams
        Physics.
    flow : FlowState
        Large-scale flow (shared in spirit, not in memory, between grids: pass a copy).
    surface : Surface
        Land and continentality of the grid.
    explicit_storms : bool
        Whether convection is explicit cells (HRRR-like) or a grid-mean parameterisation (ERA5-like).
    rng_flow, rng_storms : numpy Generator
        Random streams for the flow's forcing and for storm initiation.
    """

    def __init__(
        self,
        mg: ModelGrid,
        params: AtmosphereParams,
        flow: FlowState,
        surface: Surface,
        explicit_storms: bool,
        rng_flow: np.random.Generator | None,
        rng_storms: np.random.Generator,
    ) -> None:
        self.mg = mg
        self.params = params
        self.flow = flow
        self.surface = surface
        self.explicit_storms = explicit_storms
        self.rng_flow = rng_flow
        self.rng_storms = rng_storms
        # the large-scale flow is smooth: evaluate it every ~100 km and interpolate
        factor = max(1, int(round(100e3 / mg.spacing_m))) if not mg.periodic else 1
        self.coarse = Coarsened(mg, factor)
        self.ev = Evaluator(self.coarse.lat, self.coarse.lon)
        self._ff_key: tuple | None = None
        self.storms = st.StormSet() if explicit_storms else None
        self.tp = np.zeros(mg.shape)  # rain over the last step (m)
        self.rain_rate = np.zeros(mg.shape)  # mm/h at the current time
        self._diag: dict[str, np.ndarray] | None = None
        z500 = self._z500_anomaly()
        self.t850 = self._t850_eq(z500)
        self.tbl = np.zeros(mg.shape)
        self.q = self._q_eq(self._t2m(self.t850, self.tbl, np.zeros(mg.shape)))

    # ---- state copies for forecasts ------------------------------------------------------------
    def snapshot(self) -> dict:
        """Everything needed to restart the run from now."""
        return {
            "flow": self.flow.copy(),
            "t850": self.t850.copy(),
            "q": self.q.copy(),
            "tbl": self.tbl.copy(),
            "storms": self.storms.copy() if self.storms is not None else None,
            "rain_rate": self.rain_rate.copy(),
            "tp": self.tp.copy(),
            "rendered": self._rendered,
            "strat_z": self._strat_z,
        }

    def restore(self, snap: dict) -> None:
        """Set the state from a :meth:`snapshot` (copied)."""
        self.flow = snap["flow"].copy()
        self.t850 = snap["t850"].copy()
        self.q = snap["q"].copy()
        self.tbl = snap["tbl"].copy()
        self.storms = snap["storms"].copy() if snap["storms"] is not None else None
        self.rain_rate = snap["rain_rate"].copy()
        self.tp = snap["tp"].copy()
        self._rendered = snap["rendered"]
        self._strat_z = snap["strat_z"]
        self.invalidate()

    def adopt(self, other: Atmosphere) -> None:
        """Take over the state of a run of the same atmosphere on another grid (tracers interpolated)."""
        fy, fx = other.mg.fractional_index(self.mg.lat, self.mg.lon)
        self.t850, self.q, self.tbl, self.rain_rate, self.tp = other.mg.interpolate(
            [other.t850, other.q, other.tbl, other.rain_rate, other.tp], fy, fx
        )
        self.flow = other.flow
        self.storms = other.storms
        self._rendered = None
        self.invalidate()

    @property
    def time_h(self) -> float:
        """Hours since the sample start."""
        return self.flow.time_h

    # ---- equilibria ----------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget cached evaluations of the flow (after changing it in place)."""
        self._ff_key = None
        self._diag = None
        self.ev.clear()

    def flow_fields(self) -> _FlowFields:
        """Heights (m) and geostrophic winds of the large-scale flow on the grid, at the current time.

        A mapping whose values are interpolated from the coarse evaluation points when first asked for.
        """
        key = (id(self.flow), self.time_h)
        if key != self._ff_key:
            ev, p = self.ev, self.params
            coarse = {}
            for level in ("z500", "z850", "sfc"):
                z, u, v = ev.wind(self.flow, level, p)
                coarse[level], coarse["u_" + level], coarse["v_" + level] = z, u, v
            coarse["shield"] = ev.cyclone_shield(self.flow)
            day = float(round(day_of_year(self.time_h)))
            if getattr(self, "_base_day", None) != day:
                self._base500, self._base_day = self.coarse.upsample(ev.base(self.flow, "z500", p)), day
            self._ff = _FlowFields(coarse, self.coarse.upsample, {"z500_base": self._base500})
            self._ff_key = key
        return self._ff

    def _z500_anomaly(self) -> np.ndarray:
        ff = self.flow_fields()
        return ff["z500"] - ff["z500_base"]

    def _season(self) -> np.ndarray:
        """+1 in local midsummer, -1 in midwinter."""
        doy = day_of_year(self.time_h)
        return np.sign(self.mg.lat) * np.cos(2 * np.pi * (doy - 196.0) / 365.25)

    def _t850_eq(self, z500_anom: np.ndarray) -> np.ndarray:
        day = float(round(day_of_year(self.time_h)))
        if getattr(self, "_teq_day", None) != day:
            # radiative equilibrium follows the sun's latitude; continents heat up in summer
            lat_s = 8.0 * np.sin(2 * np.pi * (day - 80.0) / 365.25)
            t_rad = 258.0 + 34.0 * np.cos(np.deg2rad(self.mg.lat - lat_s)) ** 2
            season = self._season()
            heat = 7.0 * self.surface.continentality * np.maximum(season, -0.5)
            # the polar night: winter high latitudes cool far below the summer ones
            night = 15.0 * np.maximum(-season, 0.0) * np.sin(np.deg2rad(self.mg.lat)) ** 2
            self._teq_static, self._teq_day = t_rad + heat - night, day
        # thickness: a ridge is a warm column; saturating, since real air masses have bounded anomalies
        anom = z500_anom / self.params.thickness_m_per_k
        return self._teq_static + 15.0 * np.tanh(anom / 15.0)

    def _q_eq(self, t2m: np.ndarray) -> np.ndarray:
        rh = 0.82 - 0.12 * self.surface.land - 0.38 * self.surface.continentality
        return rh * qsat(t2m)

    # ---- diagnostics ---------------------------------------------------------------------------
    def _local_hour(self) -> np.ndarray:
        if getattr(self, "_lh_time", None) != self.time_h:
            self._lh, self._lh_time = (self.time_h + self.mg.lon / 15.0) % 24.0, self.time_h
        return self._lh

    def _t2m(self, t850: np.ndarray, tbl: np.ndarray, cloud: np.ndarray) -> np.ndarray:
        p = self.params
        day = float(round(day_of_year(self.time_h)))
        if getattr(self, "_amp_day", None) != day:
            # diurnal amplitude: land (more in the interior) versus ocean, scaled by the season's sun
            land = self.surface.land
            amp = p.diurnal_amp_land_k * (1 + 0.6 * self.surface.continentality) * land
            amp = amp + p.diurnal_amp_ocean_k * (1 - land)
            insol = np.clip(0.6 + 0.4 * self._season(), 0.2, 1.0) * np.cos(np.deg2rad(self.mg.lat)) ** 0.5
            self._amp, self._amp_day = amp * insol, day
            self._offset = p.surface_offset_k + 1.5 * land
        if getattr(self, "_cos_time", None) != self.time_h:
            self._cos_diurnal = np.cos(2 * np.pi * (self._local_hour() - 15.0) / 24.0)
            self._cos_time = self.time_h
        diurnal = self._amp * (1 - 0.6 * cloud) * self._cos_diurnal
        return t850 + self._offset + diurnal + tbl

    def instability(self, t2m: np.ndarray, z500_anom: np.ndarray) -> np.ndarray:
        """Instability index (K): moist static energy of the boundary layer against the air above."""
        return t2m + 2490.0 * self.q - self.t850 - 46.0 - z500_anom / 40.0

    def _surface_wind(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ff = self.flow_fields()
        z, u, v = ff["sfc"], ff["u_sfc"], ff["v_sfc"]
        if not hasattr(self, "_fric"):
            # friction: slower over land, and turned toward low pressure (anticlockwise in the north)
            land = self.surface.land
            fac = 0.8 - 0.2 * land
            ang = np.deg2rad(15.0 + 12.0 * land) * np.sign(self.mg.lat + 1e-9)
            self._fric = (fac * np.cos(ang), fac * np.sin(ang))
        fc, fs = self._fric
        u10 = fc * u - fs * v
        v10 = fs * u + fc * v
        return P_REF + RHO_AIR * GRAVITY * z, u10, v10

    def diagnose(self) -> dict[str, np.ndarray]:
        """The canonical fields at the current time (float64 arrays on the grid)."""
        if self._diag is not None:
            return self._diag
        ff = self.flow_fields()
        z500, u500, v500 = ff["z500"], ff["u_z500"], ff["v_z500"]
        u850, v850 = ff["u_z850"], ff["v_z850"]
        msl, u10, v10 = self._surface_wind()
        cloud = np.clip(self.rain_rate / 2.0, 0.0, 1.0)
        t2m = self._t2m(self.t850, self.tbl, cloud)
        ws10 = np.hypot(u10, v10)
        mixing = np.clip(np.cos(2 * np.pi * (self._local_hour() - 14.0) / 24.0), 0.0, 1.0) * self.surface.land
        gust = ws10 * (1.3 + 0.35 * mixing) + 1.0
        refc = np.full(self.mg.shape, NO_ECHO_DBZ)
        if self.explicit_storms and self._rendered is not None:
            z_lin = self._rendered.z_linear + self._strat_z
            np.maximum(gust, self._rendered.gust, out=gust)
        else:
            # grid-mean reflectivity of the grid-mean rain rate (Marshall-Palmer)
            z_lin = 200.0 * np.maximum(self.rain_rate, 0.0) ** 1.6
        echo = z_lin > 10 ** (NO_ECHO_DBZ / 10)
        refc[echo] = 10 * np.log10(z_lin[echo])
        if not self.explicit_storms:
            gust = gust + 1.2 * np.sqrt(np.maximum(self.rain_rate, 0.0))
        self._diag = {
            "t2m": t2m,
            "u10m": u10,
            "v10m": v10,
            "msl": msl,
            "tp": self.tp,
            "refc": refc,
            "gust": gust,
            "z500": z500 * GRAVITY,
            "t850": self.t850,
            "u850": u850,
            "v850": v850,
            "u500": u500,
            "v500": v500,
        }
        return self._diag

    _rendered: st.Rendered | None = None
    _strat_z: np.ndarray | float = 0.0

    # ---- time step -----------------------------------------------------------------------------
    def step(self, dt_h: float = 1.0, old_flow: dict[str, np.ndarray] | None = None) -> None:
        """Advance the atmosphere by ``dt_h`` hours.

        ``old_flow`` is for an atmosphere that shares its flow with another one that has already
        advanced it: pass this atmosphere's :meth:`flow_fields` from the start of the step, and the
        flow is not advanced again.
        """
        p = self.params
        mg = self.mg
        if old_flow is None:
            old_flow = self.flow_fields()
            step_flow(self.flow, dt_h, p, self.rng_flow)
        u850, v850 = old_flow["u_z850"], old_flow["v_z850"]
        steer_u = 0.5 * (old_flow["u_z850"] + old_flow["u_z500"])
        steer_v = 0.5 * (old_flow["v_z850"] + old_flow["v_z500"])
        self._diag = None
        t850, q, tbl = advect(mg, [self.t850, self.q, self.tbl], u850, v850, dt_h * 3600.0)
        z500_anom = self._z500_anomaly()
        a = 1 - np.exp(-dt_h / p.relax_tau_h)
        t850 = t850 + a * (self._t850_eq(z500_anom) - t850)
        cloud = np.clip(self.rain_rate / 2.0, 0.0, 1.0)
        t2m = self._t2m(t850, tbl, cloud)
        q = q + (1 - np.exp(-dt_h / p.moisture_tau_h)) * (self._q_eq(t2m) - q)
        self.t850, self.q = t850, q
        s = self.instability(t2m, z500_anom)
        shield = self.flow_fields()["shield"]
        strat_rate = np.clip(3.5 * shield * (q / 0.012) ** 1.5, 0.0, 8.0)
        t_now = self.time_h
        if self.explicit_storms:
            storms = self.storms
            st.update_systems(storms, mg, s, steer_u, steer_v, t_now, dt_h, p, self.rng_storms)
            st.spawn_systems(storms, mg, s, self.surface.land, t_now, dt_h, p, self.rng_storms)
            conv = np.zeros(mg.shape)
            # rain is sampled every half hour (quarter hour on fine grids); long forecast steps sample it
            # more coarsely, which is one of the ways the model is cheaper and less exact than the truth
            n_sub = min(int(np.ceil((2 if mg.spacing_m >= 15e3 else 4) * dt_h)), 4)
            for k in range(n_sub):
                t_sub = t_now - dt_h * (n_sub - 1 - k) / n_sub
                zr = st.render(storms, mg, t_sub, with_windows=False).z_rain if k < n_sub - 1 else None
                if zr is None:
                    self._rendered = st.render(storms, mg, t_sub)
                    zr = self._rendered.z_rain
                conv_k = st.rain_rate_from_z(zr)
                conv += conv_k / n_sub
            self._strat_z = 200.0 * strat_rate**1.6
            rate_now = conv_k + strat_rate
            mean_rate = conv + strat_rate
        else:
            diurnal = st.diurnal_initiation(mg.lon, t_now)
            conv = 0.25 * np.maximum(s, 0.0) ** 1.3 * diurnal * np.clip(q / 0.014, 0, 2)
            rate_now = conv + strat_rate
            # trapezoidal mean over the (long) step of the global run
            mean_rate = 0.5 * (self.rain_rate + rate_now)
        self.rain_rate = rate_now
        rain_mm = mean_rate * dt_h
        self.tp = rain_mm / 1000.0
        # rain dries the boundary layer and leaves a cold pool that decays
        self.q = np.maximum(q - np.minimum(0.5 * q, 2.0e-4 * rain_mm), 1e-5)
        tbl = tbl * np.exp(-dt_h / p.bl_tau_h) - 0.18 * rain_mm
        self.tbl = np.maximum(tbl, -9.0)
