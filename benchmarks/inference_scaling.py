"""Inference across GPUs: wall time, states per second and scaling efficiency on 1, 2, 4 ... GPUs.

For each case and each number of processes N (one per GPU, ``run_forecast(..., devices=N)``: NCCL
between GPUs, or gloo on a CPU with ``--cpu``), the same forecast is written to a zarr store on local
disk, timed after a warm-up run of one block in every process, and compared with the one-process store
(bitwise in fp32, the largest difference otherwise). Where the time goes is reported per process and
the slowest process is shown: ``compute`` (device time of the input copies and model steps),
``transfer`` (device time of the output copies to page-locked host memory; they overlap the next
block's steps), ``wait`` (the writer waiting for a block to reach the host), ``write`` (zarr encoding
and writing, on the writer thread, overlapping the device) and ``collective`` (waiting for the other
processes in NCCL/gloo: the start hand-over and the final gather).

Cases:

* ``pangu-xl``: the Pangu-like network at its benchmark size (C = 512, 64-wide heads) as a 1/6/24 h HTA
  family on the 133 x 225 grid, bf16, 64 initial times x 24 hourly leads, blocks of 8;
* ``pangu``, ``hrheim``: the shipped networks, default precision (fp32), the same forecast;
* ``pangu-ens``: the shipped Pangu-like family as a 3 x 3 ensemble (MC dropout x perturbed states),
  16 initial times x 24 leads, blocks of 2;
* ``pangu-ens-one``: a 4 x 4 ensemble of the same family from one initial time, shared out by members
  (``member_batch=2``: eight blocks of one weight member x two noise members).

Scaling efficiency = (one-process wall / N-process wall) / N.

    python benchmarks/inference_scaling.py --gpus 1 2 4          # on a host with 4 GPUs
    python benchmarks/inference_scaling.py --cpu --gpus 1 2 --smoke   # seconds, every code path
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GRID = (133, 225)
SMOKE_GRID = (34, 57)
_XL = {"embed_dim": 512, "heads": [8, 16, 16, 8], "depths": [2, 6, 6, 2], "window_size": [2, 6, 12]}
_SMOKE_NET = {"embed_dim": 16, "depths": [2, 2, 2, 2], "heads": [2, 2, 2, 2]}

#: name -> (network, inits, batch, members, dtype, member_batch)
CASES = {
    "pangu-xl": ("xl", 64, 8, None, "bf16", None),
    "pangu": ("pangu", 64, 8, None, "auto", None),
    "hrheim": ("hrheim", 64, 8, None, "auto", None),
    "pangu-ens": ("pangu", 16, 2, (3, 3), "auto", None),
    "pangu-ens-one": ("pangu", 1, 1, (4, 4), "auto", 2),
}


def make_model(kind: str, grid: tuple[int, int], smoke: bool):
    """The model of a case; built from a fixed seed so that every process holds the same weights."""
    import torch

    from workbench.models import HierarchicalModel, build, load

    torch.manual_seed(0)
    shape = {"kind": "hrrr", "shape": list(grid)}
    if kind == "xl" or (smoke and kind == "pangu"):
        net = _SMOKE_NET if smoke else _XL
        return HierarchicalModel([build("pangu", {"net": net, "grid": shape}, time_step_hours=h) for h in (1, 6, 24)])
    if smoke:
        net = {"channels": [8, 16, 32], "bottleneck_depth": 2, "heads": 2}
        return build(kind, {"net": net, "grid": shape}, time_step_hours=1)
    return load(kind)


def make_source(n: int, grid: tuple[int, int]):
    import pandas as pd
    import xarray as xr

    from workbench.training.data import SAMPLE_VARIABLES

    times = pd.date_range("2020-06-01", periods=n, freq="h")
    rng = np.random.default_rng(0)
    # Physical-looking values: the shipped models' normalisation sees anomalies of order one.
    from workbench.models import load

    norm = load("pangu").normalization
    mean, std = (t.numpy().reshape(-1) for t in norm.tensors(list(SAMPLE_VARIABLES)))
    data = {
        v: (("time", "y", "x"), (mean[i] + std[i] * rng.normal(size=(n, *grid))).astype("float32"))
        for i, v in enumerate(SAMPLE_VARIABLES)
    }
    return xr.Dataset(data, coords={"time": times, "y": np.arange(grid[0]) * 3e3, "x": np.arange(grid[1]) * 3e3})


def _worker(case: str, kind: str, n_init: int, batch: int, members, dtype: str, device: str, grid, smoke: bool,
            store: str, out: str, member_batch: int | None = None) -> None:
    """One process of an N-process run (started by ``workbench.inference.distributed.launch``)."""
    import torch

    from workbench.inference import EnsembleSpec, ZarrSink, run_forecast
    from workbench.inference.engine import LAST_RUN

    rank = int(os.environ.get("RANK", "0"))
    model = make_model(kind, grid, smoke)
    source = make_source(n_init, grid)
    spec = None if members is None else EnsembleSpec(weight_members=members[0], noise_members=members[1],
                                                     noise_scale=0.05, dropout=0.1, seed=0)
    leads = list(range(1, 25))
    kw = dict(members=spec, device=device, dtype=dtype, batch_size=batch, progress=False, member_batch=member_batch)
    # Warm-up: one block per process (kernels, allocator, pinned buffers), into a scratch store.
    world = int(os.environ.get("WORLD_SIZE", "1"))
    run_forecast(model, source, source.time.values[: batch * world], leads, sink=ZarrSink(store + ".warm"), **kw)
    if device != "cpu":
        torch.cuda.synchronize()
    run_forecast(model, source, source.time.values, leads, sink=ZarrSink(store), **kw)
    record = {"rank": rank, **LAST_RUN}
    if device != "cpu":
        record["max_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    Path(out, f"{case}-{world}-rank{rank}.json").write_text(json.dumps(record))


def run_case(case: str, n: int, args, grid, tmp: Path) -> dict:
    from workbench.inference import open_forecast
    from workbench.inference.distributed import launch

    kind, n_init, batch, members, dtype, member_batch = CASES[case]
    if args.smoke:
        n_init, batch = min(n_init, 8), min(batch, 2)
    device = "cpu" if args.cpu else "cuda"
    store = tmp / f"{case}-{n}.zarr"
    t0 = time.perf_counter()
    launch(n, _worker, case, kind, n_init, batch, members, dtype, device, grid, args.smoke, str(store), str(tmp),
           member_batch, threads=args.threads)
    total = time.perf_counter() - t0
    ranks = [json.loads((tmp / f"{case}-{n}-rank{r}.json").read_text()) for r in range(n)]
    wall = max(r["wall"] for r in ranks)
    states = n_init * 24 * (members[0] * members[1] if members else 1)
    row = {"case": case, "gpus": n, "dtype": dtype, "inits": n_init, "leads": 24,
           "members": members[0] * members[1] if members else 1, "wall_s": wall, "states_per_s": states / wall,
           "launch_total_s": total}
    for key in ("compute", "transfer", "wait", "write", "collective", "max_mem_gib"):
        row[key] = max(r.get(key, 0.0) for r in ranks)
    fc = open_forecast(store)
    row["_store"] = str(store)
    row["_sample"] = {v: np.asarray(fc[v].values) for v in list(fc.data_vars)[:3]}
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 2, 4], help="process counts to run")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--cpu", action="store_true", help="processes on the CPU (gloo) instead of GPUs")
    parser.add_argument("--smoke", action="store_true", help="tiny networks and grid, 8 inits: seconds")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process (CPU)")
    parser.add_argument("--out", default=os.environ.get("OUT", "."), help="where scaling.json / .md go")
    parser.add_argument("--tmp", default=None, help="local scratch folder for the stores")
    args = parser.parse_args(argv)
    import torch

    if not args.cpu:
        have = torch.cuda.device_count()
        args.gpus = [g for g in args.gpus if g <= have] or parser.error(f"this host has {have} GPUs")
    grid = SMOKE_GRID if args.smoke else GRID
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=args.tmp, prefix="scaling-"))
    rows = []
    try:
        for case in args.cases:
            base = None
            for n in args.gpus:
                try:
                    row = run_case(case, n, args, grid, tmp)
                except Exception as exc:  # keep the other rows
                    print(f"{case} on {n}: FAILED {type(exc).__name__}: {exc}", flush=True)
                    continue
                sample = row.pop("_sample")
                shutil.rmtree(row.pop("_store"), ignore_errors=True)
                if base is None:
                    base = (row, sample)
                ref_row, ref = base
                row["speedup"] = ref_row["wall_s"] / row["wall_s"] * ref_row["gpus"]
                row["efficiency"] = row["speedup"] / row["gpus"]
                row["max_abs_diff_vs_first"] = max(float(np.nanmax(np.abs(sample[v] - ref[v]))) for v in ref)
                row["bitwise_equal_to_first"] = all(
                    np.array_equal(sample[v].view(np.uint32), ref[v].view(np.uint32)) for v in ref)
                rows.append(row)
                print(json.dumps(row), flush=True)
                (out / "scaling.json").write_text(json.dumps(rows, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (out / "scaling.md").write_text(table(rows, "cpu" if args.cpu else torch.cuda.get_device_name()))
    print(table(rows, "cpu" if args.cpu else torch.cuda.get_device_name()))
    return 0


def table(rows, card: str) -> str:
    lines = [
        f"Device: {card}. Forecasts of 24 hourly leads written to a local zarr store; seconds of the slowest "
        "process (compute and transfer are device time; wait, write and collective host time).",
        "",
        "| case | dtype | GPUs | inits x members | wall s | states/s | speed-up | efficiency | compute | "
        "transfer | wait | write | collective | peak GiB | same as 1 GPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        same = "bitwise" if r["bitwise_equal_to_first"] else f"max diff {r['max_abs_diff_vs_first']:.2g}"
        lines.append(
            f"| {r['case']} | {r['dtype']} | {r['gpus']} | {r['inits']} x {r['members']} | {r['wall_s']:.2f} | "
            f"{r['states_per_s']:.0f} | {r['speedup']:.2f} | {100 * r['efficiency']:.0f}% | {r['compute']:.2f} | "
            f"{r['transfer']:.2f} | {r['wait']:.2f} | {r['write']:.2f} | {r['collective']:.2f} | "
            f"{r.get('max_mem_gib', 0):.1f} | {same} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
