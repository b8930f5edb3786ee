"""No data loss: atomic files and folders, store locks, overwrite by swap, run signatures, checksums.

One regression test per case of the hardening issue; each fails on the code before ``workbench/_io.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from inference_standins import LinearForecaster, rotation_matrix, synthetic_source

import workbench
from workbench import _io
from workbench.errors import CheckpointError, DataError, LockError
from workbench.inference import ZarrSink, open_forecast, run_forecast
from workbench.inference.horizon import LeadTimeWarning, check_leads, trained_range
from workbench.inference.store import PROGRESS_DIR, lock_path

ROOT = Path(__file__).resolve().parents[1]
INITS = pd.date_range("2020-06-01", periods=6, freq="3h")
LEADS = [1, 2]


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def source():
    return synthetic_source()


def _run(source, path, *, overwrite=False, **kw):
    kw.setdefault("batch_size", 2)
    sink = ZarrSink(path, overwrite=overwrite)
    return run_forecast(LinearForecaster(rotation_matrix(7)), source, INITS, kw.pop("leads", LEADS), device="cpu",
                        dtype="fp32", sink=sink, progress=False, **kw)


def _stop_after(n):
    seen = []

    def callback(block):
        seen.append(block)
        if len(seen) == n:
            raise Stop

    return callback


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True,
                          text=True, timeout=120)


# -- files -------------------------------------------------------------------------------------------------
def test_a_kill_while_the_index_csv_is_written_leaves_the_old_file(tmp_path):
    # Before: to_csv straight onto the target; SIGKILL mid-write left a 0-byte or truncated index.
    path = tmp_path / "events.index.csv"
    path.write_text("old,index\n1,2\n")
    proc = _python(f"""
        from workbench.events.table import make_table, write_index_csv
        write_index_csv(make_table([]), {str(path)!r})
    """, env={"WORKBENCH_FAULT": "file.written"})
    assert proc.returncode == -9, proc.stderr  # killed after the new content was complete, before the rename
    assert path.read_text() == "old,index\n1,2\n"
    # The finished run writes the whole new index; the dead writer's temporary file is swept by it.
    proc = _python(f"""
        from workbench.events.table import make_table, write_index_csv
        write_index_csv(make_table([]), {str(path)!r})
    """)
    assert proc.returncode == 0, proc.stderr
    assert path.read_text() == "type,bounding_box,begin_time,end_time,details\n"


def test_atomic_write_replaces_whole_and_cleans_up_on_error(tmp_path):
    path = tmp_path / "a.txt"
    _io.write_text(path, "one")
    _io.write_text(path, "two")
    assert path.read_text() == "two"

    def failing(tmp):
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _io.atomic_write(path, failing)
    assert path.read_text() == "two" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


# -- folders -----------------------------------------------------------------------------------------------
def _folder(path: Path, tag: str) -> None:
    path.mkdir()
    for i in range(5):
        (path / f"part{i}").write_text(f"{tag}{i}")


def _tag(path: Path) -> str | None:
    files = sorted(p.read_text() for p in path.iterdir()) if path.is_dir() else []
    tags = {f[:-1] for f in files}
    assert len(tags) <= 1 and (not files or len(files) == 5), f"mixed or partial folder: {files}"
    return tags.pop() if tags else None


@pytest.mark.parametrize(("point", "no_exchange"), [("dir.written", ""), ("dir.swapped", ""),
                                                    ("dir.aside", "1"), ("dir.swapped", "1")])
def test_a_kill_inside_the_folder_swap_leaves_the_old_or_the_new_folder(tmp_path, point, no_exchange):
    # Before: rmtree(target) then rename: a kill between the two left no output at all.
    target = tmp_path / "out.zarr"
    _folder(target, "old")
    proc = _python(f"""
        from pathlib import Path
        from workbench import _io
        with _io.atomic_dir(Path({str(target)!r})) as tmp:
            tmp.mkdir()
            for i in range(5):
                (tmp / f"part{{i}}").write_text(f"new{{i}}")
    """, env={"WORKBENCH_FAULT": point, "WORKBENCH_IO_NO_EXCHANGE": no_exchange})
    assert proc.returncode == -9, proc.stderr
    if point == "dir.aside":
        assert not target.exists()  # the one instant the fallback cannot cover ...
        _io.recover_dir(target)  # ... is repaired by the next reader or writer
    expected = "old" if point in ("dir.written", "dir.aside") else "new"
    assert _tag(target) == expected
    _io.recover_dir(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]


def test_exchange_keeps_the_path_present_at_every_instant(tmp_path):
    target, new = tmp_path / "t", tmp_path / "n"
    _folder(target, "old")
    _folder(new, "new")
    assert _io._exchange(new, target)
    assert _tag(target) == "new" and _tag(new) == "old"


# -- locks -------------------------------------------------------------------------------------------------
def test_a_second_writer_on_one_store_is_refused_naming_the_first(source, tmp_path):
    # Before: no lock; two writers deleted each other's partial chunks and crashed or left garbage.
    path = tmp_path / "fc.zarr"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(path).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "since": "now"}))
        with pytest.raises(LockError, match=rf"fc\.zarr is locked by process {holder.pid} on {socket.gethostname()}"):
            _run(source, path)
        assert not path.exists()
    finally:
        holder.kill()
        holder.wait()
    # The holder is dead now: its lock is stale and taken over; the run completes and unlocks.
    fc = _run(source, path)
    assert np.isfinite(fc["t2m"].values).all() and not lock_path(path).exists()


@pytest.mark.slow
def test_two_concurrent_cli_writers_second_refuses(tiny_sample, tmp_path):
    store = tmp_path / "p.zarr"
    args = ["infer", "persistence", "--size", "tiny", "--store", str(store), "--init-range", "2020-06-01T00",
            "2020-06-02T12", "12h", "--leads", "0:2:1", "--batch-size", "4", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The first writer pauses inside its one block, long enough for the second to start and be refused.
    first = subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], stderr=subprocess.PIPE, text=True,
                             env={**env, "WORKBENCH_FAULT_SLEEP": "15@store.block"})
    try:
        for _ in range(600):  # until the first holds the lock
            if lock_path(store).exists():
                break
            first.poll()
            assert first.returncode is None, first.stderr.read()
            import time

            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "workbench.cli", *args], env=env, capture_output=True,
                                text=True, timeout=120)
        assert second.returncode in (1, 2)  # the CLI's code for an expected failure
        assert f"is locked by process {first.pid} on {socket.gethostname()}" in second.stderr
        assert second.stderr.count("\n") == 1  # one clear line, no traceback
    finally:
        first.wait(timeout=300)
    assert first.returncode == 0
    assert open_forecast(store, require_complete=True).sizes["init_time"] == 4


def test_own_lock_left_by_an_earlier_failure_is_not_a_deadlock(source, tmp_path):
    path = tmp_path / "fc.zarr"
    with pytest.raises(Stop):
        _run(source, path, callback=_stop_after(1))
    assert not lock_path(path).exists()  # a failed run unlocks at once
    lock_path(path).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    fc = _run(source, path)  # this process, but no live lock object: stale
    assert np.isfinite(fc["t2m"].values).all()


# -- overwrite, signature, readers -------------------------------------------------------------------------
def test_a_failing_overwrite_leaves_the_finished_store_intact(source, tmp_path):
    # Before: --overwrite deleted the finished store first; a rerun failing later wiped finished work.
    path = tmp_path / "fc.zarr"
    old = _run(source, path).load()
    with pytest.raises(Stop):
        _run(source, path, leads=[1, 2, 3], overwrite=True, callback=_stop_after(2))
    kept = open_forecast(path, require_complete=True).load()
    xr.testing.assert_identical(kept, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fc.zarr"]  # no staged copy, no lock left
    # The old store stays readable during the rerun, and a rerun that finishes replaces it whole.
    new = _run(source, path, leads=[1, 2, 3], overwrite=True).load()
    assert list(new.lead_time.values / np.timedelta64(1, "h")) == [1, 2, 3]
    np.testing.assert_array_equal(new["t2m"].sel(lead_time=old.lead_time).values, old["t2m"].values)


def test_overwrite_refuses_to_replace_a_folder_that_is_no_store(source, tmp_path):
    path = tmp_path / "precious"
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")
    with pytest.raises(DataError, match="not a forecast store"):
        _run(source, path, overwrite=True)
    assert (path / "thesis.tex").read_text() == "years of work"


def test_resume_on_changed_input_is_refused_naming_both_signatures(source, tmp_path):
    # Before: the signature had no input fingerprint; a resume on changed data mixed old and new forecasts.
    path = tmp_path / "fc.zarr"
    with pytest.raises(Stop):
        _run(source, path, callback=_stop_after(1))
    changed = source.copy(deep=True)
    changed["t2m"] = changed["t2m"] + 1.0
    with pytest.raises(DataError, match=r"different run or input.*source: store \{.*vs this run \{.*--overwrite"):
        _run(changed, path)
    # Same input: the resume goes on, and matches an uninterrupted run.
    resumed = _run(source, path).load()
    fresh = _run(source, tmp_path / "fresh.zarr").load()
    xr.testing.assert_identical(resumed, fresh)


def test_readers_see_only_completed_blocks(source, tmp_path):
    path = tmp_path / "fc.zarr"
    with pytest.raises(Stop):
        _run(source, path, callback=_stop_after(2))
    (path / PROGRESS_DIR / "1.json").unlink()  # block 1's chunks are written, its record is not
    chunks = xr.open_zarr(path)["t2m"].values
    assert np.isfinite(chunks[2:4]).all()  # what a plain zarr reader would take for a finished block
    partial = open_forecast(path)
    t2m = partial["t2m"].values
    assert np.isfinite(t2m[0:2]).all()  # block 0
    assert np.isnan(t2m[2:4]).all()  # block 1: chunks on disk, no record
    done = {int(p.stem) for p in (path / PROGRESS_DIR).glob("[0-9]*.json")}
    assert np.isfinite(t2m[4:6]).all() == (2 in done)  # block 2: shown exactly when recorded


# -- checkpoints -------------------------------------------------------------------------------------------
CHECKPOINTS = Path(workbench.__file__).parent / "checkpoints"


def _copy_checkpoint(tmp_path, name="pangu_6h"):
    for suffix in (".json", ".safetensors"):
        shutil.copy(CHECKPOINTS / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path / name


def test_shipped_checkpoints_carry_a_checksum_of_weights_and_config():
    from workbench.models.weights import checksum

    configs = [c for c in sorted(CHECKPOINTS.glob("*.json")) if c.with_suffix(".safetensors").exists()]
    assert len(configs) == 5  # pangu 1/6/24 h, climax, hrheim (other JSON there, e.g. the ensemble calibration)
    for config in configs:
        doc = json.loads(config.read_text())
        assert doc["format_version"] == 2 and len(doc["sha256"]) == 64
        assert checksum(doc) == doc["sha256"]


def test_a_config_with_swapped_variables_is_refused(tmp_path):
    # Before: the hash covered only the weights; swapped variables loaded and forecast garbage.
    from workbench.models import load_checkpoint

    stem = _copy_checkpoint(tmp_path)
    config = stem.with_suffix(".json")
    doc = json.loads(config.read_text())
    v = doc["config"]["variables"]
    v[0], v[1] = v[1], v[0]
    config.write_text(json.dumps(doc, indent=2))
    with pytest.raises(CheckpointError, match="checksum does not match the config"):
        load_checkpoint(stem)


def test_changed_weights_are_refused(tmp_path):
    from workbench.models import load_checkpoint

    stem = _copy_checkpoint(tmp_path)
    weights = stem.with_suffix(".safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256 differs"):
        load_checkpoint(stem)


def test_shipped_checkpoints_require_the_checksum(tmp_path, monkeypatch):
    from workbench.models import load_checkpoint, weights

    stem = _copy_checkpoint(tmp_path)
    config = stem.with_suffix(".json")
    doc = json.loads(config.read_text())
    doc["format_version"] = 1
    doc["sha256"] = doc.pop("weights_sha256")
    config.write_text(json.dumps(doc))
    load_checkpoint(stem)  # a user's old (version 1) checkpoint still loads ...
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path.resolve())
    with pytest.raises(CheckpointError, match="shipped checkpoint must carry a checksum"):
        load_checkpoint(stem, verify=False)  # ... a shipped one must be version 2, verify or not


def test_saved_checkpoints_round_trip_through_the_checksum(tmp_path):
    from workbench.models import load_checkpoint, save_checkpoint

    model = load_checkpoint(CHECKPOINTS / "hrheim")
    save_checkpoint(model, tmp_path / "again", metadata=model.checkpoint_metadata)
    again = load_checkpoint(tmp_path / "again")
    assert again.config == model.config


# -- lead range --------------------------------------------------------------------------------------------
def test_a_5000_hour_lead_warns_naming_the_trained_range():
    # Before: a 5000-hour lead ran with no word about the trained range.
    from workbench.models import load_checkpoint

    model = load_checkpoint(CHECKPOINTS / "pangu_6h")
    assert trained_range(model) == (6.0, 6.0)
    with pytest.warns(LeadTimeWarning, match=r"5000 h is far beyond what pangu was trained for \(step 6 h, trained "
                                             r"leads up to 6 h; leads above 240 h"):
        check_leads([model], pd.to_timedelta([6, 5000], "h"))
    with pytest.raises(DataError, match="far beyond"):
        check_leads([model], pd.to_timedelta([5000], "h"), strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_leads([model], pd.to_timedelta([6, 120, 240], "h"))  # ten days of a 6-hour step: silent
    climax = load_checkpoint(CHECKPOINTS / "climax")
    assert trained_range(climax) == (1.0, 24.0)  # trained on leads 1, 6 and 24 h
