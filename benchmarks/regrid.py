"""Regridding a 0.25-degree global field onto the 3-km HRRR grid: weights once, then time per field.

Measures, for ``bilinear`` (a smooth field) and ``conservative`` / ``maximum`` (3-km HRRR onto the
0.25-degree grid, the coarsening direction):

* the time to compute the weights (once per grid pair) and to read them back from the on-disk cache;
* the time per field through :func:`workbench.regrid.regrid` with cached weights (xarray in, xarray
  out: the coordinates, the NaN outside the source grid, the dtype);
* the time of a plain ``scipy.sparse`` matrix-vector product with the same weights, the floor any
  implementation with these weights has.

The ratio of the last two is what the workbench adds around the product; it should stay under 2.

    python benchmarks/regrid.py                 # 0.25 degrees <-> 3 km (about a minute)
    python benchmarks/regrid.py --smoke         # 1 degree <-> 24 km, seconds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench import regrid as rg  # noqa: E402
from workbench.grids import hrrr_grid  # noqa: E402


def _median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _global(resolution: float) -> xr.DataArray:
    lat = np.arange(-90.0, 90.0 + resolution / 2, resolution)
    lon = np.arange(0.0, 360.0, resolution)
    values = 280 + 20 * np.cos(np.deg2rad(lat))[:, None] * np.sin(np.deg2rad(2 * lon))[None, :]
    return xr.DataArray(
        values.astype(np.float32),
        dims=("latitude", "longitude"),
        coords={"latitude": lat, "longitude": lon},
        name="t2m",
    )


def case(source: xr.DataArray, target, method: str, cache: Path, repeat: int) -> dict:
    src, tgt = rg.grid_of(source), target if not isinstance(target, xr.DataArray) else rg.grid_of(target)
    rg._MEMORY.clear()
    t0 = time.perf_counter()
    w = rg.weights(src, tgt, method, cache)
    build = time.perf_counter() - t0
    rg._MEMORY.clear()
    t0 = time.perf_counter()
    w = rg.weights(src, tgt, method, cache)
    load = time.perf_counter() - t0
    per_field = _median_time(lambda: rg.regrid(source, target, method, cache_dir=cache).values, repeat)
    flat = source.values.ravel()
    if w.method == "maximum":
        plain = _median_time(lambda: rg._maximum(w.matrix, flat[None, :]), repeat)
    else:
        plain = _median_time(lambda: w.matrix @ flat, repeat)
    return {
        "case": f"{method} {source.shape} -> {tgt.shape}",
        "nnz": w.matrix.nnz,
        "build_s": build,
        "load_s": load,
        "regrid_ms": 1e3 * per_field,
        "sparse_ms": 1e3 * plain,
        "ratio": per_field / plain,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="1 degree and 24 km: seconds, every code path")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    resolution, spacing = (1.0, 24.0) if args.smoke else (0.25, 3.0)
    glob = _global(resolution)
    grid = hrrr_grid(spacing)
    hrrr = rg.regrid(glob, grid, "bilinear").rename("tp")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        rows.append(case(glob, grid, "bilinear", cache, args.repeat))
        rows.append(case(hrrr, glob, "conservative", cache, args.repeat))
        rows.append(case(hrrr.rename("refc"), glob, "maximum", cache, args.repeat))
    print(
        "| case | nonzeros | weights built (s) | read from cache (s) | regrid per field (ms) | "
        "sparse product (ms) | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['nnz']:,} | {r['build_s']:.2f} | {r['load_s']:.3f} | {r['regrid_ms']:.1f} | "
            f"{r['sparse_ms']:.1f} | {r['ratio']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
