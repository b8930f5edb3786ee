"""The precision-drift and 3-km table helpers of the inference benchmarks, on hand-made numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError


@pytest.fixture(scope="module")
def drift(benchmark_module):
    return benchmark_module("precision_drift")


def _forecast(values):
    return xr.Dataset({"t2m": (("init_time", "lead_time", "y"), np.asarray(values, np.float32)[:, None, :])})


def test_rms_difference_is_in_standard_deviations_at_the_last_lead(drift):
    a = _forecast([[1.0, 2.0], [3.0, 4.0]])
    b = _forecast([[1.0, 0.0], [3.0, 8.0]])  # differences 0, 2, 0, -4: RMS sqrt(20 / 4) = sqrt(5)
    assert drift.rms_std(a, b, {"t2m": 2.0}) == pytest.approx({"t2m": np.sqrt(5.0) / 2.0})


def test_initial_times_are_00_or_12_utc_after_the_first_day_with_24_hours_after_them(drift):
    times = pd.date_range("2020-06-01", periods=24 * 4, freq="h")
    source = xr.Dataset(coords={"time": times})
    picks = drift.pick_inits(source, 3)
    # 00/12 UTC from the second day on with 24 h after: 02T00, 02T12, 03T00, 03T12 (04T00 + 24 h is past the
    # end), three of them spread evenly
    assert [str(t)[:13] for t in picks] == ["2020-06-02T00", "2020-06-03T00", "2020-06-03T12"]
    with pytest.raises(DataError, match="has 4 initial times"):
        drift.pick_inits(source, 5)


def test_markdown_has_a_table_per_comparison_with_the_worst_variable(drift):
    row = {"model": "hrheim", "step_h": 1.0, "steps": 24, "default": "fp32", "tolerance": 0.05,
           "bf16_vs_fp32": {"t2m": 0.004, "tp": 0.59}, "tf32_vs_fp32": {"t2m": 0.0, "tp": 0.0012},
           "device_fp32_vs_cpu_fp32": {"t2m": 1e-6, "tp": 2e-5}, "default_vs_fp32": {"t2m": 0.0, "tp": 0.0}}
    text = drift.markdown([row], "## Drift")
    assert text.count("### ") == 4
    assert "| hrheim | 1 h x 24 | 0.004 | 0.590 | **0.590** |" in text
    assert "| hrheim | 1 h x 24 | 0 | 0.0012 | **0.0012** |" in text
    assert "| hrheim | 1 h x 24 | fp32 | 0 | 0.05 | 0.590 |" in text


def test_the_3km_table_has_both_mfu_columns_and_the_engine_ratio(benchmark_module):
    inference = benchmark_module("inference")
    step = {"model": "pangu", "mode": "bf16 eager", "grid": [1059, 1799], "seconds": 0.0305, "peak_step_gib": 2.0,
            "gflop": 232.0, "tflops": 7.6, "model_tflops": 5.6, "real_token_share": 0.737, "mfu": 0.01, "model_mfu": 0.0073}
    engine = {"model": "pangu", "setup": "fp32 eager", "grid": [1059, 1799], "model_calls": 24, "seconds": 1.2,
              "bare_seconds": 0.8, "ratio": 1.5, "peak_gib": 6.1, "split": {"transfer": 0.05, "wait": 0.1, "write": 0.2}}
    text = inference.table_3km([step], [engine], "H200", 771e12, 50.9e12)
    assert "| pangu | bf16 eager | 30.5 | 2.0 | 232.0 | 74% | 7.6 | 1.0% | 0.7% |" in text
    assert "| pangu | fp32 eager | 24 | 1.20 | 50.0 | 0.80 | 1.50 | 6.1 | 0.05 | 0.10 | 0.20 |" in text
