"""benchmarks/model_skill.py: the generated block replaces its markers' content and keeps the notes."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd


def _module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "model_skill.py"
    spec = importlib.util.spec_from_file_location("workbench_model_skill", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_splice_replaces_the_block_and_keeps_the_notes():
    ms = _module()
    notes = f"# Skill\n\nintro\n\n{ms.BEGIN}\nold table\n{ms.END}\n\n## Notes\n\nkept\n"
    out = ms.splice(notes, f"{ms.BEGIN}\nnew table\n{ms.END}\n")
    assert out == f"# Skill\n\nintro\n\n{ms.BEGIN}\nnew table\n{ms.END}\n\n## Notes\n\nkept\n"
    assert ms.splice(out, f"{ms.BEGIN}\nnew table\n{ms.END}\n") == out  # rerunning changes nothing
    appended = ms.splice("# Skill\n", f"{ms.BEGIN}\nx\n{ms.END}\n")  # no markers yet: at the end
    assert appended == f"# Skill\n\n{ms.BEGIN}\nx\n{ms.END}\n"


def test_tables_bold_the_best_and_show_intervals_and_paired_tests():
    ms = _module()
    rows = []
    for model, base in (("newnet", 1.0), ("persistence", 3.0), ("nwp", 0.5)):
        for lead in ms.LEADS_H:
            row = {
                "model": model, "variable": "t2m", "units": "K", "lead_h": lead, "rmse": base,
                "rmse_low": base - 0.1, "rmse_high": base + 0.1,
            }  # fmt: skip
            for ref in ms.REFERENCES:
                paired = model == "newnet" and lead in ms.PAIRED_LEADS_H
                d = base - (3.0 if ref == "persistence" else 0.5)
                values = (d, d - 0.2, d + 0.2, 0.01, 0.03) if paired else (np.nan,) * 5
                for key, v in zip(("difference", "low", "high", "p_bootstrap", "p_dm"), values, strict=True):
                    row[f"vs_{ref}_{key}"] = v
            rows.append(row)
    table = pd.DataFrame(rows)
    text = "\n".join(ms.rmse_tables(table, 0.9))
    assert "| nwp | **0.5000** [0.4000, 0.6000] |" in text and "| newnet | 1.00 [0.9000, 1.10] |" in text
    paired = "\n".join(ms.paired_tables(table, 0.9))
    assert "| newnet | 6 h | **1.00: -2.00 [-2.20, -1.80] (p 0.01 / 0.03)** |" in paired
    assert "| newnet | 24 h | **1.00: 0.5000 [0.3000, 0.7000] (p 0.01 / 0.03)** |" in paired
    assert "persistence | 6 h" not in paired  # the references are not tested against themselves
    args = SimpleNamespace(confidence=0.9, resamples=1000, seed=0)
    meta = {"argv": "", "date": "2026-12-03", "device": "cpu", "seconds": 1.0, "checkpoints": "ck",
            "heldout": "a to b", "n_inits": 11, "inits": "x .. y"}  # fmt: skip
    block = ms.render(table, [], meta, args)
    assert block.startswith(ms.BEGIN) and block.rstrip().endswith(ms.END)
