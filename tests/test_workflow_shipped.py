"""The shipped scores of the shipped checkpoints: equal to a fresh computation, used only when every key
matches, read without unpickling, and shown by the dashboard before the learned models' forecasts exist."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.workflow import shipped
from workbench.workflow.pipeline import PIPELINE_VERSION
from workbench.workflow.precompute import precompute
from workbench.workflow.shipped import SHIPPED_DIR, dataset_from_npz, dataset_to_npz, shipped_scores

#: The learned models of the shipped checkpoints, in the registry's order (the pipeline's).
LEARNED = ["pangu", "climax", "hrheim"]


def _times(size: str) -> tuple[list[str], list[int]]:
    keys = json.loads((SHIPPED_DIR / f"shipped-{size}.json").read_text())["keys"]
    return keys["init_times"], keys["lead_hours"]


def test_a_dataset_survives_the_npz_round_trip_without_pickle(tmp_path):
    ds = xr.Dataset(
        {"rmse": (("model", "lead_time"), np.array([[1.5, np.nan], [2.0, 3.25]]), {"units": "K"})},
        coords={
            "model": ["pangu", "hrheim"],
            "lead_time": pd.to_timedelta([0, 6], unit="h").values,
            "region": np.array(["all", "extreme"], dtype=object),
        },
        attrs={"n": np.int64(4)},
    )
    path = tmp_path / "s.npz"
    path.write_bytes(dataset_to_npz(ds))
    with np.load(path, allow_pickle=False) as npz:  # would raise on any object array
        assert "meta" in npz
    back = dataset_from_npz(path)
    xr.testing.assert_identical(back, ds.assign_coords(region=ds["region"].astype(str)))


@pytest.mark.parametrize("size", ["tiny", "default"])
def test_the_shipped_files_match_this_installation_and_are_small(size):
    path = SHIPPED_DIR / f"shipped-{size}.npz"
    assert path.stat().st_size < 2_000_000, path
    inits, leads = _times(size)
    scores, why = shipped_scores(size, LEARNED, inits, leads, PIPELINE_VERSION)
    # fails when checkpoints, sample version or scoring code changed: regenerate with
    # `python -m workbench.workflow.precompute`
    assert why == "", why
    assert scores["model"].values.tolist() == LEARNED
    assert np.isfinite(scores["rmse"].sel(variable="t2m", region="all")).all()


def test_a_changed_checksum_or_sample_version_makes_the_shipped_scores_ignored(monkeypatch, tmp_path):
    inits, leads = _times("tiny")
    real = shipped.checkpoint_checksums
    monkeypatch.setattr(
        shipped, "checkpoint_checksums", lambda name: {k: "0" * 64 for k in real(name)} if name == "hrheim" else real(name)
    )
    scores, why = shipped_scores("tiny", LEARNED, inits, leads, PIPELINE_VERSION)
    assert scores["model"].values.tolist() == ["pangu", "climax"]
    assert why == "hrheim: checkpoint checksum differs"
    scores, why = shipped_scores("tiny", ["hrheim"], inits, leads, PIPELINE_VERSION)
    assert scores is None and "hrheim: checkpoint checksum differs" in why
    monkeypatch.setattr(shipped, "checkpoint_checksums", real)

    import workbench.sample

    monkeypatch.setattr(workbench.sample, "VERSION", workbench.sample.VERSION + 1)
    scores, why = shipped_scores("tiny", LEARNED, inits, leads, PIPELINE_VERSION)
    assert scores is None and why == "shipped scores of the 'tiny' sample not used: sample_version differs"
    monkeypatch.undo()

    # other inits (another pipeline), a changed code digest, or an edited file: ignored too
    assert shipped_scores("tiny", LEARNED, inits[1:], leads, PIPELINE_VERSION)[0] is None
    monkeypatch.setattr(shipped, "code_digest", lambda: "f" * 16)
    assert "code_digest differs" in shipped_scores("tiny", LEARNED, inits, leads, PIPELINE_VERSION)[1]
    monkeypatch.undo()
    for name in ("shipped-tiny.npz", "shipped-tiny.json"):
        shutil.copy(SHIPPED_DIR / name, tmp_path / name)
    with open(tmp_path / "shipped-tiny.npz", "ab") as f:
        f.write(b"\0")
    scores, why = shipped_scores("tiny", LEARNED, inits, leads, PIPELINE_VERSION, directory=tmp_path)
    assert scores is None and "differs from its manifest" in why
    (tmp_path / "shipped-tiny.json").write_text("{")  # a damaged install: computed as before, not a crash
    scores, why = shipped_scores("tiny", LEARNED, inits, leads, PIPELINE_VERSION, directory=tmp_path)
    assert scores is None and "shipped-tiny.json unreadable" in why


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_dashboard_shows_shipped_scores_at_once_and_they_equal_a_fresh_computation(
    tiny_sample, workbench_cache, tmp_path, caplog
):
    from workbench.workflow.pipeline import build_baselines, open_sample_results, read_manifest

    with caplog.at_level(logging.INFO, logger="workbench.workflow.pipeline"):
        root = build_baselines("tiny")
    assert f"{', '.join(LEARNED)} scored from the shipped scores" in caplog.text
    manifest = read_manifest(root)
    assert manifest["models"] == ["persistence", "climatology", "nwp", *LEARNED]
    assert manifest["fields_pending"] == LEARNED and manifest["learned"] == "pending"
    results = open_sample_results(root, "tiny", mode="off")
    assert results.models == ["persistence", "climatology", "nwp", *LEARNED]
    assert results.map_models == ["persistence", "climatology", "nwp"]  # no fields before their forecasts
    on_page = results.scores.sel(model=LEARNED)
    from_file = dataset_from_npz(SHIPPED_DIR / "shipped-tiny.npz")
    assert float(np.abs(on_page["rmse"] - from_file["rmse"].sel(variable=on_page["variable"])).max()) == 0.0

    # every model's forecasts of the tiny sample's four initial times recomputed here, on the CPU in fp32.
    # Tolerance: relative 1e-4 - the shipped numbers come from another run (thread count, possibly
    # another machine), whose fp32 sums may round differently (~1e-6 relative), not from other code
    precompute("tiny", directory=tmp_path)
    fresh, stored = dataset_from_npz(tmp_path / "shipped-tiny.npz"), from_file
    assert fresh["model"].values.tolist() == stored["model"].values.tolist()
    assert set(fresh.data_vars) == set(stored.data_vars)
    for name in stored.data_vars:
        xr.testing.assert_allclose(fresh[name], stored[name], rtol=1e-4, atol=1e-6)
    # and a real number: hrheim's 2-m temperature RMSE at 6 h over the whole domain, by hand from fields
    # (area-weighted per initial time, then the mean over the initial times)
    from workbench.grids import area_weights

    t2m = xr.open_zarr(root / "forecasts" / "hrheim.zarr")["t2m"].sel(lead_time=np.timedelta64(6, "h")).load()
    truth = results.truth["t2m"]
    w = area_weights(truth).values
    valid = t2m["init_time"].values + np.timedelta64(6, "h")
    err = t2m.values - truth.sel(time=valid).values
    rmse = np.mean([np.sqrt(np.sum(w * e**2) / np.sum(w)) for e in err])
    got = float(stored["rmse"].sel(model="hrheim", variable="t2m", region="all", lead_time=np.timedelta64(6, "h")))
    assert got == pytest.approx(rmse, rel=1e-3)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_stale_shipped_scores_are_ignored_and_the_learned_models_wait_for_their_forecasts(
    tiny_sample, monkeypatch, tmp_path, caplog
):
    from workbench.workflow.pipeline import BASELINES, build_baselines, read_manifest

    monkeypatch.setattr(shipped, "code_digest", lambda: "0" * 16)  # as after an edit of the scoring code
    with caplog.at_level(logging.INFO, logger="workbench.workflow.pipeline"):
        root = build_baselines("tiny", tmp_path)
    said = [r.getMessage() for r in caplog.records if "shipped" in r.getMessage()]
    assert said == [
        "dashboard tiny: shipped scores of the 'tiny' sample not used: code_digest differs; computing them instead"
    ]
    manifest = read_manifest(root)
    assert manifest["models"] == list(BASELINES) and manifest["fields_pending"] == []
    assert manifest["learned"] == "pending" and manifest["learned_models"] == LEARNED
    assert xr.open_zarr(root / "scores.zarr")["model"].values.tolist() == list(BASELINES)
