"""Calibrate the default ensemble on the validation sample: ``python benchmarks/model_skill.py --calibrate``.

    python benchmarks/model_skill.py --calibrate --stats validation_stats.csv [--models pangu,climax]
        [--size validation] [--calibration-file my_calibration.json] [--device cuda]

On the ``validation`` sample (2021, its own seed; never the test period), from the sample's analysis:

1. **Diagnosis** of each learned model's deterministic error at every lead: its RMSE, the share of its
   mean squared error that is systematic (the mean error map over the initial times, with the sampling
   noise of that mean removed: ``mean_w(ebar^2 - s^2 / n)``) and its domain-mean bias.
2. **The default model**: the one with the lowest validation RMSE relative to persistence, averaged over
   t2m, z500, u10m and msl at 6 and 24 h.
3. **Spread by part** of its ensemble without model error (deep ensemble x initial-condition
   perturbations): epistemic and aleatoric spread at each lead, against the RMSE of the mean.
4. **Model-error amplitudes**: for each lead that one step of the model reaches (1, 6 and 24 h for the
   Pangu-like family), the variance the noise must add so that the finite-ensemble-corrected spread
   equals the RMSE of the mean (:func:`workbench.inference.model_error.calibrated_variance`), per
   variable; the correlation length is that of the ensemble mean's random errors
   (:func:`workbench.inference.model_error.correlation_length`, median over variables at 24 h).
   Non-negative, intermittent fields (``tp``, ``refc``) get none: additive Gaussian noise would make
   negative rain and reflectivity.
5. **Check**: the ensemble again with the calibrated model error, and its spread-skill ratios.

Everything is stored, with the validation numbers, by :func:`workbench.workflow.calibration.save_calibration`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

NOT_PERTURBED = ("tp", "refc")
SKILL_VARIABLES = ("t2m", "z500", "u10m", "msl")


def _wmean(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (a * w).sum(axis=(-2, -1)) / w.sum()


def diagnose(fc, truth, w, model: str) -> list[dict]:
    """Per variable and lead: RMSE, systematic share of the MSE, domain-mean bias of a deterministic run."""
    rows = []
    inits = pd.DatetimeIndex(fc.init_time.values)
    for v in fc.data_vars:
        if v not in truth:
            continue
        for j, lead in enumerate(pd.TimedeltaIndex(fc.lead_time.values)):
            obs = np.stack([truth[v].sel(time=t + lead).values for t in inits]).astype(np.float64)
            err = np.asarray(fc[v].isel(lead_time=j).values, dtype=np.float64) - obs
            n = len(inits)
            mse = float(_wmean(err**2, w).mean())
            ebar = err.mean(axis=0)
            sys_ = float(_wmean(ebar**2 - err.var(axis=0, ddof=1) / n, w)) if n > 1 else float("nan")
            rows.append({"model": model, "variable": v, "lead_h": int(lead / pd.Timedelta(hours=1)),
                         "rmse": np.sqrt(mse), "systematic_share": sys_ / mse if mse > 0 else 0.0,
                         "bias": float(_wmean(ebar, w)), "inits": n})
    return rows


def ensemble_parts(fc, truth, w) -> tuple[list[dict], dict[tuple[str, int], np.ndarray]]:
    """Per variable and lead: MSE of the mean, epistemic and aleatoric variance (ddof=1, the crossed
    design's estimators); and the ensemble mean's error fields (for the correlation length)."""
    fc = fc.transpose("init_time", "lead_time", "weight_member", "noise_member", ...)
    inits = pd.DatetimeIndex(fc.init_time.values)
    rows, errors = [], {}
    for v in fc.data_vars:
        if v not in truth:
            continue
        for j, lead in enumerate(pd.TimedeltaIndex(fc.lead_time.values)):
            h = int(lead / pd.Timedelta(hours=1))
            obs = np.stack([truth[v].sel(time=t + lead).values for t in inits]).astype(np.float64)
            x = np.asarray(fc[v].isel(lead_time=j).values, dtype=np.float64)  # (init, W, N, y, x)
            nw, nn = x.shape[1], x.shape[2]
            mean = x.mean(axis=(1, 2))
            epi = x.mean(axis=2).var(axis=1, ddof=1) if nw > 1 else np.zeros_like(mean)
            ale = x.var(axis=2, ddof=1).mean(axis=1) if nn > 1 else np.zeros_like(mean)
            errors[(v, h)] = mean - obs
            rows.append({"variable": v, "lead_h": h, "weight_members": nw, "noise_members": nn,
                         "mse": float(_wmean((mean - obs) ** 2, w).mean()),
                         "var_epistemic": float(_wmean(epi, w).mean()),
                         "var_aleatoric": float(_wmean(ale, w).mean()), "inits": len(inits)})
    return rows, errors


def _ssr(r: dict) -> float:
    nw, nn = r["weight_members"], r["noise_members"]
    spread2 = r["var_epistemic"] * (1 + 1 / nw) + r["var_aleatoric"] * (1 + 1 / nn)
    return float(np.sqrt(spread2 / r["mse"])) if r["mse"] > 0 else float("nan")


def calibrate(size: str = "validation", models=("pangu", "climax"), device: str = "auto", every: int = 1,
              leads_h=(1, 6, 24), dtype: str = "auto", stats_path: str | None = None, path=None,
              batch_size: int = 16, check: bool = True) -> dict:
    """Diagnose, choose the default model, derive its model-error amplitudes and store them (see the
    module notes). Returns the stored entry."""
    from workbench.grids import area_weights
    from workbench.inference.model_error import calibrated_variance, correlation_length
    from workbench.models import Persistence, load
    from workbench.models.protocol import step_models
    from workbench.sample import ensure_sample, open_sample
    from workbench.workflow.calibration import save_calibration
    from workbench.workflow.start import NOISE_MEMBERS, default_ensemble, initial_state, run_from_analysis

    t0 = time.perf_counter()
    ensure_sample(size, progress=False)
    truth = open_sample("hrrr", size)
    nwp = open_sample("nwp", size)
    last = pd.Timestamp(truth.time.values[-1]) - pd.Timedelta(hours=max(leads_h))
    inits = pd.DatetimeIndex(nwp.init_time.values)
    inits = inits[inits <= last][::every]
    analysis = initial_state(size, inits).load()
    leads = pd.to_timedelta(list(leads_h), unit="h")
    w = np.asarray(area_weights(truth).values, dtype=np.float64)
    need = sorted({t + lead for t in inits for lead in leads})
    truth = truth.sel(time=need).load()

    # 1. diagnosis of the deterministic runs
    diag = diagnose(Persistence().forecast(analysis, inits, leads), truth, w, "persistence")
    for name in models:
        fc = run_from_analysis(load(name, device="cpu"), analysis, nwp, inits, leads, device=device, dtype=dtype,
                               progress=False, batch_size=batch_size)
        diag += diagnose(fc, truth, w, name)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    diag = pd.DataFrame(diag)
    print("\nDeterministic error on the validation sample (systematic share = mean error map's share of MSE)")
    print(diag[diag.variable.isin(SKILL_VARIABLES)].to_string(index=False, float_format="%.3g"))

    # 2. the default model: lowest RMSE relative to persistence at 6 and 24 h
    cells = diag[diag.variable.isin(SKILL_VARIABLES) & diag.lead_h.isin([6, 24])].set_index(["variable", "lead_h"])
    pers = cells[cells.model == "persistence"]["rmse"]
    relative = {m: float((cells[cells.model == m]["rmse"] / pers).mean()) for m in models}
    best = min(relative, key=relative.get)
    print(f"\nRMSE / persistence, mean over {SKILL_VARIABLES} at 6 and 24 h: "
          + ", ".join(f"{m} {r:.3f}" for m, r in relative.items()) + f" -> default model {best}")

    # 3. its ensemble without model error: spread by part
    members, spec = default_ensemble(best, analysis, noise_members=NOISE_MEMBERS, model_error=False)
    fc = run_from_analysis(members, analysis, nwp, inits, leads, members=spec, device=device, dtype=dtype,
                           progress=False, batch_size=max(1, batch_size // 2))
    parts, errors = ensemble_parts(fc, truth, w)
    print(f"{best} ensemble: {time.perf_counter() - t0:.0f} s", flush=True)
    parts = pd.DataFrame(parts)
    parts["spread_epistemic"] = np.sqrt(parts.var_epistemic)
    parts["spread_aleatoric"] = np.sqrt(parts.var_aleatoric)
    parts["rmse_mean"] = np.sqrt(parts.mse)
    parts["ssr"] = [_ssr(r) for r in parts.to_dict("records")]

    # 4. model-error amplitudes per step reached in one step, per variable
    steps_h = {int(dt / pd.Timedelta(hours=1)) for dt in step_models(members[0])}
    amplitude: dict[str, dict[str, float]] = {}
    for r in parts.to_dict("records"):
        if r["lead_h"] not in steps_h or r["variable"] in NOT_PERTURBED:
            continue
        q = calibrated_variance(r["mse"], r["var_epistemic"], r["var_aleatoric"], r["weight_members"],
                                r["noise_members"])
        amplitude.setdefault(str(r["lead_h"]), {})[r["variable"]] = float(f"{np.sqrt(q):.4g}")
    longest = max(h for h in leads_h if h in steps_h)
    spacing_km = float(abs(analysis.y.values[1] - analysis.y.values[0])) / 1000.0
    lengths = [correlation_length(e) for (v, h), e in errors.items() if h == longest and v not in NOT_PERTURBED]
    length_km = float(f"{np.median(lengths) * spacing_km:.4g}")
    print("\nSpread by part without model error, and the model-error amplitude that closes the gap")
    table = parts[parts.variable.isin(SKILL_VARIABLES)][
        ["variable", "lead_h", "rmse_mean", "spread_epistemic", "spread_aleatoric", "ssr"]]
    print(table.to_string(index=False, float_format="%.3g"))
    print(f"amplitudes (physical units): {amplitude}; correlation length {length_km} km")

    validation = {
        "sample": size, "init_times": [str(inits[0]), str(inits[-1]), len(inits)],
        "relative_rmse_to_persistence": {m: round(r, 4) for m, r in relative.items()},
        "without_model_error": {f"{r['variable']} {r['lead_h']} h": {
            "rmse_mean": float(f"{r['rmse_mean']:.4g}"), "spread_epistemic": float(f"{r['spread_epistemic']:.4g}"),
            "spread_aleatoric": float(f"{r['spread_aleatoric']:.4g}"), "spread_skill": round(r["ssr"], 3)}
            for r in parts.to_dict("records") if r["variable"] in SKILL_VARIABLES},
        "deterministic": {f"{r['model']} {r['variable']} {r['lead_h']} h": {
            "rmse": float(f"{r['rmse']:.4g}"), "systematic_share": round(r["systematic_share"], 3),
            "bias": float(f"{r['bias']:.4g}")}
            for r in diag.to_dict("records") if r["variable"] in SKILL_VARIABLES},
    }
    entry = {
        "noise_members": NOISE_MEMBERS,
        "model_error": {"amplitude": amplitude, "length_km": length_km, "time_scale_h": 6.0},
        "validation": validation,
        "derived_by": "python benchmarks/model_skill.py --calibrate --stats validation_stats.csv "
                      f"--size {size} --models {','.join(models)} --every {every} --leads "
                      f"{','.join(map(str, leads_h))}",
    }

    # 5. check: the ensemble with the calibrated model error, on the same validation inits
    if check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            trial = Path(tmp) / "trial.json"
            save_calibration(best, entry, default_model=best, path=trial)
            import os

            old = os.environ.get("WORKBENCH_ENSEMBLE_CALIBRATION")
            os.environ["WORKBENCH_ENSEMBLE_CALIBRATION"] = str(trial)
            try:
                members, spec = default_ensemble(best, analysis, noise_members=NOISE_MEMBERS)
            finally:
                if old is None:
                    os.environ.pop("WORKBENCH_ENSEMBLE_CALIBRATION")
                else:
                    os.environ["WORKBENCH_ENSEMBLE_CALIBRATION"] = old
        fc = run_from_analysis(members, analysis, nwp, inits, leads, members=spec, device=device, dtype=dtype,
                               progress=False, batch_size=max(1, batch_size // 2))
        after, _ = ensemble_parts(fc, truth, w)
        entry["validation"]["with_model_error"] = {
            f"{r['variable']} {r['lead_h']} h": {"rmse_mean": float(f"{np.sqrt(r['mse']):.4g}"),
                                                 "spread_skill": round(_ssr(r), 3)}
            for r in after if r["variable"] in SKILL_VARIABLES}
        print("\nWith the calibrated model error (same validation inits): spread-skill "
              + ", ".join(f"{k} {v['spread_skill']:.2f}" for k, v in entry["validation"]["with_model_error"].items()))
        print(f"check: {time.perf_counter() - t0:.0f} s", flush=True)
    written = save_calibration(best, entry, default_model=best, path=path)
    if stats_path:
        Path(stats_path).parent.mkdir(parents=True, exist_ok=True)
        pd.concat([diag.assign(kind="deterministic"), parts.assign(model=f"{best} ensemble", kind="ensemble")]
                  ).to_csv(stats_path, index=False)
    print(f"wrote {written}", flush=True)
    return entry
