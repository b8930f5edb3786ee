"""Benchmark: scoring one forecast over ``all`` plus 8 event masks on the 3-km HRRR grid.

Compares, in one run and on the same data,

* ``workbench.scoring.decompose``: every region in one pass over forecast and truth;
* xskillscore: ``xs.rmse`` called once per region (9 calls), on Dask arrays chunked per initial time;
* ``scores``: ``scores.continuous.rmse`` called once per region with ``weights = mask * area``, likewise;
* the memory-bandwidth floor: one NumPy pass (a sum) over the forecast and truth bytes.

The data are generated with NumPy: an hourly truth on the 1059 x 1799 grid, a float32 forecast with
``--n-init`` initial times 6 h apart and ``--n-lead`` hourly lead times (forecast = truth + error that is
larger inside the events), and 8 moving event masks. With ``--disk`` the forecast, truth and masks are
also written to a zarr store and scored from there lazily (Dask), which shows the bounded memory.

Usage::

    python benchmarks/scoring.py            # full size (about 5.5 GB in memory, a few minutes)
    python benchmarks/scoring.py --small    # 24-km grid, seconds
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.grids import area_weights, hrrr_grid  # noqa: E402
from workbench.scoring import decompose  # noqa: E402

EVENT_TYPES = (
    "thunderstorm_wind",
    "hail",
    "tornado",
    "flash_flood",
    "heavy_rain",
    "high_wind",
    "excessive_heat",
    "winter_storm",
)


# ---------------------------------------------------------------------------------------------------
# data


def make_data(spacing_km: float, n_init: int, n_lead: int, seed: int = 0):
    """Forecast, truth, masks and area weights on the HRRR grid at ``spacing_km``."""
    rng = np.random.default_rng(seed)
    grid = hrrr_grid(spacing_km)
    ny, nx = grid.shape
    inits = pd.date_range("2020-06-01", periods=n_init, freq="6h")
    leads = pd.to_timedelta(np.arange(n_lead), "h")
    times = pd.date_range(inits[0], inits[-1] + leads[-1], freq="h")
    coords = grid.coords()

    # truth: a large-scale pattern drifting east with a diurnal cycle, plus small-scale noise
    yy, xx = np.meshgrid(
        np.linspace(0, 2 * np.pi, ny, dtype=np.float32),
        np.linspace(0, 4 * np.pi, nx, dtype=np.float32),
        indexing="ij",
    )
    truth = np.empty((len(times), ny, nx), dtype=np.float32)
    for k in range(len(times)):
        phase = np.float32(0.05 * k)
        truth[k] = 290 + 8 * np.sin(xx - phase) * np.cos(yy) + 3 * np.float32(np.sin(2 * np.pi * k / 24))
        truth[k] += rng.standard_normal((ny, nx), dtype=np.float32)

    # event masks: per type, three elliptical cells moving with the flow
    masks = np.zeros((len(EVENT_TYPES), len(times), ny, nx), dtype=bool)
    iy = np.arange(ny)[:, None]
    ix = np.arange(nx)[None, :]
    for e in range(len(EVENT_TYPES)):
        centres = rng.uniform([0.1 * ny, 0.1 * nx], [0.9 * ny, 0.9 * nx], size=(3, 2))
        # cells of a few percent of the domain each: the union covers about 5% of the cell-times, the
        # order of what storm reports give on the sample (extremes are rare, which is the point)
        radii = rng.uniform(0.015, 0.04, size=(3, 2)) * np.array([ny, nx])
        drift = rng.uniform(-0.004, 0.004, size=(3, 2)) * np.array([ny, nx])
        for k in range(len(times)):
            for (cy, cx), (ry, rx), (dy, dx) in zip(centres, radii, drift, strict=True):
                y0, x0 = cy + dy * k, cx + dx * k
                ys = slice(max(int(y0 - ry), 0), min(int(y0 + ry) + 1, ny))
                xs = slice(max(int(x0 - rx), 0), min(int(x0 + rx) + 1, nx))
                inside = ((iy[ys] - y0) / ry) ** 2 + ((ix[:, xs] - x0) / rx) ** 2 <= 1.0
                masks[e, k, ys, xs] |= inside

    # forecast: truth at the valid time plus an error that grows with lead time and is 3x larger in events
    union = masks.any(axis=0)
    fc = np.empty((n_init, n_lead, ny, nx), dtype=np.float32)
    t_index = pd.Index(times)
    for i, init in enumerate(inits):
        for j, lead in enumerate(leads):
            k = t_index.get_loc(init + lead)
            scale = np.float32(0.5 + 0.05 * j)
            err = rng.standard_normal((ny, nx), dtype=np.float32) * scale
            err[union[k]] *= 3.0
            np.add(truth[k], err, out=fc[i, j])
    del union

    truth_ds = xr.Dataset(
        {"t2m": (("time", "y", "x"), truth, {"units": "K"})}, coords={"time": times, **coords}
    )
    fc_ds = xr.Dataset(
        {"t2m": (("init_time", "lead_time", "y", "x"), fc, {"units": "K"})},
        coords={"init_time": inits, "lead_time": leads, **coords},
    )
    fc_ds = fc_ds.assign_coords(valid_time=fc_ds["init_time"] + fc_ds["lead_time"])
    masks_da = xr.DataArray(
        masks,
        dims=("event_type", "time", "y", "x"),
        coords={"event_type": list(EVENT_TYPES), "time": times, "y": coords["y"][1], "x": coords["x"][1]},
        name="mask",
    )
    weights = area_weights(truth_ds).astype(np.float32)
    return fc_ds, truth_ds, masks_da, weights


# ---------------------------------------------------------------------------------------------------
# measuring


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every few milliseconds."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.process = psutil.Process()

    def __enter__(self):
        gc.collect()
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def extra(self) -> int:
        return self.peak - self.base


def timed(fn, repeat: int = 1):
    """Best wall time of ``repeat`` calls, peak extra memory, and the last result."""
    best, peak, result = np.inf, 0, None
    for _ in range(repeat):
        with PeakRSS() as mem:
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        peak = max(peak, mem.extra)
    return best, peak, result


# ---------------------------------------------------------------------------------------------------
# the contenders


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def run_floor(fc, truth, masks):
    f, t = fc["t2m"].values, truth["t2m"].values
    return float(f.sum(dtype=np.float32)) + float(t.sum(dtype=np.float32))


def run_floor_with_masks(fc, truth, masks):
    return run_floor(fc, truth, masks) + int(np.count_nonzero(masks.values))


def run_ours(fc, truth, masks, weights, **kwargs):
    return decompose(fc, truth, masks, weights=weights, **kwargs)["rmse"].sel(variable="t2m")


def _aligned(fc, truth, masks):
    """Dask views of the forecast and of truth and masks at its valid times, chunked per lead time.

    xskillscore applies its NumPy kernels with the reduced dims (here init_time, y, x) in one chunk, so
    the chunks run along lead_time: one chunk is all initial times of one lead time. The truth and the
    masks at the valid times are gathered lazily, one lead time at a time.
    """
    positions = (
        truth.indexes["time"].get_indexer(fc["valid_time"].values.ravel()).reshape(fc["valid_time"].shape)
    )
    f = fc["t2m"].drop_vars("valid_time").chunk({"init_time": -1, "lead_time": 1})
    t_lazy = truth["t2m"].chunk({"time": 1})
    m_lazy = masks.chunk({"time": 1, "event_type": -1})

    def gather(da):
        per_lead = [
            da.isel(time=positions[:, j])
            .rename(time="init_time")
            .assign_coords(init_time=fc["init_time"].values)
            for j in range(positions.shape[1])
        ]
        out = xr.concat(per_lead, dim="lead_time").assign_coords(lead_time=fc["lead_time"].values)
        return out.chunk({"init_time": -1, "lead_time": 1})

    return f, gather(t_lazy).transpose(*f.dims), gather(m_lazy).transpose("event_type", *f.dims)


def run_xskillscore(fc, truth, masks, weights):
    import xskillscore as xs

    f, o, m = _aligned(fc, truth, masks)
    # xskillscore wants weights over exactly the reduced dims, so the time-varying masks go in as
    # .where(mask) with skipna=True and the area weights as weights
    w = (
        weights.drop_vars(list(weights.coords))
        .expand_dims(init_time=f.sizes["init_time"])
        .transpose("init_time", "y", "x")
    )
    dims = ["init_time", "y", "x"]
    out = {"all": xs.rmse(f, o, dim=dims, weights=w).compute()}
    for event in masks["event_type"].values:
        region = m.sel(event_type=event)
        out[str(event)] = xs.rmse(f.where(region), o, dim=dims, weights=w, skipna=True).compute()
    return out


def run_scores(fc, truth, masks, weights):
    from scores.continuous import rmse

    f, o, m = _aligned(fc, truth, masks)
    w = weights.drop_vars(list(weights.coords))
    dims = ["init_time", "y", "x"]
    out = {"all": rmse(f, o, reduce_dims=dims, weights=w).compute()}
    for event in masks["event_type"].values:
        out[str(event)] = rmse(f, o, reduce_dims=dims, weights=m.sel(event_type=event) * w).compute()
    return out


def write_zarr(fc, truth, masks, directory: Path):
    """The data on disk as zarr stores (uncompressed, chunked per initial time / valid time)."""
    enc = {"compressors": None}
    fc.chunk({"init_time": 1, "lead_time": -1}).to_zarr(
        directory / "forecast.zarr", mode="w", encoding={"t2m": enc}
    )
    truth.chunk({"time": 1}).to_zarr(directory / "truth.zarr", mode="w", encoding={"t2m": enc})
    masks.to_dataset().chunk({"time": 1, "event_type": -1}).to_zarr(
        directory / "masks.zarr", mode="w", encoding={"mask": enc}
    )


# ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--small", action="store_true", help="24-km grid and few times: a smoke run in seconds"
    )
    parser.add_argument(
        "--spacing-km", type=float, default=None, help="grid spacing (default 3 km, 24 with --small)"
    )
    parser.add_argument("--n-init", type=int, default=None, help="initial times, 6 h apart (default 16)")
    parser.add_argument("--n-lead", type=int, default=None, help="hourly lead times from 0 h (default 24)")
    parser.add_argument(
        "--disk",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also score from zarr on disk via Dask (default: on for the full size)",
    )
    parser.add_argument("--skip-baselines", action="store_true", help="time only the workbench and the floor")
    parser.add_argument(
        "--all-engines", action="store_true", help="also time the NumPy and torch-CPU engines"
    )
    args = parser.parse_args(argv)
    spacing = args.spacing_km or (24.0 if args.small else 3.0)
    n_init = args.n_init or (3 if args.small else 16)
    n_lead = args.n_lead or (6 if args.small else 24)
    disk = (not args.small) if args.disk is None else args.disk

    t0 = time.perf_counter()
    fc, truth, masks, weights = make_data(spacing, n_init, n_lead)
    ny, nx = weights.shape
    gb = 1e9
    fc_bytes, truth_bytes, mask_bytes = fc["t2m"].nbytes, truth["t2m"].nbytes, masks.nbytes
    floor_bytes = fc_bytes + truth_bytes
    chunk_set = (
        fc["t2m"].isel(init_time=0).nbytes
        + n_lead * truth["t2m"].isel(time=0).nbytes
        + n_lead * masks.isel(time=0).nbytes
    )
    union = masks.values.any(axis=0).mean()
    print(
        f"grid {ny} x {nx} ({spacing:g} km); forecast {n_init} init x {n_lead} lead float32 = {fc_bytes / gb:.2f} GB; "
        f"truth {truth.sizes['time']} h = {truth_bytes / gb:.2f} GB; masks {len(EVENT_TYPES)} types = "
        f"{mask_bytes / gb:.2f} GB (union covers {100 * union:.1f}% of cell-times); generated in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    print(f"one chunk set (1 init x {n_lead} leads: forecast + truth + masks) = {chunk_set / 2**20:.0f} MiB")

    # compile the kernels on a small copy first so compilation is not timed
    window = {"y": slice(0, 16), "x": slice(0, 16)}
    warm = (
        fc.isel(init_time=slice(0, 2), **window).copy(deep=True),
        truth.isel(**window).copy(deep=True),
        masks.isel(**window).copy(deep=True),
        weights.isel(**window).copy(deep=True),
    )
    run_ours(*warm)
    if args.all_engines or args.small:
        run_ours(*warm, device="cpu")
    if not args.skip_baselines:  # imported here so that their import time is not timed
        import scores.continuous  # noqa: F401
        import xskillscore  # noqa: F401

    rows = []
    t, mem, _ = timed(lambda: run_floor(fc, truth, masks), repeat=3)
    rows.append(("floor: numpy sum over forecast + truth", t, mem))
    floor = t
    t, mem, _ = timed(lambda: run_floor_with_masks(fc, truth, masks), repeat=3)
    rows.append(("floor incl. masks (sum + count_nonzero)", t, mem))
    t, mem, ours = timed(lambda: run_ours(fc, truth, masks, weights), repeat=2)
    rows.append(("workbench decompose (numba, in memory)", t, mem))
    t_ours = t
    others = []
    if args.all_engines or args.small:
        t, mem, out = timed(lambda: run_ours(fc, truth, masks, weights, engine="numpy"))
        rows.append(("workbench decompose (numpy engine)", t, mem))
        others.append(out)
        t, mem, out = timed(lambda: run_ours(fc, truth, masks, weights, device="cpu"))
        rows.append(("workbench decompose (torch engine, CPU)", t, mem))
        others.append(out)
    if _cuda():
        run_ours(*warm, device="cuda")
        t, mem, out = timed(lambda: run_ours(fc, truth, masks, weights, device="cuda"), repeat=2)
        rows.append(("workbench decompose (torch engine, CUDA)", t, mem))
        others.append(out)
    for other in others:
        np.testing.assert_allclose(other.values, ours.values, rtol=1e-5)

    checks = []
    t_xs = None
    if not args.skip_baselines:
        t_xs, mem, xs_out = timed(lambda: run_xskillscore(fc, truth, masks, weights))
        rows.append(("xskillscore xs.rmse, once per region (9)", t_xs, mem))
        t, mem, sc_out = timed(lambda: run_scores(fc, truth, masks, weights))
        rows.append(("scores rmse, once per region (9)", t, mem))
        for name, out in (("xskillscore", xs_out), ("scores", sc_out)):
            diff = max(
                float(
                    np.nanmax(np.abs(ours.sel(region=r).values - out[r].values) / ours.sel(region=r).values)
                )
                for r in out
            )
            checks.append(f"max relative difference workbench vs {name} over the 9 regions: {diff:.1e}")

    if disk:
        tmp = Path(tempfile.mkdtemp(prefix="wb-bench-"))
        try:
            t_w = time.perf_counter()
            write_zarr(fc, truth, masks, tmp)
            print(f"wrote zarr stores in {time.perf_counter() - t_w:.1f} s")
            fz = xr.open_zarr(tmp / "forecast.zarr")
            tz = xr.open_zarr(tmp / "truth.zarr")
            mz = xr.open_zarr(tmp / "masks.zarr")["mask"]
            t, mem, disk_out = timed(lambda: run_ours(fz, tz, mz, weights))
            rows.append(("workbench decompose (zarr on disk, Dask)", t, mem))
            np.testing.assert_allclose(disk_out.values, ours.values, rtol=1e-6)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    header = f"{'method':44s} {'time s':>8s} {'GB/s':>7s} {'x floor':>8s} {'vs xs':>7s} {'peak extra MiB':>15s} {'x chunk set':>11s}"
    print(header)
    print("-" * len(header))
    for name, t, mem in rows:
        speedup = f"{t_xs / t:6.1f}x" if t_xs else "    -  "
        print(
            f"{name:44s} {t:8.3f} {floor_bytes / gb / t:7.2f} {t / floor:8.2f} {speedup:>7s} "
            f"{mem / 2**20:15.0f} {mem / chunk_set:11.2f}"
        )
    print()
    print(
        f"GB/s = (forecast + truth bytes = {floor_bytes / gb:.2f} GB) / time; 'vs xs' = speed-up over the xskillscore loop"
    )
    print(
        f"workbench: {t_ours / floor:.2f}x the floor"
        + (f", {t_xs / t_ours:.1f}x faster than xskillscore" if t_xs else "")
    )
    for line in checks:
        print(line)
    print(f"workbench regions scored in its one pass: {list(ours['region'].values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
