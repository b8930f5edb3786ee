"""Convective storms: systems that start where the air is unstable and spawn short-lived cells.

A *system* (one storm-report episode) starts at a point drawn from the initiation rate, which grows
with boundary-layer instability and peaks in the late afternoon (local solar time). It drifts with the
steering flow, spawns a new *cell* every ``cell_interval_h`` or so, and stops spawning at the end of
its life or when it moves into stable air. A cell is analytic in time: it moves in a straight line
from its birth point at the steering velocity (strong cells turn right of the mean wind, as
supercells do), and its intensity follows ``sin(pi * age / life) ** 0.8``. Rendered on a grid a cell
is a Gaussian blob of linear reflectivity, a rain core and a gust front ahead of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workbench.sample.flow import displace
from workbench.sample.params import AtmosphereParams
from workbench.sample.tracers import ModelGrid

_SYS_FIELDS = ("id", "lat", "lon", "birth", "end", "power", "next_cell", "tor_prone", "mcs")
_CELL_FIELDS = ("id", "system", "lat0", "lon0", "t0", "u", "v", "life", "dbz", "radius", "gust", "tornado")


def _empty(names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {n: np.zeros(0) for n in names}


@dataclass
class StormSet:
    """The active convective systems and cells (arrays keyed by attribute)."""

    systems: dict[str, np.ndarray] = field(default_factory=lambda: _empty(_SYS_FIELDS))
    cells: dict[str, np.ndarray] = field(default_factory=lambda: _empty(_CELL_FIELDS))
    next_system_id: int = 1
    next_cell_id: int = 1

    def copy(self) -> StormSet:
        """A deep copy."""
        return StormSet(
            {k: v.copy() for k, v in self.systems.items()},
            {k: v.copy() for k, v in self.cells.items()},
            self.next_system_id,
            self.next_cell_id,
        )

    def cell_positions(self, t_h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Latitude, longitude and intensity (0..1, 0 when not alive) of every cell at time ``t_h``."""
        c = self.cells
        age = t_h - c["t0"]
        dt_s = age * 3600.0
        lat, lon = displace(c["lat0"], c["lon0"], c["u"] * dt_s, c["v"] * dt_s)
        x = np.clip(age / np.maximum(c["life"], 1e-6), 0.0, 1.0)
        alive = (age >= 0) & (age <= c["life"])
        inten = np.where(alive, np.sin(np.pi * x) ** 0.8, 0.0)
        return lat, lon, inten


def diurnal_initiation(lon: np.ndarray, t_h: float) -> np.ndarray:
    """Relative initiation rate by local solar time: afternoon peak, weak nocturnal activity."""
    lst = (t_h + np.asarray(lon) / 15.0) % 24.0
    d = (lst - 17.0 + 12.0) % 24.0 - 12.0
    return 0.12 + np.exp(-0.5 * (d / 2.8) ** 2)


def spawn_systems(
    storms: StormSet,
    mg: ModelGrid,
    instability: np.ndarray,
    land: np.ndarray,
    t_h: float,
    dt_h: float,
    params: AtmosphereParams,
    rng: np.random.Generator,
    trigger: np.ndarray | None = None,
    mcs_region: np.ndarray | None = None,
) -> None:
    """Start new systems with a Poisson rate ~ instability**1.5, afternoon peak, mostly over land.

    ``trigger`` multiplies the rate where air is lifted (drylines, fronts, high ground). Strong
    systems born in the afternoon or evening inside ``mcs_region`` (0..1) may grow into mesoscale
    convective systems (MCSs): they live through the night, spawn cells faster, and propagate
    east-south-east, as the Plains' nocturnal MCSs do.
    """
    unstable = np.flatnonzero(instability.ravel() > 0)
    if not unstable.size:
        return
    s = instability.ravel()[unstable]
    rate = (
        params.storm_rate
        * s**1.5
        * diurnal_initiation(mg.lon.ravel()[unstable], t_h)
        * (0.05 + 0.95 * land.ravel()[unstable])
        * (mg.cell_area_km2.ravel()[unstable] / 1e4)
        * dt_h
    )
    if trigger is not None:
        rate = rate * trigger.ravel()[unstable]
    total = float(rate.sum())
    n = rng.poisson(total) if total > 0 else 0
    if n == 0:
        return
    flat = unstable[rng.choice(rate.size, size=n, p=rate / total)]
    iy, ix = np.unravel_index(flat, instability.shape)
    jitter = mg.spacing_m * 0.5
    lat, lon = displace(
        mg.lat[iy, ix], mg.lon[iy, ix], rng.uniform(-jitter, jitter, n), rng.uniform(-jitter, jitter, n)
    )
    power = np.clip(0.2 + instability[iy, ix] / 9.0 + 0.3 * rng.standard_normal(n), 0.15, 1.6)
    lst = (t_h + lon / 15.0) % 24.0
    region = mcs_region[iy, ix] if mcs_region is not None else np.zeros(n)
    mcs = (power > 0.5) & (lst >= 15.0) & (lst <= 22.0) & (rng.random(n) < params.mcs_share * region)
    life = np.where(mcs, rng.uniform(10.0, 16.0, n), (1.5 + 7.0 * power) * rng.uniform(0.5, 1.5, n))
    sysd = storms.systems
    new = {
        "id": np.arange(storms.next_system_id, storms.next_system_id + n, dtype=float),
        "lat": lat,
        "lon": lon,
        "birth": np.full(n, t_h - dt_h * rng.random(n)),
        "end": t_h + life,
        "power": power,
        "next_cell": np.full(n, t_h - 1.0),
        "tor_prone": (power > 0.9) & (rng.random(n) < 0.35) & ~mcs,
        "mcs": mcs,
    }
    storms.next_system_id += n
    for k in _SYS_FIELDS:
        sysd[k] = np.concatenate([sysd[k], np.asarray(new[k], dtype=float)])


def update_systems(
    storms: StormSet,
    mg: ModelGrid,
    instability: np.ndarray,
    steer_u: np.ndarray,
    steer_v: np.ndarray,
    t_h: float,
    dt_h: float,
    params: AtmosphereParams,
    rng: np.random.Generator,
) -> None:
    """Move systems with the steering flow, end those in stable air, and let them spawn cells."""
    sysd = storms.systems
    if sysd["id"].size:
        fy, fx = mg.fractional_index(sysd["lat"], sysd["lon"])
        u, v, s = mg.interpolate([steer_u, steer_v, instability], fy, fx)
        u, v = params.storm_steering * u, params.storm_steering * v
        # MCSs propagate: new cells form on the outflow's downshear, east-south-east side
        mcs = sysd["mcs"] > 0
        u, v = u + 3.0 * mcs, v - 1.0 * mcs
        lat, lon = displace(sysd["lat"], sysd["lon"], u * dt_h * 3600, v * dt_h * 3600)
        sysd["lat"], sysd["lon"] = lat, lon
        # an MCS's cold pool lifts air that is stable at the ground: it takes much more to stop it
        stable = s < np.where(mcs, -12.0, -4.0)
        sysd["end"] = np.where(stable, np.minimum(sysd["end"], t_h), sysd["end"])
        new = []
        for i in range(sysd["id"].size):
            while sysd["next_cell"][i] <= min(t_h, sysd["end"][i]):
                new.append(_new_cell(storms, i, u[i], v[i], max(sysd["next_cell"][i], t_h - dt_h), rng))
                interval = params.cell_interval_h * (0.3 if mcs[i] else 1.0)
                sysd["next_cell"][i] += interval * rng.uniform(0.6, 1.4)
        if new:
            c = storms.cells
            for k in _CELL_FIELDS:
                c[k] = np.concatenate([c[k], np.array([cell[k] for cell in new], dtype=float)])
    # forget systems that stopped spawning and whose last cell has died
    c = storms.cells
    cell_alive = t_h <= c["t0"] + c["life"]
    for k in _CELL_FIELDS:
        c[k] = c[k][cell_alive]
    active_sys = set(c["system"].astype(int).tolist())
    keep = (sysd["end"] > t_h) | np.isin(sysd["id"].astype(int), list(active_sys))
    for k in _SYS_FIELDS:
        sysd[k] = sysd[k][keep]


def _new_cell(storms: StormSet, i: int, u: float, v: float, t0: float, rng: np.random.Generator) -> dict:
    """A new cell of system ``i`` (attributes by name), born at ``t0`` near the system's centre."""
    sysd = storms.systems
    p = float(sysd["power"][i])
    off = rng.normal(0.0, 25e3, 2)
    lat0, lon0 = displace(sysd["lat"][i], sysd["lon"][i], off[0], off[1])
    mcs = bool(sysd["mcs"][i])
    supercell = not mcs and (bool(sysd["tor_prone"][i]) or (p > 1.0 and rng.random() < 0.5))
    if supercell:  # right-movers: 30 degrees right of the mean wind, 25% slower
        a = np.deg2rad(-30.0)
        u, v = 0.75 * (u * np.cos(a) - v * np.sin(a)), 0.75 * (u * np.sin(a) + v * np.cos(a))
    new = {
        "id": storms.next_cell_id,
        "system": sysd["id"][i],
        "lat0": float(lat0),
        "lon0": float(lon0),
        "t0": t0,
        "u": u,
        "v": v,
        "life": (0.8 + 2.2 * p) * rng.uniform(0.6, 1.4) * (1.5 if supercell else 1.4 if mcs else 1.0),
        # MCS cells: many, wide, long-lived, but less intense than isolated storms (less hail)
        "dbz": 45.0 + 13.0 * min(p, 1.4) + rng.normal(0.0, 2.0) - (3.0 if mcs else 0.0),
        "radius": (6.0 + 7.0 * p) * 1e3 * rng.uniform(0.8, 1.25) * (1.8 if mcs else 1.0),
        "gust": (11.0 + 17.0 * p + rng.normal(0.0, 2.5)) * (0.9 if mcs else 1.0),
        "tornado": float(bool(sysd["tor_prone"][i]) and rng.random() < 0.5),
    }
    storms.next_cell_id += 1
    return new


@dataclass
class Rendered:
    """Storm fields on a grid at one time, and the window of grid cells each live cell touches."""

    z_linear: np.ndarray  # linear reflectivity (mm6 m-3)
    z_rain: np.ndarray  # linear reflectivity weighted by the cell's cover of a grid cell (for rain)
    gust: np.ndarray  # m/s
    windows: list[tuple[int, slice, slice, float]]  # (cell index, rows, cols, intensity)


def render(storms: StormSet, mg: ModelGrid, t_h: float, with_windows: bool = True) -> Rendered:
    """Rasterise every live cell at time ``t_h`` onto the grid (all cells at once)."""
    shape = mg.shape
    npts = shape[0] * shape[1]
    c = storms.cells
    empty = Rendered(np.zeros(shape), np.zeros(shape), np.zeros(shape), [])
    if not c["id"].size:
        return empty
    lat, lon, inten = storms.cell_positions(t_h)
    live = np.flatnonzero(inten > 0.02)
    if not live.size:
        return empty
    fy, fx = mg.fractional_index(lat[live], lon[live])
    sp = mg.spacing_m
    r = c["radius"][live]
    r_eff = np.maximum(r, 0.6 * sp)
    n = int(np.ceil(3.5 * r_eff.max() / sp)) + 1
    off = np.arange(-n, n + 1)
    by, bx = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
    iy = by[:, None, None] + off[None, :, None]
    ix = bx[:, None, None] + off[None, None, :]
    yy = (iy - fy[:, None, None]) * sp
    xx = (ix - fx[:, None, None]) * sp
    valid = (iy >= 0) & (iy < shape[0]) & (ix >= 0) & (ix < shape[1])
    valid = np.broadcast_to(valid, (live.size, off.size, off.size))
    flat = np.broadcast_to(iy * shape[1] + ix, valid.shape)[valid]
    re2 = (r_eff**2)[:, None, None]
    amp = (10.0 ** (c["dbz"][live] * inten[live] / 10.0))[:, None, None]
    blob = amp * np.exp(-0.5 * (yy**2 + xx**2) / re2)
    z = np.bincount(flat, blob[valid], minlength=npts).reshape(shape)
    cover = ((r / r_eff) ** 2)[:, None, None]
    zr = np.bincount(flat, (blob * cover)[valid], minlength=npts).reshape(shape)
    # the gust front leads the core along the cell's motion (grid axes taken as east/north)
    u, v = c["u"][live], c["v"][live]
    speed = np.hypot(u, v) + 1e-6
    ox = (0.6 * r_eff * u / speed)[:, None, None]
    oy = (0.6 * r_eff * v / speed)[:, None, None]
    g2 = ((yy - oy) ** 2 + (xx - ox) ** 2) / (1.96 * re2)
    g = (c["gust"][live] * inten[live] ** 0.7)[:, None, None] * np.exp(-0.5 * g2)
    gust = np.zeros(npts)
    np.maximum.at(gust, flat, np.broadcast_to(g, valid.shape)[valid])
    windows: list[tuple[int, slice, slice, float]] = []
    if with_windows:
        for j, i in enumerate(live):
            y0, y1 = max(by[j] - n, 0), min(by[j] + n + 1, shape[0])
            x0, x1 = max(bx[j] - n, 0), min(bx[j] + n + 1, shape[1])
            if y0 < y1 and x0 < x1:
                windows.append((int(i), slice(int(y0), int(y1)), slice(int(x0), int(x1)), float(inten[i])))
    return Rendered(z, zr, gust.reshape(shape), windows)


def rain_rate_from_z(z_linear: np.ndarray) -> np.ndarray:
    """Marshall-Palmer rain rate (mm/h) from linear reflectivity, capped at 53 dBZ as radar QPE does."""
    rate = np.zeros(z_linear.shape)
    echo = z_linear >= 10.0
    rate[echo] = (np.minimum(z_linear[echo], 10.0**5.3) / 200.0) ** (1 / 1.6)
    return rate
