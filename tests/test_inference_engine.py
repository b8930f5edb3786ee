"""The engine's hot path: no host synchronisation per step, output written straight into its layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from inference_standins import VARIABLES, LinearFamily, LinearForecaster, apply_linear, rotation_matrix

from workbench.inference import EnsembleSpec, MemorySink
from workbench.inference.device import PinnedPool
from workbench.inference.prepare import prepare
from workbench.inference.store import StoreLayout

pytestmark = pytest.mark.usefixtures("one_thread")


def test_no_tensor_comparison_in_the_rollout(linear_source, monkeypatch):
    """Whether steps share a normalisation is decided at start: no torch.equal (a host sync) per step."""
    A = rotation_matrix(5)
    family = LinearFamily(A, steps=(1, 6))
    run = prepare(family, linear_source, pd.DatetimeIndex(["2020-06-01T00", "2020-06-01T06"]), [1, 6, 7],
                  device="cpu", dtype="fp32", batch_size=2)

    def refuse(*args):
        raise AssertionError("torch.equal called inside the rollout")

    monkeypatch.setattr(torch, "equal", refuse)
    sink = MemorySink()
    sink.open(run.layout, run.signature, linear_source)
    for block in run.blocks(linear_source, set()):
        sink.write(block.index, run.runner.run_block(block).arrays())
    fc = sink.close()
    got = np.stack([fc[v].isel(init_time=1, lead_time=2).values for v in VARIABLES])
    np.testing.assert_allclose(got, apply_linear(A, linear_source, pd.Timestamp("2020-06-01T06"), 7), rtol=1e-5)


def test_block_arrays_are_contiguous_slices_in_the_forecast_layout(linear_source):
    spec = EnsembleSpec(weight_members=2, noise_members=3, noise_scale=0.1, dropout=0.2, seed=1)
    run = prepare(LinearForecaster(rotation_matrix(2), dropout=0.2), linear_source,
                  pd.date_range("2020-06-01", periods=3, freq="h"), [1, 2], members=spec, device="cpu", batch_size=3)
    (block,) = run.blocks(linear_source, set())
    arrays = run.runner.run_block(block).arrays()
    for v, arr in arrays.items():
        assert arr.shape == run.layout.block_shape(0) == (3, 2, 2, 3, 6, 8)
        assert arr.flags.c_contiguous, v  # the sink copies it as one block: no reordering pass


def test_memory_sink_fills_only_unwritten_blocks_with_nan():
    layout = StoreLayout(
        variables=("a",), init_times=pd.date_range("2020-01-01", periods=4, freq="h").values,
        lead_times=pd.to_timedelta([1], unit="h").values, member_dims={},
        spatial={"y": ("y", np.arange(2)), "x": ("x", np.arange(3))}, block_size=2, attrs={},
    )
    sink = MemorySink()
    sink.open(layout, {"model": ["m"]}, None)
    sink.write(1, {"a": np.full((2, 1, 2, 3), 7.0, np.float32)})
    a = sink.close()["a"].values
    assert np.isnan(a[:2]).all() and (a[2:] == 7.0).all()


def test_pinned_pool_reuses_a_buffer_of_a_fitting_size():
    pool = PinnedPool(keep_bytes=1200)
    small, big = torch.empty(100), torch.empty(200)
    pool.put(big)
    pool.put(small)
    assert pool.take(90) is small  # the tightest fit, found behind a buffer of another size
    assert pool.take(150) is big
    pool.put(torch.empty(200))
    pool.put(torch.empty(200))  # 1600 bytes kept > 1200: the oldest goes
    assert len(pool._free) == 1
