"""Fault injection: ``workbench infer`` and ``workbench score`` killed at random points lose nothing.

20 kills per command (seeded), at named points inside the writers (between chunk writes, inside the
folder exchange, before and after a file's rename) and at random times; after each kill the output is
the complete old one, the complete new one, or a store that resumes to the values of an uninterrupted
run. ``benchmarks/fault_injection.py`` runs the same loop with more kills.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

KILLS = 20


@pytest.fixture(scope="module")
def fault_injection():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fault_injection.py"
    spec = importlib.util.spec_from_file_location("fault_injection", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fault_injection"] = module  # the forkserver's children import it by this name
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_killed_infer_and_score_leave_old_new_or_resumable_output(fault_injection, tiny_sample, tmp_path):
    result = fault_injection.campaign(tmp_path, KILLS, seed=11, size="tiny")
    for command, tally in result.items():
        assert tally.kills == KILLS, command
        # the kills did land inside the writers, not only before them
        assert sum(n for where, n in tally.by_point.items() if where != "random-time") >= 5, (command, tally)
    print({c: t.__dict__ for c, t in result.items()})
