"""Ten browser sessions change the served dashboard's widgets for a minute: no errors, all still answer.

Runs :func:`run_load_test` of ``benchmarks/dashboard.py`` (the benchmark's ``--load-test``) on the ``tiny``
sample: the page, its widgets and the server's work per change are the same as on the default sample, and
the tiny results are built in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSIONS = 10
DURATION = 60.0


def test_ten_sessions_changing_widgets_for_a_minute(tiny_sample, workbench_cache, tmp_path, dashboard_benchmark):
    bench = dashboard_benchmark
    if not Path(bench.CHROMIUM).exists():
        pytest.skip(f"no Chromium at {bench.CHROMIUM}: apt-get install chromium (CI installs it)")
    report = bench.run_load_test("tiny", SESSIONS, DURATION, cache_dir=workbench_cache, log_dir=tmp_path)
    bench.print_load_report(report)  # shown by pytest when the test fails

    assert len(report.sessions) == SESSIONS
    assert not report.failures, report.failures
    assert not report.page_errors, report.page_errors
    assert not report.log_errors, report.log_errors
    assert report.log_path == tmp_path / "server.log" and os.path.getsize(report.log_path) > 0
    # every session opened, changed widgets during the minute and answered one more change at the end
    assert all(s["first_render_s"] is not None for s in report.sessions), report.sessions
    assert all(s["changes"] >= 2 for s in report.sessions), report.sessions
    assert report.answered == SESSIONS, report.sessions
    assert report.ok
