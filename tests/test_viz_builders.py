"""Plot builders of workbench.viz: they return HoloViews objects carrying exactly the data given."""

from __future__ import annotations

import importlib
import warnings

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from bokeh.models import GlyphRenderer, Plot

from workbench.errors import DataError
from workbench.grids import hrrr_grid
from workbench.viz import borders, events, maps, skill

scorecard = importlib.import_module("workbench.viz.scorecard")  # the module; workbench.viz.scorecard is its builder

hv.extension("bokeh")

LEADS = np.array([0, 6, 12], dtype="timedelta64[h]").astype("timedelta64[ns]")


def make_scores(
    rmse: np.ndarray, acc: np.ndarray | None = None, bias: np.ndarray | None = None
) -> xr.Dataset:
    """Scores (model, variable, lead_time, region) from a (3 models, 1 variable, 3 leads, 2 regions) array."""
    coords = {
        "model": ["nwp", "persistence", "pangu"],
        "variable": ["t2m"],
        "lead_time": LEADS,
        "region": ["all", "extreme"],
    }
    dims = ("model", "variable", "lead_time", "region")
    data = {"rmse": (dims, rmse)}
    if acc is not None:
        data["acc"] = (dims, acc)
    if bias is not None:
        data["bias"] = (dims, bias)
    return xr.Dataset(data, coords=coords)


@pytest.fixture
def scores() -> xr.Dataset:
    rmse = np.zeros((3, 1, 3, 2))
    rmse[0, 0, :, 0] = [0.5, 1.0, 2.0]  # nwp, all
    rmse[0, 0, :, 1] = [1.0, 2.0, 4.0]  # nwp, extreme
    rmse[1, 0, :, 0] = [0.0, 2.0, 3.0]  # persistence
    rmse[1, 0, :, 1] = [0.0, 5.0, 8.0]
    rmse[2, 0, :, 0] = [0.25, 0.5, 1.5]  # pangu
    rmse[2, 0, :, 1] = [1.5, 1.0, 5.0]
    acc = np.full((3, 1, 3, 2), 0.5)
    acc[2] = 0.75
    bias = np.full((3, 1, 3, 2), -2.0)
    bias[2] = 1.0
    return make_scores(rmse, acc, bias)


# -- skill curves ------------------------------------------------------------------------------------
def test_skill_frame_holds_the_scores(scores):
    frame = skill.skill_frame(scores, "rmse", "t2m", ("all", "extreme"))
    assert len(frame) == 3 * 3 * 2
    row = frame[(frame.model == "pangu") & (frame.region == "extreme") & (frame.lead_hours == 12)]
    assert row["value"].item() == 5.0
    assert sorted(frame["lead_hours"].unique()) == [0.0, 6.0, 12.0]


def test_skill_curves_one_line_per_model_per_region(scores):
    layout = skill.skill_curves(scores, "rmse", "t2m", ("all", "extreme"))
    assert isinstance(layout, hv.Layout) and len(layout) == 2
    for region, overlay in zip(("all", "extreme"), layout, strict=True):
        curves = [el for el in overlay if isinstance(el, hv.Curve)]
        assert sorted(c.label for c in curves) == ["nwp", "pangu", "persistence"]
        for c in curves:
            expected = scores["rmse"].sel(model=c.label, variable="t2m", region=region).values
            np.testing.assert_allclose(c.dimension_values("value"), expected)
            np.testing.assert_allclose(c.dimension_values("lead_hours"), [0, 6, 12])
        # the hover names the model of each line
        assert {c.dimension_values("model")[0] for c in curves} == {"nwp", "pangu", "persistence"}
        assert ("model", "@model") in curves[0].opts.get().kwargs["hover_tooltips"]
    assert "extreme" in layout[1].opts.get().kwargs["title"]


def test_skill_curves_refuse_unknown_metric_variable_region(scores):
    with pytest.raises(DataError, match="crps"):
        skill.skill_curves(scores, "crps", "t2m")
    with pytest.raises(DataError, match="z500"):
        skill.skill_curves(scores, "rmse", "z500")
    with pytest.raises(DataError, match="hail"):
        skill.skill_curves(scores, "rmse", "t2m", ("all", "hail"))


def test_single_model_scores_get_a_model_dim(scores):
    one = scores.sel(model="pangu", drop=True).assign_attrs(model="pangu")
    frame = skill.skill_frame(one, "rmse", "t2m")
    assert set(frame["model"]) == {"pangu"}


# -- scorecard ---------------------------------------------------------------------------------------
def test_variable_groups_of_the_scorecard_tabs():
    from workbench.viz.style import variable_groups

    groups = variable_groups(["t2m", "z500", "tp", "t850", "refc", "gust", "foo"])
    assert groups == {
        "surface": ["t2m", "gust"],
        "precipitation & radar": ["tp", "refc"],
        "upper air": ["z500", "t850"],
        "other": ["foo"],
    }
    assert list(variable_groups(["t2m"])) == ["surface"]  # empty groups are left out


def test_relative_skill_hand_values(scores):
    s = scorecard.relative_skill(scores, "rmse", "nwp")
    # pangu all: rmse 0.25, 0.5, 1.5 against nwp 0.5, 1, 2 -> +50 %, +50 %, +25 %
    np.testing.assert_allclose(s.sel(model="pangu", variable="t2m", region="all"), [50.0, 50.0, 25.0])
    # persistence extreme at 6 h: 5 against 2 -> -150 %
    assert s.sel(model="persistence", variable="t2m", region="extreme").values[1] == pytest.approx(-150.0)
    # ACC is better when higher: 0.75 against 0.5 -> +50 %
    np.testing.assert_allclose(scorecard.relative_skill(scores, "acc", "nwp").sel(model="pangu"), 50.0)
    # bias is compared in absolute value: |1| against |-2| -> +50 %
    np.testing.assert_allclose(scorecard.relative_skill(scores, "bias", "nwp").sel(model="pangu"), 50.0)
    assert np.all(s.sel(model="nwp") == 0)


def test_relative_skill_zero_reference_is_nan():
    rmse = np.ones((3, 1, 3, 2))
    rmse[0, 0, 0, :] = 0.0  # nwp perfect at lead 0
    s = scorecard.relative_skill(make_scores(rmse), "rmse", "nwp")
    assert np.isnan(s.sel(model="pangu", variable="t2m", region="all").values[0])
    with pytest.raises(DataError, match="ecmwf"):
        scorecard.relative_skill(make_scores(rmse), "rmse", "ecmwf")


def test_scorecard_heatmap_cells(scores):
    layout = scorecard.scorecard(scores, "rmse", "nwp", ("all", "extreme"))
    assert len(layout) == 2
    heat = layout[0].get(0) if isinstance(layout[0], hv.Overlay) else layout[0]
    assert isinstance(heat, hv.HeatMap)
    frame = heat.dframe()
    assert set(frame["row"]) == {"t2m · persistence", "t2m · pangu"}  # the reference has no row
    cell = frame[(frame["row"] == "t2m · pangu") & (frame["lead"] == "12 h")]
    assert cell["skill"].item() == pytest.approx(25.0)
    assert cell["value"].item() == 1.5 and cell["reference_value"].item() == 2.0
    # colours are clipped to +-50 % but the hover keeps the true number
    worst = frame[(frame["row"] == "t2m · persistence") & (frame["lead"] == "6 h")]
    assert worst["skill"].item() == pytest.approx(-100.0) and worst["skill_clipped"].item() == -50.0
    labels = layout[0].get(1)
    assert isinstance(labels, hv.Labels) and "+25" in list(labels.dimension_values("text"))


# -- maps --------------------------------------------------------------------------------------------
def small_grid_field(values: np.ndarray, name: str = "t2m", units: str = "K") -> xr.DataArray:
    g = hrrr_grid(300.0)
    assert values.shape == g.shape
    return xr.DataArray(
        values, dims=("y", "x"), coords={"y": g.y, "x": g.x}, name=name, attrs={"units": units}
    )


def test_field_image_keeps_values_and_coordinates():
    g = hrrr_grid(300.0)
    values = np.arange(g.ny * g.nx, dtype=np.float32).reshape(g.shape)
    img = maps.field_image(small_grid_field(values), kind="truth", clim=(0.0, 10.0))
    assert isinstance(img, hv.Image)
    np.testing.assert_allclose(img.dimension_values("value", flat=False), values)
    np.testing.assert_allclose(np.unique(img.dimension_values("x")), g.x)
    assert img.vdims[0].unit == "K" and img.opts.get().kwargs["clim"] == (0.0, 10.0)


def test_error_image_is_symmetric_about_zero():
    g = hrrr_grid(300.0)
    values = np.linspace(-1, 3, g.ny * g.nx).reshape(g.shape)
    img = maps.field_image(small_grid_field(values), kind="error")
    lo, hi = img.opts.get().kwargs["clim"]
    assert lo == -hi and hi == pytest.approx(np.percentile(np.abs(values), 99.5))


def test_mask_outline_traces_a_square():
    g = hrrr_grid(300.0)
    mask = np.zeros(g.shape, bool)
    mask[3:6, 4:8] = True  # rows 3-5, columns 4-7
    outline = maps.mask_outline(small_grid_field(mask, "mask", ""))
    assert isinstance(outline, hv.Contours)
    paths = outline.split()
    assert len(paths) == 1
    xs, ys = paths[0].dimension_values("x"), paths[0].dimension_values("y")
    # the contour at 0.5 runs half a cell outside the true cells
    assert xs.min() == pytest.approx(g.x[4] - g.dx / 2) and xs.max() == pytest.approx(g.x[7] + g.dx / 2)
    assert ys.min() == pytest.approx(g.y[3] - g.dx / 2) and ys.max() == pytest.approx(g.y[5] + g.dx / 2)


def test_mask_outline_of_a_big_mask_keeps_single_cells():
    mask = np.zeros((1059, 1799), bool)
    mask[500, 900] = True  # one 3-km cell
    g = hrrr_grid(3.0)
    da = xr.DataArray(mask, dims=("y", "x"), coords={"y": g.y, "x": g.x})
    outline = maps.mask_outline(da)
    xs = outline.split()[0].dimension_values("x")
    assert xs.min() <= g.x[900] <= xs.max()


def test_mask_outline_empty_and_union_over_types():
    g = hrrr_grid(300.0)
    m = xr.DataArray(
        np.zeros((2,) + g.shape, bool),
        dims=("event_type", "y", "x"),
        coords={"event_type": ["hail", "wind"], "y": g.y, "x": g.x},
    )
    assert len(maps.mask_outline(m).split()) == 0
    m[1, 2, 2] = True
    assert len(maps.mask_outline(m).split()) == 1


def test_spread_split_adds_up_to_the_total_variance():
    rng = np.random.default_rng(1)
    ens = xr.DataArray(rng.normal(size=(3, 4, 5, 6)), dims=("weight_member", "noise_member", "y", "x"))
    epistemic, aleatoric = maps.spread_split(ens)
    total = ens.stack(m=("weight_member", "noise_member")).var("m")
    np.testing.assert_allclose(epistemic**2 + aleatoric**2, total)
    np.testing.assert_allclose(epistemic**2, ens.mean("noise_member").var("weight_member"))
    with pytest.raises(DataError, match="noise_member"):
        maps.spread_split(ens.isel(noise_member=0))


def test_grid_from_coords_recovers_the_hrrr_grid():
    g = hrrr_grid(24.0)
    ds = xr.Dataset(coords=g.coords(), attrs=g.attrs())
    assert maps.grid_from_coords(ds) == g


def test_grid_from_coords_is_exported_by_the_package():
    import workbench.viz

    assert "grid_from_coords" in workbench.viz.__all__
    assert workbench.viz.grid_from_coords is maps.grid_from_coords


def test_forecast_maps_render_rasterized_fields_with_borders():
    g = hrrr_grid(150.0)
    truth = small_grid_field_like(g, 290.0)
    fcst = truth + 1.0
    mask = xr.zeros_like(truth, dtype=bool)
    mask[5:8, 10:14] = True
    ens = xr.concat(
        [xr.concat([fcst + w + 0.1 * n for n in range(3)], "noise_member") for w in range(2)], "weight_member"
    )
    layout = maps.forecast_maps(
        truth, fcst, mask, ens, kinds=("truth", "forecast", "error", "spread_epistemic", "spread_aleatoric")
    )
    assert len(layout) == 5
    grid_plot = hv.render(layout)
    images, lines = {}, {}
    for plot in grid_plot.select({"type": Plot}):
        renderers = [r for r in plot.renderers if isinstance(r, GlyphRenderer)]
        images[plot.title.text] = [
            np.asarray(r.data_source.data["image"][0]) for r in renderers if type(r.glyph).__name__ == "Image"
        ]
        lines[plot.title.text] = [r for r in renderers if type(r.glyph).__name__ == "MultiLine"]
    assert sorted(images) == sorted(
        f"t2m {k}" for k in ("truth", "forecast", "error", "spread epistemic", "spread aleatoric")
    )
    assert all(len(v) == 1 for v in images.values())
    error = images["t2m error"][0]
    assert np.nanmax(np.abs(error - 1.0)) < 1e-5  # forecast - truth = 1 everywhere
    # epistemic spread: population std of weight members 0 and 1 -> 0.5; aleatoric: std of 0, 0.1, 0.2
    np.testing.assert_allclose(np.nanmean(images["t2m spread epistemic"][0]), 0.5, rtol=1e-4)
    np.testing.assert_allclose(
        np.nanmean(images["t2m spread aleatoric"][0]), np.std([0, 0.1, 0.2]), rtol=1e-3
    )
    assert all(len(v) == 2 for v in lines.values())  # the mask outline and the state borders


def small_grid_field_like(g, base: float) -> xr.DataArray:
    yy, xx = np.meshgrid(np.arange(g.ny), np.arange(g.nx), indexing="ij")
    return xr.DataArray(
        (base + 0.1 * xx + 0.2 * yy).astype(np.float32),
        dims=("y", "x"),
        coords={"y": g.y, "x": g.x},
        name="t2m",
        attrs={"units": "K"},
    )


# -- borders -----------------------------------------------------------------------------------------
def test_state_borders_lie_in_the_hrrr_domain():
    g = hrrr_grid(24.0)
    path = borders.state_borders(g)
    xs, ys = path.dimension_values("x"), path.dimension_values("y")
    xs, ys = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
    # CONUS sits inside the HRRR domain (its extent is about 5400 x 3200 km)
    assert g.x[0] < xs.min() < xs.max() < g.x[-1]
    assert g.y[0] < ys.min() < ys.max() < g.y[-1]
    # Oklahoma City is inside the projected Oklahoma outline's box
    ok = borders._states()["OK"]
    x, y = g.project(ok["lats"], ok["lons"])
    cx, cy = g.project(35.47, -97.52)
    assert np.nanmin(x) < cx < np.nanmax(x) and np.nanmin(y) < cy < np.nanmax(y)


@pytest.mark.parametrize(
    ("lat", "lon", "code"),
    [
        (35.47, -97.52, "OK"),
        (39.74, -104.99, "CO"),
        (30.27, -97.74, "TX"),
        (41.88, -87.63 + 360, "IL"),
        (25.0, -40.0, None),
    ],
)
def test_state_at(lat, lon, code):
    assert borders.state_at(lat, lon) == code


# -- event browser -----------------------------------------------------------------------------------
def tiny_event_world():
    g = hrrr_grid(300.0)
    times = np.datetime64("2020-06-01T00", "ns") + np.arange(6).astype("timedelta64[h]").astype(
        "timedelta64[ns]"
    )
    truth = xr.Dataset(
        {"t2m": (("time", "y", "x"), np.zeros((6,) + g.shape, np.float32), {"units": "K"})},
        coords={"time": times, **g.coords()},
    )
    inits = times[:3]
    leads = np.array([0, 2], dtype="timedelta64[h]").astype("timedelta64[ns]")
    f = np.zeros((3, 2) + g.shape, np.float32)
    f[:, :, 3:5, 4:6] = 2.0  # +2 K inside the event box, exact elsewhere
    f[:, :, 0, 0] = 100.0  # a big error far from the event must not count
    fc = xr.Dataset(
        {"t2m": (("init_time", "lead_time", "y", "x"), f, {"units": "K"})},
        coords={"init_time": inits, "lead_time": leads, "y": g.y, "x": g.x},
    )
    lat, lon = g.latitude, g.longitude
    table = pd.DataFrame(
        [
            {
                "event_id": "case-1",
                "event_type": "hail+wind",
                "start": times[2],
                "end": times[3],
                "y_min": 3,
                "y_max": 4,
                "x_min": 4,
                "x_max": 5,
                "lat_min": float(lat[3:5, 4:6].min()),
                "lat_max": float(lat[3:5, 4:6].max()),
                "lon_min": float(lon[3:5, 4:6].min()),
                "lon_max": float(lon[3:5, 4:6].max()),
                "source": "ncei",
                "details": "Hail+Thunderstorm Wind",
            },
            {
                "event_id": "case-2",
                "event_type": "heat",
                "start": times[5],
                "end": times[5],
                "y_min": 0,
                "y_max": 0,
                "x_min": 0,
                "x_max": 1,
                "lat_min": 0.0,
                "lat_max": 0.0,
                "lon_min": 0.0,
                "lon_max": 0.0,
                "source": "threshold",
                "details": "t2m > 99th",
            },
        ]
    )
    return g, truth, {"nwp": fc, "perfect": fc * 0}, table


def test_event_errors_hand_values():
    g, truth, forecasts, table = tiny_event_world()
    # lead 2 h: inits 00 and 01 verify at 02 and 03, inside case-1; case-2 (05 UTC) has no forecast
    err = events.event_errors(table, truth, forecasts, "t2m", 2)
    assert err.loc["case-1", "nwp"] == pytest.approx(2.0)
    assert err.loc["case-1", "perfect"] == pytest.approx(0.0)
    assert np.isnan(err.loc["case-2", "nwp"])
    # lead 0 h: the 02 UTC init verifies inside case-1
    assert events.event_errors(table, truth, forecasts, "t2m", 0).loc["case-1", "nwp"] == pytest.approx(2.0)


def test_event_errors_inside_the_mask_footprint():
    g, truth, forecasts, table = tiny_event_world()
    masks = xr.DataArray(
        np.zeros((2, 6) + g.shape, bool),
        dims=("event_type", "time", "y", "x"),
        coords={"event_type": ["hail", "wind"], "time": truth.time, "y": g.y, "x": g.x},
    )
    masks[0, :, 3, 4] = True  # only one cell of the box is in the event's footprint
    fc = forecasts["nwp"].copy(deep=True)
    fc["t2m"][:, :, 3, 4] = 4.0
    err = events.event_errors(table, truth, {"nwp": fc}, "t2m", 2, masks=masks)
    assert err.loc["case-1", "nwp"] == pytest.approx(4.0)


def test_event_typical_errors_hand_values():
    from workbench.workflow import event_typical_errors

    g, truth, forecasts, table = tiny_event_world()
    typical = event_typical_errors(table, truth, forecasts, "t2m", 2)
    # lead 2 h: inits 00, 01 and 02 verify at 02, 03 and 04 UTC, whether an event is on or not
    assert typical.loc["case-1", "nwp"] == pytest.approx(2.0)  # +2 K on every cell of the box, always
    # case-2's box is cells (0, 0) and (0, 1): 100 K off on one of them at all three times
    assert typical.loc["case-2", "nwp"] == pytest.approx(np.sqrt(100.0**2 / 2))
    assert typical.loc["case-1", "perfect"] == 0.0
    # a lead the forecasts do not have: NaN, and no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert event_typical_errors(table, truth, forecasts, "t2m", 5).isna().all().all()


def test_event_frame_rows():
    g, truth, forecasts, table = tiny_event_world()
    err = events.event_errors(table, truth, forecasts, "t2m", 2)
    frame = events.event_frame(table, err, g)
    assert list(frame.columns[:6]) == ["event_id", "type", "start", "hours", "place", "size_km2"]
    first = frame.iloc[0]
    assert first["hours"] == 2 and first["size_km2"] == 4 * 300 * 300 and first["nwp"] == 2.0
    assert first["start"] == "2020-06-01 02:00"
    only_heat = events.event_frame(table, err, g, event_type="heat")
    assert list(only_heat["event_id"]) == ["case-2"]
    assert list(events.event_frame(table, err, g, event_type="wind")["event_id"]) == ["case-1"]
    with pytest.raises(DataError, match="missing columns"):
        events.event_frame(table.drop(columns=["y_min"]))
