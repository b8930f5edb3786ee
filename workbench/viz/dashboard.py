"""The skill dashboard: linked widgets over skill curves, a scorecard, maps and an event browser.

:class:`SkillState` holds the selection (model, variable, metric, region, event type, initial time,
lead time, reference); :class:`SkillDashboard` binds the :mod:`workbench.viz` builders to it and lays
them out in a Panel template. ``apps/skill.py`` and ``workbench serve`` call :func:`create_app`; in a
notebook, after ``pn.extension("tabulator")``, ``SkillDashboard(results)`` displays inline.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr
from bokeh.models import ColumnDataSource

from workbench.errors import DataError, WorkbenchError
from workbench.viz import maps as vmaps
from workbench.viz.access import EXPOSE_ENV, LOCAL_ONLY_PAGE, session_remote_ip, visitor_allowed
from workbench.viz.borders import add_state_borders
from workbench.viz.events import event_frame
from workbench.viz.safety import escape, page_text
from workbench.viz.scorecard import scorecard, scorecard_frame, scorecard_legend
from workbench.viz.skill import skill_curves
from workbench.viz.style import CURVE_METRICS, variable_groups
from workbench.viz.urlstate import (
    URL_PARAMETERS,
    apply_query,
    choose_scores,
    scores_choices,
    session_location,
    url_search,
)
from workbench.workflow.results import Results

log = logging.getLogger(__name__)

__all__ = ["URL_PARAMETERS", "SkillDashboard", "SkillState", "create_app", "sync_url"]

#: State parameters the maps depend on.
MAP_PARAMETERS = ("model", "variable", "init_time", "lead_time", "event_type")

#: State parameters whose change updates only the maps (in place), the event table's rows and texts.
IN_PLACE_PARAMETERS = ("init_time", "lead_time", "event_type")

#: Width in pixels of each map: three maps with their colour bars fit the page's main area at 1280 px.
MAP_WIDTH = 300

#: Width in pixels of each skill panel (plus the legend's, outside the second one).
SKILL_WIDTH = 380

#: Width in pixels of each scorecard panel (two fit side by side at 1280 px).
SCORECARD_WIDTH = 440

def _time_label(t) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M")


class SkillState(param.Parameterized):
    """The selection shared by every view of the dashboard."""

    model = param.Selector(doc="Model shown on the maps and highlighted in the curves.")
    variable = param.Selector(doc="Canonical variable.")
    metric = param.Selector(doc="Score shown by the curves and the scorecard.")
    region = param.Selector(
        doc="Region compared with 'all': the observed extreme union, non-extreme, an event type, or a "
        "forecast-conditioned region (extreme_forecast, extreme_either, hit, miss, false_alarm, and "
        "'<type>|<region>' per event type)."
    )
    event_type = param.Selector(doc="Event type outlined on the maps and listed in the event browser.")
    init_time = param.Selector(doc="Initial time of the mapped forecast (ISO, UTC).")
    lead_time = param.Selector(doc="Lead time of the mapped forecast (hours).")
    reference = param.Selector(doc="Model the scorecard measures the others against.")

    def __init__(self, results: Results, **params) -> None:
        super().__init__(**params)
        self.results = results
        models = results.models
        metrics = [m for m in CURVE_METRICS if m in results.scores.data_vars] or sorted(
            results.scores.data_vars
        )
        regions = [r for r in results.regions if r != "all"] or ["all"]
        self.param.model.objects = results.map_models
        self.param.variable.objects = results.variables
        self.param.metric.objects = metrics
        self.param.region.objects = regions
        self.param.event_type.objects = ["all", *results.event_types]
        self.param.reference.objects = models
        defaults = {
            "model": self._preferred_model(results.map_models),
            "variable": "t2m" if "t2m" in results.variables else results.variables[0],
            "metric": metrics[0],
            "region": "extreme" if "extreme" in regions else regions[0],
            "event_type": "all",
            "reference": "nwp" if "nwp" in models else models[0],
        }
        with param.parameterized.discard_events(self):
            self.param.update(**defaults)
        self._update_times()

    @staticmethod
    def _preferred_model(models: list[str]) -> str:
        """A learned model if there is one (they are what the page is about), else the NWP baseline."""
        learned = [m for m in models if m not in ("nwp", "persistence", "climatology")]
        return (learned or [m for m in models if m == "nwp"] or models)[0]

    @param.depends("model", watch=True)
    def _update_times(self) -> None:
        """Keep the initial and lead times valid for the model: the same if it has them, else the nearest."""
        inits = [_time_label(t) for t in self.results.init_times(self.model)]
        leads = self.results.lead_hours(self.model)
        init = self.init_time if self.init_time in inits else None
        if init is None:
            # Default: an initial time in the middle of the period, where most events have forecasts.
            init = inits[len(inits) // 2] if self.init_time is None else _nearest_time(inits, self.init_time)
        lead = self.lead_time if self.lead_time in leads else None
        if lead is None:
            wanted = 12 if self.lead_time is None else int(self.lead_time)
            lead = min(leads, key=lambda h: (abs(h - wanted), h))
        self.param.init_time.objects = inits
        self.param.lead_time.objects = leads
        self.param.update(init_time=init, lead_time=lead)

    @property
    def valid_time(self) -> pd.Timestamp:
        """``init_time + lead_time``."""
        return pd.Timestamp(self.init_time) + pd.Timedelta(hours=int(self.lead_time))

    def apply_url_values(self, values: dict) -> list[str]:
        """Apply query-parameter values one by one; returns an escaped message per value that was not
        valid (see :func:`workbench.viz.urlstate.apply_query`)."""
        return apply_query(self, values)


@functools.lru_cache(maxsize=64)
def _palette_of(cmap: str) -> tuple[str, ...]:
    from holoviews.plotting.util import process_cmap

    return tuple(process_cmap(cmap))


def _palette(cmap) -> list[str] | None:
    """The Bokeh palette HoloViews makes of a colour map name (None for anything else)."""
    return list(_palette_of(cmap)) if isinstance(cmap, str) else None


def _nearest_time(options: list[str], wanted: str) -> str:
    target = pd.Timestamp(wanted)
    return min(options, key=lambda t: abs(pd.Timestamp(t) - target))


def zoom_box(
    event: pd.Series | dict, grid, aspect: float, pad_cells: float = 3.0
) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(xlim, ylim)`` in projection metres framing an event's whole box, with context, inside the domain.

    The box gets a margin on every side, grows along one axis to the map's aspect (width/height), and
    is then moved inside the grid's extent (or cut to it where it is larger): an event at the edge of
    the domain is shown with the land around it rather than with a half-empty frame.

    Parameters
    ----------
    event : mapping
        With inclusive cell indices ``y_min, y_max, x_min, x_max``.
    grid : LambertConformalGrid
        The maps' grid.
    aspect : float
        Width over height of the map's frame; the box grows along one axis to keep it.
    pad_cells : float
        Margin around the box, in cells (at least 150 km, and at least half the box's own size, so a
        small event is seen in its surroundings).
    """
    x0 = grid.x[int(event["x_min"])] - grid.dx / 2
    x1 = grid.x[int(event["x_max"])] + grid.dx / 2
    y0 = grid.y[int(event["y_min"])] - grid.dx / 2
    y1 = grid.y[int(event["y_max"])] + grid.dx / 2
    pad = max(pad_cells * grid.dx, 150e3, 0.5 * max(x1 - x0, y1 - y0))
    x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
    w, h = x1 - x0, y1 - y0
    if w / h < aspect:
        grow = (h * aspect - w) / 2
        x0, x1 = x0 - grow, x1 + grow
    else:
        grow = (w / aspect - h) / 2
        y0, y1 = y0 - grow, y1 + grow
    (gx0, gx1), (gy0, gy1) = vmaps.map_extent(grid)
    return _inside(x0, x1, gx0, gx1), _inside(y0, y1, gy0, gy1)


def _inside(lo: float, hi: float, start: float, end: float) -> tuple[float, float]:
    """The interval ``[lo, hi]`` moved inside ``[start, end]``, or cut to it when longer."""
    if hi - lo >= end - start:
        return float(start), float(end)
    shift = max(start - lo, 0.0) - max(hi - end, 0.0)
    return float(lo + shift), float(hi + shift)


def best_forecast_for(
    event: pd.Series | dict, inits: list[str], leads: list[int], lead_now: int
) -> tuple[str, int] | None:
    """The (initial time, lead) whose valid time is nearest the middle of an event, inside it.

    The current lead time is kept when some initial time verifies inside the event; otherwise the
    shortest lead that does is taken. ``None`` when no forecast verifies inside the event.
    """
    start, end = pd.Timestamp(event["start_time"]), pd.Timestamp(event["end_time"])
    middle = start + (end - start) / 2
    for lead in [lead_now, *sorted(h for h in leads if h != lead_now)]:
        inside = [t for t in inits if start <= pd.Timestamp(t) + pd.Timedelta(hours=lead) <= end]
        if inside:
            return min(inside, key=lambda t: abs(pd.Timestamp(t) + pd.Timedelta(hours=lead) - middle)), lead
    return None


class SkillDashboard(pn.viewable.Viewer):
    """The dashboard's views over one :class:`Results`; shown by Panel as its :meth:`layout`.

    Each kind of view follows the selection (:class:`SkillState`) one way: the HoloViews plots (skill
    curves, maps) through ``DynamicMap`` streams, so they update in place; the Panel panes (scorecard,
    notes, the event browser) through :func:`panel.bind` or a watcher on the state. Views that depend
    only on the results are built once in :attr:`Results.views <workbench.workflow.results.Results.views>`
    and shared by every session.

    Parameters
    ----------
    results : Results
        What to show.
    state : SkillState, optional
        A selection to share with other views (a new one by default).
    messages : list of (str, str), optional
        ``(alert_type, text)`` shown above the views (refused scores, dropped URL values); the text is
        Markdown, with anything from outside already escaped (:mod:`workbench.viz.safety`).
    """

    def __init__(self, results: Results, state: SkillState | None = None, messages=None) -> None:
        super().__init__()
        self.results = results
        self.state = state or SkillState(results)
        self.messages = pn.Column(sizing_mode="stretch_width")
        for kind, text in messages or []:
            self.add_message(text, kind)
        # The maps' bokeh ranges, kept by a render hook so the event browser can zoom them.
        self._x_ranges: list = []
        self._y_ranges: list = []
        self._range_streams: list = []
        # Each map's HoloViews plot and its (range, size) streams, for the in-place updates.
        self._map_plots: dict[str, object] = {}
        self._screen_streams: dict[str, tuple] = {}
        self._outline_sources: dict[str, ColumnDataSource] = {}
        self._outline_cache: dict = {}
        self._frame_aspect = 1.0
        self.events_table = self._events_table()

    # -- messages -----------------------------------------------------------------------------------
    def add_message(self, text: str, kind: str = "warning") -> None:
        """Show an alert above the views (``text`` is Markdown: escape what comes from outside)."""
        if any(getattr(m, "object", None) == text for m in self.messages):
            return  # the same refusal once, however often the URL is read
        self.messages.append(
            pn.pane.Alert(text, alert_type=kind, sizing_mode="stretch_width", margin=(5, 10))
        )

    # -- skill curves and scorecard -----------------------------------------------------------------
    def skill_view(self, metric: str, variable: str, region: str, model: str) -> hv.Layout:
        """Skill curves: ``all`` beside the selected region (built once per choice, for every session)."""
        return self.results.views.get(
            "skill",
            (metric, variable, region, model),
            lambda: skill_curves(
                self.results.scores, metric, variable, ("all", region), highlight=model, width=SKILL_WIDTH
            ),
        )

    def skill_panels(self) -> hv.Layout:
        """The skill curves as two DynamicMaps (``all``, the selected region) that update in place."""
        stream = hv.streams.Params(self.state, ["metric", "variable", "region", "model"])

        def panel(index: int) -> hv.DynamicMap:
            def callback(metric, variable, region, model):
                return self.skill_view(metric, variable, region, model)[index]

            # framewise: the y-axis follows the variable and metric shown
            return hv.DynamicMap(callback, streams=[stream]).opts(framewise=True)

        return hv.Layout([panel(0), panel(1)]).cols(2)

    def scorecard_view(
        self, metric: str, reference: str, region: str, variables: tuple[str, ...] | None = None
    ) -> hv.Layout:
        """Scorecard for ``all`` and the selected region, of some variables (built once per choice, for
        every session)."""
        return self.results.views.get(
            "scorecard",
            (metric, reference, region, variables),
            lambda: scorecard(
                self.results.scores,
                metric,
                reference,
                ("all", region),
                variables=list(variables) if variables else None,
                width=SCORECARD_WIDTH,
            ),
        )

    def scorecard_panel(self, metric: str, reference: str, region: str) -> pn.Column:
        """The scorecard in the page: one tab per group of variables (surface, precipitation & radar,
        upper air), each with the ``all`` and region panels side by side (wrapping on a narrow screen),
        and the legend in words under them."""
        variables = [str(v) for v in self.results.scores["variable"].values]
        groups = variable_groups(variables)
        tabs = pn.Tabs(dynamic=True, sizing_mode="stretch_width")
        for name, members in groups.items():
            layout = self.scorecard_view(metric, reference, region, tuple(members))
            tabs.append((f"{name} ({len(members)})", pn.pane.HoloViews(layout, linked_axes=False)))
        how = scorecard_frame(self.results.scores, metric, reference, "all", variables[:1]).attrs[
            "significance"
        ]
        legend = pn.pane.Markdown(scorecard_legend(metric, reference, how), sizing_mode="stretch_width")
        return pn.Column(tabs, legend, sizing_mode="stretch_width")

    # -- maps ---------------------------------------------------------------------------------------
    def field_view(
        self, kind: str, model: str, variable: str, init_time: str, lead_time: int, screen=None
    ) -> hv.Image:
        """One field of the maps as an Image; ``screen = (x_range, y_range, width, height)`` resamples it."""
        da, clim, title = self.map_frame(kind, model, variable, init_time, lead_time, screen)
        # The label stays the same for a map: HoloViews matches overlay layers by label, and a new label
        # would add a new glyph on every update instead of replacing the data of the old one.
        image = vmaps.field_image(da, label=kind, kind=kind, variable=variable, clim=clim)
        return image.opts(title=title, **self._image_opts)

    def map_frame(
        self, kind: str, model: str, variable: str, init_time: str, lead_time: int, screen=None
    ) -> tuple[xr.DataArray, tuple[float, float] | None, str]:
        """What one map shows: ``(field, colour range or None, title)``, resampled to ``screen``."""
        r = self.results
        valid = _time_label(pd.Timestamp(init_time) + pd.Timedelta(hours=int(lead_time)))
        try:
            da = r.field(kind, model, variable, init_time, lead_time)
        except DataError as exc:
            if not kind.startswith("spread"):
                raise
            # Ensembles are run from a few initial times only: an empty map that says so.
            da = r.field("truth", model, variable, init_time, lead_time) * np.nan
            if screen is not None:
                da = vmaps.raster_field(da, *screen)
            log.debug("no %s map: %s", kind, exc)
            # A fixed colour range: HoloViews would otherwise look for one in an all-NaN array (a
            # RuntimeWarning on every update).
            return da, (0.0, 1.0), f"{kind.replace('_', ' ')} · {model} · no ensemble"
        if screen is not None:
            da = vmaps.raster_field(da, *screen)
        if kind in ("truth", "forecast"):
            clim = r.clim(variable)
        elif kind == "error":
            clim = r.error_clim(model, variable)
        else:
            clim = None
        who = "analysis" if kind == "truth" else model
        return da, clim, f"{kind.replace('_', ' ')} · {who} · {variable} · {valid}"

    @functools.cached_property
    def _image_opts(self) -> dict:
        # Set on each frame's Image (rasterize keeps them) rather than on the DynamicMaps, which would
        # clone every frame once per .opts() call.
        # 9-pt titles: "forecast · climax · t2m · 2020-06-02T12:00" fits a map's width.
        return {
            **vmaps.map_opts(self.results.grid, MAP_WIDTH),
            "fontsize": {"title": "9pt"},
            "hooks": [self._map_hook],
        }

    def outline_view(self, event_type: str, init_time: str, lead_time: int) -> hv.Contours:
        """Outline of the selected event type's mask at the valid time (cached per time and type)."""
        valid = pd.Timestamp(init_time) + pd.Timedelta(hours=int(lead_time))
        key = (event_type, valid)
        if key not in self._outline_cache:
            mask = self.results.mask_at(valid, event_type)
            outline = vmaps.mask_outline(mask) if mask is not None else hv.Contours([], kdims=["x", "y"])
            if len(self._outline_cache) > 64:
                self._outline_cache.clear()
            paths = outline.split()
            lines = {
                "xs": [p.dimension_values("x") for p in paths],
                "ys": [p.dimension_values("y") for p in paths],
            }
            self._outline_cache[key] = (outline, lines)
        return self._outline_cache[key][0]

    def _outline_lines(self) -> dict:
        s = self.state
        self.outline_view(s.event_type, s.init_time, s.lead_time)
        return self._outline_cache[(s.event_type, s.valid_time)][1]

    @functools.cached_property
    def _map_stream(self) -> hv.streams.Stream:
        # One stream for every map and outline, so a widget change refreshes the maps once instead of
        # once per map; it is triggered by hand (see _push_map_selection) rather than by hv.streams.Params.
        values = {p: getattr(self.state, p) for p in MAP_PARAMETERS}
        stream = hv.streams.Stream.define("MapSelection", **values)()
        self.state.param.watch(self._push_map_selection, list(MAP_PARAMETERS))
        return stream

    def _push_map_selection(self, *events) -> None:
        values = {p: getattr(self.state, p) for p in MAP_PARAMETERS}
        # No document freeze here: the in-place update changes no model references, so Bokeh has no
        # models to re-walk (a freeze would make it walk them all once, a third of the update's time).
        if self._map_plots and self._send_map_changes():
            # HoloViews is told the selection without redrawing, so a later zoom or pan (which goes
            # through the DynamicMaps) resamples the fields now shown.
            self._map_stream.update(**values)
            return
        with self._frozen_documents():
            self._map_stream.event(**values)

    def _send_map_changes(self) -> bool:
        """Update the drawn maps' Bokeh models in place with what changed: the raster (one binary array
        per map), the colour range and palette, titles and the outline. Returns False (nothing sent)
        when a map cannot be updated this way, so the caller redraws through HoloViews instead.

        Redrawing through the DynamicMaps re-runs HoloViews' whole plot update (options, ranges, every
        glyph and its source) for each map; on a widget change only the image and a few properties
        differ, and Bokeh sends an assigned column of a data source as one binary buffer.
        """
        s = self.state
        updates = []
        try:
            for kind, plot in self._map_plots.items():
                range_xy, size = self._screen_streams[kind]
                fig = plot.state
                screen = (
                    range_xy.x_range or (fig.x_range.start, fig.x_range.end),
                    range_xy.y_range or (fig.y_range.start, fig.y_range.end),
                    size.width or MAP_WIDTH,
                    size.height or int(round(MAP_WIDTH * self.results.grid.ny / self.results.grid.nx)),
                )
                da, clim, title = self.map_frame(kind, s.model, s.variable, s.init_time, s.lead_time, screen)
                if da.sizes["x"] < 2 or da.sizes["y"] < 2:
                    return False  # one pixel across: no cell size to place it by; HoloViews does it
                updates.append((plot, kind, da, clim, title))
        except Exception as exc:  # a map HoloViews must draw itself (it reports the error on the page)
            log.debug("maps redrawn by HoloViews: %s", exc)
            return False
        lines = self._outline_lines()
        for plot, kind, da, clim, title in updates:
            self._apply_image(plot, kind, s.variable, da, clim, title)
            source = self._outline_sources.get(plot.state.id)
            if source is not None and source.data is not lines:
                source.data = lines
        return True

    @staticmethod
    def _apply_image(plot, kind: str, variable: str, da: xr.DataArray, clim, title: str) -> None:
        """Put one map's new raster into its Bokeh models, laid out as HoloViews' raster plot does
        (rows from the lowest ``y``; the frame's edges half a pixel beyond the first and last centres)."""
        fig = plot.state
        source = plot.handles["source"]
        da = da.transpose("y", "x")
        image = np.asarray(da.values, dtype=np.float32)
        x, y = np.asarray(da["x"], float), np.asarray(da["y"], float)
        if y[0] > y[-1]:  # HoloViews flips a descending y
            image, y = image[::-1], y[::-1]
        dx, dy = (x[-1] - x[0]) / (len(x) - 1), (y[-1] - y[0]) / (len(y) - 1)
        left, bottom = x[0] - dx / 2, y[0] - dy / 2
        geometry = {"x": [left], "y": [bottom], "dw": [x[-1] + dx / 2 - left], "dh": [y[-1] + dy / 2 - bottom]}
        # Only the image column is sent (one binary buffer); the frame's geometry only when it moved.
        if any(not np.allclose(source.data.get(k, [np.nan]), v) for k, v in geometry.items()):
            source.data.update(image=[image], **geometry)
        else:
            source.data.update(image=[image])
        cmap, clim, label = vmaps.field_style(image, kind, variable, clim)
        units = str(da.attrs.get("units", ""))
        label = f"{label} ({units})" if units else label
        mapper = plot.handles.get("color_mapper")
        if mapper is not None:
            if clim is None:
                finite = image[np.isfinite(image)]
                clim = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            if (mapper.low, mapper.high) != tuple(clim):
                mapper.update(low=clim[0], high=clim[1])
            palette = _palette(cmap)
            if palette is not None and list(mapper.palette) != palette:
                mapper.palette = palette
        colorbar = plot.handles.get("colorbar")
        if colorbar is not None and colorbar.title != label:
            colorbar.title = label
        hover = plot.handles.get("hover")
        if hover is not None and isinstance(hover.tooltips, list):
            tips = [(label, v) if v == "@image" else (k, v) for k, v in hover.tooltips]
            if tips != hover.tooltips:
                hover.tooltips = tips
        if fig.title is not None and fig.title.text != title:
            fig.title.text = title

    @contextlib.contextmanager
    def _frozen_documents(self):
        # Bokeh re-walks every model of the page (~100 ms for this page) after each plot's or pane's
        # update; freezing the documents while all views update makes that one walk per widget change.
        docs = {id(r.document): r.document for r in self._x_ranges if r.document is not None}
        if pn.state.curdoc is not None:
            docs[id(pn.state.curdoc)] = pn.state.curdoc
        with contextlib.ExitStack() as stack:
            for doc in docs.values():
                models = getattr(doc, "models", None)
                if hasattr(models, "freeze"):
                    stack.enter_context(models.freeze())
            yield

    def _map(self, kind: str) -> hv.DynamicMap:
        grid = self.results.grid
        aspect_height = int(round(MAP_WIDTH * grid.ny / grid.nx))

        def image_cb(
            model, variable, init_time, lead_time, event_type, x_range, y_range, width, height, scale
        ):
            # The field resampled by datashader to the pixels in view (see maps.raster_field).
            return self.field_view(
                kind,
                model,
                variable,
                init_time,
                lead_time,
                screen=(x_range, y_range, width or MAP_WIDTH, height or aspect_height),
            )

        range_xy, size = hv.streams.RangeXY(), hv.streams.PlotSize()
        self._screen_streams[kind] = (range_xy, size)
        image = hv.DynamicMap(image_cb, streams=[self._map_stream, range_xy, size])
        # A zoom made here on the server must reach the RangeXY stream too, or the zoomed map would show
        # the coarse pixels of the whole domain.
        self._range_streams.append(range_xy)
        # The event outline and the state borders are drawn by the render hook (see _map_hook): as
        # overlaid HoloViews layers they would be re-processed and re-ranged on every update, which
        # took a third of the update time of a 3-km map.
        return image

    def _map_hook(self, plot, element) -> None:
        # Hooks run on every render: draw the state borders once and the event outline of the selection,
        # keep the (shared) ranges so a click in the event browser can zoom, and retitle the colour bar,
        # which HoloViews only titles when it first draws it.
        colorbar = plot.handles.get("colorbar")
        if colorbar is not None and element.vdims:
            colorbar.title = element.vdims[0].pprint_label
        fig = plot.state
        if element.label in self._screen_streams:
            self._map_plots[element.label] = plot  # the maps a widget change updates in place
        if fig.id not in self._outline_sources:
            add_state_borders(fig, self.results.grid)
            source = ColumnDataSource({"xs": [], "ys": []})
            fig.multi_line("xs", "ys", source=source, line_color="black", line_width=1.5)
            self._outline_sources[fig.id] = source
        self._outline_sources[fig.id].data = self._outline_lines()
        for rng, kept in ((fig.x_range, self._x_ranges), (fig.y_range, self._y_ranges)):
            if all(rng is not r for r in kept):
                kept.append(rng)
        if fig.frame_width and fig.frame_height:
            self._frame_aspect = fig.frame_width / fig.frame_height
        elif fig.width and fig.height:
            self._frame_aspect = fig.width / max(fig.height - 40, 1)

    def maps(self, kinds: tuple[str, ...]) -> pn.pane.HoloViews:
        """A row of linked maps of the given kinds."""
        layout = hv.Layout([self._map(k) for k in kinds]).cols(len(kinds))
        return pn.pane.HoloViews(layout, linked_axes=True)

    def zoom_to(self, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
        """Pan and zoom every map to ``xlim``, ``ylim`` (projection metres)."""
        for rng in self._x_ranges:
            rng.update(start=xlim[0], end=xlim[1])
        for rng in self._y_ranges:
            rng.update(start=ylim[0], end=ylim[1])
        for stream in self._range_streams:
            stream.event(x_range=tuple(xlim), y_range=tuple(ylim))

    # -- event browser ------------------------------------------------------------------------------
    def event_rows(
        self, variable: str, lead_time: int, event_type: str, model: str | None = None
    ) -> pd.DataFrame:
        """The event browser's rows for the selection, the events where the model did worst for the place first.

        Column ``vs_typical`` is the selected model's error inside the event over its typical error in
        the event's box at that lead (all initial times, :meth:`Results.event_typical_errors
        <workbench.workflow.results.Results.event_typical_errors>`); the rows are sorted by it, so an
        event tops the list because the model failed there more than usual, not because its place
        (the domain's edge) always has large errors. Errors are cached per variable and lead time;
        events with no verifying forecast come last.
        """
        r = self.results
        if r.events is None or not len(r.events):
            return pd.DataFrame(
                {"event_id": [], "type": [], "start": [], "hours": [], "place": [], "vs_typical": []}
            )
        # The rows' fixed part (places, sizes, times) is built once; each refresh adds the error columns.
        def rows() -> tuple[pd.DataFrame, pd.Series]:
            base = event_frame(r.events, None, r.grid)
            return base, base["type"].str.split("+").map(frozenset)

        base, types = r.views.get("event_rows", None, rows)
        if event_type not in (None, "", "all", "extreme"):
            keep = types.map(lambda t: event_type in t).to_numpy(dtype=bool)
            base = base[keep]
        errors = r.event_errors(variable, int(lead_time))
        # the selected model's errors first
        models = [m for m in r.map_models if m in errors.columns]
        if model in models:
            models = [model] + [m for m in models if m != model]
        values = errors.reindex(base["event_id"])[models]
        ratio = pd.Series(np.nan, index=values.index)
        if model in models:
            typical = r.event_typical_errors(variable, int(lead_time)).reindex(base["event_id"])[model]
            ratio = values[model] / typical.where(typical > 0)
        values = values.round(3)
        values.insert(0, "vs_typical", ratio.round(2).to_numpy())
        values.index = base.index
        # What the rows are ranked by comes first, so it is seen without scrolling sideways.
        frame = pd.concat([base.iloc[:, :2], values, base.iloc[:, 2:]], axis=1)
        frame = frame.sort_values("vs_typical", ascending=False, na_position="last", kind="stable")
        return frame.reset_index(drop=True)

    def _events_table(self) -> pn.widgets.Tabulator:
        s = self.state
        frame = self.event_rows(s.variable, s.lead_time, s.event_type, s.model)
        hidden = [c for c in ("y_min", "y_max", "x_min", "x_max", "start_time", "end_time") if c in frame]
        table = pn.widgets.Tabulator(
            frame,
            hidden_columns=hidden,
            show_index=False,
            disabled=True,
            selectable=1,
            pagination="remote",  # only the page on screen travels to the browser
            page_size=12,
            titles={"vs_typical": "× typical"},
            header_tooltips={
                "vs_typical": "The selected model's error in the event over its usual error at that place "
                "and lead time (rows are sorted by it)",
                "size_km2": "Area of the event's box (km²)",
                "hours": "Duration (h)",
            },
            # the columns keep their widths and the table scrolls sideways inside its card
            layout="fit_data_table",
            frozen_columns=["event_id"],
            sizing_mode="stretch_width",
        )
        table.on_click(self._on_event_click)

        def refresh(*_):
            table.value = self.event_rows(s.variable, s.lead_time, s.event_type, s.model)

        s.param.watch(refresh, ["variable", "lead_time", "event_type", "model"])
        return table

    def _on_event_click(self, event) -> None:
        row = self.events_table.value.iloc[event.row]
        self.select_event(row)

    def select_event(self, row: pd.Series) -> None:
        """Zoom the maps to an event and move the forecast time into it."""
        s = self.state
        choice = best_forecast_for(
            row, s.param.init_time.objects, s.param.lead_time.objects, int(s.lead_time)
        )
        if choice is None:
            self.add_message(
                f"No forecast of {escape(s.model)} verifies during event {page_text(row['event_id'], 60)} "
                f"({page_text(row['start'], 40)}, {page_text(row['hours'], 20)} h); showing its place only.",
                "info",
            )
        else:
            s.param.update(init_time=choice[0], lead_time=choice[1])
        xlim, ylim = zoom_box(row, self.results.grid, self._frame_aspect)
        self.zoom_to(xlim, ylim)

    # -- layout -------------------------------------------------------------------------------------
    def widgets(self) -> pn.Column:
        """The selection widgets."""
        select = pn.widgets.Select
        return pn.Column(
            self._widget(select, "model", "Model"),
            self._widget(select, "variable", "Variable"),
            self._widget(select, "metric", "Metric"),
            self._widget(select, "region", "Region (vs all)"),
            self._widget(select, "event_type", "Event type (maps, events)"),
            self._widget(select, "init_time", "Initial time (UTC)"),
            self._widget(pn.widgets.DiscreteSlider, "lead_time", "Lead time (h)"),
            self._widget(select, "reference", "Scorecard reference"),
            sizing_mode="stretch_width",
        )

    def _widget(self, kind, name: str, label: str):
        """A widget kept in step with one state parameter (value and choices).

        Unlike ``from_param``, a change made in the widget reaches the state inside
        :meth:`_frozen_documents`, so every view it updates costs one walk of the page's models.
        """
        s = self.state
        widget = kind(label=label, options=list(s.param[name].objects), value=getattr(s, name))
        syncing = False

        def to_state(event) -> None:
            if syncing:
                return
            if name in IN_PLACE_PARAMETERS:
                # only the maps (updated in place) and the table's data change: no models to re-walk
                setattr(s, name, event.new)
                return
            with self._frozen_documents():
                setattr(s, name, event.new)

        def to_widget(event) -> None:
            nonlocal syncing
            syncing = True  # a widget whose options change may pick a value of its own: not the state's
            try:
                if event.what == "objects":
                    widget.options = list(event.new)
                widget.value = getattr(s, name)
            finally:
                syncing = False

        widget.param.watch(to_state, "value")
        s.param.watch(to_widget, [name])
        s.param.watch(to_widget, [name], what="objects")
        return widget

    def views(self) -> dict[str, pn.viewable.Viewable]:
        """The four views, bound to the state."""
        s = self.state
        skill = pn.pane.HoloViews(self.skill_panels(), name="skill")
        card = pn.panel(
            pn.bind(self.scorecard_panel, s.param.metric, s.param.reference, s.param.region),
            sizing_mode="stretch_width",
        )
        field_tabs = pn.Tabs(
            ("Truth · forecast · error", self.maps(("truth", "forecast", "error"))), dynamic=True
        )
        ensemble_models = list(self.results.ensembles)
        if ensemble_models:
            field_tabs.append(("Uncertainty", self._uncertainty_view()))
        return {"skill": skill, "scorecard": card, "maps": field_tabs, "events": self.events_table}

    def _uncertainty_view(self) -> pn.viewable.Viewable:
        s = self.state
        maps = self.maps(("spread_epistemic", "spread_aleatoric"))

        def note(model: str) -> str:
            if model in self.results.ensembles:
                return f"Ensemble spread of **{escape(model)}**: epistemic (weights) and aleatoric (noise) parts."
            return (
                f"**{escape(model)}** has no ensemble; spread maps exist for "
                f"{escape(', '.join(self.results.ensembles))}. Pick that model."
            )

        return pn.Column(
            pn.pane.Markdown(pn.bind(note, s.param.model)),
            pn.panel(
                pn.bind(
                    lambda m: maps if m in self.results.ensembles else pn.pane.Markdown(""), s.param.model
                )
            ),
        )

    def layout(self) -> pn.Row:
        """The widgets beside the views, without a page template (for a notebook)."""
        v = self.views()
        return pn.Row(self.widgets(), pn.Column(self.messages, *v.values()))

    def __panel__(self) -> pn.Row:
        return self.layout()

    def template(self, title: str = "Extreme Weather Workbench — skill") -> pn.template.BaseTemplate:
        """The page: widgets in the sidebar, views in the main area."""
        v = self.views()
        header = pn.pane.Markdown(
            # the label and notes come from files (and exception texts): escaped, without paths
            f"**Data:** {page_text(self.results.label)}"
            + "".join(f"<br>{page_text(n)}" for n in self.results.notes),
            sizing_mode="stretch_width",
        )
        valid = pn.pane.Markdown(
            pn.bind(
                lambda i, h: f"**Valid time:** {_time_label(self.state.valid_time)} UTC",
                self.state.param.init_time,
                self.state.param.lead_time,
            )
        )
        template = pn.template.BootstrapTemplate(
            title=title,
            sidebar=[self.widgets(), valid, header],
            main=[
                self.messages,
                pn.Card(
                    v["skill"],
                    title="Skill against lead time: overall vs extreme",
                    collapsible=False,
                    sizing_mode="stretch_width",
                ),
                pn.Card(v["maps"], title="Maps", collapsible=False, sizing_mode="stretch_width"),
                pn.Card(
                    pn.pane.Markdown("Click an event to zoom the maps and move the forecast time into it."),
                    v["events"],
                    title="Event browser",
                    collapsible=False,
                    sizing_mode="stretch_width",
                ),
                pn.Card(v["scorecard"], title="Scorecard", collapsible=False, sizing_mode="stretch_width"),
            ],
            sidebar_width=300,
        )
        return template


def sync_url(dashboard: SkillDashboard, query: dict | None = None, extra: dict | None = None) -> None:
    """Select what the page's URL asks for, and keep the selection in the URL from then on.

    The URL is read once, from the request (``pn.state.session_args``, or ``query``): each value must
    name one of the widgets' options (:func:`workbench.viz.urlstate.apply_query`); a refused one gets a
    short escaped message on the page and the current choice stays. Later changes are written back to
    the URL, one way only: Panel's two-way ``Location.sync`` re-reads the raw address with its own parser,
    which raises on some inputs (``lead_time=`` and 5000 digits) and blanked the page.

    Parameters
    ----------
    dashboard : SkillDashboard
        Its state is updated; refusals are shown with :meth:`SkillDashboard.add_message`.
    query : dict, optional
        Query parameters (name to value or list of values); by default the request's.
    extra : dict, optional
        Parameters kept in the URL besides the selection (``scores``).
    """
    state = dashboard.state
    args = (pn.state.session_args or {}) if query is None else query
    for problem in apply_query(state, args):
        dashboard.add_message(problem, "warning")
    location = session_location()
    if location is None:
        return

    def write(*_) -> None:
        location.search = url_search(state, extra)

    state.param.watch(write, list(URL_PARAMETERS))


def cached_results(size: str = "default", scores: str | None = None) -> Results:
    """:func:`workbench.workflow.load.load_results`, kept in memory across the sessions of a server.

    Reopened when the cached products change (the learned models' background forecasts finishing).
    """
    from workbench.workflow.pipeline import results_generation

    return _cached_results(size, scores, results_generation(size))


@pn.cache(max_items=2)
def _cached_results(size: str, scores: str | None, generation: int) -> Results:
    from workbench.workflow.load import load_results

    return load_results(size=size, scores=scores)


def create_app(
    loader: Callable[..., Results] | None = None,
    size: str | None = None,
    scores: str | None = None,
    query: dict | None = None,
) -> pn.viewable.Viewable:
    """Build the page for the current session.

    A visitor from another machine gets a one-line page instead, unless the dashboard was exposed on
    purpose (:mod:`workbench.viz.access`); a URL only selects among what the server already has
    (:mod:`workbench.viz.urlstate`).

    Parameters
    ----------
    loader : callable, optional
        ``loader(size=..., scores=...) -> Results``; :func:`cached_results` by default.
    size : str, optional
        Sample size (``tiny``, ``default``, ``full``); defaults to ``$WORKBENCH_SAMPLE_SIZE`` or ``default``.
    scores : str, optional
        A scores file or catalog entry to show instead of the sample's scores (or ``$WORKBENCH_SCORES``),
        chosen by whoever starts the server; only what the catalog names is read. A page's ``?scores=``
        may only name this one or a scores file already in the forecast-store folder.
    query : dict, optional
        The URL query to select from, instead of the request's (a page rebuilt in place keeps its
        current selection, :mod:`workbench.viz.firststart`).

    Returns
    -------
    panel.viewable.Viewable
        The page template (the local-only note for a refused visitor); call ``.servable()`` on it.
    """
    if not visitor_allowed(session_remote_ip()):
        # `panel serve` without --address listens on every interface: serve nothing to other machines
        log.warning("a visitor from another machine got the local-only page (%s unset)", EXPOSE_ENV)
        return pn.pane.Markdown(LOCAL_ONLY_PAGE, sizing_mode="stretch_width")
    loader = loader or cached_results
    size = size or os.environ.get("WORKBENCH_SAMPLE_SIZE", "default")
    messages = []
    args = (pn.state.session_args or {}) if query is None else query
    # What the server was started with may be a catalog entry or a path (the operator's choice); what a
    # URL asks for may only be the name of a scores result that already exists (see workbench.viz.urlstate).
    launched = scores or os.environ.get("WORKBENCH_SCORES") or None
    requested, shown = launched, None
    if args.get("scores"):
        choices = scores_choices(launched)
        chosen, refusal = choose_scores(args["scores"], choices)
        if refusal:
            messages.append(("danger", refusal))
        else:
            requested = chosen
            shown = next(name for name, target in choices.items() if target == chosen)
    try:
        results = loader(size=size, scores=requested)
    except WorkbenchError as exc:
        # A broken scores file: say so without the server's paths, and show the sample's scores instead.
        log.warning("refused scores %r: %s", requested, exc)
        messages.append(("danger", f"**Refused** scores: {page_text(exc, 300)}"))
        shown = None
        results = loader(size=size, scores=None)
    dashboard = SkillDashboard(results, messages=messages)
    sync_url(dashboard, args, extra={"scores": shown} if shown else None)
    return dashboard.template()
