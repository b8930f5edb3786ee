"""The skill notes of the shipped checkpoints, from one analysis on the test period, in one command.

    python benchmarks/model_skill.py --stats stats.csv --out benchmarks/results/model_skill   # forecast + notes
    python benchmarks/model_skill.py --stats stats.csv --notes-only --out ...                 # notes from stats

Every model starts from the sample's one analysis (``open_sample("analysis", "default")``, the truth plus
the modelled analysis error; :mod:`workbench.workflow.start`) at every NWP initial time of the ``default``
sample (the test period, from its own seed: the networks trained on ``train`` and were validated on
``validation``): persistence repeats it, the NWP integrated it, the learned networks (deep-ensemble
member 0, deterministic) step from it with the NWP forecast as driving lateral boundary. The default
ensemble (``--ensembles default``: the model the calibration chose, its deep-ensemble members x
initial-condition perturbations at the analysis error x the stochastic model error calibrated on the
validation sample, ``workbench/checkpoints/ensemble_calibration.json``) runs too; ``--calibrate``
re-derives that calibration (``benchmarks/calibrate_ensemble.py``).

On a GPU, every NWP initial time of the test period, all models and the default ensemble:

    python benchmarks/model_skill.py --device cuda --dtype fp32 --leads 6,24 --stats stats.csv --out notes

The notes (``<out>.csv``, ``<out>.tables.md``) and the statistics are rewritten after each model, each
file replaced atomically, so a run stopped part-way leaves the models it finished; the run ends with
the issue's must-show lines, each marked PASS or FAIL.

Stage 1 (``forecast``, a GPU makes it quick) writes per initial time, model, variable and lead the
area-weighted mean squared error, and for the ensembles the squared error of the ensemble mean, the
ensemble variance (unbiased) and its epistemic (between weight members) and aleatoric (within) parts.
Stage 2 (``notes``) turns them into RMSE (per init, averaged over inits as WeatherBench 2) and
spread-skill ratios with 90 % block-bootstrap intervals over the initial times
(:func:`workbench.scoring.bootstrap.block_counts`), and writes ``<out>.csv`` and ``<out>.tables.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LEADS_H = (1, 6, 24)
VARIABLES = ("t2m", "z500", "u10m", "msl", "gust", "tp", "refc")
LEARNED = ("pangu", "climax", "hrheim")
CONFIDENCE = 0.9
RESAMPLES = 2000


# --------------------------------------------------------------------------------------------------
# Stage 1: forecasts and per-init statistics
# --------------------------------------------------------------------------------------------------
def _weighted_mean(err2: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Area-weighted mean over the last two axes."""
    return (err2 * w).sum(axis=(-2, -1)) / w.sum()


def _rows(model: str, fc, truth, w, kind: str) -> list[dict]:
    rows = []
    inits = pd.DatetimeIndex(fc.init_time.values)
    for v in VARIABLES:
        if v not in fc:
            continue
        for j, lead in enumerate(pd.TimedeltaIndex(fc.lead_time.values)):
            obs = np.stack([truth[v].sel(time=t + lead).values for t in inits]).astype(np.float64)
            x = np.asarray(fc[v].isel(lead_time=j).values, dtype=np.float64)
            base = {"model": model, "variable": v, "lead_h": int(lead / pd.Timedelta(hours=1))}
            if kind == "det":
                mse = _weighted_mean((x - obs) ** 2, w)
                rows += [{**base, "init": str(t), "mse": float(m)} for t, m in zip(inits, mse, strict=True)]
                continue
            # (init, weight, noise, y, x)
            nw, nn = x.shape[1], x.shape[2]
            flat = x.reshape(x.shape[0], nw * nn, *x.shape[-2:])
            mean = flat.mean(axis=1)
            var = flat.var(axis=1, ddof=1)
            epi = x.mean(axis=2).var(axis=1, ddof=1) if nw > 1 else np.zeros_like(mean)
            ale = x.var(axis=2, ddof=1).mean(axis=1) if nn > 1 else np.zeros_like(mean)
            stats = {
                "mse": _weighted_mean((mean - obs) ** 2, w),
                "var": _weighted_mean(var, w),
                "var_epistemic": _weighted_mean(epi, w),
                "var_aleatoric": _weighted_mean(ale, w),
            }
            for i, t in enumerate(inits):
                rows.append({**base, "init": str(t), "members": nw * nn, "weight_members": nw, "noise_members": nn,
                             **{k: float(s[i]) for k, s in stats.items()}})
    return rows


def forecast_stats(size: str = "default", device: str = "auto", learned=LEARNED, ensembles=LEARNED,
                   every: int = 1, ensemble_every: int = 1, leads_h=LEADS_H, dtype: str = "auto",
                   progress=None, batch_size: int = 16, model_error: bool = True) -> pd.DataFrame:
    """Stage 1: every model from the analysis; per-init statistics as one long table.

    ``every`` / ``ensemble_every`` keep every k-th initial time (a CPU cannot run them all in minutes);
    ``progress(table)`` is called after each model so an interrupted run keeps what it made;
    ``batch_size`` initial times go through the device at once (ensembles: half, they carry 9 members
    each); ``model_error=False`` runs the ensembles without their stochastic model error.
    """
    from workbench.grids import area_weights
    from workbench.models import Persistence, load
    from workbench.sample import ensure_sample, open_sample
    from workbench.workflow.start import default_ensemble, initial_state, run_from_analysis

    t0 = time.perf_counter()
    ensure_sample(size, progress=False)
    print(f"sample {size} ready: {time.perf_counter() - t0:.0f} s", flush=True)
    truth = open_sample("hrrr", size)
    nwp = open_sample("nwp", size)
    last = pd.Timestamp(truth.time.values[-1]) - pd.Timedelta(hours=max(leads_h))
    inits = pd.DatetimeIndex(nwp.init_time.values)
    inits = inits[inits <= last][::every]
    ens_inits = inits[::ensemble_every]
    analysis = initial_state(size, inits).load()
    leads = pd.to_timedelta(list(leads_h), unit="h")
    w = np.asarray(area_weights(truth).values, dtype=np.float64)
    need = sorted({t + lead for t in inits for lead in leads})
    truth = truth[list(VARIABLES)].sel(time=need).load()
    rows = []

    def keep() -> None:
        if progress is not None:
            progress(pd.DataFrame(rows))

    rows += _rows("persistence", Persistence().forecast(analysis, inits, leads), truth, w, "det")
    rows += _rows("nwp", nwp.sel(init_time=inits, lead_time=leads).load(), truth, w, "det")
    keep()
    for name in learned:
        fc = run_from_analysis(load(name, device="cpu"), analysis, nwp, inits, leads, device=device, dtype=dtype,
                               progress=False, batch_size=batch_size)
        rows += _rows(name, fc, truth, w, "det")
        keep()
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    for name in ensembles:
        members, spec = default_ensemble(name, analysis.sel(time=ens_inits), model_error=model_error)
        fc = run_from_analysis(members, analysis, nwp, ens_inits, leads, members=spec, device=device, dtype=dtype,
                               progress=False, batch_size=max(1, batch_size // 2))
        fc = fc.transpose("init_time", "lead_time", "weight_member", "noise_member", ...)
        rows += _rows(f"{name} ensemble", fc, truth, w, "ens")
        keep()
        print(f"{name} ensemble ({len(members)} x {spec.noise_members}, model error "
              f"{'on' if spec.model_error is not None else 'off'}): {time.perf_counter() - t0:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    table.attrs["analysis_error_rms"] = analysis.attrs.get("analysis_error_rms")
    return table


# --------------------------------------------------------------------------------------------------
# Stage 2: intervals and the notes
# --------------------------------------------------------------------------------------------------
def _counts(n: int, seed: int = 0) -> tuple[np.ndarray, tuple[float, float]]:
    """Block-bootstrap draw counts over ``n`` inits and the expanded-percentile levels of the interval."""
    from workbench.scoring.bootstrap import block_counts, default_block_length, interval_levels

    length = default_block_length(n)
    return block_counts(n, RESAMPLES, block_length=length, seed=seed), interval_levels(n, length, CONFIDENCE)


def _interval(samples: np.ndarray, levels: tuple[float, float]) -> tuple[float, float]:
    from workbench.scoring.bootstrap import percentile_interval

    lo, hi = percentile_interval(samples, levels)
    return float(lo), float(hi)


def _kinds(g: pd.DataFrame) -> tuple[int | None, int | None]:
    """Weight and noise members of an ensemble's rows (None for tables written before they were kept)."""
    if "weight_members" in g and g["weight_members"].notna().all():
        return int(g["weight_members"].iloc[0]), int(g["noise_members"].iloc[0])
    return None, None


def _factors(nw: int | None, nn: int | None) -> tuple[float | None, float | None]:
    """Finite-ensemble factors of the epistemic and aleatoric variances.

    The members are W weight members crossed with N noise members (every weight member sees the same
    perturbations), so the ensemble mean carries s_e^2/W + s_a^2/N of sampling variance and a consistent
    ensemble has E[(mean - y)^2] = s_e^2 (1 + 1/W) + s_a^2 (1 + 1/N); with W = 1 this is the usual
    (M+1)/M. ``s_e^2`` and ``s_a^2`` are the ddof=1 variance between weight members (of their noise
    means) and within them (mean over weight members), as stage 1 writes them.
    """
    if nw is None:
        return None, None
    return (1 + 1 / nw if nw > 1 else 0.0), (1 + 1 / nn if nn > 1 else 0.0)


def summarise(stats: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per model, variable and lead: RMSE (mean over inits of the per-init RMSE) with its 90 % interval,
    and for ensembles the spread-skill ratio (the spread with the crossed design's finite-ensemble
    factors of :func:`_factors` over the RMSE of the mean, from sums over inits) with its interval, and
    the ratio of each part alone."""
    out = []
    for (model, var, lead), g in stats.groupby(["model", "variable", "lead_h"], sort=False):
        g = g.sort_values("init")
        n_init = len(g)
        counts, levels = _counts(n_init, seed)
        rmse = np.sqrt(g["mse"].to_numpy())
        boot = counts @ rmse / n_init
        row = {"model": model, "variable": var, "lead_h": lead, "rmse": rmse.mean(),
               "rmse_low": _interval(boot, levels)[0], "rmse_high": _interval(boot, levels)[1], "n_init": n_init}
        if "var" in g and g["var"].notna().all():
            m = float(g["members"].iloc[0])
            nw, nn = _kinds(g)
            mse = g["mse"].to_numpy()
            epi, ale = g["var_epistemic"].to_numpy(), g["var_aleatoric"].to_numpy()
            fe, fa = _factors(nw, nn)
            if fe is None:  # an old table without the member kinds: the exchangeable (M+1)/M
                corrected = (m + 1) / m * g["var"].to_numpy()
                fe = fa = (m + 1) / m
            else:
                corrected = fe * epi + fa * ale
            ratio = np.sqrt(corrected.mean() / mse.mean())
            boot_ratio = np.sqrt((counts @ corrected) / (counts @ mse))
            lo, hi = _interval(boot_ratio, levels)
            row.update(spread_skill=ratio, spread_skill_low=lo, spread_skill_high=hi,
                       spread=np.sqrt(corrected.mean()),
                       spread_epistemic=np.sqrt(epi.mean()), spread_aleatoric=np.sqrt(ale.mean()),
                       spread_skill_epistemic=np.sqrt(fe * epi.mean() / mse.mean()),
                       spread_skill_aleatoric=np.sqrt(fa * ale.mean() / mse.mean()), members=int(m))
        out.append(row)
    return pd.DataFrame(out)


def paired(stats: pd.DataFrame, a: str, b: str, var: str, lead: int, seed: int = 0) -> tuple[float, float, float]:
    """Mean over inits of RMSE(a) - RMSE(b) with its 90 % block-bootstrap interval."""
    def per_init(m):
        g = stats[(stats.model == m) & (stats.variable == var) & (stats.lead_h == lead)]
        return np.sqrt(g.set_index("init")["mse"])

    both = pd.concat([per_init(a).rename("a"), per_init(b).rename("b")], axis=1, join="inner").sort_index()
    d = (both["a"] - both["b"]).to_numpy()  # on the initial times both ran
    if len(d) < 2:  # not run at this lead: no claim
        return float("nan"), float("nan"), float("nan")
    counts, levels = _counts(len(d), seed)
    lo, hi = _interval(counts @ d / len(d), levels)
    return float(d.mean()), lo, hi


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "-"
    a = abs(x)
    return f"{x:.3g}" if a >= 1e-3 or a == 0 else f"{x:.2e}"


def notes(stats: pd.DataFrame, summary: pd.DataFrame) -> tuple[str, list[str]]:
    """The markdown tables and the list of claims with their verdicts."""
    lines, claims = [], []
    leads_h = sorted(int(h) for h in stats.lead_h.unique())
    det = ["persistence", "nwp", *[m for m in LEARNED if m in set(stats.model)]]
    for var in VARIABLES:
        s = summary[summary.variable == var]
        if s.empty:
            continue
        lines.append(f"\n**{var}**: RMSE (mean of per-init RMSE) [90 % interval]\n")
        lines.append("| model | " + " | ".join(f"{h} h" for h in leads_h) + " |")
        lines.append("| --- |" + " --- |" * len(leads_h))
        for m in det + [f"{m} ensemble" for m in LEARNED]:
            r = s[s.model == m].set_index("lead_h")
            if r.empty:
                continue
            cells = [f"{_fmt(r.loc[h, 'rmse'])} [{_fmt(r.loc[h, 'rmse_low'])}, {_fmt(r.loc[h, 'rmse_high'])}]"
                     if h in r.index else "-" for h in leads_h]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    # claims
    for m in LEARNED:
        if m not in set(stats.model):
            continue
        for ref in ("persistence", "nwp"):
            for lead in [h for h in (6, 24) if h in leads_h]:
                for var in ("t2m", "z500", "u10m", "msl"):
                    d, lo, hi = paired(stats, m, ref, var, lead)
                    if not np.isfinite(d):
                        continue
                    verdict = "better" if hi < 0 else "worse" if lo > 0 else "not distinguishable"
                    claims.append(f"{m} vs {ref}, {var} {lead} h: RMSE difference {_fmt(d)} [{_fmt(lo)}, {_fmt(hi)}]"
                                  f" -> {verdict}")
        ens = f"{m} ensemble"
        if ens in set(stats.model):
            for var in ("t2m", "z500", "u10m", "msl"):
                for lead in [h for h in (6, 24) if h in leads_h]:
                    d, lo, hi = paired(stats, ens, m, var, lead)
                    if not np.isfinite(d):
                        continue
                    ok = "holds" if hi <= 0 or (lo <= 0 <= hi) else "fails"
                    claims.append(f"{ens} mean not worse than {m}, {var} {lead} h: {_fmt(d)} [{_fmt(lo)}, {_fmt(hi)}]"
                                  f" -> {ok}")
            for var in ("t2m", "z500"):
                r = summary[(summary.model == ens) & (summary.variable == var) & (summary.lead_h == 24)]
                if len(r):
                    r = r.iloc[0]
                    inside = 0.7 <= r.spread_skill <= 1.3
                    claims.append(
                        f"{ens} spread-skill {var} 24 h: {r.spread_skill:.2f} [{r.spread_skill_low:.2f}, "
                        f"{r.spread_skill_high:.2f}] (epistemic {_fmt(r.spread_epistemic)}, aleatoric "
                        f"{_fmt(r.spread_aleatoric)}) -> {'within' if inside else 'outside'} 0.7-1.3")
    ens_rows = summary[summary.model.str.endswith(" ensemble")] if "spread_skill" in summary else summary.iloc[:0]
    if len(ens_rows):
        lines.append("\n**Ensembles**: RMSE of the mean, spread (finite-ensemble corrected), its parts, and the "
                     "spread-skill ratio of the whole [90 % interval] and of each part alone\n")
        lines.append("| ensemble | variable | lead | RMSE of mean | spread | epistemic | aleatoric | spread-skill "
                     "| epistemic alone | aleatoric alone | inits |")
        lines.append("| --- |" + " --- |" * 10)
        for _, r in ens_rows.iterrows():
            lines.append(
                f"| {r.model} | {r.variable} | {r.lead_h} h | {_fmt(r.rmse)} | {_fmt(r.spread)} | "
                f"{_fmt(r.spread_epistemic)} | {_fmt(r.spread_aleatoric)} | {r.spread_skill:.2f} "
                f"[{r.spread_skill_low:.2f}, {r.spread_skill_high:.2f}] | {r.spread_skill_epistemic:.2f} | "
                f"{r.spread_skill_aleatoric:.2f} | {r.n_init} |")
    return "\n".join(lines), claims


def must_show(stats: pd.DataFrame, summary: pd.DataFrame, ensemble_model: str) -> list[tuple[str, bool | None]]:
    """The issue's must-show lines for the default ensemble, each with True (PASS), False (FAIL) or None
    (not run): its mean is not worse than the deterministic run (paired 90 % interval not above zero) at
    6 and 24 h for t2m, z500, u10m and msl, and its spread-skill ratio is within 0.7-1.3 at 24 h for t2m
    and z500."""
    ens = f"{ensemble_model} ensemble"
    out: list[tuple[str, bool | None]] = []
    for var in ("t2m", "z500", "u10m", "msl"):
        for lead in (6, 24):
            d, lo, hi = paired(stats, ens, ensemble_model, var, lead)
            text = f"{ens} mean not worse than {ensemble_model}, {var} {lead} h"
            if not np.isfinite(d):
                out.append((text + ": not run", None))
                continue
            out.append((f"{text}: {_fmt(d)} [{_fmt(lo)}, {_fmt(hi)}]", bool(lo <= 0)))
    for var in ("t2m", "z500"):
        r = summary[(summary.model == ens) & (summary.variable == var) & (summary.lead_h == 24)]
        text = f"{ens} spread-skill {var} 24 h within 0.7-1.3"
        if r.empty or "spread_skill" not in r:
            out.append((text + ": not run", None))
            continue
        r = r.iloc[0]
        out.append((f"{text}: {r.spread_skill:.2f} [{r.spread_skill_low:.2f}, {r.spread_skill_high:.2f}] "
                    f"(epistemic alone {r.spread_skill_epistemic:.2f}, aleatoric alone {r.spread_skill_aleatoric:.2f})",
                    bool(0.7 <= r.spread_skill <= 1.3)))
    return out


def write_notes(stats: pd.DataFrame, out: str | None, ensemble_model: str | None, echo: bool = False) -> None:
    """Stage 2 from ``stats``: the summary CSV and the markdown tables under the stem ``out``, each
    replaced atomically (so a run killed mid-way leaves the last complete version)."""
    from workbench._io import write_text

    summary = summarise(stats)
    tables, claims = notes(stats, summary)
    checks = must_show(stats, summary, ensemble_model) if ensemble_model else []
    verdict = {True: "PASS", False: "FAIL", None: "NOT RUN"}
    check_lines = [f"- {verdict[ok]}: {text}" for text, ok in checks]
    if echo:
        print(tables)
        print("\n".join(f"- {c}" for c in claims))
        print("\n".join(check_lines), flush=True)
    if out:
        stem = Path(out)
        stem.parent.mkdir(parents=True, exist_ok=True)
        write_text(stem.with_suffix(".csv"), summary.to_csv(index=False, float_format="%.6g"))
        body = tables + "\n\n" + "\n".join(f"- {c}" for c in claims) + "\n"
        if check_lines:
            body += "\n## Must-show checks\n\n" + "\n".join(check_lines) + "\n"
        write_text(stem.with_suffix(".tables.md"), body)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stats", required=True, help="per-init statistics CSV (written by stage 1, read by stage 2)")
    p.add_argument("--out", default=None, help="stem of the notes: writes <out>.csv and <out>.tables.md")
    p.add_argument("--notes-only", action="store_true", help="stage 2 only, from --stats")
    p.add_argument("--forecast-only", action="store_true")
    p.add_argument("--calibrate", action="store_true",
                   help="derive the default ensemble's settings on --size (default validation) and store them")
    p.add_argument("--calibration-file", default=None, help="where --calibrate writes (default: the shipped file)")
    p.add_argument("--size", default=None, help="sample (default: 'default'; 'validation' with --calibrate)")
    p.add_argument("--device", default="auto")
    p.add_argument("--models", default=",".join(LEARNED))
    p.add_argument("--ensembles", default="default",
                   help="models whose default ensemble runs ('default': the calibrated default model; '' for none)")
    p.add_argument("--every", type=int, default=1, help="keep every k-th initial time")
    p.add_argument("--ensemble-every", type=int, default=1, help="of those, every k-th for the ensembles")
    p.add_argument("--leads", default=",".join(map(str, LEADS_H)), help="lead hours")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--batch-size", type=int, default=16, help="initial times per device batch (ensembles: half)")
    args = p.parse_args(argv)
    leads_h = tuple(int(h) for h in args.leads.split(","))
    if args.calibrate:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from calibrate_ensemble import calibrate  # benchmarks/calibrate_ensemble.py

        calibrate(args.size or "validation", tuple(m for m in args.models.split(",") if m), args.device, args.every,
                  leads_h, args.dtype, stats_path=args.stats, path=args.calibration_file, batch_size=args.batch_size)
        return 0
    from workbench.workflow.start import default_model

    ensembles = tuple(default_model() if m == "default" else m for m in args.ensembles.split(",") if m)
    ensemble_model = ensembles[0] if ensembles else None
    if not args.notes_only:
        from workbench._io import write_text

        def progress(table: pd.DataFrame) -> None:
            write_text(args.stats, table.to_csv(index=False))  # atomic: a killed run keeps the last whole table
            if not args.forecast_only and table["model"].nunique() > 2:
                write_notes(table, args.out, ensemble_model)

        Path(args.stats).parent.mkdir(parents=True, exist_ok=True)
        stats = forecast_stats(args.size or "default", args.device, tuple(m for m in args.models.split(",") if m),
                               ensembles, args.every, args.ensemble_every, leads_h, args.dtype,
                               progress=progress, batch_size=args.batch_size)
        stats.to_csv(args.stats, index=False)
        print(f"wrote {args.stats} ({len(stats)} rows)", flush=True)
        if args.forecast_only:
            return 0
    stats = pd.read_csv(args.stats)
    write_notes(stats, args.out, ensemble_model, echo=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
