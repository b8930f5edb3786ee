"""Skill curves with confidence bands and the scorecard with significance: the numbers they carry."""

from __future__ import annotations

import importlib

import holoviews as hv
import numpy as np
import pytest
import xarray as xr
from test_viz_builders import make_scores

# the modules: the package exports their main functions under the same names
scorecard = importlib.import_module("workbench.viz.scorecard")
skill = importlib.import_module("workbench.viz.skill")

hv.extension("bokeh")


@pytest.fixture
def bounded() -> xr.Dataset:
    rmse = np.ones((3, 1, 3, 2))
    rmse[2] = 0.8  # pangu 20 % better than nwp everywhere
    ds = make_scores(rmse)
    half = xr.full_like(ds["rmse"], 0.1)
    half.loc[{"model": "pangu", "lead_time": ds["lead_time"][2]}] = 0.3  # wide: 1.0 inside the interval
    ds["rmse_low"] = ds["rmse"] - half
    ds["rmse_high"] = ds["rmse"] + half
    ds.attrs["confidence"] = 0.9
    return ds


def test_skill_frame_and_curves_carry_the_bounds(bounded):
    frame = skill.skill_frame(bounded, "rmse", "t2m", ("all",))
    row = frame[(frame["model"] == "pangu") & (frame["lead_hours"] == 0)]
    assert row["low"].item() == pytest.approx(0.7) and row["high"].item() == pytest.approx(0.9)
    layout = skill.skill_curves(bounded, "rmse", "t2m", ("all", "extreme"))
    areas = [el for el in layout[0] if isinstance(el, hv.Area)]
    assert len(areas) == 3  # one band per model
    band = next(a for a in areas if a.label == "pangu")
    np.testing.assert_allclose(band.dimension_values("low"), [0.7, 0.7, 0.5])
    np.testing.assert_allclose(band.dimension_values("high"), [0.9, 0.9, 1.1])
    assert "90 % interval" in layout[0].opts.get().kwargs["title"]
    # no bounds: no bands, the old curves
    plain = skill.skill_curves(bounded.drop_vars(["rmse_low", "rmse_high"]), "rmse", "t2m", ("all",))
    assert not [el for el in plain[0] if isinstance(el, hv.Area)]


def test_scorecard_fades_cells_whose_difference_is_not_significant(bounded):
    frame = scorecard.scorecard_frame(bounded, "rmse", "nwp", "all")
    assert frame.attrs["significance"] == "intervals"
    pangu = frame[frame["model"] == "pangu"].sort_values("lead_hours")
    # nwp's 1.0 lies outside [0.7, 0.9] at 0 and 6 h, inside [0.5, 1.1] at 12 h
    assert pangu["significant"].tolist() == [True, True, False]
    assert pangu["skill"].tolist() == pytest.approx([20.0, 20.0, 20.0])
    persistence = frame[frame["model"] == "persistence"]
    assert not persistence["significant"].any()  # equal to the reference
    layout = scorecard.scorecard(bounded, "rmse", "nwp", ("all",))
    heat = layout[0].get(0)
    alphas = dict(zip(heat.dimension_values("row"), heat.dimension_values("cell_alpha"), strict=False))
    assert set(heat.dimension_values("cell_alpha")) == {1.0, 0.3} and alphas
    # a short title that fits the panel; the legend under the card says what faded means
    assert heat.opts.get().kwargs["title"] == "RMSE vs nwp — all"
    assert "Faded cells" in scorecard.scorecard_legend("rmse", "nwp", "intervals")
    labels = layout[0].get(1)
    colours = dict(zip(labels.dimension_values("text"), labels.dimension_values("text_color"), strict=False))
    assert colours["+0"] == "#777777"  # persistence: same as nwp, faded text


def test_scorecard_with_p_values_and_the_legend(bounded):
    p = xr.DataArray([0.5, 0.5, 0.01], dims="model", coords={"model": ["nwp", "persistence", "pangu"]})
    frame = scorecard.scorecard_frame(bounded, "rmse", "nwp", "all", significance=p)
    assert frame.attrs["significance"] == "p-values"
    assert frame.groupby("model")["significant"].all().to_dict() == {"pangu": True, "persistence": False}
    legend = scorecard.scorecard_legend("rmse", "nwp", "p-values")
    assert "lower is better" in legend and "not significant" in legend and "≫" in legend
    assert "no cell is faded" in scorecard.scorecard_legend("acc", "nwp", "none")


def test_scorecard_is_readable_at_65_rows():
    n_var, n_model = 13, 6
    models = ["nwp", *(f"m{i}" for i in range(n_model - 1))]
    ds = xr.Dataset(
        {
            "rmse": (
                ("model", "variable", "lead_time", "region"),
                np.random.default_rng(0).uniform(1, 2, (n_model, n_var, 9, 1)),
            )
        },
        coords={
            "model": models,
            "variable": [f"v{i}" for i in range(n_var)],
            "lead_time": np.arange(9) * np.timedelta64(6, "h"),
            "region": ["all"],
        },
    )
    layout = scorecard.scorecard(ds, "rmse", "nwp", ("all",))
    heat = layout[0].get(0)
    rows = list(dict.fromkeys(heat.dimension_values("row")))
    assert len(rows) == 65 and isinstance(layout[0].get(1), hv.Labels)  # numbers in all 585 cells
    # grouped by variable: each variable's models are adjacent
    variables = [r.split(" · ")[0] for r in rows]
    assert all(variables[i : i + 5] == [variables[i]] * 5 for i in range(0, 65, 5))
    assert heat.opts.get().kwargs["height"] >= 14 * 65
