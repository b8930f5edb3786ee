"""benchmarks/model_skill.py: RMSE per initial time averaged, paired differences and spread-skill, by hand."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "model_skill.py"
    spec = importlib.util.spec_from_file_location("workbench_model_skill", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _stats() -> pd.DataFrame:
    inits = [str(t) for t in pd.date_range("2020-06-01", periods=6, freq="12h")]
    rows = []
    for i, t in enumerate(inits):
        rows.append({"model": "pangu", "variable": "t2m", "lead_h": 6, "init": t, "mse": float((i + 1) ** 2)})
        rows.append({"model": "persistence", "variable": "t2m", "lead_h": 6, "init": t, "mse": 49.0})
        rows.append({"model": "nwp", "variable": "t2m", "lead_h": 6, "init": t, "mse": 1.0})
        # a calibrated 9-member ensemble: (M + 1) / M x variance = squared error of the mean
        rows.append({"model": "pangu ensemble", "variable": "t2m", "lead_h": 6, "init": t, "mse": 1.0,
                     "members": 9, "var": 0.9, "var_epistemic": 0.5, "var_aleatoric": 0.4})
    return pd.DataFrame(rows)


def test_rmse_is_the_mean_of_per_init_rmse_with_an_interval_around_it():
    ms = _module()
    summary = ms.summarise(_stats()).set_index("model")
    net = summary.loc["pangu"]
    assert net.rmse == pytest.approx(3.5)  # (1 + 2 + ... + 6) / 6, not sqrt(mean of squares) = 3.89
    assert net.rmse_low < 3.5 < net.rmse_high and net.n_init == 6
    ens = summary.loc["pangu ensemble"]
    assert ens.spread_skill == pytest.approx(1.0)
    assert ens.spread_skill_low == pytest.approx(1.0) and ens.spread_skill_high == pytest.approx(1.0)
    assert ens.spread_epistemic == pytest.approx(np.sqrt(0.5)) and ens.spread_aleatoric == pytest.approx(np.sqrt(0.4))


def test_paired_differences_and_the_claims_they_support():
    ms = _module()
    stats = _stats()
    d, lo, hi = ms.paired(stats, "pangu", "persistence", "t2m", 6)
    assert d == pytest.approx(3.5 - 7.0) and hi < 0  # better than persistence on every init
    d, lo, hi = ms.paired(stats, "pangu", "nwp", "t2m", 6)
    assert d == pytest.approx(2.5) and lo > 0
    assert np.isnan(ms.paired(stats, "pangu", "nwp", "t2m", 24)[0])  # not run at 24 h: no claim
    tables, claims = ms.notes(stats, ms.summarise(stats))
    assert "| pangu | 3.5 [" in tables
    assert any(c.startswith("pangu vs persistence, t2m 6 h") and c.endswith("-> better") for c in claims)
    assert any(c.startswith("pangu vs nwp, t2m 6 h") and c.endswith("-> worse") for c in claims)


def test_spread_skill_uses_the_crossed_design_correction_and_reports_each_part():
    ms = _module()
    stats = _stats()
    ens = stats.model == "pangu ensemble"
    # 3 weight x 3 noise members: consistent when e (1 + 1/3) + a (1 + 1/3) = MSE
    stats.loc[ens, ["weight_members", "noise_members", "var_epistemic", "var_aleatoric"]] = [3, 3, 0.45, 0.3]
    stats.loc[ens, "var"] = 0.75
    r = ms.summarise(stats).set_index("model").loc["pangu ensemble"]
    assert r.spread_skill == pytest.approx(1.0)  # (M+1)/M x 0.75 would give 0.91
    assert r.spread_skill_epistemic == pytest.approx(np.sqrt(0.45 * 4 / 3))
    assert r.spread_skill_aleatoric == pytest.approx(np.sqrt(0.3 * 4 / 3))


def test_must_show_lines_pass_and_fail_by_the_numbers(tmp_path):
    ms = _module()
    stats = _stats()
    ens = stats.model == "pangu ensemble"
    stats.loc[ens, ["weight_members", "noise_members", "var_epistemic", "var_aleatoric"]] = [3, 3, 0.45, 0.3]
    # at 24 h an under-dispersive ensemble (ratio 0.5) whose mean is worse than the deterministic run
    late = stats[stats.model.isin(["pangu", "pangu ensemble"])].copy()
    late["lead_h"] = 24
    late.loc[late.model == "pangu", "mse"] = 1.0
    late.loc[late.model == "pangu ensemble", ["mse", "var_epistemic", "var_aleatoric"]] = [4.0, 0.45, 0.3]
    both = pd.concat([stats, late], ignore_index=True)
    checks = dict((text.split(":")[0], ok) for text, ok in ms.must_show(both, ms.summarise(both), "pangu"))
    assert checks["pangu ensemble mean not worse than pangu, t2m 6 h"] is True  # 1 vs 3.5
    assert checks["pangu ensemble mean not worse than pangu, t2m 24 h"] is False  # 2 vs 1 on every init
    assert checks["pangu ensemble spread-skill t2m 24 h within 0.7-1.3"] is False
    assert checks["pangu ensemble spread-skill z500 24 h within 0.7-1.3"] is None  # not run
    ms.write_notes(both, str(tmp_path / "notes"), "pangu")
    text = (tmp_path / "notes.tables.md").read_text()
    assert "- FAIL: pangu ensemble spread-skill t2m 24 h within 0.7-1.3: 0.50" in text
    assert "| pangu ensemble | t2m | 24 h | 2 | 1 |" in text
    assert (tmp_path / "notes.csv").exists()
