"""The fuzz layer: hypothesis settings for every target, and a count of the inputs it generated.

Each target calls ``fuzz_counts[name] += 1`` for every generated input; the session ends with one line
per target and the total, so the size of the search is visible in every test run.
"""

from __future__ import annotations

import collections
import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings

_COUNTS_KEY = pytest.StashKey[collections.Counter]()

# No example database: runs are reproducible from the printed seed and nothing is written into the tree.
# The deadline is per input: a parser that hangs fails the test instead of stalling it.
settings.register_profile(
    "workbench-fuzz",
    max_examples=250,  # about 2,600 inputs in all, some 30 s on two cores
    database=None,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
# A longer search for local runs: WORKBENCH_FUZZ_PROFILE=thorough python -m pytest tests/fuzz
settings.register_profile("thorough", parent=settings.get_profile("workbench-fuzz"), max_examples=5000)
settings.load_profile(os.environ.get("WORKBENCH_FUZZ_PROFILE", "workbench-fuzz"))


@pytest.fixture(scope="session")
def fuzz_counts(request) -> collections.Counter:
    """Inputs generated per fuzz target (session-wide, so hypothesis may share it across examples)."""
    counts = request.config.stash.setdefault(_COUNTS_KEY, collections.Counter())
    return counts


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    counts = config.stash.get(_COUNTS_KEY, None)
    if not counts:
        return
    terminalreporter.section("fuzz inputs")
    terminalreporter.write_line(f"{'target':28s} {'inputs':>7s} {'refused':>8s}")
    targets = sorted(name for name in counts if not name.endswith(" (refused)"))
    for name in targets:
        terminalreporter.write_line(f"{name:28s} {counts[name]:7d} {counts[name + ' (refused)']:8d}")
    if counts["Storm Events cases (refused)"]:
        terminalreporter.write_line(
            f"{'  of which cases refused':28s} {'':7s} {counts['Storm Events cases (refused)']:8d}"
        )
    total = sum(counts[name] for name in targets)
    terminalreporter.write_line(f"{'total generated inputs':28s} {total:7d}")
