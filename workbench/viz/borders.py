"""US state borders, from the ``bokeh-sampledata`` package (no download), in a grid's projection."""

from __future__ import annotations

import functools

import holoviews as hv
import numpy as np

from workbench.errors import DataError

#: States outside the HRRR CONUS domain; drawing them would only stretch the plot's data range.
_OUTSIDE_CONUS = ("AK", "HI")


@functools.lru_cache(maxsize=1)
def _states() -> dict[str, dict]:
    try:
        from bokeh.sampledata.us_states import data
    except ImportError as exc:  # the package is a dependency; this only fires in a broken install
        raise DataError(
            "US state borders come from the 'bokeh-sampledata' package, which is not installed: "
            "pip install bokeh-sampledata"
        ) from exc
    return {
        code: {"name": s["name"], "lats": np.asarray(s["lats"], float), "lons": np.asarray(s["lons"], float)}
        for code, s in data.items()
        if code not in _OUTSIDE_CONUS
    }


def state_lines(grid) -> list[np.ndarray]:
    """Each state's outline rings as ``(n, 2)`` arrays of projection ``x, y`` (m).

    Parameters
    ----------
    grid : LambertConformalGrid
        Anything with ``project(lat, lon) -> (x, y)``.
    """
    return _state_lines(grid)


@functools.lru_cache(maxsize=8)
def _state_lines(grid) -> list[np.ndarray]:
    lines = []
    for state in _states().values():
        x, y = grid.project(state["lats"], state["lons"])
        xy = np.column_stack([x, y])
        # NaN rows separate the rings of states made of several polygons (islands, lakes).
        breaks = np.flatnonzero(~np.isfinite(xy).all(axis=1))
        for ring in np.split(xy, breaks):
            ring = ring[np.isfinite(ring).all(axis=1)]
            if len(ring) > 1:
                lines.append(ring)
    return lines


def state_borders(grid, color: str = "#333333", line_width: float = 0.8) -> hv.Path:
    """US state borders as a :class:`holoviews.Path` in the grid's projection coordinates ``x, y`` (m).

    Parameters
    ----------
    grid : LambertConformalGrid
        The grid whose projection the map uses (``workbench.grids.hrrr_grid(...)``).
    color : str
        Line colour.
    line_width : float
        Line width in pixels.
    """
    # One path with NaN breaks between rings: a single bokeh glyph, instead of ~400 HoloViews paths
    # that take seconds to build and range.
    xy = _joined(grid)
    return hv.Path([xy], kdims=["x", "y"]).opts(color=color, line_width=line_width, alpha=0.8, tools=[])


def add_state_borders(figure, grid, color: str = "#333333", line_width: float = 0.8):
    """Draw the state borders straight onto a Bokeh figure (e.g. from a HoloViews hook), once.

    A live map that redraws its field often draws the borders this way rather than as an overlaid
    :func:`state_borders` layer, which HoloViews would re-process on every update.

    Returns
    -------
    bokeh.models.GlyphRenderer
    """
    xy = _joined(grid)
    return figure.line(x=xy[:, 0], y=xy[:, 1], line_color=color, line_width=line_width, line_alpha=0.8)


@functools.lru_cache(maxsize=8)
def _joined(grid) -> np.ndarray:
    rings = state_lines(grid)
    gap = np.full((1, 2), np.nan)
    return np.concatenate([part for ring in rings for part in (ring, gap)][:-1])


def _inside(px: float, py: float, ring_x: np.ndarray, ring_y: np.ndarray) -> bool:
    # Even-odd ray casting along +x.
    x0, y0 = ring_x, ring_y
    x1, y1 = np.roll(ring_x, -1), np.roll(ring_y, -1)
    crosses = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    return bool(np.count_nonzero(crosses & (px < x_at)) % 2)


def state_at(lat: float, lon: float) -> str | None:
    """The two-letter code of the US state containing a point, ``None`` outside every state.

    Parameters
    ----------
    lat, lon : float
        Degrees; longitude in [-180, 180) or [0, 360).
    """
    # Rounded to about 1 km: the answer is cached, and event tables ask for the same places often.
    return _state_at(round(float(lat), 2), round((float(lon) + 180.0) % 360.0 - 180.0, 2))


@functools.lru_cache(maxsize=65536)
def _state_at(lat: float, lon: float) -> str | None:
    for code, state in _states().items():
        lats, lons = state["lats"], state["lons"]
        ok = np.isfinite(lats)
        if not (np.nanmin(lats) <= lat <= np.nanmax(lats) and np.nanmin(lons) <= lon <= np.nanmax(lons)):
            continue
        breaks = np.flatnonzero(~ok)
        inside = False
        for ring_lat, ring_lon in zip(np.split(lats, breaks), np.split(lons, breaks), strict=True):
            keep = np.isfinite(ring_lat)
            if keep.sum() > 2 and _inside(lon, lat, ring_lon[keep], ring_lat[keep]):
                inside = not inside
        if inside:
            return code
    return None
