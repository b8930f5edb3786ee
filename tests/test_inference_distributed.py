"""Inference across processes: two CPU processes (gloo) writing one store give one process's forecast."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from inference_standins import LinearForecaster, rotation_matrix

from workbench.errors import DataError, LockError
from workbench.inference import EnsembleSpec, MemorySink, ZarrSink, run_forecast
from workbench.inference.distributed import shard
from workbench.inference.store import PROGRESS_DIR, ForecastStore, lock_path

pytestmark = pytest.mark.usefixtures("one_thread")

INITS = pd.date_range("2020-06-01", periods=10, freq="3h")
LEADS = [1, 2, 4]
SPEC = EnsembleSpec(weight_members=2, noise_members=2, noise_scale=0.1, dropout=0.2, seed=3)


class Stop(Exception):
    pass


class FailsOnShortBlocks(LinearForecaster):
    """The same model (name, weights), but its step fails on the last, short block (1 init x 2 noise
    members, where the others have 3 x 2)."""

    def step(self, x, valid_time=None):
        if x.shape[0] < 6:
            raise RuntimeError("boom")
        return super().step(x, valid_time)


def _run(source, path, devices=None, callback=None):
    model = LinearForecaster(rotation_matrix(7), dropout=0.2)
    return run_forecast(model, source, INITS, LEADS, members=SPEC, batch_size=3, device="cpu", dtype="fp32",
                        sink=ZarrSink(path), progress=False, callback=callback, devices=devices)


def _assert_identical(a, b):
    assert sorted(a.data_vars) == sorted(b.data_vars)
    for v in a.data_vars:
        x, y = a[v].values, b[v].values
        assert x.shape == y.shape and np.isfinite(x).all()
        # bitwise: the same float32 numbers, not merely close ones
        assert np.array_equal(x.view(np.uint32), y.view(np.uint32)), v


def test_shard_gives_every_block_once():
    blocks = list(range(7))
    shares = [shard(blocks, r, 3) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]


@pytest.fixture(scope="module")
def one_process(linear_source, tmp_path_factory):
    return _run(linear_source, tmp_path_factory.mktemp("one") / "fc.zarr").load()


def test_two_gloo_processes_match_one_bitwise(linear_source, one_process, tmp_path):
    """An MC-dropout x noise ensemble of 10 inits in 4 blocks, split over two processes."""
    path = tmp_path / "fc.zarr"
    two = _run(linear_source, path, devices=2).load()
    _assert_identical(two, one_process)
    assert dict(two.sizes) == {"init_time": 10, "lead_time": 3, "weight_member": 2, "noise_member": 2,
                               "y": 6, "x": 8}
    # one store, finished by the coordinator, every block recorded, the lock gone
    done = sorted(int(p.stem) for p in (path / PROGRESS_DIR).glob("*.json") if p.stem.isdigit())
    assert done == [0, 1, 2, 3]
    assert json.loads((path / PROGRESS_DIR / "complete.json").read_text())["blocks"] == 4
    assert not lock_path(path).exists()


def test_a_shipped_network_on_two_processes_matches_one(tiny_hrrr, tmp_path):
    from workbench.models import load

    model = load("hrheim")
    inits = tiny_hrrr.time.values[24:29]
    # the analysis drives the network's lateral boundaries (a dataset that pickles to each process)
    kw = dict(device="cpu", dtype="fp32", batch_size=2, progress=False, boundary=tiny_hrrr)
    one = run_forecast(model, tiny_hrrr, inits, [1, 3], **kw)
    two = run_forecast(model, tiny_hrrr, inits, [1, 3], sink=ZarrSink(tmp_path / "h.zarr"), devices=2, **kw).load()
    _assert_identical(two, one)


def test_a_killed_run_resumes_on_two_processes(linear_source, one_process, tmp_path):
    path = tmp_path / "fc.zarr"

    def stop_after_first(k):
        raise Stop

    with pytest.raises(Stop):
        _run(linear_source, path, callback=stop_after_first)
    left = len(list((path / PROGRESS_DIR).glob("*.json")))
    assert 1 <= left < 4  # the run loop lets the block in flight finish
    resumed = _run(linear_source, path, devices=2).load()
    _assert_identical(resumed, one_process)
    assert (path / PROGRESS_DIR / "complete.json").exists()


def test_a_failing_process_stops_the_run_and_frees_the_store_for_a_resume(linear_source, one_process, tmp_path):
    path = tmp_path / "fc.zarr"
    model = FailsOnShortBlocks(rotation_matrix(7), dropout=0.2)
    with pytest.raises(DataError, match="forecast process 1 of 2 failed: RuntimeError: boom"):
        run_forecast(model, linear_source, INITS, LEADS, members=SPEC, batch_size=3, device="cpu", dtype="fp32",
                     sink=ZarrSink(path), progress=False, devices=2)
    # blocks 0 and 2 (process 0) and 1 (process 1) were finished; block 3 failed; the lock is gone
    assert sorted(int(p.stem) for p in (path / PROGRESS_DIR).glob("*.json")) == [0, 1, 2]
    assert not lock_path(path).exists()
    _assert_identical(_run(linear_source, path, devices=2).load(), one_process)


def test_several_processes_need_a_store_and_a_count(linear_source):
    model = LinearForecaster(rotation_matrix(7))
    with pytest.raises(DataError, match="ZarrSink"):
        run_forecast(model, linear_source, INITS, LEADS, device="cpu", devices=2, sink=MemorySink(), progress=False)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(DataError, match="devices must be"):
            run_forecast(model, linear_source, INITS, LEADS, device="cpu", devices=bad, progress=False)


def test_a_cooperating_writer_stops_when_the_lock_changes_hands(linear_source, tmp_path):
    """A joined writer writes under its coordinator's lock and refuses once that lock names another."""
    from workbench.inference.prepare import prepare

    path = tmp_path / "fc.zarr"
    run = prepare(LinearForecaster(rotation_matrix(7)), linear_source, INITS, LEADS, device="cpu", batch_size=3)
    owner = ForecastStore.open_or_create(path, run.layout, run.signature)
    joined = ForecastStore.join(run.layout, owner.handoff())
    block = {v: np.zeros(run.layout.block_shape(0), np.float32) for v in run.layout.variables}
    joined.write_block(0, block)
    assert owner.done_blocks() == {0}
    owner.release()  # the coordinator is gone ...
    with pytest.raises(LockError, match="no longer held"):
        joined.write_block(1, block)
    assert owner.done_blocks() == {0}


def test_workbench_infer_devices_and_torchrun_write_the_one_process_store(tiny_sample, tmp_path):
    """`workbench infer --devices 2`, and the same command under torchrun, give the one-process store;
    an overwrite on two processes replaces it whole."""
    import os
    import subprocess
    import sys

    from workbench.cli import main
    from workbench.inference import open_forecast

    args = ["infer", "hrheim", "--size", "tiny", "--init-range", "2020-06-01T12", "2020-06-02T12", "12h",
            "--leads", "1", "2", "--device", "cpu", "--batch-size", "1", "--no-progress"]
    assert main([*args, "--store", str(tmp_path / "one.zarr")]) == 0
    one = open_forecast(tmp_path / "one.zarr").load()
    assert main([*args, "--store", str(tmp_path / "two.zarr"), "--devices", "2"]) == 0
    _assert_identical(open_forecast(tmp_path / "two.zarr").load(), one)
    assert main([*args, "--store", str(tmp_path / "two.zarr"), "--devices", "2", "--overwrite"]) == 0
    _assert_identical(open_forecast(tmp_path / "two.zarr", require_complete=True).load(), one)

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*torchrun, "-m", "workbench.cli", *args, "--store", str(tmp_path / "tr.zarr")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("wrote ") == 1  # the first process reports for the group
    _assert_identical(open_forecast(tmp_path / "tr.zarr").load(), one)


def test_workbench_infer_refuses_a_bad_device_count(capsys):
    from workbench.cli import main

    assert main(["infer", "hrheim", "--devices", "0", "--init", "2020-06-01"]) != 0
    assert "--devices must be at least 1" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# Members shared out: blocks of (initial times, one weight member, a batch of noise members)
# --------------------------------------------------------------------------------------------------
ONE_INIT = INITS[4:5]


def _members_run(source, sink, members, models, devices=None, member_batch=1, callback=None):
    return run_forecast(models, source, ONE_INIT, LEADS, members=members, batch_size=1, device="cpu", dtype="fp32",
                        sink=sink, progress=False, devices=devices, member_batch=member_batch, callback=callback)


def _deep_ensemble():
    return [LinearForecaster(rotation_matrix(s)) for s in (5, 7, 11)]


def test_member_blocks_split_one_init_into_parts():
    """One init, 3 weight x 5 noise members in batches of 2: 3 x 3 blocks, a process gets some of each."""
    from workbench.inference.store import member_parts

    parts = member_parts({"weight_member": 3, "noise_member": 5}, 2)
    assert [(w.start, n.start, n.stop) for w, n in parts] == [
        (0, 0, 2), (0, 2, 4), (0, 4, 5), (1, 0, 2), (1, 2, 4), (1, 4, 5), (2, 0, 2), (2, 2, 4), (2, 4, 5)]
    assert member_parts({"member": 4}, 3) == [(slice(0, 1), slice(0, 3)), (slice(0, 1), slice(3, 4))]
    assert member_parts({"weight_member": 3, "noise_member": 5}, None) == [(slice(0, 3), slice(0, 5))]
    assert shard(list(range(len(parts))), 1, 2) == [1, 3, 5, 7]


def test_a_deterministic_deep_ensemble_of_one_init_on_two_processes_matches_one(linear_source, tmp_path):
    """Three networks, no noise: one init becomes three blocks shared by two processes."""
    one = _members_run(linear_source, MemorySink(), None, _deep_ensemble())
    path = tmp_path / "de.zarr"
    two = _members_run(linear_source, ZarrSink(path), None, _deep_ensemble(), devices=2).load()
    _assert_identical(two, one)
    assert dict(two.sizes) == {"init_time": 1, "lead_time": 3, "weight_member": 3, "noise_member": 1,
                               "y": 6, "x": 8}
    assert sorted(int(p.stem) for p in (path / PROGRESS_DIR).glob("*.json") if p.stem.isdigit()) == [0, 1, 2]
    # each weight member is the same computation in a block of its own: the whole-block run agrees bitwise
    _assert_identical(two, _members_run(linear_source, MemorySink(), None, _deep_ensemble(), member_batch=None))
    # and the members differ (three networks, not one copied)
    assert not np.allclose(two.t2m.isel(weight_member=0), two.t2m.isel(weight_member=1))


@pytest.fixture(scope="module")
def perturbed_one(linear_source):
    """MC dropout x noise members of one init, one member per block, in one process."""
    model = LinearForecaster(rotation_matrix(7), dropout=0.2)
    spec = EnsembleSpec(weight_members=2, noise_members=3, noise_scale=0.1, dropout=0.2, seed=3)
    return model, spec, _members_run(linear_source, MemorySink(), spec, model)


def test_a_perturbed_ensemble_of_one_init_on_two_processes_matches_one(linear_source, perturbed_one, tmp_path):
    """2 weight x 3 noise members of one init in six blocks: process 0 draws noise members 0 and 2 of
    weight member 0 and member 1 of weight member 1, process 1 the others; the noise is the same."""
    model, spec, one = perturbed_one
    two = _members_run(linear_source, ZarrSink(tmp_path / "p.zarr"), spec, model, devices=2).load()
    _assert_identical(two, one)
    t2m = two.t2m.values  # (init, lead, weight, noise, y, x)
    assert np.ptp(t2m, axis=3).min() >= 0 and np.ptp(t2m, axis=3).max() > 1e-3  # the noise members differ
    assert np.ptp(t2m, axis=2).max() > 1e-3  # and so do the dropout members
    # A member's noise is seeded by its initial time and number, not by its block: the members drawn one
    # per block equal those drawn all in one block (to float32 rounding: the batch shape differs).
    whole = _members_run(linear_source, MemorySink(), spec, model, member_batch=None)
    np.testing.assert_allclose(two.t2m.values, whole.t2m.values, rtol=0, atol=1e-4)


def test_a_noise_part_draws_the_whole_ensembles_perturbations():
    from workbench.inference.perturb import perturbations

    kw = dict(shape=(2, 5, 7), scale=np.array([0.1, 0.3], np.float32), length_scale=2.0, seed=9)
    t = [np.datetime64("2020-06-01T12")]
    whole = perturbations(t, 4, **kw)
    part = perturbations(t, 2, first_member=2, **kw)
    assert np.array_equal(part.numpy(), whole[:, 2:].numpy())
    assert not np.allclose(part[:, 0].numpy(), whole[:, 0].numpy())


def test_a_killed_member_split_run_shows_only_finished_parts_and_resumes_on_two_processes(
    linear_source, perturbed_one, tmp_path
):
    model, spec, one = perturbed_one
    path = tmp_path / "k.zarr"

    def stop(k):
        raise Stop

    with pytest.raises(Stop):
        _members_run(linear_source, ZarrSink(path), spec, model, callback=stop)
    done = sorted(int(p.stem) for p in (path / PROGRESS_DIR).glob("*.json"))
    assert 1 <= len(done) < 6
    from workbench.inference import open_forecast

    partial = open_forecast(path).t2m.values  # (1, L, 2, 3, y, x)
    shown = np.isfinite(partial).all(axis=(0, 1, 4, 5))
    expected = np.zeros((2, 3), bool)
    for k in done:
        expected[k // 3, k % 3] = True
    assert (shown == expected).all()
    ref = one.t2m.values
    assert np.array_equal(partial[:, :, shown], ref[:, :, shown])
    resumed = _members_run(linear_source, ZarrSink(path), spec, model, devices=2).load()
    _assert_identical(resumed, one)


def test_member_batch_is_checked(linear_source):
    model = LinearForecaster(rotation_matrix(7))
    for members, batch, match in ((None, 1, "has none"), (3, 0, "between 1 and the 3"), (3, 4, "between 1 and"),
                                  (3, 1.5, "whole number"), ((1, 2), True, "whole number")):
        with pytest.raises(DataError, match=match):
            _members_run(linear_source, MemorySink(), members, model, member_batch=batch)


def test_workbench_infer_refuses_a_bad_member_batch(capsys):
    from workbench.cli import main

    assert main(["infer", "hrheim", "--member-batch", "0", "--init", "2020-06-01"]) != 0
    assert "--member-batch must be at least 1" in capsys.readouterr().err


class PerturbablePersistence:
    """A self-forecasting model (like an Earth2Studio one) whose members are perturbed starts: it
    persists its (perturbed) initial state."""

    name = "persist"
    variables = ("t2m", "u10m", "z500")
    perturbable = True

    def forecast(self, initial, init_times, lead_times):
        import xarray as xr

        start = initial.sel(time=init_times)
        out = {}
        for v in self.variables:
            arr = np.repeat(start[v].values[:, None], len(lead_times), axis=1)
            out[v] = (("init_time", "lead_time", "y", "x"), arr)
        return xr.Dataset(out, coords={"init_time": np.asarray(init_times), "lead_time": np.asarray(lead_times)})


def test_a_self_forecasting_models_members_in_parts_are_the_whole_ensembles(linear_source):
    kw = dict(members=4, batch_size=2, device="cpu", progress=False)
    whole = run_forecast(PerturbablePersistence(), linear_source, INITS[:3], LEADS, **kw)
    parts = run_forecast(PerturbablePersistence(), linear_source, INITS[:3], LEADS, member_batch=3, **kw)
    _assert_identical(parts, whole)
    assert np.ptp(whole.t2m.values, axis=2).max() > 0.01  # the members are perturbed, differently
