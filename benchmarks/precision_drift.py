"""Precision drift of every shipped model at 24 chained hours: bf16 and TF32 against fp32, GPU against CPU.

For each shipped network (``workbench/checkpoints``: the Pangu-like 1, 6 and 24 h models, the
lead-conditioned ClimaX-like model at its 1, 6 and 24 h steps, the HR-Heim-like 1 h model) and each of
its time steps ``dt``, the forecast of lead 24 h made by chaining ``24 h / dt`` steps of ``dt`` from a
few initial times of a sample's analysis (which also drives the lateral boundaries, as in training) is
run four times:

* fp32 (TF32 off), bf16 autocast and TF32 on the device (a GPU);
* fp32 on this machine's CPU, the reference for the device's fp32.

The drift of a precision is the RMS difference of its 24-h forecast from the fp32 one, over initial
times and grid points, in standard deviations of each variable (over the whole analysis of the sample).
:data:`workbench.inference.device.BF16_TOLERANCE` (0.05) is what a model must meet to run in bf16 by
default. The tables go to ``precision_drift.md`` (and the numbers to ``precision_drift.json``) under
``--out``.

    python benchmarks/precision_drift.py --size default --inits 3      # on a GPU machine (a minute or two)
    python benchmarks/precision_drift.py --size tiny --inits 1 --models hrheim   # a CPU check, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.errors import DataError  # noqa: E402

SHIPPED = ("pangu", "climax", "hrheim")
LEAD = pd.Timedelta(hours=24)
#: The precisions run on the device (each compared with its fp32; its fp32 with the CPU's).
RUNS = ("fp32", "bf16", "tf32")


def pick_inits(source: xr.Dataset, n: int) -> list[np.datetime64]:
    """``n`` initial times at 00 or 12 UTC spread over the sample, each with 24 h of analysis after it
    (the lateral boundaries of the rollout) and a day before it (the first day is the spin-up)."""
    times = pd.DatetimeIndex(source.time.values)
    have = set(times)
    ok = [t for t in times[24:] if t.hour in (0, 12) and t + LEAD in have]
    if len(ok) < n:
        raise DataError(f"the sample has {len(ok)} initial times at 00/12 UTC with 24 h after them; asked for {n}")
    picks = np.linspace(0, len(ok) - 1, n).round().astype(int)
    return [np.datetime64(ok[i]) for i in picks]


def rms_std(a: xr.Dataset, b: xr.Dataset, std: dict[str, float]) -> dict[str, float]:
    """RMS of ``a - b`` at the last lead, per variable, in standard deviations of that variable."""
    out = {}
    for v in a.data_vars:
        d = a[v].isel(lead_time=-1).values.astype(np.float64) - b[v].isel(lead_time=-1).values.astype(np.float64)
        out[str(v)] = float(np.sqrt(np.mean(d**2)) / std[str(v)])
    return out


def drift_rows(source: xr.Dataset, inits, models, device: torch.device, log=print, deadline: float = float("inf"),
               on_row=None) -> list[dict]:
    """The drift of every (model, step) pair; see the module notes.

    No new pair is started once ``deadline`` (a ``time.perf_counter()`` value) is past; ``on_row(rows)``
    is called after each pair, so that a run cut short keeps what it measured.
    """
    from workbench.inference import run_forecast
    from workbench.inference.device import BF16_TOLERANCE, resolve_precision
    from workbench.models import load
    from workbench.models.protocol import step_models

    variables = None
    rows = []
    for name in models:
        model, reference = load(name), load(name)
        variables = variables or list(model.variables)
        std = {v: float(source[v].std()) for v in model.variables}
        for dt in sorted(step_models(model)):
            if time.perf_counter() > deadline:
                log(f"deadline reached: {name} {dt} not measured")
                continue
            kw = dict(hta=False, single_step=dt, progress=False, boundary=source)
            t0 = time.perf_counter()
            runs = {p: run_forecast(model, source, inits, [LEAD], device=device, dtype=p, **kw) for p in RUNS}
            t_dev = time.perf_counter() - t0
            t0 = time.perf_counter()
            cpu = run_forecast(reference, source, inits, [LEAD], device="cpu", dtype="fp32", **kw)
            t_cpu = time.perf_counter() - t0
            default = resolve_precision("auto", torch.device("cuda"), [model])
            row = {
                "model": name, "step_h": dt / pd.Timedelta(hours=1), "steps": int(LEAD / dt), "default": default,
                "bf16_vs_fp32": rms_std(runs["bf16"], runs["fp32"], std),
                "tf32_vs_fp32": rms_std(runs["tf32"], runs["fp32"], std),
                "device_fp32_vs_cpu_fp32": rms_std(runs["fp32"], cpu, std),
                "default_vs_fp32": rms_std(runs[default] if default in runs else runs["fp32"], runs["fp32"], std),
                "tolerance": BF16_TOLERANCE, "device_s": t_dev, "cpu_s": t_cpu,
            }
            rows.append(row)
            worst = {k: round(max(v.values()), 4) for k, v in row.items() if isinstance(v, dict)}
            log(f"{name} {row['step_h']:g} h x {row['steps']}: worst {worst} "
                f"({t_dev:.1f} s on {device}, {t_cpu:.1f} s on the CPU)", flush=True)
            if on_row is not None:
                on_row(rows)
    return rows


def markdown(rows: list[dict], header: str) -> str:
    """One table per comparison: rows (model, step), columns the variables and the worst of them."""
    if not rows:
        return header + "\n\nNo rows.\n"
    variables = list(rows[0]["bf16_vs_fp32"])
    titles = {
        "bf16_vs_fp32": "bf16 autocast vs fp32 (TF32 off), on the device",
        "tf32_vs_fp32": "TF32 on vs fp32 (TF32 off), on the device",
        "device_fp32_vs_cpu_fp32": "fp32 on the device vs fp32 on the CPU",
    }
    lines = [header, ""]
    for key, title in titles.items():
        lines += [f"### {title}", "", "| model | step x count | " + " | ".join(variables) + " | worst |",
                  "| --- | --- | " + " | ".join("---" for _ in variables) + " | --- |"]
        for r in rows:
            vals = r[key]
            lines.append(f"| {r['model']} | {r['step_h']:g} h x {r['steps']} | "
                         + " | ".join(_fmt(vals[v]) for v in variables) + f" | **{_fmt(max(vals.values()))}** |")
        lines.append("")
    lines += ["### Default precision", "",
              "| model | step x count | default (`dtype=\"auto\"` on a GPU) | its worst drift from fp32 | tolerance |"
              " bf16's worst drift |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['step_h']:g} h x {r['steps']} | {r['default']} | "
                     f"{_fmt(max(r['default_vs_fp32'].values()))} | {r['tolerance']} | "
                     f"{_fmt(max(r['bf16_vs_fp32'].values()))} |")
    return "\n".join(lines) + "\n"


def _fmt(x: float) -> str:
    return "0" if x == 0 else f"{x:.2g}" if x < 0.01 else f"{x:.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="default", help="sample size (generated if absent; default 'default')")
    parser.add_argument("--inits", type=int, default=3, help="initial times (default 3)")
    parser.add_argument("--models", nargs="*", default=list(SHIPPED), choices=SHIPPED,
                        help="shipped models, measured in this order")
    parser.add_argument("--device", default="auto", help="the device under test (default: a GPU if there is one)")
    parser.add_argument("--out", default=os.environ.get("OUT", "."), help="where the .md and .json go")
    parser.add_argument("--deadline", type=float, default=float("inf"),
                        help="start no new (model, step) pair after SECONDS from the start")
    args = parser.parse_args(argv)
    if args.inits < 1:
        parser.error("--inits must be at least 1")
    from workbench.inference.device import resolve_device
    from workbench.sample import open_sample

    device = resolve_device(args.device)
    t0 = time.perf_counter()
    deadline = t0 + args.deadline
    source = open_sample("hrrr", size=args.size, progress=False).load()
    print(f"sample {args.size}: {dict(source.sizes)} ready in {time.perf_counter() - t0:.0f} s", flush=True)
    inits = pick_inits(source, args.inits)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    header = (f"## Precision drift at 24 chained hours\n\nDevice: {card}, torch {torch.__version__}, CPU reference "
              f"on this machine's CPU ({os.cpu_count()} cores). The `{args.size}` sample, "
              f"{len(inits)} initial times ({', '.join(str(t)[:13] for t in inits)}); lead 24 h reached by "
              "chaining each model's step, the analysis driving the lateral boundaries. RMS difference over "
              "initial times and grid points, in standard deviations of each variable over the sample's analysis.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def save(rows: list[dict]) -> str:
        text = markdown(rows, header)
        (out / "precision_drift.md").write_text(text)
        doc = {"device": card, "torch": torch.__version__, "inits": [str(t) for t in inits], "rows": rows}
        (out / "precision_drift.json").write_text(json.dumps(doc, indent=1))
        return text

    rows = drift_rows(source, inits, args.models, device, deadline=deadline, on_row=save)
    print(save(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
