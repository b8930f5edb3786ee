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
from workbench.sample.eddies import LEVEL_COEF, Eddies
from workbench.sample.flow import (
    GRAVITY,
    P_REF,
    RHO_AIR,
    Evaluator,
    FlowState,
    bounded_z500,
    day_of_year,
    step_flow,
)
from workbench.sample.geography import grid_land_fraction, orography, state_index
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

    def __init__(
        self,
        coarse: dict[str, np.ndarray],
        upsample,
        ready: dict[str, np.ndarray],
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__(ready)
        self._coarse = coarse
        self._upsample = upsample
        self._extra = extra or {}

    def _raw(self, key: str) -> np.ndarray:
        value = self._upsample(self._coarse[key])
        if key in self._extra:  # the eddies, which live on the full grid
            value = value + self._extra[key]
        return value

    def __missing__(self, key: str) -> np.ndarray:
        if key in ("z500", "u_z500", "v_z500"):
            # the summer 500 hPa heights are bounded (see flow.bounded_z500); their wind follows
            z, slope = bounded_z500(self._raw("z500"))
            self["z500"], self["u_z500"], self["v_z500"] = (
                z, self._raw("u_z500") * slope, self._raw("v_z500") * slope
            )
            return self[key]
        value = self._raw(key)
        self[key] = value
        return value


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def diurnal_shape(lst: np.ndarray) -> np.ndarray:
    """Shape (-1..1) of the land-surface diurnal cycle of t2m by local solar time (hours).

    Not a cosine: the minimum is near sunrise (06), the air warms quickly to a maximum in mid
    afternoon (15) and then cools, slowly until sunset, fastest in the evening and slowly again
    through the night, as a land surface under a clear sky does.
    """
    h = (np.asarray(lst) - 6.0) % 24.0  # hours since sunrise
    warm = -1.0 + 2.0 * np.sin(0.5 * np.pi * np.minimum(h, 9.0) / 9.0)
    since_max = np.maximum(h - 9.0, 0.0)
    end = np.exp(-((15.0 / 7.0) ** 1.6))
    cool = -1.0 + 2.0 * (np.exp(-((since_max / 7.0) ** 1.6)) - end) / (1.0 - end)
    return np.where(h <= 9.0, warm, cool)


class Surface:
    """Static surface properties of a grid.

    Attributes: land fraction, continentality (0 coast .. 1 interior), surface height ``elev`` (m,
    :func:`~workbench.sample.geography.orography` over land), the boundary layer's climatological
    relative humidity ``rh`` and the cooling of coastal air by cold sea water ``marine`` (0..1).

    Over North America the humidity follows the June climate: moist Gulf air east of the dryline
    (~101 W), drying to the north, dry air over the high West; the Pacific coast is cooled by the
    California Current. Elsewhere (the global grid) humidity falls with continentality.
    """

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
        lat, lon = mg.lat, mg.lon
        self.elev = orography(lat, lon) * self.land
        # North America (a soft box): the June moisture climate; elsewhere the generic one
        na = (
            np.clip((lon + 130.0) / 4.0, 0, 1) * np.clip((-58.0 - lon) / 4.0, 0, 1)
            * np.clip((lat - 14.0) / 4.0, 0, 1) * np.clip((58.0 - lat) / 4.0, 0, 1)
        )  # fmt: skip
        generic = 0.82 - 0.12 * self.land - 0.38 * self.continentality
        east = _sigmoid((lon + 102.5) / 0.8)  # the dryline's mean position
        north = np.clip((lat - 29.0) / 20.0, 0.0, 1.0)
        # the moist tongue the low-level jet draws north from the Gulf over the Plains
        tongue = np.exp(-(((lon + 97.5) / 7.0) ** 2))
        land_rh = 0.22 + east * (0.33 + 0.27 * tongue) * (1.0 - 0.3 * north)
        na_rh = self.land * land_rh + (1.0 - self.land) * 0.74
        self.rh = (1.0 - na) * generic + na * na_rh
        pacific = _sigmoid((-117.5 - lon) / 1.0) * np.clip((lat - 27.0) / 3.0, 0, 1) * np.clip((50.0 - lat) / 3.0, 0, 1)
        # the Gulf of Maine and the Atlantic north of Cape Hatteras are cold in June too
        atlantic = _sigmoid((lon + 76.0) / 1.0) * np.clip((lat - 37.0) / 3.0, 0, 1)
        self.marine = na * np.maximum(pacific, 0.6 * atlantic) * (1.0 - self.continentality)
        # where storms may organise into long-lived nocturnal systems (MCSs): the moist lowlands east
        # of the Rockies, which the Great Plains low-level jet feeds with Gulf air at night
        self.mcs_region = na * self.land * east * np.clip((lat - 28.0) / 3.0, 0, 1) * np.clip((50.0 - lat) / 3.0, 0, 1)
        self.mcs_region *= np.clip((lon + 80.0) / -5.0, 0, 1)  # west of the Appalachians
        # steep mid-level lapse rates: air heated over the Mexican plateau and the Rockies flows out
        # over the Plains above the moist layer (the elevated mixed layer), which makes their air the
        # most unstable of the continent in late spring and summer (K added to the instability)
        self.eml = 5.0 * na * self.land * (
            np.exp(-(((lon + 97.0) / 6.0) ** 2)) * np.clip((lat - 32.0) / 4.0, 0, 1) * np.clip((47.0 - lat) / 4.0, 0, 1)
        )  # fmt: skip
        gy, gx = np.gradient(self.elev, mg.spacing_m)
        self.slope = np.hypot(gy, gx)  # m/m


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
        # synoptic and mesoscale eddies on the limited-area grid (the global grid resolves neither)
        self.eddies = (
            Eddies(mg.shape, mg.spacing_m, mg.lat, params, rng_flow if rng_flow is not None else rng_storms)
            if explicit_storms and not mg.periodic
            else None
        )
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
            "eddies": self.eddies.copy() if self.eddies is not None else None,
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
        if snap.get("eddies") is not None:
            self.eddies = snap["eddies"].copy()
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
            extra = {}
            llj = self._low_level_jet()
            if llj is not None:
                extra["v_z850"], extra["v_sfc"] = llj, 0.4 * llj
            if self.eddies is not None:
                ed = self.eddies.fields()
                for level, c in LEVEL_COEF.items():
                    extra[level] = c * ed["z"]
                    extra["u_" + level] = c * ed["u"]
                    extra["v_" + level] = extra.get("v_" + level, 0.0) + c * ed["v"]
            self._ff = _FlowFields(coarse, self.coarse.upsample, {"z500_base": self._base500}, extra)
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
        # humidity of sea-level-equivalent air (high ground is not drier for being cooler)
        return self.surface.rh * qsat(t2m + self._elev_cooling())

    # ---- diagnostics ---------------------------------------------------------------------------
    def _local_hour(self) -> np.ndarray:
        if getattr(self, "_lh_time", None) != self.time_h:
            self._lh, self._lh_time = (self.time_h + self.mg.lon / 15.0) % 24.0, self.time_h
        return self._lh

    def _elev_cooling(self) -> np.ndarray:
        """How much cooler (K) t2m is on high ground than sea-level air at the same 850 hPa temperature."""
        return 7.0e-3 * self.surface.elev

    def _t2m(
        self, t850: np.ndarray, tbl: np.ndarray, cloud: np.ndarray, diurnal_cycle: bool = True
    ) -> np.ndarray:
        p = self.params
        day = float(round(day_of_year(self.time_h)))
        if getattr(self, "_amp_day", None) != day:
            # diurnal amplitude: land (more in the dry interior and on high ground) versus ocean,
            # scaled by the season's sun
            sf = self.surface
            land = sf.land
            dry = np.clip(1.35 - sf.rh, 0.6, 1.2)
            amp = p.diurnal_amp_land_k * (1 + 0.5 * sf.continentality) * dry * (1 + 0.15 * sf.elev / 1000) * land
            amp = amp + p.diurnal_amp_ocean_k * (1 - land)
            insol = np.clip(0.6 + 0.4 * self._season(), 0.2, 1.0) * np.cos(np.deg2rad(self.mg.lat)) ** 0.5
            self._amp, self._amp_day = amp * insol * (1 - 0.5 * sf.marine), day
            self._offset = p.surface_offset_k + 1.5 * land - self._elev_cooling() - 4.5 * sf.marine
        if getattr(self, "_cos_time", None) != self.time_h:
            self._cos_diurnal = diurnal_shape(self._local_hour())
            self._cos_time = self.time_h
        t2m = t850 + self._offset + tbl
        # over the sea the air sits on water whose temperature hardly changes from day to day
        sea = 0.7 * (1.0 - self.surface.land)
        t2m = (1.0 - sea) * t2m + sea * (self._teq_sst() + self._offset)
        if diurnal_cycle:
            t2m = t2m + self._amp * (1 - 0.6 * cloud) * self._cos_diurnal
        return t2m

    def _teq_sst(self) -> np.ndarray:
        """The sea's climatological 850 hPa equilibrium temperature (K), which the sea surface follows."""
        if getattr(self, "_teq_day", None) != float(round(day_of_year(self.time_h))):
            self._t850_eq(np.zeros(self.mg.shape))
        return self._teq_static

    def instability(self, t2m: np.ndarray, z500_anom: np.ndarray) -> np.ndarray:
        """Instability index (K): moist static energy of the boundary layer against the air above.

        ``t2m`` is taken back to sea level first: on high ground the surface itself is nearer 850 hPa,
        and its heating lifts air as well as a sea-level surface's does.
        """
        s = t2m + self._elev_cooling() + 2490.0 * self.q - self.t850 - 46.0 - z500_anom / 40.0
        return s + self.surface.eml

    def _triggers(self, q: np.ndarray, t850: np.ndarray) -> np.ndarray:
        """Where air is lifted, so storms start (a factor on the initiation rate, 1 = no lift).

        Drylines (sharp moisture contrasts), fronts (sharp 850 hPa temperature contrasts) and sloping
        high ground heated in the afternoon (upslope flow).
        """
        sp = self.mg.spacing_m
        qy, qx = np.gradient(q, sp)
        ty, tx = np.gradient(t850, sp)
        dry = np.hypot(qy, qx) * 1e5 / 2.5e-3  # 1 at 2.5 g/kg per 100 km
        front = np.hypot(ty, tx) * 1e5 / 3.0  # 1 at 3 K per 100 km
        day = np.clip(diurnal_shape(self._local_hour()), 0.0, 1.0)
        terrain = self.surface.slope / 0.01 * day  # 1 at 1 km per 100 km
        return 1.0 + 3.0 * np.clip(dry, 0, 1.5) + 2.0 * np.clip(front, 0, 1.5) + 2.0 * np.clip(terrain, 0, 1)

    def _low_level_jet(self) -> np.ndarray | None:
        """Northward wind (m/s) of the Great Plains nocturnal low-level jet at 850 hPa, on this grid."""
        if self.mg.periodic:
            return None
        if getattr(self, "_llj_shape", None) is None:
            lat, lon = self.mg.lat, self.mg.lon
            self._llj_shape = (
                np.exp(-(((lon + 98.0) / 3.5) ** 2)) * np.clip((lat - 26.0) / 4.0, 0, 1) * np.clip((44.0 - lat) / 4.0, 0, 1)
            )  # fmt: skip
        night = np.maximum(np.cos(2 * np.pi * (self._local_hour() - 2.0) / 24.0), 0.0)
        return 9.0 * self._llj_shape * night

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
        if self.eddies is not None:
            # eddies ride the mean steering flow; a forecast renews them from its own random stream
            self.eddies.step(dt_h, float(steer_u.mean()), float(steer_v.mean()), self.rng_flow)
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
        # storms already going feed on the air above the nocturnal surface layer: their instability
        # does not fall with the surface's night-time cooling (elevated convection, MCSs)
        s_kept = s + np.maximum(self._t2m(t850, tbl, cloud, diurnal_cycle=False) - t2m, 0.0)
        shield = self.flow_fields()["shield"]
        strat_rate = np.clip(3.5 * shield * (q / 0.012) ** 1.5, 0.0, 8.0)
        t_now = self.time_h
        if self.explicit_storms:
            storms = self.storms
            st.update_systems(storms, mg, s_kept, steer_u, steer_v, t_now, dt_h, p, self.rng_storms)
            st.spawn_systems(
                storms, mg, s, self.surface.land, t_now, dt_h, p, self.rng_storms,
                trigger=self._triggers(q, t850), mcs_region=self.surface.mcs_region,
            )  # fmt: skip
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
        self.q = np.maximum(q - np.minimum(0.5 * q, 1.0e-4 * rain_mm), 1e-5)
        tbl = tbl * np.exp(-dt_h / p.bl_tau_h) - 0.12 * rain_mm
        self.tbl = np.maximum(tbl, -9.0)
