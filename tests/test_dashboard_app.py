"""The dashboard on the server side: linked state, view updates, event zoom, URL values, refused paths."""

from __future__ import annotations

import html
import warnings

import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import ColorBar, GlyphRenderer, Plot

from workbench.errors import CatalogError
from workbench.viz import dashboard as dash
from workbench.workflow.load import load_results, open_catalog_scores
from workbench.workflow.synthetic import synthetic_results


@pytest.fixture(scope="module")
def results():
    return synthetic_results(spacing_km=150.0, days=2.0, lead_hours=(0, 6, 12), n_storms=5)


def rendered(viewable):
    """The bokeh model of a Panel object, as a server session would build it."""
    doc = Document()
    root = viewable.get_root(doc)
    doc.add_root(root)
    return root


def map_images(root) -> dict[str, np.ndarray]:
    """Image data of every map under a bokeh model, by the map's title."""
    out = {}
    for plot in root.select({"type": Plot}):
        images = [
            r for r in plot.renderers if isinstance(r, GlyphRenderer) and type(r.glyph).__name__ == "Image"
        ]
        if images and plot.title is not None:
            # an update replaces the data of the one image glyph (a new glyph per update would leak)
            assert len(images) == 1, f"{plot.title.text}: {len(images)} image glyphs"
            out[plot.title.text] = np.array(images[0].data_source.data["image"][0])
    return out


def test_state_defaults_and_options(results):
    state = dash.SkillState(results)
    assert state.model == "pangu"  # a learned model first
    assert state.reference == "nwp" and state.variable == "t2m" and state.region == "extreme"
    assert state.param.event_type.objects == ["all", "hail", "wind"]
    assert state.lead_time == 12 and state.param.lead_time.objects == [0, 6, 12]
    assert state.init_time in state.param.init_time.objects
    assert state.valid_time == pd.Timestamp(state.init_time) + pd.Timedelta(hours=12)


def test_url_values_are_checked_one_by_one(results):
    state = dash.SkillState(results)
    problems = state.apply_url_values({"lead_time": "6", "variable": "nonsense", "model": "nwp"})
    assert state.lead_time == 6 and state.model == "nwp" and state.variable == "t2m"
    assert len(problems) == 1 and "variable='nonsense' is not one of t2m, refc, tp" in html.unescape(
        problems[0]
    )


def test_lead_time_change_updates_the_maps(results):
    board = dash.SkillDashboard(results)
    maps = board.maps(("truth", "forecast", "error"))
    root = rendered(maps)
    before = map_images(root)
    assert len(before) == 3 and all(np.isfinite(v).any() for v in before.values())
    board.state.lead_time = 0
    after = map_images(root)
    titles = sorted(after)
    assert all(t.endswith(board.state.valid_time.strftime("%Y-%m-%dT%H:%M")) for t in titles)
    error = next(v for t, v in after.items() if t.startswith("error"))
    forecast = next(v for t, v in after.items() if t.startswith("forecast"))
    truth = next(v for t, v in after.items() if t.startswith("truth"))
    np.testing.assert_allclose(error, forecast - truth, atol=1e-4)
    assert not np.allclose(next(v for t, v in before.items() if t.startswith("truth")), truth)
    board.state.param.update(variable="refc", lead_time=6)
    board.state.model = "nwp"
    after = map_images(root)
    forecast = next(v for t, v in after.items() if t.startswith("forecast · nwp · refc"))
    expected = results.field("forecast", "nwp", "refc", board.state.init_time, 6).values
    np.testing.assert_allclose(forecast, expected, atol=1e-4)
    # the event outline follows the valid time: the mask's cells lie inside the drawn outline's box
    mask = results.mask_at(board.state.valid_time, "all")
    lines = [
        r
        for p in root.select({"type": Plot})
        for r in p.renderers
        if isinstance(r, GlyphRenderer) and type(r.glyph).__name__ == "MultiLine"
    ]
    assert len(lines) == 3 and all(r.data_source.data == lines[0].data_source.data for r in lines)
    xs = np.concatenate(lines[0].data_source.data["xs"]) if mask.any() else np.array([])
    if mask.any():
        cells_x = mask["x"].values[np.asarray(mask).any(axis=0)]
        assert xs.min() < cells_x.min() and cells_x.max() < xs.max()
    # the colour bars follow the variable (HoloViews titles them only once; a hook retitles them)
    titles = {bar.title for bar in root.select({"type": ColorBar})}
    assert titles == {"refc (dBZ)", "refc error (dBZ)"}


def bokeh_maps(root) -> dict:
    """Per map title: the image, the colour range and palette, the colour bar's title."""
    out = {}
    for plot in root.select({"type": Plot}):
        images = [r for r in plot.renderers if isinstance(r, GlyphRenderer) and type(r.glyph).__name__ == "Image"]
        if images and plot.title is not None:
            mapper = images[0].glyph.color_mapper
            bar = next(iter(plot.select({"type": ColorBar})), None)
            out[plot.title.text] = (
                np.array(images[0].data_source.data["image"][0]),
                (mapper.low, mapper.high, list(mapper.palette)),
                bar.title if bar is not None else None,
            )
    return out


def test_a_widget_change_sends_only_the_new_images_and_matches_a_fresh_render(results):
    from bokeh.document.events import ColumnDataChangedEvent, ModelChangedEvent

    kinds = ("truth", "forecast", "error")
    board = dash.SkillDashboard(results)
    root = rendered(board.maps(kinds))
    sent = []
    root.document.on_change(lambda event: sent.append(event))
    board.state.param.update(variable="refc", lead_time=6, model="nwp")
    fresh = dash.SkillDashboard(results)
    fresh.state.param.update(variable="refc", lead_time=6, model="nwp")
    after, expected = bokeh_maps(root), bokeh_maps(rendered(fresh.maps(kinds)))
    # the in-place update leaves the maps as HoloViews draws that selection from scratch
    assert sorted(after) == sorted(expected) and len(after) == 3
    for title, (image, mapper, bar) in expected.items():
        np.testing.assert_array_equal(after[title][0], image)
        assert after[title][1] == mapper and after[title][2] == bar
    # and only what changed travelled: one image column per map (the outlines follow the new valid time)
    image_sources = {
        r.data_source.id
        for r in root.select({"type": GlyphRenderer})
        if type(r.glyph).__name__ == "Image"
    }
    columns = [e.cols for e in sent if isinstance(e, ColumnDataChangedEvent) and e.model.id in image_sources]
    assert columns == [["image"]] * 3
    assert not [e for e in sent if isinstance(e, ModelChangedEvent) and e.attr == "data"]
    # a zoom afterwards (through HoloViews) resamples the selection now shown
    board.zoom_to((results.grid.x[2], results.grid.x[12]), (results.grid.y[2], results.grid.y[8]))
    assert all(" refc " in t and t.startswith(("truth", "forecast · nwp", "error · nwp")) for t in map_images(root))


def test_scorecard_panel_has_a_tab_per_variable_group_and_a_legend(results):
    from workbench.viz.style import variable_groups

    board = dash.SkillDashboard(results)
    panel = board.scorecard_panel("rmse", "nwp", "extreme")
    tabs, legend = panel.objects
    groups = variable_groups([str(v) for v in results.scores["variable"].values])
    assert tabs._names == [f"{name} ({len(members)})" for name, members in groups.items()]
    # each tab holds the card of its variables only, for all and the region
    first = tabs.objects[0].object
    rows = {r.split(" · ")[0] for r in first[0].get(0).dimension_values("row")}
    assert rows == set(next(iter(groups.values())))
    assert "≫ / ≪" in legend.object and "centred on the reference" in legend.object


def test_skill_and_scorecard_follow_the_state(results):
    board = dash.SkillDashboard(results)
    views = board.views()
    root = rendered(pn.Column(views["skill"], views["scorecard"]))
    titles = {p.title.text for p in root.select({"type": Plot}) if p.title is not None}
    assert {"RMSE of t2m — all", "RMSE of t2m — extreme", "RMSE vs nwp — all"} <= titles
    board.state.param.update(variable="refc", region="hail", metric="acc")
    titles = {p.title.text for p in root.select({"type": Plot}) if p.title is not None}
    assert {"ACC of refc — all", "ACC of refc — hail", "ACC vs nwp — hail"} <= titles


def test_event_click_moves_time_and_zooms(results):
    board = dash.SkillDashboard(results)
    rendered(board.maps(("truth", "forecast", "error")))
    table = board.events_table.value
    verifiable = table[table["pangu"].notna()]
    assert len(verifiable), "the synthetic storms must have forecasts inside them"
    row = verifiable.iloc[0]
    board.select_event(row)
    valid = board.state.valid_time
    assert row["start_time"] <= valid <= row["end_time"]
    grid = results.grid
    x_range, y_range = board._x_ranges[0], board._y_ranges[0]
    assert x_range.start <= grid.x[row["x_min"]] and grid.x[row["x_max"]] <= x_range.end
    assert y_range.start <= grid.y[row["y_min"]] and grid.y[row["y_max"]] <= y_range.end
    assert x_range.end - x_range.start < (grid.x[-1] - grid.x[0]) / 2
    assert board._range_streams and board._range_streams[0].x_range == (x_range.start, x_range.end)


def test_event_table_ranked_by_error_relative_to_the_place(results):
    board = dash.SkillDashboard(results)
    rows = board.events_table.value
    s = board.state
    # the ratio is the model's error in the event over its usual error in the event's box at that lead
    errors = results.event_errors(s.variable, s.lead_time)["pangu"]
    typical = results.event_typical_errors(s.variable, s.lead_time)["pangu"]
    expected = (errors / typical).reindex(rows["event_id"]).to_numpy()
    assert np.isfinite(expected).sum() >= 2
    np.testing.assert_allclose(rows["vs_typical"], expected.round(2), equal_nan=True)
    ratio = rows["vs_typical"].to_numpy()
    finite = ratio[np.isfinite(ratio)]
    assert list(finite) == sorted(finite, reverse=True) and np.isnan(ratio[len(finite):]).all()
    board.state.event_type = "hail"
    assert set(board.events_table.value["type"]) <= {"hail"}


def test_every_event_zooms_inside_the_domain_without_warnings(results):
    board = dash.SkillDashboard(results)
    root = rendered(board.maps(("truth", "forecast", "error")))
    (gx0, gx1), (gy0, gy1) = dash.vmaps.map_extent(results.grid)
    g = results.grid
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning (All-NaN slice, ...) fails the test
        for _, row in board.events_table.value.iterrows():
            board.select_event(row)
            x, y = board._x_ranges[0], board._y_ranges[0]
            # the whole event, with context, inside the domain
            assert gx0 <= x.start < g.x[row["x_min"]] and g.x[row["x_max"]] < x.end <= gx1
            assert gy0 <= y.start < g.y[row["y_min"]] and g.y[row["y_max"]] < y.end <= gy1
            for image in map_images(root).values():
                assert np.isfinite(image).all()


def test_zoom_box_is_moved_inside_the_domain():
    from workbench.grids import hrrr_grid

    g = hrrr_grid(24.0)
    (gx0, gx1), (gy0, gy1) = dash.vmaps.map_extent(g)
    # an event in the domain's lower-left corner: the frame starts at the corner, the event inside it
    xlim, ylim = dash.zoom_box({"x_min": 0, "x_max": 2, "y_min": 0, "y_max": 1}, g, aspect=1.5)
    assert xlim[0] == gx0 and ylim[0] == gy0
    assert (xlim[1] - xlim[0]) / (ylim[1] - ylim[0]) == pytest.approx(1.5)
    assert xlim[1] > g.x[2] + 150e3 and ylim[1] > g.y[1] + 150e3
    # a frame larger than the domain is the domain
    xlim, ylim = dash.zoom_box({"x_min": 0, "x_max": g.nx - 1, "y_min": 0, "y_max": g.ny - 1}, g, aspect=1.5)
    assert xlim == (gx0, gx1) and ylim == (gy0, gy1)


def test_zoom_box_keeps_the_aspect():
    from workbench.grids import hrrr_grid

    g = hrrr_grid(24.0)
    xlim, ylim = dash.zoom_box({"x_min": 10, "x_max": 12, "y_min": 50, "y_max": 80}, g, aspect=1.5)
    assert (xlim[1] - xlim[0]) / (ylim[1] - ylim[0]) == pytest.approx(1.5)
    assert xlim[0] < g.x[10] and g.x[12] < xlim[1] and ylim[0] < g.y[50] and g.y[80] < ylim[1]


def test_best_forecast_for_an_event():
    inits = ["2020-06-01T00:00", "2020-06-01T12:00", "2020-06-02T00:00"]
    event = {"start_time": pd.Timestamp("2020-06-02T06:00"), "end_time": pd.Timestamp("2020-06-02T08:00")}
    assert dash.best_forecast_for(event, inits, [0, 6, 12], 6) == ("2020-06-02T00:00", 6)
    # no init verifies inside at 12 h: the shortest lead that does is taken
    assert dash.best_forecast_for(event, inits, [0, 6, 12], 12) == ("2020-06-02T00:00", 6)
    late = {"start_time": pd.Timestamp("2020-06-05"), "end_time": pd.Timestamp("2020-06-05T01:00")}
    assert dash.best_forecast_for(late, inits, [0, 6, 12], 6) is None


def test_a_path_outside_the_catalog_is_refused(tmp_path):
    secret = tmp_path / "secret.nc"
    secret.write_text("not for the dashboard")
    with pytest.raises(CatalogError, match="Refusing"):
        open_catalog_scores(str(secret))
    with pytest.raises(CatalogError, match="Refusing"):
        open_catalog_scores("/etc/passwd")
    # refused before the sample pipeline runs (which would take seconds)
    with pytest.raises(CatalogError):
        load_results(size="tiny", scores="../../etc/passwd")


def test_the_page_shows_the_refusal(results):
    def loader(size, scores):
        if scores:
            open_catalog_scores(scores)
        return results

    page = dash.create_app(loader=loader, size="tiny", scores="/etc/passwd")
    alerts = [obj for obj in page.main[0].objects if isinstance(obj, pn.pane.Alert)]
    assert alerts and alerts[0].alert_type == "danger"
    # the operator's path is refused by the catalog; the page names the file, never where it is
    shown = html.unescape(alerts[0].object)
    assert "Refusing 'passwd'" in shown and "/etc" not in shown, shown


def test_the_dashboard_is_a_panel_viewer_sharing_its_views_through_results(results):
    import panel as pn

    first, second = dash.SkillDashboard(results), dash.SkillDashboard(results)
    assert isinstance(first, pn.viewable.Viewer)
    root = rendered(pn.panel(first))  # Panel shows it through __panel__: widgets beside the views
    assert len(map_images(root)) == 3
    card = first.scorecard_view("rmse", "nwp", "extreme")
    kept = results.views.count("scorecard")
    assert second.scorecard_view("rmse", "nwp", "extreme") is card  # built once, for every session
    assert results.views.count("scorecard") == kept >= 1
