"""The first start's background job and its progress view: steps, elapsed times, errors as one line."""

from __future__ import annotations

import time

import numpy as np
import pytest

from workbench.errors import DataError
from workbench.workflow import firststart as fs
from workbench.workflow import pipeline


def _wait(job: fs.FirstStart, timeout: float = 30.0) -> fs.Snapshot:
    job.join(timeout)
    assert job.done, "the first-start job did not end"
    return job.snapshot()


def test_steps_run_in_order_with_times_and_the_learned_step_is_skipped_when_off(monkeypatch, tmp_path):
    seen = []

    def fake_baselines(size, cache_dir=None, progress=None):
        for step in ("sample", "events", "baselines"):
            progress(step)
            seen.append((step, [s.state for s in job.snapshot().steps]))
            time.sleep(0.05)
        root = pipeline.results_dir(size, cache_dir)
        root.mkdir(parents=True, exist_ok=True)
        pipeline._write_manifest(root, {"learned": "pending", "learned_models": ["pangu"], "notes": []})
        return root

    monkeypatch.setattr(pipeline, "build_baselines", fake_baselines)
    job = fs.FirstStart("tiny", tmp_path, learned="off")
    assert [s.state for s in job.snapshot().steps] == ["waiting"] * 4 and not job.snapshot().ready
    snap = _wait(job.start())
    # each step runs while the ones before it are done
    assert seen == [
        ("sample", ["running", "waiting", "waiting", "waiting"]),
        ("events", ["done", "running", "waiting", "waiting"]),
        ("baselines", ["done", "done", "running", "waiting"]),
    ]
    assert [s.state for s in snap.steps] == ["done", "done", "done", "skipped"]
    assert snap.ready and snap.learned_finished and snap.error is None
    # the three timed steps slept 0.05 s each
    assert all(0.04 <= s.elapsed() < 5 for s in snap.steps[:3])
    assert snap.generation == pipeline.results_generation("tiny", tmp_path) > 0
    assert "WORKBENCH_DASHBOARD_LEARNED=off" in snap.steps[3].detail


def test_a_failing_step_is_one_line_on_the_snapshot(monkeypatch, tmp_path):
    def failing(size, cache_dir=None, progress=None):
        progress("sample")
        progress("events")
        raise DataError("No storm reports\n  in the sample period.")

    monkeypatch.setattr(pipeline, "build_baselines", failing)
    snap = _wait(fs.FirstStart("tiny", tmp_path, learned="off").start())
    assert snap.error == "events failed: No storm reports in the sample period."
    assert [s.state for s in snap.steps] == ["done", "failed", "waiting", "waiting"]
    assert not snap.ready


def test_a_bad_mode_is_an_error_of_the_job_not_a_crash(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_DASHBOARD_LEARNED", "sometimes")
    snap = _wait(fs.FirstStart("tiny", tmp_path).start())
    assert snap.error.startswith("sample failed: WORKBENCH_DASHBOARD_LEARNED must be one of")


def test_cached_results_are_done_at_once(monkeypatch, tmp_path):
    root = pipeline.results_dir("tiny", tmp_path)
    root.mkdir(parents=True)
    pipeline._write_manifest(root, {"learned": "done", "learned_models": ["pangu", "hrheim"], "notes": []})
    monkeypatch.setattr(pipeline, "build_baselines", lambda *a, **k: pytest.fail("rebuilt cached results"))
    snap = _wait(fs.FirstStart("tiny", tmp_path).start())
    assert [(s.state, s.detail) for s in snap.steps] == [
        ("done", "cached"),
        ("done", "cached"),
        ("done", "cached"),
        ("done", "cached"),
    ]
    assert snap.ready and snap.learned_finished


def test_one_job_per_size_and_cache_in_a_process(monkeypatch, tmp_path):
    root = pipeline.results_dir("tiny", tmp_path)
    root.mkdir(parents=True)
    pipeline._write_manifest(root, {"learned": "none", "learned_models": [], "notes": []})
    first = fs.first_start("tiny", tmp_path)
    assert fs.first_start("tiny", tmp_path) is first
    first.join(30)
    assert fs.first_start("tiny", tmp_path) is first  # finished, results still there: the same job
    assert fs.first_start("default", tmp_path) is not first
    assert first.snapshot().steps[3].state == "skipped"


def test_progress_view_lists_the_steps_with_elapsed_times_and_escapes_text():
    from workbench.viz.firststart import progress_markdown

    steps = [
        fs.StepState("sample", "done", started=0.0, finished=31.4, detail="cached"),
        fs.StepState("events", "done", started=31.4, finished=37.0),
        fs.StepState("baselines", "running", started=37.0),
        fs.StepState("learned models"),
    ]
    snap = fs.Snapshot(steps, "baselines: <b>scoring</b>", None, False, False, clock=49.6)
    text = progress_markdown(snap, "tiny")
    assert "| sample | ✓ done (cached) | 31 s |" in text
    assert "| events | ✓ done | 6 s |" in text
    assert "| baselines | … running | 13 s |" in text
    assert "| learned models | · waiting |  |" in text
    assert "<b>" not in text and "&#60;b&#62;scoring" in text


@pytest.mark.slow
def test_learned_models_are_published_before_their_ensemble(tiny_sample, monkeypatch, tmp_path):
    """The deterministic forecasts are scored and in the manifest while the (costlier) ensemble runs."""
    import shutil

    import xarray as xr

    from workbench.errors import DataError

    root = pipeline.build_baselines("tiny", tmp_path)
    learned = pipeline.read_manifest(root)["learned_models"]
    assert learned, "the shipped checkpoints should give learned models"
    seen = {}

    def fake_run(name, ctx, inits, store, ensemble=False):
        if ensemble:  # the ensemble: what an open page would read at this moment
            seen["manifest"] = pipeline.read_manifest(root)
            seen["scored"] = xr.open_zarr(root / "scores.zarr")["model"].values.tolist()
            raise DataError("no ensemble in this test")
        shutil.copytree(root / "forecasts" / "nwp.zarr", store)  # the NWP forecast stands in for a model

    monkeypatch.setattr(pipeline, "_run_learned", fake_run)
    before = pipeline.results_generation("tiny", tmp_path)
    pipeline.build_learned("tiny", tmp_path)
    assert seen["manifest"]["learned"] == "pending"
    assert seen["manifest"]["models"] == [*pipeline.BASELINES, *learned]
    assert seen["scored"] == [*pipeline.BASELINES, *learned]
    final = pipeline.read_manifest(root)
    assert final["learned"] == "done" and final["models"] == [*pipeline.BASELINES, *learned]
    assert final["ensemble_model"] is None and f"{learned[0]}: no ensemble" in final["notes"][-1]
    assert pipeline.results_generation("tiny", tmp_path) != before
    # the copies score as the NWP does: the same RMSE
    scores = xr.open_zarr(root / "scores.zarr")["rmse"]
    np.testing.assert_allclose(scores.sel(model=learned[0]).values, scores.sel(model="nwp").values)
