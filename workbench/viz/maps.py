"""Maps on the grid's own Lambert projection: truth, forecast, error and ensemble spread.

Fields are :class:`holoviews.Image` in projection metres (``x``, ``y``) so the HRRR-like grid is shown
without reprojection; datashader's ``rasterize`` resamples them to the pixels on screen, which keeps a
full 3-km field (1059 x 1799) responsive. Extreme-event masks are drawn as outlines (contours of the
mask at 0.5) and US state borders come from ``bokeh-sampledata``, projected with the grid's formulas.
"""

from __future__ import annotations

from collections.abc import Sequence

import holoviews as hv
import numpy as np
import xarray as xr
from holoviews.operation import contours
from holoviews.operation.datashader import rasterize

from workbench.errors import DataError
from workbench.grids import LambertConformalGrid
from workbench.viz.borders import state_borders
from workbench.viz.style import ERROR_CMAP, FIELD_CMAPS, SPREAD_CMAP
from workbench.workflow.derive import grid_from_coords, spread_split

#: Outlines are traced on a mask no larger than this many cells per side (block-wise "any"), so a
#: 3-km mask outlines as fast as a 24-km one and small events do not vanish.
OUTLINE_MAX_CELLS = 480

#: Field kinds a map shows.
MAP_KINDS = ("truth", "forecast", "error", "spread_epistemic", "spread_aleatoric")





def _as_2d(da: xr.DataArray, what: str) -> xr.DataArray:
    extra = [d for d in da.dims if d not in ("y", "x") and da.sizes[d] > 1]
    if extra or not {"y", "x"} <= set(da.dims):
        raise DataError(
            f"The {what} map needs a 2-D (y, x) field; got dims {tuple(da.dims)}. Select one time "
            "(and member) first, e.g. forecast.sel(init_time=..., lead_time=...)."
        )
    return da.squeeze(drop=True).transpose("y", "x")


def field_image(
    da: xr.DataArray,
    label: str = "",
    kind: str = "truth",
    variable: str | None = None,
    clim: tuple[float, float] | None = None,
    units: str | None = None,
) -> hv.Image:
    """A 2-D ``(y, x)`` field as a :class:`holoviews.Image` in projection coordinates.

    Parameters
    ----------
    da : xarray.DataArray
        The field, dims ``(y, x)`` with coordinates in metres.
    label : str
        Title of the map.
    kind : str
        One of :data:`MAP_KINDS`; picks the colour map (the variable's own, diverging for errors).
    variable : str, optional
        Canonical variable (defaults to ``da.name``), for the colour map and the value's label.
    clim : (float, float), optional
        Colour range; errors default to a range symmetric about zero.
    units : str, optional
        Units shown in the hover and colour bar (``da.attrs["units"]`` by default).

    Returns
    -------
    holoviews.Image
        Value dimension named ``value`` (labelled with the variable and units).
    """
    da = _as_2d(da, kind)
    variable = variable or str(da.name or "value")
    units = units if units is not None else str(da.attrs.get("units", ""))
    values = np.asarray(da.values, dtype=np.float32)
    cmap, clim, vlabel = field_style(values, kind, variable, clim)
    vdim = hv.Dimension("value", label=vlabel, unit=units or None, range=clim if clim else (None, None))
    image = hv.Image(
        (np.asarray(da["x"], float), np.asarray(da["y"], float), values),
        kdims=["x", "y"],
        vdims=[vdim],
        label=label,
    )
    return image.opts(cmap=cmap, clim=clim) if clim else image.opts(cmap=cmap)


def field_style(
    values: np.ndarray, kind: str, variable: str, clim: tuple[float, float] | None = None
) -> tuple[str, tuple[float, float] | None, str]:
    """``(colour map, colour range, value label)`` of a map of ``kind`` (see :func:`field_image`).

    Errors get a diverging map and, without ``clim``, a range symmetric about zero (the 99.5th
    percentile of the absolute error); ``clim`` stays None where HoloViews takes the data's range.
    """
    if kind == "error":
        cmap = ERROR_CMAP
        if clim is None:
            finite = np.abs(values[np.isfinite(values)])
            top = float(np.percentile(finite, 99.5)) if finite.size else 1.0
            clim = (-top or -1.0, top or 1.0)
    elif kind.startswith("spread"):
        cmap = SPREAD_CMAP
    else:
        cmap = FIELD_CMAPS.get(variable, "viridis")
    vlabel = {
        "error": f"{variable} error",
        "spread_epistemic": f"{variable} epistemic spread",
        "spread_aleatoric": f"{variable} aleatoric spread",
    }.get(kind, variable)
    return cmap, clim, vlabel


def raster_field(
    da: xr.DataArray,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    width: int = 400,
    height: int = 250,
) -> xr.DataArray:
    """Resample a ``(y, x)`` field onto a screen of ``width x height`` pixels over a range, with datashader.

    What HoloViews' ``rasterize`` does for an Image (mean of the cells in each pixel, no upsampling
    beyond the grid's own cells), as a plain function: a live map calls it from its own callback,
    which spares the operation machinery (about twice the time of the resampling itself per call).

    Parameters
    ----------
    da : xarray.DataArray
        Field with regular ascending ``x``, ``y`` coordinates (m).
    x_range, y_range : (float, float), optional
        Visible range; the whole grid by default.
    width, height : int
        Pixels on screen.

    Returns
    -------
    xarray.DataArray
        Dims ``(y, x)`` at pixel centres.
    """
    import datashader as ds

    da = _as_2d(da, "raster")
    x, y = np.asarray(da["x"], float), np.asarray(da["y"], float)
    dx, dy = x[1] - x[0], y[1] - y[0]
    full_x = (x[0] - dx / 2, x[-1] + dx / 2)
    full_y = (y[0] - dy / 2, y[-1] + dy / 2)
    x_range = tuple(x_range) if x_range is not None else full_x
    y_range = tuple(y_range) if y_range is not None else full_y
    # No more pixels than grid cells in view: zoomed far in, each cell stays one block.
    cells_x = max(1, int(np.ceil((min(x_range[1], full_x[1]) - max(x_range[0], full_x[0])) / dx)))
    cells_y = max(1, int(np.ceil((min(y_range[1], full_y[1]) - max(y_range[0], full_y[0])) / dy)))
    canvas = ds.Canvas(
        plot_width=max(1, min(int(width), cells_x)),
        plot_height=max(1, min(int(height), cells_y)),
        x_range=x_range,
        y_range=y_range,
    )
    out = canvas.raster(da.astype(np.float32, copy=False), agg="mean", interpolate="nearest")
    return out.assign_attrs(da.attrs).rename(da.name)


def _coarsen_any(mask: np.ndarray, max_cells: int) -> tuple[np.ndarray, int]:
    factor = int(np.ceil(max(mask.shape) / max_cells)) if max(mask.shape) > max_cells else 1
    if factor == 1:
        return mask, 1
    ny, nx = (mask.shape[0] // factor) * factor, (mask.shape[1] // factor) * factor
    pad_y, pad_x = mask.shape[0] - ny, mask.shape[1] - nx
    if pad_y or pad_x:
        mask = np.pad(mask, ((0, (factor - pad_y) % factor), (0, (factor - pad_x) % factor)))
    return mask.reshape(mask.shape[0] // factor, factor, mask.shape[1] // factor, factor).any(
        axis=(1, 3)
    ), factor


def mask_outline(
    mask: xr.DataArray, color: str = "black", line_width: float = 1.5, max_cells: int = OUTLINE_MAX_CELLS
) -> hv.Contours:
    """The outline of a boolean ``(y, x)`` mask (or of the union over any other dims) as contours.

    Parameters
    ----------
    mask : xarray.DataArray
        Boolean mask with ``y``/``x`` coordinates in metres; extra dims (``event_type``) are OR-ed.
    color, line_width
        Line style.
    max_cells : int
        Masks larger than this per side are first reduced block-wise with "any" (see
        :data:`OUTLINE_MAX_CELLS`).

    Returns
    -------
    holoviews.Contours
        Empty when the mask has no true cell.
    """
    other = [d for d in mask.dims if d not in ("y", "x")]
    m = mask.any(dim=other) if other else mask
    m = m.transpose("y", "x")
    x, y = np.asarray(m["x"], float), np.asarray(m["y"], float)
    values = np.asarray(m.values, dtype=bool)
    style = {"color": color, "line_width": line_width, "tools": []}
    if not values.any():
        return hv.Contours([], kdims=["x", "y"]).opts(**style)
    small, factor = _coarsen_any(values, max_cells)
    dx = x[1] - x[0] if len(x) > 1 else 1.0
    dy = y[1] - y[0] if len(y) > 1 else 1.0
    # Pad with a ring of False so masks touching the edge still close their outline.
    small = np.pad(small, 1)
    xs = x[0] - dx / 2 + factor * dx * (np.arange(small.shape[1]) - 0.5)
    ys = y[0] - dy / 2 + factor * dy * (np.arange(small.shape[0]) - 0.5)
    image = hv.Image((xs, ys, small.astype(np.float32)), kdims=["x", "y"])
    return contours(image, levels=[0.5], filled=False).opts(**style)





def map_extent(grid: LambertConformalGrid) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(xlim, ylim)`` covering the grid's cells."""
    half = grid.dx / 2
    return (grid.x[0] - half, grid.x[-1] + half), (grid.y[0] - half, grid.y[-1] + half)


def map_opts(grid: LambertConformalGrid, width: int = 420, title: str | None = None) -> dict:
    """Plot options shared by every map: equal aspect in projection metres, the grid's extent, no axes."""
    xlim, ylim = map_extent(grid)
    height = int(round(width * (ylim[1] - ylim[0]) / (xlim[1] - xlim[0]))) + 40
    opts = {
        "width": width,
        "height": height,
        "xlim": xlim,
        "ylim": ylim,
        "xaxis": None,
        "yaxis": None,
        "colorbar": True,
        "tools": ["hover"],
        "active_tools": ["wheel_zoom"],
    }
    if title is not None:
        opts["title"] = title
    return opts


def field_map(
    image: hv.Image | hv.DynamicMap,
    grid: LambertConformalGrid,
    outline: hv.Contours | hv.DynamicMap | None = None,
    borders: bool = True,
    width: int = 420,
    pixel_ratio: float | None = None,
    style: bool = True,
) -> hv.Overlay:
    """One rasterized map: the field, the event outline and the state borders.

    Parameters
    ----------
    image : holoviews.Image or DynamicMap of Image
        From :func:`field_image`.
    grid : LambertConformalGrid
        The field's grid (for the borders' projection and the extent).
    outline : holoviews.Contours or DynamicMap, optional
        From :func:`mask_outline`.
    borders : bool
        Draw US state borders.
    width : int
        Plot width in pixels (height follows the grid's aspect).
    pixel_ratio : float, optional
        Passed to ``rasterize`` (defaults to the browser's).
    style : bool
        Apply :func:`map_opts` to the rasterized layer. A DynamicMap whose images already carry those
        options (``image.opts(**map_opts(grid))`` in its callback) is faster without: options applied to
        a DynamicMap clone every frame.

    Returns
    -------
    holoviews.Overlay or DynamicMap
        ``rasterize(image) * outline * borders``.
    """
    kwargs = {} if pixel_ratio is None else {"pixel_ratio": pixel_ratio}
    raster = rasterize(image, **kwargs)
    layers = [raster.opts(**map_opts(grid, width)) if style else raster]
    if outline is not None:
        layers.append(outline)
    if borders:
        layers.append(state_borders(grid))
    overlay = layers[0]
    for layer in layers[1:]:
        overlay = overlay * layer
    return overlay


def forecast_maps(
    truth: xr.DataArray,
    forecast: xr.DataArray,
    mask: xr.DataArray | None = None,
    ensemble: xr.DataArray | None = None,
    kinds: Sequence[str] = ("truth", "forecast", "error"),
    clim: tuple[float, float] | None = None,
    width: int = 360,
) -> hv.Layout:
    """Truth, forecast and error maps for one valid time (and ensemble spread when given).

    Parameters
    ----------
    truth, forecast : xarray.DataArray
        2-D ``(y, x)`` fields of the same variable at the same valid time.
    mask : xarray.DataArray, optional
        Boolean ``([event_type,] y, x)`` mask at that time; its outline is drawn on every map.
    ensemble : xarray.DataArray, optional
        ``(weight_member, noise_member, y, x)`` members; adds the epistemic and aleatoric spread maps.
    kinds : sequence of str
        Which of :data:`MAP_KINDS` to draw (spread kinds need ``ensemble``).
    clim : (float, float), optional
        Colour range shared by truth and forecast (default: their joint 0.5-99.5 percentiles).
    width : int
        Width of each map.

    Returns
    -------
    holoviews.Layout
        Maps with linked pan and zoom.
    """
    truth2, fcst2 = _as_2d(truth, "truth"), _as_2d(forecast, "forecast")
    if truth2.shape != fcst2.shape:
        raise DataError(f"Truth {truth2.shape} and forecast {fcst2.shape} are on different grids.")
    grid = grid_from_coords(truth2)
    variable = str(forecast.name or truth.name or "value")
    if clim is None:
        both = np.concatenate([np.ravel(truth2.values), np.ravel(fcst2.values)]).astype(float)
        both = both[np.isfinite(both)]
        clim = tuple(float(v) for v in np.percentile(both, [0.5, 99.5])) if both.size else None
    fields: dict[str, xr.DataArray] = {"truth": truth2, "forecast": fcst2, "error": fcst2 - truth2.values}
    if ensemble is not None:
        fields["spread_epistemic"], fields["spread_aleatoric"] = spread_split(ensemble)
    outline = mask_outline(mask) if mask is not None else None
    units = str(truth.attrs.get("units", forecast.attrs.get("units", "")))
    maps = []
    for kind in kinds:
        if kind not in fields:
            raise DataError(
                f"Map kind {kind!r} needs {'an ensemble' if kind.startswith('spread') else 'data'}; "
                f"available: {list(fields)}."
            )
        image = field_image(
            fields[kind],
            label=kind.replace("_", " "),
            kind=kind,
            variable=variable,
            clim=clim if kind in ("truth", "forecast") else None,
            units=units,
        )
        maps.append(
            field_map(image, grid, outline, width=width).opts(title=f"{variable} {kind.replace('_', ' ')}")
        )
    return hv.Layout(maps).cols(min(3, len(maps)))
