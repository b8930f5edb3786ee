"""The sample atmosphere's climate, measured against the June climate of the US it stands in for.

Prints, for one sample size (default: ``default``, the test period):

* how often composite reflectivity reaches 40 dBZ over the Plains box (35-45 N, 90-105 W) and over US
  land within 150 km of the sea (the coasts), and per hour of local solar time over the Plains;
* the mean daily range of t2m over Plains land and over the sea next to the US (days from 06 UTC, local
  midnight in the Plains);
* the slopes of the 850 hPa kinetic-energy spectrum (u850, v850) at 400-1500 km and 100-300 km
  wavelength (the atmosphere: about -3 and -5/3, Nastrom and Gage 1985), and of z500;
* the range of z500 (m) over the domain and period;
* the median and largest BEGIN_RANGE (miles) of the convective Storm Events reports;
* the generation time recorded in the sample's completion marker.

With ``--figures DIR`` it also draws the maps and spectra that docs/sample.md shows (needs matplotlib,
the ``docs`` extra). ``--check`` exits with status 1 when a target is missed.

Usage::

    python benchmarks/sample_climate.py                     # the default sample (generated if needed)
    python benchmarks/sample_climate.py --figures docs/figures
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from workbench.sample import ensure_sample, open_sample
from workbench.sample.geography import state_index

GRAVITY = 9.80665
PLAINS = {"lat": (35.0, 45.0), "lon": (-105.0, -90.0)}
COAST_KM = 150.0

#: What the atmosphere shows (June, CONUS), as (low, high) bounds of each measured number.
TARGETS = {
    "t2m_daily_range_plains_k": (10.0, None),
    "ke850_slope_400_1500km": (-3.5, -2.5),
    "ke850_slope_100_300km": (-2.2, -1.3),
    "z500_min_m": (5300.0, None),
    "z500_max_m": (None, 5980.0),
    "begin_range_median_mi": (None, 5.0),
}


def _plains(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    return (lat >= PLAINS["lat"][0]) & (lat <= PLAINS["lat"][1]) & (lon >= PLAINS["lon"][0]) & (lon <= PLAINS["lon"][1])


def _masks(ds) -> dict[str, np.ndarray]:
    lat, lon = ds.latitude.values, ds.longitude.values
    us = state_index(lat, lon) > 0
    spacing_km = float(np.median(np.diff(ds.x.values))) / 1e3
    # distance (km) of every cell to the nearest non-US cell (sea, lakes, Canada and Mexico count too;
    # those are trimmed by keeping only cells south of 49 N and north of 25 N in the US)
    from workbench.grids import hrrr_grid
    from workbench.sample.atmosphere import Surface
    from workbench.sample.tracers import ModelGrid

    land = Surface(ModelGrid(hrrr_grid(spacing_km))).land > 0.5
    # coasts: US land within COAST_KM of the sea (the Great Lakes count as sea, Canada and Mexico not)
    dist = ndimage.distance_transform_edt(land) * spacing_km
    coast = us & (dist <= COAST_KM)
    near_sea = ~land & (ndimage.distance_transform_edt(~us) * spacing_km <= 300.0)
    return {"plains": us & _plains(lat, lon), "coast": coast, "sea": near_sea, "us": us}


def ke_spectrum(u: np.ndarray, v: np.ndarray, dx_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Radially summed kinetic-energy spectrum of fields ``(time, y, x)``: wavelengths (km) and E(k).

    Each field is detrended (mean and linear trends removed) and tapered with a Tukey window, so the
    edges of the limited area do not leak energy into the small scales.
    """
    from scipy.signal import detrend
    from scipy.signal.windows import tukey

    ny, nx = u.shape[-2:]
    win = np.outer(tukey(ny, 0.3), tukey(nx, 0.3))
    power = np.zeros((ny, nx))
    for f in (u, v):
        a = detrend(detrend(np.asarray(f, float), axis=-1), axis=-2) * win
        power += 0.5 * (np.abs(np.fft.fft2(a)) ** 2).mean(axis=0)
    ky = np.fft.fftfreq(ny, dx_km)
    kx = np.fft.fftfreq(nx, dx_km)
    k = np.hypot(*np.meshgrid(ky, kx, indexing="ij"))
    dk = 1.0 / (max(nx, ny) * dx_km)
    ring = np.rint(k / dk).astype(int)
    e = np.bincount(ring.ravel(), power.ravel())
    kk = np.arange(e.size) * dk
    ok = (kk > 0) & (kk <= 0.5 / dx_km)
    return 1.0 / kk[ok], e[ok]


def slope(wavelength_km: np.ndarray, energy: np.ndarray, lo: float, hi: float) -> float:
    """Least-squares slope of log E against log k for wavelengths in [lo, hi] km."""
    sel = (wavelength_km >= lo) & (wavelength_km <= hi) & (energy > 0)
    return float(np.polyfit(np.log(1.0 / wavelength_km[sel]), np.log(energy[sel]), 1)[0])


def measure(size: str = "default") -> dict:
    """The sample's climate numbers (see the module docstring)."""
    paths = ensure_sample(size, progress=False)
    ds = open_sample("hrrr", size=size, progress=False)
    m = _masks(ds)
    out: dict = {}
    refc = ds.refc.values
    storm = refc >= 40.0
    out["refc40_freq_plains"] = float(storm[:, m["plains"]].mean())
    out["refc40_freq_coast"] = float(storm[:, m["coast"]].mean())
    out["refc40_freq_us"] = float(storm[:, m["us"]].mean())
    # local solar hour of the Plains' centre (97.5 W)
    hours = pd.DatetimeIndex(ds.time.values).hour.to_numpy()
    lst = (hours - 6.5) % 24
    by_hour = np.array([storm[lst.astype(int) == h][:, m["plains"]].mean() for h in range(24)])
    out["refc40_plains_by_local_hour"] = [round(float(x), 5) for x in by_hour]
    night = storm[(lst >= 21) | (lst < 6)][:, m["plains"]].mean()
    out["refc40_plains_night_share"] = float(night * 9 / (by_hour.sum() + 1e-12))
    # daily range: days from 06 UTC
    t2m = ds.t2m.values
    first = int(np.flatnonzero(hours == 6)[0])
    n_days = (t2m.shape[0] - first) // 24
    days = t2m[first : first + 24 * n_days].reshape(n_days, 24, *t2m.shape[1:])
    dtr = (days.max(axis=1) - days.min(axis=1)).mean(axis=0)
    out["t2m_daily_range_plains_k"] = float(dtr[m["plains"]].mean())
    out["t2m_daily_range_sea_k"] = float(dtr[m["sea"]].mean())
    out["_dtr_map"] = dtr
    out["_storm_map"] = storm.mean(axis=0)
    # spectra, every 6 hours
    dx_km = float(np.median(np.diff(ds.x.values))) / 1e3
    u, v = ds.u850.values[::6], ds.v850.values[::6]
    wl, e = ke_spectrum(u, v, dx_km)
    out["ke850_slope_400_1500km"] = slope(wl, e, 400.0, 1500.0)
    out["ke850_slope_100_300km"] = slope(wl, e, 100.0, 300.0)
    z = ds.z500.values[::6] / GRAVITY
    zw, ze = ke_spectrum(z, np.zeros_like(z), dx_km)
    out["z500_slope_400_1500km"] = slope(zw, ze, 400.0, 1500.0)
    out["_spectrum"] = (wl, e)
    zall = ds.z500.values / GRAVITY
    out["z500_min_m"], out["z500_max_m"] = float(zall.min()), float(zall.max())
    events = open_sample("reports", size=size, progress=False)
    conv = events[events["CZ_TYPE"] == "C"]
    rng = pd.to_numeric(conv["BEGIN_RANGE"], errors="coerce").dropna()
    out["begin_range_median_mi"] = float(rng.median())
    out["begin_range_max_mi"] = float(rng.max())
    out["storm_events"] = len(events)
    tz = events["CZ_TIMEZONE"].value_counts()
    out["storm_events_by_timezone"] = {str(k): int(v) for k, v in tz.items()}
    out["storm_events_by_state_top5"] = {
        str(k): int(v) for k, v in events["STATE"].value_counts().head(5).items()
    }
    info = json.loads((paths.root / "COMPLETE.json").read_text())
    out["generation_seconds"] = info.get("seconds")
    out["analysis_error_rms"] = open_sample("analysis", size=size, progress=False).attrs.get("analysis_error_rms")
    return out


def check(res: dict) -> list[str]:
    """Targets the measured climate misses (empty when all are met)."""
    missed = []
    if not res["refc40_freq_plains"] > res["refc40_freq_coast"]:
        missed.append("refc >= 40 dBZ: the Plains are not more stormy than the coasts")
    for key, (lo, hi) in TARGETS.items():
        x = res[key]
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            missed.append(f"{key} = {x:.3g} outside [{lo}, {hi}]")
    if not res["t2m_daily_range_plains_k"] > 2 * res["t2m_daily_range_sea_k"]:
        missed.append("no land-sea contrast of the daily range")
    return missed


def report(res: dict) -> str:
    lines = [
        f"refc >= 40 dBZ frequency   Plains {res['refc40_freq_plains']:.4f}   coasts {res['refc40_freq_coast']:.4f}"
        f"   all US land {res['refc40_freq_us']:.4f}   (Plains higher)",
        f"  Plains, share at night (21-06 local) {res['refc40_plains_night_share']:.2f}; by local hour (x1e3): "
        + " ".join(f"{1e3 * x:.1f}" for x in res["refc40_plains_by_local_hour"]),
        f"t2m mean daily range       Plains land {res['t2m_daily_range_plains_k']:.1f} K   sea {res['t2m_daily_range_sea_k']:.1f} K"
        "   (Plains >= 10 K)",
        f"KE spectrum slope 850 hPa  400-1500 km {res['ke850_slope_400_1500km']:.2f} (-3.5..-2.5)   100-300 km "
        f"{res['ke850_slope_100_300km']:.2f} (-2.2..-1.3)   [z500 400-1500 km {res['z500_slope_400_1500km']:.2f}]",
        f"z500 range                 {res['z500_min_m']:.0f} - {res['z500_max_m']:.0f} m   (within 5300-5980)",
        f"BEGIN_RANGE                median {res['begin_range_median_mi']:.0f} mi, max {res['begin_range_max_mi']:.0f} mi"
        "   (median <= 5)",
        f"storm events               {res['storm_events']}; by time zone {res['storm_events_by_timezone']}",
        f"                           top states {res['storm_events_by_state_top5']}",
        f"analysis error RMS         {res['analysis_error_rms']}",
        f"generation                 {res['generation_seconds']} s",
    ]
    return "\n".join(lines)


def figures(res: dict, size: str, out: Path) -> list[Path]:
    """Maps of storm frequency and daily range, and the KE spectrum against reference slopes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = open_sample("hrrr", size=size, progress=False)
    lat, lon = ds.latitude.values, ds.longitude.values
    us = state_index(lat, lon) > 0
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def _map(field, title, label, name, cmap, vmax=None):
        fig, ax = plt.subplots(figsize=(8, 4.6), dpi=110)
        pc = ax.pcolormesh(lon, lat, field, cmap=cmap, shading="auto", vmin=0, vmax=vmax)
        ax.contour(lon, lat, us.astype(float), levels=[0.5], colors="k", linewidths=0.6)
        ax.plot([-105, -90, -90, -105, -105], [35, 35, 45, 45, 35], "w--", lw=1.2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("longitude")
        ax.set_ylabel("latitude")
        fig.colorbar(pc, ax=ax, label=label, shrink=0.85)
        fig.tight_layout()
        path = out / name
        fig.savefig(path)
        plt.close(fig)
        written.append(path)

    _map(100 * res["_storm_map"], "Share of hours with refc >= 40 dBZ (dashed: the Plains box)", "%",
         "sample_storm_frequency.png", "viridis", vmax=max(0.5, float(np.percentile(100 * res["_storm_map"], 99.5))))
    _map(res["_dtr_map"], "Mean daily range of t2m (days from 06 UTC)", "K", "sample_diurnal_range.png",
         "magma", vmax=16)

    wl, e = res["_spectrum"]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    k = 1.0 / wl
    ax.loglog(k, e, "k-", lw=1.5, label="sample u850, v850")
    for lo, hi, p, style, lab in ((400, 1500, -3.0, "b--", "$k^{-3}$"), (100, 300, -5 / 3, "r--", "$k^{-5/3}$")):
        sel = (wl >= lo) & (wl <= hi)
        k0 = np.exp(np.mean(np.log(k[sel])))
        e0 = np.exp(np.mean(np.log(e[sel])))
        kr = np.array([1 / hi, 1 / lo])
        ax.loglog(kr, e0 * (kr / k0) ** p * 1.6, style, lw=1.2, label=f"{lab} ({lo}-{hi} km)")
    ax.set_xlabel("wavenumber (1/km)")
    ax.set_ylabel("kinetic energy (arbitrary units)")
    top = ax.secondary_xaxis("top", functions=(lambda x: 1 / np.maximum(x, 1e-9), lambda x: 1 / np.maximum(x, 1e-9)))
    top.set_xlabel("wavelength (km)")
    ax.set_title(
        f"850 hPa KE spectrum: slopes {res['ke850_slope_400_1500km']:.2f} (400-1500 km), "
        f"{res['ke850_slope_100_300km']:.2f} (100-300 km)", fontsize=9
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "sample_ke_spectrum.png"
    fig.savefig(path)
    plt.close(fig)
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="default")
    parser.add_argument("--figures", type=Path, default=None, help="directory to draw the figures into")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    res = measure(args.size)
    print(f"sample size {args.size!r}")
    print(report(res))
    missed = check(res)
    print("targets: all met" if not missed else "targets missed: " + "; ".join(missed))
    if args.figures is not None:
        for p in figures(res, args.size, args.figures):
            print("wrote", p)
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
