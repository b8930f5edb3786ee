"""The dashboard's cached results on the tiny sample, and the ``workbench serve`` command."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from workbench.errors import CatalogError, DataError
from workbench.sample import open_sample
from workbench.workflow import pipeline


@pytest.fixture(scope="module")
def results(tiny_sample):
    # learned="off": the learned models' CPU forecasts take minutes; the baselines are what is tested here
    return pipeline.sample_results("tiny", learned="off")


def test_results_hold_the_baselines_on_the_sample(results, tiny_sample):
    assert list(results.forecasts) == ["persistence", "climatology", "nwp"]
    # the shipped checkpoints' scores ship with the package (workbench.workflow.shipped): the learned
    # models are scored with no forecast of theirs made (learned="off"), and have no maps
    learned = pipeline.learned_models()
    assert [str(m) for m in results.scores["model"].values] == ["persistence", "climatology", "nwp", *learned]
    assert results.map_models == ["persistence", "climatology", "nwp"]
    assert {"all", "extreme", "non_extreme"} <= set(results.regions)
    assert set(results.event_types) <= set(results.regions)
    leads = results.lead_hours("nwp")
    assert leads == [h for h in pipeline.DASHBOARD_LEADS if h <= 48]
    assert len(results.init_times("nwp")) == pipeline.DASHBOARD_INITS["tiny"]
    assert results.masks.dims == ("event_type", "time", "y", "x") and results.masks.dtype == bool
    assert len(results.events) and {"event_id", "start", "end", "y_min", "x_max"} <= set(
        results.events.columns
    )
    assert any("WORKBENCH_DASHBOARD_LEARNED=off" in n for n in results.notes)
    # persistence and NWP start from the same analysis: at lead 0 both are it, with the analysis error
    rmse0 = results.scores["rmse"].sel(region="all").isel(lead_time=0)
    np.testing.assert_allclose(rmse0.sel(model="persistence"), rmse0.sel(model="nwp"), rtol=1e-5)
    analysis_error = open_sample("analysis", "tiny").attrs["analysis_error_rms"]
    assert float(rmse0.sel(model="persistence", variable="t2m")) == pytest.approx(analysis_error["t2m"], rel=0.5)
    assert float(rmse0.sel(model="persistence", variable="t2m")) > 0.1
    # the categorical scores and FSS of tp, refc and gust are offered with the others; persistence at
    # lead 0 is the analysis: perfect
    for metric in ("csi", "ets", "fss"):
        assert metric in results.scores.data_vars
    csi0 = results.scores["csi"].sel(model="persistence", region="all").isel(lead_time=0)
    nwp0 = results.scores["csi"].sel(model="nwp", region="all").isel(lead_time=0)
    assert np.isfinite(csi0.values).any()
    np.testing.assert_allclose(csi0.values, nwp0.values, rtol=1e-6)  # the same start, the same scores


def test_fields_are_consistent(results):
    init = results.init_times("nwp")[1]
    truth = results.field("truth", "nwp", "t2m", init, 6)
    forecast = results.field("forecast", "nwp", "t2m", init, 6)
    error = results.field("error", "nwp", "t2m", init, 6)
    np.testing.assert_allclose(error.values, forecast.values - truth.values, atol=1e-5)
    valid = np.datetime64(pd.Timestamp(init) + pd.Timedelta(hours=6), "ns")
    np.testing.assert_allclose(truth.values, results.truth["t2m"].sel(time=valid).values)
    persistence = results.field("forecast", "persistence", "t2m", init, 6)
    np.testing.assert_allclose(persistence.values, results.field("forecast", "nwp", "t2m", init, 0).values, atol=1e-5)
    with pytest.raises(DataError, match="no forecast from"):
        results.field("forecast", "nwp", "t2m", pd.Timestamp("1999-01-01"), 6)
    with pytest.raises(DataError, match="ensemble"):
        results.field("spread_epistemic", "nwp", "t2m", init, 6)


def test_second_open_reads_the_cache(results):
    t = time.perf_counter()
    again = pipeline.sample_results("tiny", learned="off")
    assert time.perf_counter() - t < 10
    assert list(again.forecasts) == list(results.forecasts)
    assert pipeline.results_generation("tiny") > 0


def test_learned_mode_is_checked(monkeypatch):
    monkeypatch.setenv("WORKBENCH_DASHBOARD_LEARNED", "sometimes")
    with pytest.raises(DataError, match="background"):
        pipeline.learned_mode()
    assert pipeline.learned_mode("off") == "off"


def test_serve_refuses_scores_outside_the_catalog(capsys):
    from workbench.cli import main

    assert main(["serve", "--scores", "/etc/passwd", "--prepare"]) == 2
    err = capsys.readouterr().err
    assert "Refusing '/etc/passwd'" in err
    with pytest.raises(CatalogError):
        from workbench.workflow.load import open_catalog_scores

        open_catalog_scores("/etc/shadow")


def test_serve_prepare_uses_the_cache(results, capsys):
    from workbench.cli import main

    assert main(["serve", "--size", "tiny", "--prepare", "--learned", "off"]) == 0
    assert "ready: embedded sample (tiny)" in capsys.readouterr().out


def test_scores_the_catalog_names_replace_the_samples(results, workbench_cache):
    from workbench.sources.intake_sources import forecasts_dir
    from workbench.workflow.load import load_results

    # a scores file in a location the catalog names (the forecast stores), as `workbench score` writes
    target = forecasts_dir() / "nwp-only-scores.zarr"
    target.parent.mkdir(parents=True, exist_ok=True)
    nwp_only = results.scores.sel(model=["nwp"]) * 2.0
    nwp_only.drop_encoding().to_zarr(target, mode="w", zarr_format=2)
    shown = load_results(size="tiny", scores=str(target), learned="off")
    assert [str(m) for m in shown.scores["model"].values] == ["nwp"]
    np.testing.assert_allclose(shown.scores["rmse"].values, nwp_only["rmse"].values)
    assert list(shown.forecasts) == list(results.forecasts)  # maps still from the sample
    assert str(target) in shown.label


def test_view_cache_builds_each_view_once_and_keeps_the_newest():
    from workbench.errors import DataError
    from workbench.workflow.results import ViewCache

    views, built = ViewCache(kept=2), []

    def make(value):
        def build():
            built.append(value)
            return value

        return build

    assert views.get("skill", "a", make(1)) == 1
    assert views.get("skill", "a", make(99)) == 1  # built once, then shared
    views.get("skill", "b", make(2))
    views.get("skill", "c", make(3))  # over the limit: the oldest ("a") goes
    views.get("scorecard", "a", make(4))  # another kind has its own room
    assert built == [1, 2, 3, 4] and views.count("skill") == 2 and views.count("scorecard") == 1
    assert views.get("skill", "a", make(5)) == 5
    with pytest.raises(DataError, match="at least one view"):
        ViewCache(kept=0)


def test_synthetic_results_are_scored_like_the_pipeline():
    """The synthetic results carry the workbench's own scores: decompose's RMSE (area-weighted) and the
    ensemble as a model of its own, as in the sample pipeline, never scores computed another way."""
    import xarray as xr

    from workbench.scoring import decompose
    from workbench.workflow.synthetic import synthetic_results

    res = synthetic_results(
        spacing_km=300.0, days=1.0, lead_hours=(0, 6), init_every_hours=6, models=("nwp", "pangu"), n_storms=3
    )
    assert [str(m) for m in res.scores["model"].values] == ["nwp", "pangu", "pangu-ensemble"]
    assert res.map_models == ["nwp", "pangu"]
    direct = decompose(res.forecasts["nwp"], res.truth, res.masks, variables=["t2m"])
    got = res.scores["rmse"].sel(model="nwp", variable="t2m")
    xr.testing.assert_allclose(got.drop_vars("model"), direct["rmse"].sel(variable="t2m"))
    # nwp drifts its storms 1.5 km per hour of lead: a perfect analysis at lead 0, an error later
    assert float(got.sel(region="all").isel(lead_time=0)) == 0.0
    assert float(got.sel(region="all").isel(lead_time=1)) > 0.0
    crps = res.scores["crps"].sel(model="pangu-ensemble", variable="t2m", region="all")
    assert np.isfinite(crps).all() and np.isnan(res.scores["crps"].sel(model="nwp")).all()


def test_the_results_key_follows_every_weights_file_the_dashboard_uses(tmp_path, monkeypatch):
    # The dashboard's ensemble runs the deep-ensemble members under members/<k>/: a new member file must
    # give a new results folder, as a new top-level checkpoint does; other files do not count.
    monkeypatch.setenv("WORKBENCH_CHECKPOINTS", str(tmp_path))
    (tmp_path / "pangu.safetensors").write_bytes(b"0" * 8)
    first = pipeline.checkpoint_digest()
    (tmp_path / "notes.txt").write_text("not weights")
    assert pipeline.checkpoint_digest() == first
    member = tmp_path / "members" / "1"
    member.mkdir(parents=True)
    (member / "pangu.safetensors").write_bytes(b"1" * 8)
    second = pipeline.checkpoint_digest()
    assert second != first
    (member / "pangu.safetensors").write_bytes(b"1" * 9)
    assert pipeline.checkpoint_digest() not in (first, second)
