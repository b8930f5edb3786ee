"""Benchmark: scoring a 3-km forecast store bigger than the machine's memory, with bounded memory.

Writes, chunk by chunk (never holding more than one initial time), a forecast store of ``--size-gb``
(default: twice this machine's RAM) on the full 3-km HRRR grid (1059 x 1799, float32, uncompressed,
one chunk per initial time with its 24 hourly lead times; initial times hourly, as HRRR runs), its
hourly truth (one chunk per hour) and 8 moving event masks (bool, zstd-compressed, one chunk per hour),
then scores it with ``workbench.scoring.decompose`` straight from the stores, sampling the process's
resident memory (RSS) every 10 ms. The stores are deleted afterwards unless ``--keep``.

Before writing, the free disk space is checked: the stores must leave ``--margin-gb`` free; when the
asked size does not fit, the run stops with the largest size that would (pass it as ``--size-gb``).

Usage::

    python benchmarks/scoring_big.py                          # 2x RAM (about 50 GB here), ~10 min
    python benchmarks/scoring_big.py --size-gb 4 --dir /data  # a quick check
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.grids import area_weights, hrrr_grid  # noqa: E402
from workbench.scoring import decompose  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scoring import PeakRSS  # noqa: E402  (the scoring benchmark's sampler of peak memory)

N_LEAD = 24
N_EVENTS = 8
GB = 1e9


def layout(size_gb: float, spacing_km: float = 3.0):
    """Grid, initial times, lead times and valid times for a forecast store of ``size_gb``."""
    grid = hrrr_grid(spacing_km)
    ny, nx = grid.shape
    per_init = N_LEAD * ny * nx * 4
    n_init = max(1, math.ceil(size_gb * GB / per_init))
    inits = pd.date_range("2020-05-01", periods=n_init, freq="h")
    leads = pd.to_timedelta(np.arange(N_LEAD), "h")
    times = pd.date_range(inits[0], inits[-1] + leads[-1], freq="h")
    return grid, inits, leads, times


def store_bytes(size_gb: float) -> dict[str, float]:
    """Bytes the three stores take on disk (masks compress to a few percent)."""
    grid, inits, _, times = layout(size_gb)
    field = grid.shape[0] * grid.shape[1]
    return {
        "forecast": len(inits) * N_LEAD * field * 4,
        "truth": len(times) * field * 4,
        "masks": 0.05 * len(times) * N_EVENTS * field,
    }


def write_stores(directory: Path, size_gb: float, seed: int = 0) -> dict:
    """Write forecast, truth and masks chunk by chunk; the metadata first through xarray (lazy zeros)."""
    import dask.array as da
    import zarr
    from numcodecs import Blosc

    grid, inits, leads, times = layout(size_gb)
    ny, nx = grid.shape
    coords = grid.coords()
    rng = np.random.default_rng(seed)
    fc = xr.Dataset(
        {
            "t2m": (
                ("init_time", "lead_time", "y", "x"),
                da.zeros((len(inits), N_LEAD, ny, nx), dtype=np.float32, chunks=(1, N_LEAD, ny, nx)),
                {"units": "K"},
            )
        },
        coords={"init_time": inits, "lead_time": leads, **coords},
    )
    truth = xr.Dataset(
        {
            "t2m": (
                ("time", "y", "x"),
                da.zeros((len(times), ny, nx), dtype=np.float32, chunks=(1, ny, nx)),
                {"units": "K"},
            )
        },
        coords={"time": times, **coords},
    )
    masks = xr.Dataset(
        {
            "mask": (
                ("event_type", "time", "y", "x"),
                da.zeros((N_EVENTS, len(times), ny, nx), dtype=bool, chunks=(N_EVENTS, 1, ny, nx)),
            )
        },
        coords={"event_type": [f"event_{k}" for k in range(N_EVENTS)], "time": times, "y": coords["y"][1],
                "x": coords["x"][1]},
    )  # fmt: skip
    none = {"compressors": None, "_FillValue": None}
    fc.to_zarr(directory / "forecast.zarr", compute=False, zarr_format=2, encoding={"t2m": none})
    truth.to_zarr(directory / "truth.zarr", compute=False, zarr_format=2, encoding={"t2m": none})
    masks.to_zarr(
        directory / "masks.zarr",
        compute=False,
        zarr_format=2,
        encoding={
            "mask": {
                "compressors": Blosc(cname="zstd", clevel=1, shuffle=Blosc.BITSHUFFLE),
                "_FillValue": None,
            }
        },
    )

    # truth: a pattern drifting east with a diurnal cycle plus noise; 8 noise fields reused, rolled
    yy, xx = np.meshgrid(
        np.linspace(0, 2 * np.pi, ny, dtype=np.float32),
        np.linspace(0, 4 * np.pi, nx, dtype=np.float32),
        indexing="ij",
    )
    noise = rng.standard_normal((8, ny, nx), dtype=np.float32)
    zt = zarr.open_array(directory / "truth.zarr" / "t2m", mode="r+")
    zm = zarr.open_array(directory / "masks.zarr" / "mask", mode="r+")
    centres = rng.uniform([0.1 * ny, 0.1 * nx], [0.9 * ny, 0.9 * nx], size=(N_EVENTS, 3, 2))
    radii = rng.uniform(0.015, 0.04, size=(N_EVENTS, 3, 2)) * np.array([ny, nx])
    drift = rng.uniform(-0.002, 0.002, size=(N_EVENTS, 3, 2)) * np.array([ny, nx])
    iy = np.arange(ny)[:, None]
    ix = np.arange(nx)[None, :]

    def truth_at(k: int) -> np.ndarray:
        phase = np.float32(0.05 * k)
        field = 290 + 8 * np.sin(xx - phase) * np.cos(yy) + 3 * np.float32(np.sin(2 * np.pi * k / 24))
        return field + np.roll(noise[k % 8], k, axis=1)

    def masks_at(k: int) -> np.ndarray:
        m = np.zeros((N_EVENTS, ny, nx), bool)
        for e in range(N_EVENTS):
            # events come and go: each cell lives 12 of every 24 hours, so the regions change
            for c in range(3):
                if (k // 12 + e + c) % 2:
                    continue
                y0, x0 = centres[e, c] + drift[e, c] * (k % 240)
                ry, rx = radii[e, c]
                ys = slice(max(int(y0 - ry), 0), min(int(y0 + ry) + 1, ny))
                xs = slice(max(int(x0 - rx), 0), min(int(x0 + rx) + 1, nx))
                m[e, ys, xs] |= ((iy[ys] - y0) / ry) ** 2 + ((ix[:, xs] - x0) / rx) ** 2 <= 1.0
        return m

    started = time.perf_counter()
    for k in range(len(times)):
        zt[k] = truth_at(k)
        zm[:, k] = masks_at(k)
    zf = zarr.open_array(directory / "forecast.zarr" / "t2m", mode="r+")
    block = np.empty((N_LEAD, ny, nx), np.float32)
    t_index = pd.Index(times)
    for i, init in enumerate(inits):
        for j in range(N_LEAD):
            k = t_index.get_loc(init + leads[j])
            scale = np.float32(0.5 + 0.05 * j)
            np.multiply(noise[(3 * i + j) % 8], scale, out=block[j])
            block[j] += zt[k]  # the truth just written, read back from the page cache
        zf[i] = block
        if i % 25 == 0:
            print(
                f"  wrote {i + 1}/{len(inits)} initial times ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    return {"n_init": len(inits), "n_times": len(times), "write_s": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    ram = psutil.virtual_memory().total
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-gb", type=float, default=2 * ram / GB, help="forecast store size (default 2x RAM)"
    )
    parser.add_argument("--dir", default=None, help="where to write the stores (default: a temporary folder)")
    parser.add_argument("--margin-gb", type=float, default=8.0, help="disk space to leave free")
    parser.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    args = parser.parse_args(argv)

    parent = Path(args.dir or tempfile.gettempdir())
    need = sum(store_bytes(args.size_gb).values())
    free = shutil.disk_usage(parent).free
    if need + args.margin_gb * GB > free:
        fits = args.size_gb * (free - args.margin_gb * GB) / need
        print(
            f"error: the stores need {need / GB:.1f} GB and {args.margin_gb:g} GB must stay free, but {parent} has "
            f"{free / GB:.1f} GB free; the largest that fits is --size-gb {max(fits, 0):.1f}",
            file=sys.stderr,
        )
        return 2
    directory = Path(tempfile.mkdtemp(prefix="wb-big-", dir=parent))
    try:
        print(f"machine: {psutil.cpu_count()} CPUs, RAM {ram / 2**30:.1f} GiB; disk free {free / GB:.1f} GB")
        info = write_stores(directory, args.size_gb)
        sizes = {
            p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in directory.iterdir()
        }
        grid_shape = hrrr_grid(3.0).shape
        chunk_set = N_LEAD * grid_shape[0] * grid_shape[1] * (4 + 4 + N_EVENTS)
        print(
            f"wrote forecast {info['n_init']} init x {N_LEAD} lead = {sizes['forecast.zarr'] / GB:.1f} GB "
            f"({sizes['forecast.zarr'] / ram:.2f}x RAM), truth {info['n_times']} h = {sizes['truth.zarr'] / GB:.1f} GB, "
            f"masks {sizes['masks.zarr'] / GB:.2f} GB on disk in {info['write_s']:.0f} s"
        )
        fz = xr.open_zarr(directory / "forecast.zarr")
        tz = xr.open_zarr(directory / "truth.zarr")
        mz = xr.open_zarr(directory / "masks.zarr")["mask"]
        weights = area_weights(tz).astype(np.float32)
        # compile the kernels on a corner first, so that compilation is not timed
        corner = {"y": slice(0, 32), "x": slice(0, 32)}
        decompose(
            fz.isel(init_time=slice(0, 2), **corner).load(),
            tz.isel(**corner).load(),
            mz.isel(**corner).load(),
            weights=weights.isel(**corner),
        )
        with PeakRSS() as mem:
            started = time.perf_counter()
            cpu0 = time.process_time()
            out = decompose(fz, tz, mz, weights=weights)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu0
        read = sizes["forecast.zarr"] + sizes["truth.zarr"]
        print(
            f"decompose from the stores: {elapsed:.1f} s wall ({cpu:.0f} s CPU), {read / GB / elapsed:.2f} GB/s of "
            f"forecast + truth; peak RSS {mem.peak / 2**30:.2f} GiB ({(mem.peak - mem.base) / 2**30:.2f} GiB above "
            f"the {mem.base / 2**30:.2f} GiB before), {(mem.peak - mem.base) / chunk_set:.1f} chunk sets of "
            f"{chunk_set / 2**20:.0f} MiB; data {read / ram:.2f}x RAM"
        )
        rmse = out["rmse"].sel(variable="t2m")
        print(
            "rmse (mean over leads): "
            + ", ".join(
                f"{r} {float(rmse.sel(region=r).mean()):.3f}" for r in ("all", "extreme", "non_extreme")
            )
        )
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
