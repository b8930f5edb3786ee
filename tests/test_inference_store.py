"""The forecast store: atomic blocks, resume after a kill, no recomputation, never corrupt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from inference_standins import VARIABLES, LinearForecaster, rotation_matrix

from workbench.errors import DataError
from workbench.inference import EnsembleSpec, ZarrSink, open_forecast, run_forecast
from workbench.inference.store import PROGRESS_DIR

INITS = pd.date_range("2020-06-01", periods=10, freq="3h")
LEADS = [1, 2, 4]
SPEC = EnsembleSpec(weight_members=2, noise_members=2, noise_scale=0.1, dropout=0.2, seed=3)


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def reference(linear_source, tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "ref.zarr"
    fc = run_forecast(LinearForecaster(rotation_matrix(7), dropout=0.2), linear_source, INITS, LEADS, members=SPEC,
                      batch_size=3, device="cpu", dtype="fp32", sink=ZarrSink(path), progress=False)
    return fc.load()


def _run(source, path, callback=None, overwrite=False, **kw):
    model = LinearForecaster(rotation_matrix(7), dropout=0.2)
    kw.setdefault("batch_size", 3)
    fc = run_forecast(model, source, INITS, LEADS, members=SPEC, device="cpu", dtype="fp32",
                      sink=ZarrSink(path, overwrite=overwrite), progress=False, callback=callback, **kw)
    return model, fc


def test_killed_run_resumes_without_recomputing(linear_source, reference, tmp_path):
    path = tmp_path / "fc.zarr"
    blocks = []

    def stop_after_two(block):
        blocks.append(block)
        if len(blocks) == 2:
            raise Stop

    with pytest.raises(Stop):
        _run(linear_source, path, stop_after_two)
    done = sorted(int(p.stem) for p in (path / PROGRESS_DIR).glob("[0-9]*.json"))
    assert done[:2] == [0, 1] and not (path / PROGRESS_DIR / "complete.json").exists()
    # The unfinished store opens cleanly; unwritten blocks read as NaN.
    partial = open_forecast(path)
    assert np.isfinite(partial["t2m"].isel(init_time=0).values).all()
    assert np.isnan(partial["t2m"].isel(init_time=-1).values).all()
    with pytest.raises(DataError, match="not complete"):
        open_forecast(path, require_complete=True)

    model, fc = _run(linear_source, path)
    remaining = 4 - len(done)  # 10 inits in blocks of 3 -> 4 blocks
    steps_per_block = 4 * SPEC.weight_members  # leads 1, 2, 4 -> 4 steps, per weight member
    assert model.calls == remaining * steps_per_block
    xr.testing.assert_identical(fc.load(), reference)
    assert (path / PROGRESS_DIR / "complete.json").exists()
    # A third run finds everything done and calls the model not at all.
    model, _ = _run(linear_source, path)
    assert model.calls == 0


def test_a_partly_written_block_is_redone(linear_source, reference, tmp_path):
    path = tmp_path / "fc.zarr"
    _run(linear_source, path)
    # Simulate a run killed while writing block 1: some of its chunk files hold other data and its
    # completion record is missing.
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    group["u10m"][3:6] = 0.0
    (path / PROGRESS_DIR / "1.json").unlink()
    (path / PROGRESS_DIR / "complete.json").unlink()
    model, fc = _run(linear_source, path)
    assert model.calls == 4 * SPEC.weight_members
    xr.testing.assert_identical(fc.load(), reference)


def test_a_store_of_another_run_is_refused(linear_source, tmp_path):
    path = tmp_path / "fc.zarr"
    _run(linear_source, path)
    with pytest.raises(DataError, match="different run"):
        _run(linear_source, path, batch_size=2)
    _, fc = _run(linear_source, path, batch_size=2, overwrite=True)
    assert json.loads(fc.attrs["workbench_run"])["block_size"] == 2


_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    import pandas as pd
    from inference_standins import LinearForecaster, rotation_matrix, synthetic_source
    from workbench.inference import EnsembleSpec, ZarrSink, run_forecast

    class Slow(LinearForecaster):
        def step(self, x, valid_time=None):
            time.sleep(0.05)
            return super().step(x, valid_time)

    spec = EnsembleSpec(weight_members=2, noise_members=2, noise_scale=0.1, dropout=0.2, seed=3)
    run_forecast(Slow(rotation_matrix(7), dropout=0.2), synthetic_source(),
                 pd.date_range("2020-06-01", periods=10, freq="3h"), [1, 2, 4], members=spec, batch_size=3,
                 device="cpu", dtype="fp32", sink=ZarrSink({store!r}), progress=False)
    """
)


@pytest.mark.slow  # a fresh interpreter imports torch, xarray and zarr: several seconds
def test_sigkill_mid_run_then_resume(linear_source, reference, tmp_path):
    path = tmp_path / "fc.zarr"
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT.format(tests=str(Path(__file__).parent), store=str(path)))
    proc = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (path / PROGRESS_DIR / "0.json").exists():
            time.sleep(0.02)
        assert (path / PROGRESS_DIR / "0.json").exists(), "the run never finished its first block"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = {int(p.stem) for p in (path / PROGRESS_DIR).glob("[0-9]*.json")}
    assert 0 in done and len(done) < 4
    model, fc = _run(linear_source, path)
    assert model.calls == (4 - len(done)) * 4 * SPEC.weight_members
    xr.testing.assert_identical(fc.load(), reference)
    assert not list(path.rglob("*.partial"))
    assert list(fc.data_vars) == list(VARIABLES)
