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
