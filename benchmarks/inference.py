"""Inference throughput and model FLOP utilisation (MFU) of the workbench's torch architectures.

For each architecture, one model step on a batch of states of the default sample grid (11 variables,
133 x 225), timed with CUDA events after a warm-up (median of repeated runs), in two set-ups:

* ``fp32 eager``: float32 weights and activations, no compilation (TF32 matmuls off);
* ``bf16 compiled``: bf16 autocast and ``torch.compile``.

FLOPs per step come from :func:`workbench.models.count_flops` (matrix products, convolutions and
attention; 2 FLOPs per multiply-add). MFU is achieved FLOP/s over the card's peak: the bf16 peak
*measured* here (an 8192^3 bf16 matrix product, random data) and the datasheet's dense bf16 peak; for
fp32 the measured fp32 (no TF32) matrix-product rate and the datasheet fp32 peak.

Architectures: the shipped (small) configurations, and Pangu-like networks at a batch that fills the card,
where matrix products are large enough to be compute-bound: ``pangu-large`` (Pangu-Weather's window,
depths and 32-wide heads at C = 384), ``pangu-large-hd64`` (64-wide heads) and ``pangu-xl`` (C = 512,
64-wide heads). ``--profile CASE`` prints the kernels that take the time of one compiled step.
The engine line runs :func:`workbench.inference.run_forecast` for
a 24-hour hourly HTA rollout, to show what the engine adds around the model steps.

    python benchmarks/inference.py                  # on a GPU: the full table (minutes: compilation)
    python benchmarks/inference.py --cpu-smoke      # seconds, on a CPU: every code path, tiny sizes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.models import build, count_flops  # noqa: E402
from workbench.training.data import SAMPLE_VARIABLES  # noqa: E402

#: Dense peak rates from the vendors' datasheets (TFLOP/s): (bf16 tensor core, fp32 non-tensor).
DATASHEET = {"H100": (989.4, 66.9), "H200": (989.4, 66.9), "A100": (312.0, 19.5)}

GRID = (133, 225)
SMOKE_GRID = (34, 57)
GRID_3KM = (1059, 1799)  # the full HRRR CONUS grid

_PANGU_LARGE = {"embed_dim": 384, "heads": [12, 24, 24, 12], "depths": [2, 6, 6, 2], "window_size": [2, 6, 12]}

#: name -> (registry model, net overrides, batch on a GPU[, set-ups if not both])
GPU_CASES = {
    "pangu-large": ("pangu", _PANGU_LARGE, 32),
    # head dim 64 instead of Pangu's 32: fewer, wider heads suit the fused attention kernels
    "pangu-large-hd64": ("pangu", {**_PANGU_LARGE, "heads": [6, 12, 12, 6]}, 32, ("bf16 compiled",)),
    "pangu-xl": ("pangu", {**_PANGU_LARGE, "embed_dim": 512, "heads": [8, 16, 16, 8]}, 32, ("bf16 compiled",)),
    # the same network with windows that tile its token grid (3 x 34 x 57, then 3 x 17 x 29): 3 levels x
    # 17 rows x 3 columns (153 tokens, as many as Pangu's 144) instead of 2 x 6 x 12, whose padding to
    # 4 x 36 x 60 and 4 x 18 x 36 made a third of the executed tokens zeros
    "pangu-xl-fit": ("pangu", {**_PANGU_LARGE, "embed_dim": 512, "heads": [8, 16, 16, 8], "window_size": [3, 17, 3]},
                     32, ("bf16 compiled",)),
    "pangu": ("pangu", {}, 64),
    "climax": ("climax", {}, 64),
    "hrheim": ("hrheim", {}, 64),
}
#: One step of a full 3-km state: name -> (registry model, net overrides, set-ups)
CASES_3KM = {
    "hrheim": ("hrheim", {}, ("fp32 eager", "bf16 eager")),
    "pangu": ("pangu", {}, ("fp32 eager", "bf16 eager")),
    "pangu-xl": ("pangu", {**_PANGU_LARGE, "embed_dim": 512, "heads": [8, 16, 16, 8]}, ("bf16 eager",)),
}
CPU_CASES = {
    "pangu": ("pangu", {"embed_dim": 16, "depths": [2, 2, 2, 2], "heads": [2, 2, 2, 2]}, 2),
    "climax": ("climax", {"embed_dim": 32, "depth": 1, "decoder_depth": 1, "num_heads": 2}, 2),
    "hrheim": ("hrheim", {"channels": [8, 16, 32], "bottleneck_depth": 2, "heads": 2}, 2),
}


def datasheet_peaks(device: torch.device) -> tuple[float | None, float | None]:
    if device.type != "cuda":
        return None, None
    name = torch.cuda.get_device_name(device)
    for key, peaks in DATASHEET.items():
        if key in name:
            return peaks
    return None, None


def timed(fn, device: torch.device, warmup: int, reps: int) -> float:
    """Median seconds per call: CUDA events on a GPU, a synchronised host clock on a CPU."""
    for _ in range(warmup):
        fn()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize()
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
    else:
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int) -> float:
    """Measured FLOP/s of an n^3 matrix product on random data."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t = timed(lambda: a @ b, device, warmup=3, reps=10)
    return 2 * n**3 / t


def real_token_flops(model, shape) -> tuple[int, int]:
    """(model FLOPs on real tokens, executed FLOPs) of one step of ``shape``.

    Executed FLOPs are :func:`workbench.models.count_flops`' count, which includes the zero tokens a
    Pangu-like block pads its token grid with to whole windows. Model FLOPs take each Earth-specific
    block's counted FLOPs times its fraction of real tokens (its attention too, as if the padded keys
    were absent: a slight overestimate of the real work); other networks have no padded windows.
    """
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    from workbench.models.pangu import EarthSpecificBlock

    meta = copy.deepcopy(model).to("meta").eval()
    for p in meta.parameters():
        p.requires_grad_(False)
    fractions: dict[str, float] = {}
    for name, mod in meta.named_modules():
        if hasattr(mod, "_cache"):
            mod._cache = {}
        if isinstance(mod, EarthSpecificBlock):
            block_key = name.split("net.", 1)[-1]

            def pre(m, args, key=block_key):
                _, z, h, w, _ = args[0].shape
                wz, wh, ww = m.window
                fractions[key] = z * h * w / (-(-z // wz) * wz * -(-h // wh) * wh * -(-w // ww) * ww)
            mod.register_forward_pre_hook(pre)
    x = torch.zeros(tuple(shape), device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        meta.step(x, valid_time=torch.zeros(shape[0], device="meta"))
    executed = int(counter.get_total_flops())
    padded = 0.0
    for key, ops in counter.get_flop_counts().items():
        tail = key.split(".", 1)[1] if "." in key else ""
        if tail in fractions:
            padded += sum(ops.values()) * (1 - fractions[tail])
    return int(executed - padded), executed


def make_model(case, device):
    name, net = case[:2]
    model = build(name, {"net": net, "grid": {"kind": "hrrr", "shape": list(GRID)}}, time_step_hours=1.0)
    model.net.eval()
    return model.to(device).eval()


def bench_model(label, case, device, mode, batch, warmup, reps, compile_mode) -> dict:
    model = make_model(case, device)
    c = len(SAMPLE_VARIABLES)
    shape = (batch, c, *GRID)
    flops = count_flops(model, shape)
    real_flops = real_token_flops(model, shape)[0] if case[0] == "pangu" else flops
    x = torch.randn(shape, device=device)
    hours = torch.full((batch,), 438000.0, dtype=torch.float64, device=device)
    step = model.step
    if mode.endswith("compiled"):
        # One eager call first fills the networks' caches of window masks (built on the host); traced,
        # that construction would be compiled as CPU code on every recompilation.
        with torch.inference_mode():
            model.step(x[:1], valid_time=hours[:1])
        step = torch.compile(model.step, mode=compile_mode, dynamic=False)
    ctx = (torch.autocast(device.type, dtype=torch.bfloat16) if mode.startswith("bf16")
           else torch.autocast(device.type, enabled=False))

    from workbench.inference.device import attention_backends

    def run():
        with torch.inference_mode(), ctx, attention_backends(device):
            return step(x, valid_time=hours)

    t0 = time.perf_counter()
    run()  # the first call compiles
    if device.type == "cuda":
        torch.cuda.synchronize()
    first = time.perf_counter() - t0
    t = timed(run, device, warmup, reps)
    t_again = timed(run, device, 1, reps)  # a second timing of the same set-up: the noise level
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return {"model": label, "mode": mode, "batch": batch, "params": sum(p.numel() for p in model.parameters()),
            "gflop_per_step": flops / 1e9, "seconds": t, "seconds_repeat": t_again, "first_call_s": first,
            "forecasts_per_s": batch / t, "tflops": flops / t / 1e12, "model_tflops": real_flops / t / 1e12,
            "real_token_share": real_flops / flops, "max_mem_gib": mem}


def profile_case(case, device, batch, compile_mode, steps: int = 3) -> str:
    """Where the time of a bf16 compiled step goes: the kernels that take most device time."""
    from torch.profiler import ProfilerActivity, profile

    from workbench.inference.device import attention_backends

    model = make_model(case, device)
    x = torch.randn((batch, len(SAMPLE_VARIABLES), *GRID), device=device)
    hours = torch.full((batch,), 438000.0, dtype=torch.float64, device=device)
    with torch.inference_mode():
        model.step(x[:1], valid_time=hours[:1])
    step = torch.compile(model.step, mode=compile_mode, dynamic=False)

    def run():
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16), attention_backends(device):
            return step(x, valid_time=hours)

    for _ in range(3):
        run()
    torch.cuda.synchronize()
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA]
    with profile(activities=activities) as prof:
        for _ in range(steps):
            run()
        torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=70)


def engine_family(name: str, net: dict, grid):
    """A 1/6/24 h HTA family of Pangu-like networks, or one 1-h network of another kind, on ``grid``."""
    from workbench.models import HierarchicalModel

    spec = {"net": net, "grid": {"kind": "hrrr", "shape": list(grid)}}
    if name == "pangu":
        return HierarchicalModel([build(name, spec, time_step_hours=h) for h in (1, 6, 24)])
    return build(name, spec, time_step_hours=1)


def bench_engine(case, device, batch, dtype, compile_flag, grid=None, repeats: int = 2) -> dict:
    """run_forecast for hourly leads 1..24 (in memory) beside the bare loop of the same model steps.

    The bare loop replays the engine's plan of model steps on a device batch, with nothing else: no
    input copy, no normalisation, no output; the ratio is what the engine adds around the steps.
    """
    import pandas as pd
    import xarray as xr

    from workbench.inference import run_forecast
    from workbench.inference.device import attention_backends, autocast
    from workbench.inference.engine import LAST_RUN
    from workbench.inference.plan import count_steps, make_plan
    from workbench.models.protocol import step_models

    grid = tuple(grid or GRID)
    name, net = case[:2]
    family = engine_family(name, net, grid)
    times = pd.date_range("2020-06-01", periods=batch, freq="h")
    rng = np.random.default_rng(0)
    data = {v: (("time", "y", "x"), rng.normal(size=(batch, *grid)).astype("float32")) for v in SAMPLE_VARIABLES}
    src = xr.Dataset(data, coords={"time": times, "y": np.arange(grid[0]) * 3e3, "x": np.arange(grid[1]) * 3e3})
    leads = list(range(1, 25))

    def go():
        return run_forecast(family, src, times, leads, device=device, dtype=dtype, compile=compile_flag,
                            batch_size=batch, progress=False)

    go()  # warm-up (and compilation)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    engine_s, split = float("inf"), {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        fc = go()
        seconds = time.perf_counter() - t0
        if seconds < engine_s:
            engine_s, split = seconds, dict(LAST_RUN)
    assert np.isfinite(fc["t2m"].values).all()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    del fc
    steps = step_models(family)
    plan = make_plan([pd.Timedelta(hours=h) for h in leads], list(steps))
    calls = sum(count_steps(plan).values())
    for m in steps.values():
        m.to(device)
    x = torch.randn((batch, len(SAMPLE_VARIABLES), *grid), device=device)
    hours = torch.full((batch,), 438000.0, dtype=torch.float64, device=device)

    def bare():
        with torch.inference_mode(), autocast(device, dtype), attention_backends(device):
            states = {(): x}
            for op in plan:
                if op.kind == "step":
                    states[op.dst] = steps[op.dt].step(states[op.src], valid_time=hours).float()
                elif op.kind == "free":
                    states.pop(op.src, None)
        if device.type == "cuda":
            torch.cuda.synchronize()

    bare()
    bare_s = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        bare()
        bare_s = min(bare_s, time.perf_counter() - t0)
    return {"model": name, "grid": list(grid), "batch": batch, "leads": len(leads), "model_calls": calls,
            "seconds": engine_s, "bare_seconds": bare_s, "ratio": engine_s / bare_s, "peak_gib": peak,
            "lead_fields_per_s": batch * len(leads) / engine_s, "split": split}


def bench_3km(label, case, device, mode, warmup: int = 2, reps: int = 5, grid=GRID_3KM) -> dict:
    """One step of a full 1059 x 1799 state (batch 1; ``grid`` for a smaller check): time, peak memory
    above the weights (0 on a CPU), MFU."""
    from workbench.inference.device import attention_backends, autocast

    name, net = case[:2]
    grid = tuple(grid)
    model = build(name, {"net": net, "grid": {"kind": "hrrr", "shape": list(grid)}}, time_step_hours=1.0)
    model = model.to(device).eval()
    shape = (1, len(SAMPLE_VARIABLES), *grid)
    real, executed = real_token_flops(model, shape) if name == "pangu" else (count_flops(model, shape),) * 2
    x = torch.randn(shape, device=device)
    hours = torch.full((1,), 438000.0, dtype=torch.float64, device=device)
    dtype = "bf16" if mode.startswith("bf16") else "fp32"
    on_gpu = device.type == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if on_gpu else 0

    def run():
        with torch.inference_mode(), autocast(device, dtype), attention_backends(device):
            return model.step(x, valid_time=hours)

    t = timed(run, device, warmup, reps)
    mem = (torch.cuda.max_memory_allocated() - base) / 2**30 if on_gpu else 0.0
    return {"model": label, "mode": mode, "grid": list(grid), "seconds": t, "peak_step_gib": mem,
            "gflop": executed / 1e9, "tflops": executed / t / 1e12, "model_tflops": real / t / 1e12,
            "real_token_share": real / executed}


def bench_drift(sample_zarr: str, device) -> list[dict]:
    """Every shipped model: 24 chained 1-h steps in bf16 and in fp32 on the GPU, and fp32 on the CPU;
    RMS differences in standard deviations of each variable, at 24 h."""
    import xarray as xr

    from workbench.inference import run_forecast
    from workbench.inference.device import BF16_TOLERANCE, resolve_precision
    from workbench.models import load

    src = xr.open_zarr(sample_zarr).load()
    inits = src.time.values[24:26]
    rows = []
    for name in ("pangu", "climax", "hrheim"):
        model = load(name)
        kw = dict(hta=False, progress=False)
        gpu32 = run_forecast(model, src, inits, [24], device=device, dtype="fp32", **kw)
        gpu16 = run_forecast(model, src, inits, [24], device=device, dtype="bf16", **kw)
        gputf = run_forecast(model, src, inits, [24], device=device, dtype="tf32", **kw)
        cpu32 = run_forecast(load(name), src, inits, [24], device="cpu", dtype="fp32", **kw)

        def rms(a, b):
            return {str(v): float(np.sqrt(((a[v] - b[v]) ** 2).mean()) / src[v].std()) for v in a.data_vars}

        default = resolve_precision("auto", device, [model])
        rows.append({"model": name, "default": default, "bf16_vs_fp32": rms(gpu16, gpu32),
                     "tf32_vs_fp32": rms(gputf, gpu32), "gpu_fp32_vs_cpu_fp32": rms(gpu32, cpu32),
                     "tolerance": BF16_TOLERANCE})
        worst = {k: max(v.values()) for k, v in rows[-1].items() if isinstance(v, dict)}
        print(f"drift {name} (default {default}): worst over variables {worst}", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU, in seconds")
    parser.add_argument("--models", nargs="*", default=None, help="subset of the cases, run in this order")
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode (default: default)")
    parser.add_argument("--batch", type=int, default=None, help="override every case's batch")
    parser.add_argument("--deadline", type=float, default=540.0, help="stop starting new cases after SECONDS")
    parser.add_argument("--profile", default=None, help="after the table, profile this case (bf16 compiled)")
    parser.add_argument("--out", default=os.environ.get("OUT", "."), help="where results.json / .md go")
    parser.add_argument("--grid3km", nargs="*", default=None, metavar="CASE",
                        help="after the table, one step of a full 1059 x 1799 state for these cases "
                        f"(default all of {list(CASES_3KM)}) and the engine on that grid")
    parser.add_argument("--drift", default=None, metavar="HRRR_ZARR",
                        help="the bf16/TF32/CPU drift of every shipped model at 24 h on this analysis")
    parser.add_argument("--no-engine", action="store_true", help="skip the engine rows")
    parser.add_argument("--no-rows", action="store_true", help="skip the one-step rows (engine, 3 km, drift only)")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    device = torch.device("cpu" if args.cpu_smoke or not torch.cuda.is_available() else "cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    global GRID
    cases = CPU_CASES if device.type == "cpu" else GPU_CASES
    if args.cpu_smoke:
        GRID = SMOKE_GRID
    # torch.compile on a CPU builds C++ kernels (minutes); the smoke run checks the bf16 path eagerly.
    modes = ("fp32 eager", "bf16 compiled") if device.type == "cuda" else ("fp32 eager", "bf16 eager")
    if args.models:
        unknown = [k for k in args.models if k not in cases]
        if unknown:
            parser.error(f"unknown cases {unknown}; choose from {list(cases)}")
        cases = {k: cases[k] for k in args.models}  # in the order asked: the first are run before a deadline
    warmup, reps = (1, 3) if device.type == "cpu" else (5, 20)
    n = 256 if device.type == "cpu" else 8192
    peak_bf16 = matmul_peak(device, torch.bfloat16, n)
    peak_fp32 = matmul_peak(device, torch.float32, n)
    sheet_bf16, sheet_fp32 = datasheet_peaks(device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {card}; torch {torch.__version__}")
    print(f"measured matmul peak: bf16 {peak_bf16 / 1e12:.1f} TFLOP/s, fp32 (no TF32) {peak_fp32 / 1e12:.1f} TFLOP/s;"
          f" datasheet: bf16 {sheet_bf16}, fp32 {sheet_fp32}")
    rows, engine, grid3km, drift = [], [], [], []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def save():
        doc = {"device": card, "torch": torch.__version__, "peak_bf16_tflops": peak_bf16 / 1e12,
               "peak_fp32_tflops": peak_fp32 / 1e12, "datasheet_bf16": sheet_bf16, "datasheet_fp32": sheet_fp32,
               "rows": rows, "engine": engine, "grid3km": grid3km, "drift": drift}
        (out / "inference_results.json").write_text(json.dumps(doc, indent=1))

    for label, case in ({} if args.no_rows else cases).items():
        batch = args.batch or case[2]
        for mode in (case[3] if len(case) > 3 else modes):
            if time.perf_counter() - t_start > args.deadline:
                print(f"deadline reached; skipping {label} {mode}")
                continue
            try:
                r = bench_model(label, case, device, mode, batch, warmup, reps, args.compile_mode)
            except Exception as exc:  # keep the other cases: a failure is reported in the table
                print(f"{label} {mode}: FAILED {type(exc).__name__}: {exc}")
                continue
            peak = peak_bf16 if mode.startswith("bf16") else peak_fp32
            sheet = sheet_bf16 if mode.startswith("bf16") else sheet_fp32
            r["mfu_measured_peak"] = r["tflops"] * 1e12 / peak
            r["model_mfu_measured_peak"] = r["model_tflops"] * 1e12 / peak
            r["mfu_bf16_measured_peak"] = r["tflops"] * 1e12 / peak_bf16
            r["mfu_datasheet"] = r["tflops"] / sheet if sheet else None
            rows.append(r)
            print(f"{label:12s} {mode:14s} batch {batch:3d}: {r['seconds'] * 1e3:8.2f} ms "
                  f"(again {r['seconds_repeat'] * 1e3:.2f}), {r['forecasts_per_s']:9.1f} steps/s, "
                  f"{r['tflops']:7.2f} TFLOP/s, MFU {100 * r['mfu_measured_peak']:5.1f}% executed, "
                  f"{100 * r['model_mfu_measured_peak']:5.1f}% model (real tokens) of measured "
                  f"{'bf16' if mode.startswith('bf16') else 'fp32'} peak, first call {r['first_call_s']:.1f} s", flush=True)
            save()
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
    engine_case = cases.get("pangu", (CPU_CASES if device.type == "cpu" else GPU_CASES)["pangu"])
    runs = [] if args.no_engine else [(engine_case, args.batch or engine_case[2], dtype, None)
                                      for dtype in ("fp32", "bf16")]
    if args.grid3km is not None and device.type == "cuda":
        runs += [(("pangu", {}), 1, "fp32", GRID_3KM), (("hrheim", {}), 1, "fp32", GRID_3KM)]
    elif args.grid3km is not None:
        runs += [(case, 1, "fp32", (2 * SMOKE_GRID[0], 2 * SMOKE_GRID[1])) for case in (engine_case, CPU_CASES["hrheim"])]
    for case, batch, dtype, grid in runs:
        if time.perf_counter() - t_start > args.deadline:
            print(f"deadline reached; skipping the engine {case[0]} {dtype} {grid}")
            continue
        try:
            e = bench_engine(case, device, batch, dtype, False, grid=grid)
            e["setup"] = f"{dtype} eager"
            engine.append(e)
            print(f"engine {case[0]} 1..24 h {e['setup']} grid {e['grid']}: {e['seconds']:.2f} s for {batch} inits "
                  f"x {e['leads']} leads ({e['model_calls']} model calls); bare step loop {e['bare_seconds']:.2f} s; "
                  f"ratio {e['ratio']:.2f}; split {json.dumps({k: round(v, 3) for k, v in e['split'].items()})}",
                  flush=True)
        except Exception as exc:
            print(f"engine {case[0]} {dtype} {grid}: FAILED {type(exc).__name__}: {exc}", flush=True)
        save()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.grid3km is not None:
        # On a CPU: the same code on the small networks and a reduced grid, to check it runs.
        cases_3km = CASES_3KM if device.type == "cuda" else {k: (*CPU_CASES[k][:2], ("fp32 eager", "bf16 eager"))
                                                              for k in ("hrheim", "pangu")}
        grid_3km = GRID_3KM if device.type == "cuda" else (2 * SMOKE_GRID[0], 2 * SMOKE_GRID[1])
        unknown = [k for k in args.grid3km if k not in cases_3km]
        if unknown:
            parser.error(f"unknown 3-km cases {unknown}; choose from {list(cases_3km)}")
        for label in args.grid3km or list(cases_3km):
            case = cases_3km[label]
            for mode in case[2]:
                if time.perf_counter() - t_start > args.deadline:
                    print(f"deadline reached; skipping 3 km {label} {mode}")
                    continue
                try:
                    r = bench_3km(label, case, device, mode, grid=grid_3km)
                except Exception as exc:
                    print(f"3 km {label} {mode}: FAILED {type(exc).__name__}: {exc}", flush=True)
                    continue
                peak = peak_bf16 if mode.startswith("bf16") else peak_fp32
                r["mfu"], r["model_mfu"] = r["tflops"] * 1e12 / peak, r["model_tflops"] * 1e12 / peak
                grid3km.append(r)
                print(f"3 km {label} {mode}: {r['seconds'] * 1e3:.1f} ms/step, peak {r['peak_step_gib']:.1f} GiB, "
                      f"{r['tflops']:.1f} TFLOP/s, MFU {100 * r['mfu']:.1f}% executed / {100 * r['model_mfu']:.1f}% "
                      "model", flush=True)
                save()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        text = table_3km(grid3km, [e for e in engine if tuple(e["grid"]) == tuple(grid_3km)], card,
                         peak_bf16, peak_fp32)
        (out / "inference_3km.md").write_text(text)
        print(text)
    if args.drift and time.perf_counter() - t_start < args.deadline:
        try:
            drift.extend(bench_drift(args.drift, device))
        except Exception as exc:
            print(f"drift: FAILED {type(exc).__name__}: {exc}", flush=True)
        save()
    print()
    print(table(rows, peak_bf16, peak_fp32, sheet_bf16, card, engine))
    if args.profile and args.profile in cases and time.perf_counter() - t_start < args.deadline:
        print(profile_case(cases[args.profile], device, args.batch or cases[args.profile][2], args.compile_mode))
    (out / "inference_table.md").write_text(table(rows, peak_bf16, peak_fp32, sheet_bf16, card, engine))
    return 0


def table_3km(steps: list[dict], engine: list[dict], card: str, peak_bf16: float, peak_fp32: float) -> str:
    """Markdown: one step of a full 3-km state per network and set-up, and the engine on that grid."""
    grid = (steps or engine or [{"grid": GRID_3KM}])[0]["grid"]
    lines = [
        f"One step of a full {grid[0]} x {grid[1]} state (batch 1, {len(SAMPLE_VARIABLES)} variables) on {card}, "
        f"eager, median of CUDA-event timings; peak is the step's memory above the weights. MFU over the "
        f"measured matmul peak of the precision used (bf16 {peak_bf16 / 1e12:.0f} TFLOP/s, fp32 without TF32 "
        f"{peak_fp32 / 1e12:.1f} TFLOP/s); model FLOPs count real tokens only (Pangu-like windows pad).",
        "",
        "| network | set-up | ms/step | peak GiB | GFLOP/step executed | real-token share | TFLOP/s executed | "
        "MFU executed FLOPs | MFU model FLOPs (real tokens) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in steps:
        lines.append(f"| {r['model']} | {r['mode']} | {r['seconds'] * 1e3:.1f} | {r['peak_step_gib']:.1f} | "
                     f"{r['gflop']:,.1f} | {100 * r['real_token_share']:.0f}% | {r['tflops']:.1f} | "
                     f"{100 * r['mfu']:.1f}% | {100 * r['model_mfu']:.1f}% |")
    if engine:
        lines += ["", "`run_forecast` on the same grid: one initial time, hourly leads 1..24 into memory, best of "
                  "two after a warm-up, beside the bare loop of the same model steps (no input copy, "
                  "normalisation or output); peak is the device memory of the engine run.", "",
                  "| network | set-up | model calls | engine s | engine ms per model call | bare step loop s | "
                  "engine / bare | peak GiB | output copy (device) s | writer waits s | sink copies s |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for e in engine:
            split = e.get("split", {})
            lines.append(f"| {e['model']} | {e['setup']} | {e['model_calls']} | {e['seconds']:.2f} | "
                         f"{1e3 * e['seconds'] / e['model_calls']:.1f} | {e['bare_seconds']:.2f} | {e['ratio']:.2f} | "
                         f"{e.get('peak_gib', 0.0):.1f} | {split.get('transfer', 0.0):.2f} | {split.get('wait', 0.0):.2f} | "
                         f"{split.get('write', 0.0):.2f} |")
    return "\n".join(lines) + "\n"


def table(rows, peak_bf16, peak_fp32, sheet_bf16, card, engine) -> str:
    lines = [
        f"Card: {card}. Peak matmul measured here: bf16 {peak_bf16 / 1e12:.0f} TFLOP/s, fp32 (no TF32) "
        f"{peak_fp32 / 1e12:.1f} TFLOP/s; datasheet dense bf16 {sheet_bf16} TFLOP/s. One model step on a batch "
        f"of {len(SAMPLE_VARIABLES)}-variable states on the {GRID[0]} x {GRID[1]} grid; median of CUDA-event timings.",
        "",
        "| model | params | GFLOP/state | set-up | batch | ms/step | states/s | TFLOP/s | MFU executed FLOPs "
        "(measured peak of that precision) | MFU model FLOPs (real tokens) | real-token share | MFU (datasheet) | "
        "speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by_model: dict[str, dict] = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["mode"]] = r
    for model, modes in by_model.items():
        base = modes.get("fp32 eager")
        for mode, r in modes.items():
            ratio = f"{base['seconds'] / r['seconds']:.1f}x" if base and mode != "fp32 eager" else ""
            sheet = f"{100 * r['mfu_datasheet']:.1f}%" if r.get("mfu_datasheet") else "n/a"
            lines.append(
                f"| {model} | {r['params'] / 1e6:.1f} M | {r['gflop_per_step'] / r['batch']:.1f} | {mode} | "
                f"{r['batch']} | {r['seconds'] * 1e3:.2f} | {r['forecasts_per_s']:.1f} | {r['tflops']:.1f} | "
                f"{100 * r['mfu_measured_peak']:.1f}% | {100 * r['model_mfu_measured_peak']:.1f}% | "
                f"{100 * r['real_token_share']:.0f}% | {sheet} | {ratio} |"
            )
    if engine:
        lines += ["", "| engine, hourly leads 1..24 | grid | set-up | batch | model calls | engine s | bare step "
                  "loop s | engine / bare | lead-forecasts/s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for e in engine:
            lines.append(f"| {e['model']} | {e['grid'][0]} x {e['grid'][1]} | {e['setup']} | {e['batch']} | "
                         f"{e['model_calls']} | {e['seconds']:.2f} | {e['bare_seconds']:.2f} | {e['ratio']:.2f} | "
                         f"{e['lead_fields_per_s']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
