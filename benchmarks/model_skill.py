"""Regenerate ``benchmarks/results/model_skill.md`` and ``model_skill.csv`` from the checkpoints and the sample.

Time: the forecasts dominate, above all the 1-hour rollouts to 24 h (hrheim, and pangu's and climax's
"1 h steps only"). On 2 CPU cores shared with about 15 other busy processes the whole run took 42 min
(2524 s); the same forecasts took 424 s on 2 idle cores before, so about 8 min is to be expected there,
and a GPU (``--device cuda``) makes it a minute or two.

How to run, from the repository root (the sample is generated into ``$WORKBENCH_CACHE`` first if needed)::

    python benchmarks/model_skill.py                     # shipped checkpoints, on the CPU
    python benchmarks/model_skill.py --device cuda       # the forecasts on a GPU
    python benchmarks/model_skill.py --checkpoints DIR   # other checkpoints (every model found there)
    python benchmarks/model_skill.py --members 3 3       # also each learned model's 3 x 3 ensemble
    python benchmarks/model_skill.py --dry-run           # print the tables, write nothing

Every learned model with checkpoints in the directory (any registered name: ``workbench.models``),
with its shortest step alone as well for a family of steps (hierarchical temporal aggregation), the
persistence and NWP baselines, and a forecast that knows nothing ("no rain / no echo": tp = 0, refc =
-10 dBZ, the rest from persistence) forecast from the NWP forecast's initial times in the held-out
sample hours (those of ``workbench.training.load_training_data``, as ``evaluate_checkpoints``). Then,
with ``workbench.scoring``:

* every cell (model x variable x lead time): the area-weighted RMSE per initial time averaged over
  them (WeatherBench 2's convention) with its 90 % block-bootstrap interval over the initial times
  (``decompose(..., confidence=0.9)``), and the pooled RMSE;
* each learned model (and ensemble) at 6 h and 24 h against persistence and against NWP: the mean
  paired difference of the per-init RMSE (negative: the model is better), its 90 % block-bootstrap
  interval and two-sided p-values of the bootstrap and of Diebold-Mariano (HAC variance);
* CSI / ETS / frequency bias at three thresholds and FSS at three scales of tp, refc and gust, with
  intervals (``workbench.scoring.onepass``).

``model_skill.csv`` holds the first two as one row per model, variable and lead time; ``model_skill.md``
gets them as tables between the markers ``<!-- model_skill.py: begin -->`` and ``<!-- model_skill.py:
end -->`` (the text around them, the notes on training, is kept; a file without the markers gets the
block at its end). Ensemble forecasts (a ``member``, or ``weight_member`` x ``noise_member``, dimension)
are scored by their ensemble mean, in linear units for reflectivity.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench import _io  # noqa: E402
from workbench.errors import CheckpointError, DataError  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BEGIN, END = "<!-- model_skill.py: begin -->", "<!-- model_skill.py: end -->"
LEADS_H = (1, 6, 24)
PAIRED_LEADS_H = (6, 24)
VARIABLES = ("t2m", "z500", "u10m", "gust", "tp", "msl", "refc")
REFERENCES = ("persistence", "nwp")
#: Event thresholds per variable (tp in m per hour, refc in dBZ, gust in m s-1) and the FSS one
THRESHOLDS = {"tp": (0.0005, 0.004, 0.0254), "refc": (20.0, 35.0, 50.0), "gust": (15.0, 20.0, 25.7)}
FSS_THRESHOLD = {"tp": 0.004, "refc": 35.0, "gust": 20.0}
WINDOWS_KM = (24.0, 72.0, 216.0)
NO_SKILL = "no rain / no echo"


# ---------------------------------------------------------------------------------------------------
# forecasts


def learned_models(checkpoints: str | None, names: list[str] | None) -> dict[str, object]:
    """Every registered torch model with checkpoints in ``checkpoints`` (or just ``names``), loaded."""
    from workbench.models import find_checkpoints, list_models, load

    candidates = names or [n for n in list_models() if n not in ("persistence", "climatology", "nwp")]
    out: dict[str, object] = {}
    for name in candidates:
        try:
            find_checkpoints(name, checkpoints)
            model = load(name, checkpoint=checkpoints)
        except (CheckpointError, DataError) as exc:
            if names:  # asked for by name: say why it cannot be scored
                raise DataError(f"model {name!r}: {exc}") from None
            continue
        out[name] = model
    if not out:
        raise DataError(f"no learned model has checkpoints in {checkpoints or 'the shipped directory'}.")
    return out


def make_forecasts(args, truth: xr.Dataset, inits: pd.DatetimeIndex, nwp) -> dict[str, xr.Dataset]:
    """Forecasts of every model, baseline and the no-skill forecast, in memory."""
    from workbench.inference import run_forecast
    from workbench.inference.runner import step_models
    from workbench.models import Persistence

    models = learned_models(args.checkpoints, args.models)
    runs: dict[str, tuple[object, dict]] = {}
    for name, model in models.items():
        runs[name] = (model, {})
        if len(step_models(model)) > 1:  # a family of steps: also its shortest step alone
            runs[f"{name} (1 h steps only)"] = (model, {"hta": False})
        if args.members:
            members = tuple(args.members) if len(args.members) == 2 else args.members[0]
            label = "x".join(str(m) for m in args.members)
            runs[f"{name} (ensemble {label})"] = (model, {"members": members})
    out: dict[str, xr.Dataset] = {}
    for label, (model, extra) in runs.items():
        t0 = time.perf_counter()
        fc = run_forecast(
            model, truth, inits, list(LEADS_H), device=args.device, dtype="fp32", progress=False,
            batch_size=len(inits), **extra,
        )  # fmt: skip
        out[label] = fc[[v for v in VARIABLES if v in fc]].load()
        print(f"  {label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    out["persistence"] = run_forecast(
        Persistence(variables=list(VARIABLES)), truth, inits, list(LEADS_H), progress=False
    )[list(VARIABLES)].load()
    if nwp is not None:
        fc = run_forecast(nwp, truth, inits, list(LEADS_H), progress=False)
        out["nwp"] = fc[[v for v in VARIABLES if v in fc]].load()
    constant = out["persistence"].copy(deep=True)
    constant["tp"] = xr.zeros_like(constant["tp"])
    constant["refc"] = xr.full_like(constant["refc"], -10.0)  # the sample's floor: no echo anywhere
    out[NO_SKILL] = constant
    return out


# ---------------------------------------------------------------------------------------------------
# scores


def member_dims(fc: xr.Dataset) -> list[str]:
    return [str(d) for d in fc.dims if d not in ("init_time", "lead_time", "y", "x")]


def per_init_rmse(fc: xr.Dataset, truth: xr.Dataset, weights: xr.DataArray) -> xr.Dataset:
    """Area-weighted RMSE of the (ensemble-mean) forecast per initial time and lead time."""
    from workbench.scoring import rmse
    from workbench.scoring.conventions import physical_mean

    obs = truth.sel(time=fc["valid_time"]).drop_vars("time")
    out = {}
    for v in fc.data_vars:
        f = fc[v]
        if member_dims(fc):
            f = physical_mean(f, member_dims(fc), skipna=False)  # linear units for dBZ
        out[v] = rmse(f, obs[v], weights=weights, preserve_dims=["init_time", "lead_time"])
    return xr.Dataset(out)


def paired(per_init: dict[str, xr.Dataset], model: str, ref: str, lead_h: float, var: str, args, spacing_h):
    """Mean paired difference of the per-init RMSE, its interval and the two p-values."""
    from workbench.scoring.significance import diebold_mariano, paired_bootstrap

    lead = pd.Timedelta(hours=lead_h)
    a, b = per_init[model][var].sel(lead_time=lead), per_init[ref][var].sel(lead_time=lead)
    pb = paired_bootstrap(a, b, confidence=args.confidence, n_resamples=args.resamples, seed=args.seed)
    # forecasts whose lead exceeds the spacing of the inits overlap in time: h lags of autocorrelation
    dm = diebold_mariano(a, b, h=max(1, math.ceil(lead_h / spacing_h)))
    return {
        "difference": float(pb["difference"]),
        "low": float(pb["low"]),
        "high": float(pb["high"]),
        "p_bootstrap": float(pb["p_value"]),
        "p_dm": float(dm["p_value"]),
    }


def skill_rows(fcs, truth, weights, inits, args) -> pd.DataFrame:
    """One row per model, variable and lead time: RMSE with interval, pooled RMSE, paired differences."""
    from workbench.scoring import decompose

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = decompose(
            fcs,
            truth,
            weights=weights,
            confidence=args.confidence,
            n_resamples=args.resamples,
            seed=args.seed,
        )
        pooled = decompose(fcs, truth, weights=weights, rmse_average="pooled")
    per_init = {m: per_init_rmse(fc, truth, weights) for m, fc in fcs.items()}
    spacing_h = float(np.median(np.diff(inits.values)) / np.timedelta64(1, "h")) if len(inits) > 1 else 24.0
    learned = [m for m in fcs if m not in (*REFERENCES, NO_SKILL)]
    rows = []
    for m in fcs:
        for v in VARIABLES:
            if v not in fcs[m]:
                continue
            for lead_h in LEADS_H:
                cell = scores.sel(model=m, variable=v, region="all", lead_time=pd.Timedelta(hours=lead_h))
                row = {
                    "model": m,
                    "variable": v,
                    "units": str(truth[v].attrs.get("units", "")),
                    "lead_h": lead_h,
                    "rmse": float(cell["rmse"]),
                    "rmse_low": float(cell["rmse_low"]),
                    "rmse_high": float(cell["rmse_high"]),
                    "rmse_pooled": float(
                        pooled["rmse"].sel(
                            model=m, variable=v, region="all", lead_time=pd.Timedelta(hours=lead_h)
                        )
                    ),
                    "members": int(np.prod([fcs[m].sizes[d] for d in member_dims(fcs[m])])),
                }
                for ref in REFERENCES:
                    ok = m in learned and ref in fcs and lead_h in PAIRED_LEADS_H and v in fcs[ref]
                    test = paired(per_init, m, ref, lead_h, v, args, spacing_h) if ok else {}
                    for key in ("difference", "low", "high", "p_bootstrap", "p_dm"):
                        row[f"vs_{ref}_{key}"] = test.get(key, np.nan)
                rows.append(row)
    return pd.DataFrame(rows)


def event_rows(fcs, truth, weights, args) -> list[str]:
    """Markdown of CSI / ETS / frequency bias and FSS of tp, refc and gust with intervals."""
    from workbench.scoring.conventions import physical_mean
    from workbench.scoring.onepass import event_scores, event_statistics

    lines = [
        "### Categorical and neighbourhood scores",
        "",
        'CSI and ETS of "value >= threshold" over the whole domain, frequency bias (1 = as many events '
        f"forecast as observed), and FSS at {', '.join(f'{x:g}' for x in WINDOWS_KM)} km at one threshold; "
        f"{100 * args.confidence:g} % intervals. A forecast that never forecasts the event scores CSI = "
        "ETS = 0 and FSS = 0. Ensembles: their ensemble mean.",
        "",
    ]
    for v in THRESHOLDS:
        if v not in truth:
            continue
        lines += [f"#### {v} ({truth[v].attrs.get('units', '')})", ""]
        head = [f"CSI ≥{t:g}" for t in THRESHOLDS[v]] + [f"ETS ≥{t:g}" for t in THRESHOLDS[v]]
        head += [f"bias ≥{THRESHOLDS[v][1]:g}"] + [f"FSS {x:g} km" for x in WINDOWS_KM]
        for lead in PAIRED_LEADS_H:
            lines += [f"{lead} h, FSS at ≥{FSS_THRESHOLD[v]:g}:", ""]
            lines += ["| model | " + " | ".join(head) + " |", "|" + " --- |" * (len(head) + 1)]
            for m, fc in fcs.items():
                if v not in fc:
                    continue
                f = fc[v].sel(lead_time=[pd.Timedelta(hours=lead)])
                if member_dims(fc):
                    f = physical_mean(f, member_dims(fc), skipna=False).assign_coords(
                        valid_time=fc["valid_time"].sel(lead_time=[pd.Timedelta(hours=lead)])
                    )
                st = event_statistics(
                    f, truth[v], THRESHOLDS[v], fss_threshold=FSS_THRESHOLD[v], windows_km=WINDOWS_KM,
                    weights=weights,
                )  # fmt: skip
                sc = event_scores(st, confidence=args.confidence, n_resamples=args.resamples, seed=args.seed)
                sc = sc.isel(lead_time=0).sel(region="all")

                def cell(name, sc=sc, **sel):
                    x, lo, hi = (float(sc[k].sel(**sel)) for k in (name, f"{name}_low", f"{name}_high"))
                    return f"{x:.2f} [{lo:.2f}, {hi:.2f}]"

                cells = [cell("csi", threshold=t) for t in THRESHOLDS[v]]
                cells += [cell("ets", threshold=t) for t in THRESHOLDS[v]]
                cells += [cell("frequency_bias", threshold=THRESHOLDS[v][1])]
                cells += [cell("fss", window_km=x) for x in WINDOWS_KM]
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
            lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------------
# markdown


def fmt(x: float) -> str:
    from workbench.training.evaluate import format_magnitude

    return "–" if not np.isfinite(x) else format_magnitude(x)


def rmse_tables(table: pd.DataFrame, confidence: float) -> list[str]:
    lines = []
    for lead in LEADS_H:
        sub = table[table["lead_h"] == lead]
        cols = [v for v in VARIABLES if v in set(sub["variable"])]
        units = {v: sub.loc[sub["variable"] == v, "units"].iloc[0] for v in cols}
        best = {v: sub.loc[sub["variable"] == v, "rmse"].min() for v in cols}
        lines += [f"#### {lead} h", ""]
        lines += ["| model | " + " | ".join(f"{v} ({units[v]})" for v in cols) + " |"]
        lines += ["|" + " --- |" * (len(cols) + 1)]
        for m in dict.fromkeys(sub["model"]):
            cells = []
            for v in cols:
                r = sub[(sub["model"] == m) & (sub["variable"] == v)]
                if r.empty:
                    cells.append("")
                    continue
                r = r.iloc[0]
                value = fmt(r["rmse"])
                value = f"**{value}**" if r["rmse"] == best[v] else value
                cells.append(f"{value} [{fmt(r['rmse_low'])}, {fmt(r['rmse_high'])}]")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def paired_tables(table: pd.DataFrame, confidence: float) -> list[str]:
    lines = []
    for ref in REFERENCES:
        col = f"vs_{ref}_difference"
        sub = table[table[col].notna()]
        if sub.empty:
            continue
        cols = [v for v in VARIABLES if v in set(sub["variable"])]
        lines += [f"#### Against {ref}", ""]
        lines += ["| model | lead | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 2)]
        for m in dict.fromkeys(sub["model"]):
            for lead in PAIRED_LEADS_H:
                cells = []
                for v in cols:
                    r = sub[(sub["model"] == m) & (sub["variable"] == v) & (sub["lead_h"] == lead)]
                    if r.empty:
                        cells.append("")
                        continue
                    r = r.iloc[0]
                    p1, p2 = r[f"vs_{ref}_p_bootstrap"], r[f"vs_{ref}_p_dm"]
                    text = (
                        f"{fmt(r['rmse'])}: {fmt(r[col])} [{fmt(r[f'vs_{ref}_low'])}, "
                        f"{fmt(r[f'vs_{ref}_high'])}] (p {p1:.2f} / {p2:.2f})"
                    )
                    cells.append(f"**{text}**" if p1 < 1 - confidence and p2 < 1 - confidence else text)
                lines.append(f"| {m} | {lead} h | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def render(table: pd.DataFrame, events: list[str], meta: dict, args) -> str:
    c = f"{100 * args.confidence:g} %"
    lines = [
        BEGIN,
        "",
        f"Generated by `python benchmarks/model_skill.py{meta['argv']}` on {meta['date']} ({meta['device']}, "
        f"{meta['seconds']:.0f} s). Checkpoints: `{meta['checkpoints']}`. Held-out sample hours "
        f"{meta['heldout']}; {meta['n_inits']} initial times {meta['inits']}. "
        f"Intervals: block bootstrap over the initial times ({args.resamples} resamples, seed {args.seed}, "
        "block length from the autocorrelation, expanded percentile interval; `workbench.scoring.bootstrap`). "
        "The same numbers, unrounded, are in `model_skill.csv`.",
        "",
        f"### RMSE with {c} intervals",
        "",
        "Area-weighted RMSE per initial time, then the mean over the initial times (WeatherBench 2's "
        "convention; `rmse_pooled` in the CSV pools the squared errors first). Cell: RMSE [low, high]; "
        "lowest per column in bold. Ensembles are scored by their ensemble mean (reflectivity in linear "
        "units).",
        "",
        *rmse_tables(table, args.confidence),
        f"### Paired differences at {' and '.join(f'{h} h' for h in PAIRED_LEADS_H)}",
        "",
        "Per initial time, the model's RMSE minus the reference's (negative = the model is better). Cell: "
        f"RMSE: mean difference [{c} block-bootstrap interval] (two-sided p-values of the bootstrap and of "
        "Diebold-Mariano with a HAC variance over h = ceil(lead / init spacing) lags, Student t). "
        f"**bold**: p < {1 - args.confidence:.2g} in both. The interval is the expanded percentile interval "
        "(wider than the plain one for few initial times), the bootstrap p-value comes from the plain "
        "bootstrap distribution: a bold cell's interval can still reach across zero.",
        "",
        *paired_tables(table, args.confidence),
        *events,
        END,
    ]
    return "\n".join(lines) + "\n"


def splice(existing: str, block: str) -> str:
    """The notes with the generated block replaced (or, without markers, appended)."""
    if BEGIN in existing and END in existing:
        head, rest = existing.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + block.rstrip("\n") + tail
    return existing.rstrip("\n") + ("\n\n" if existing.strip() else "") + block


# ---------------------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", default=None, help="checkpoint directory (default: the shipped one)")
    parser.add_argument(
        "--models", nargs="+", default=None, help="learned models (default: all with checkpoints)"
    )
    parser.add_argument("--members", nargs="+", type=int, default=None, metavar="N",
                        help="also score each learned model's ensemble: N noise members, or W N")  # fmt: skip
    parser.add_argument("--size", default="default", help="sample size (default: default)")
    parser.add_argument("--device", default="auto", help="torch device for the forecasts (cpu, cuda)")
    parser.add_argument("--confidence", type=float, default=0.9, help="interval level (default 0.9)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument(
        "--out-dir", default=str(RESULTS), help="where model_skill.md/.csv are (default: results)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the block, write nothing")
    args = parser.parse_args(argv)
    if not 0 < args.confidence < 1:
        parser.error(f"--confidence must be between 0 and 1, not {args.confidence}")
    if args.resamples < 10:
        parser.error(f"--resamples must be at least 10, not {args.resamples}")
    if args.members is not None and (len(args.members) not in (1, 2) or min(args.members) < 1):
        parser.error("--members takes N or W N, positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    from workbench.grids import area_weights
    from workbench.models import NWPForecast
    from workbench.sample import ensure_sample
    from workbench.training import load_training_data
    from workbench.training.evaluate import heldout_inits

    if args.device in ("auto", "cpu"):
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    ensure_sample(args.size, progress=False)
    data = load_training_data(size=args.size)
    truth = data.source
    start, end = data.heldout_period
    nwp = None
    try:
        nwp = NWPForecast(size=args.size, variables=[v for v in VARIABLES if v in truth])
        inits = heldout_inits(truth, start, max(LEADS_H), nwp.data)
    except (DataError, OSError, KeyError):  # no NWP forecast in these hours: persistence only
        nwp = None
        inits = heldout_inits(truth, start, max(LEADS_H), None, every_h=12)
    fcs = make_forecasts(args, truth, inits, nwp)
    truth = truth[[v for v in VARIABLES if v in truth]].load()
    weights = area_weights(truth)
    table = skill_rows(fcs, truth, weights, inits, args)
    events = event_rows(fcs, truth, weights, args)
    meta = {
        "argv": "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "device": args.device,
        "seconds": time.perf_counter() - t0,
        "checkpoints": args.checkpoints or "workbench/checkpoints",
        "heldout": f"{start:%Y-%m-%d %H}h to {end:%Y-%m-%d %H}h",
        "n_inits": len(inits),
        "inits": f"{inits[0]:%m-%d %H}h .. {inits[-1]:%m-%d %H}h",
    }
    block = render(table, events, meta, args)
    if args.dry_run:
        print(block)
        return 0
    out = Path(args.out_dir)
    md = out / "model_skill.md"
    _io.write_text(
        md, splice(md.read_text() if md.exists() else "# Skill of the shipped checkpoints\n", block)
    )
    _io.write_text(out / "model_skill.csv", table.to_csv(index=False, float_format="%.6g"))
    print(f"wrote {md} and {out / 'model_skill.csv'} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
