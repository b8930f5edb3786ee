"""Neighbourhood verification: the fractions skill score (Roberts and Lean 2008) at several scales.

For an event threshold :math:`t` and a square window of :math:`n \\times n` cells, the event fractions
of forecast and truth in the window centred at each point are :math:`P_f` and :math:`P_o`; then, summed
over window positions and the reduced dims (with optional weights :math:`w`),

.. math:: \\mathrm{FSS} = 1 - \\frac{\\sum w (P_f - P_o)^2}{\\sum w P_f^2 + \\sum w P_o^2}

FSS is 0 for no skill and 1 for a perfect forecast. A forecast is "useful" at scales where
:math:`\\mathrm{FSS} \\ge 0.5 + f_o/2`, :math:`f_o` the observed event frequency over the domain.

The fractions come from summed-area tables: one cumulative sum per field, then every window sum is
four look-ups, so each scale costs O(N) whatever its size. Windows are taken wholly inside the domain
(``padding="valid"``, as ``scores.spatial.fss_2d`` with ``zero_padding=False``) or centred on every
cell with zeros (non-events) beyond the edge (``padding="zero"``; ``scores``' ``zero_padding=True``
pads differently and gives other numbers). Cells where forecast or truth is NaN are not
events and not non-events: the fraction is taken over the valid cells of the window, and windows with no
valid cell are skipped.
"""

from __future__ import annotations

import operator as _op
from collections.abc import Sequence

import numpy as np
import xarray as xr

from workbench.errors import DataError, GridError
from workbench.scoring.metrics import Dims, _check_weights, _dims_to_reduce

__all__ = ["fss", "fss_from_sums", "fss_scales", "window_cells"]

_OPERATORS = {">=": _op.ge, ">": _op.gt, "<=": _op.le, "<": _op.lt}


def fss_from_sums(num, den):
    """FSS from its sums, ``1 - sum (P_f - P_o)^2 / sum (P_f^2 + P_o^2)``; NaN where the denominator is not
    positive (no event in forecast or truth). NumPy arrays or xarray objects: the bootstrap scores its
    resampled sums as plain arrays."""
    with np.errstate(invalid="ignore", divide="ignore"):
        q = 1.0 - num / den
    return q.where(den > 0) if isinstance(q, xr.DataArray) else np.where(den > 0, q, np.nan)


def _grid_spacing_km(da: xr.DataArray, spatial_dims: tuple[str, str]) -> float:
    """Grid spacing from a 1-D projected coordinate in metres (or km, by its units)."""
    for dim in reversed(spatial_dims):
        if dim in da.coords and da[dim].ndim == 1 and da.sizes[dim] > 1:
            coord = da[dim]
            step = float(np.abs(np.diff(coord.values[:2]))[0])
            units = str(coord.attrs.get("units", "m")).lower()
            if units in ("km", "kilometre", "kilometer", "kilometres", "kilometers"):
                return step
            if units in ("m", "metre", "meter", "metres", "meters"):
                return step / 1000.0
            break
    raise GridError(
        f"Cannot tell the grid spacing from the coordinates of {list(spatial_dims)}; pass grid_spacing_km."
    )


def window_cells(window_km: float, grid_spacing_km: float) -> int:
    """Odd window width in cells closest to ``window_km`` (at least 1), so the window has a centre."""
    if not np.isfinite(window_km) or window_km <= 0:
        raise DataError(f"window_km must be positive, not {window_km!r}.")
    n = max(1, int(round(window_km / grid_spacing_km)))
    return n if n % 2 else n + 1


def _sat(x: np.ndarray) -> np.ndarray:
    """Summed-area table over the last two axes, with a leading row and column of zeros."""
    out = np.zeros((*x.shape[:-2], x.shape[-2] + 1, x.shape[-1] + 1), dtype=np.float64)
    np.cumsum(np.cumsum(x, axis=-2, dtype=np.float64), axis=-1, out=out[..., 1:, 1:])
    return out


def _window_sums(sat: np.ndarray, n: int, padding: str) -> np.ndarray:
    ny, nx = sat.shape[-2] - 1, sat.shape[-1] - 1
    if padding == "valid":
        if n > ny or n > nx:
            raise DataError(f"A window of {n} cells does not fit the {ny} x {nx} grid.")
        return sat[..., n:, n:] - sat[..., :-n, n:] - sat[..., n:, :-n] + sat[..., :-n, :-n]
    h = n // 2
    y0 = np.clip(np.arange(ny) - h, 0, ny)
    y1 = np.clip(np.arange(ny) + h + 1, 0, ny)
    x0 = np.clip(np.arange(nx) - h, 0, nx)
    x1 = np.clip(np.arange(nx) + h + 1, 0, nx)
    s = sat
    return (
        s[..., y1[:, None], x1[None, :]]
        - s[..., y0[:, None], x1[None, :]]
        - s[..., y1[:, None], x0[None, :]]
        + s[..., y0[:, None], x0[None, :]]
    )


def _fss_sums(f, o, n_cells, threshold, cmp, padding):
    """Per field: sum (Pf-Po)^2, sum Pf^2, sum Po^2 over windows -> arrays (..., n_scales, 3, Y', X')."""
    valid = ~(np.isnan(f) | np.isnan(o))
    fe = (cmp(f, threshold) & valid).astype(np.float64)
    oe = (cmp(o, threshold) & valid).astype(np.float64)
    sat_f, sat_o, sat_v = _sat(fe), _sat(oe), _sat(valid.astype(np.float64))
    out = []
    for n in n_cells:
        nv = _window_sums(sat_v, n, padding)
        if padding == "zero":
            # cells beyond the edge are zeros: non-events that count in the fraction's denominator
            inside = _window_sums(_sat(np.ones(f.shape[-2:])), n, padding)
            nv = nv + (n * n - inside)
        ok = nv > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            pf = np.where(ok, _window_sums(sat_f, n, padding) / nv, np.nan)
            po = np.where(ok, _window_sums(sat_o, n, padding) / nv, np.nan)
        out.append((pf, po))
    return out


def fss(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    threshold: float,
    window_km: float | Sequence[float],
    *,
    spatial_dims: tuple[str, str] = ("y", "x"),
    grid_spacing_km: float | None = None,
    operator: str = ">=",
    padding: str = "valid",
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Fractions skill score at one or several window sizes.

    Parameters
    ----------
    forecast, truth : xarray.DataArray
        Fields with the two ``spatial_dims`` (whole in one Dask chunk along them), broadcast against
        each other.
    threshold : float
        Event threshold.
    window_km : float or sequence of float
        Window widths in km; each becomes the odd number of cells closest to it
        (:func:`window_cells`). A sequence adds a ``window_km`` dim.
    spatial_dims : (str, str)
        The grid dims the windows move over; they are always reduced.
    grid_spacing_km : float, optional
        Grid spacing; by default read from the 1-D coordinate of the last spatial dim (metres).
    operator : {">=", ">", "<=", "<"}
        Event comparison.
    padding : {"valid", "zero"}
        Windows wholly inside the domain, or centred on every cell with zeros outside.
    reduce_dims, preserve_dims : optional
        Non-spatial dims to pool over or keep (the spatial dims are always pooled). Default: pool all.
    weights : xarray.DataArray, optional
        Non-negative weights over non-spatial dims (e.g. per initial time), or over the spatial dims
        (then taken at each window's centre cell).

    Returns
    -------
    xarray.DataArray
        FSS, with a ``window_km`` dim (the asked widths) and ``window_cells`` coordinate when several
        windows were asked.
    """
    if padding not in ("valid", "zero"):
        raise DataError(f"padding must be 'valid' or 'zero', not {padding!r}.")
    if operator not in _OPERATORS:
        raise DataError(f"operator must be one of {sorted(_OPERATORS)}, not {operator!r}.")
    if not np.isfinite(threshold):
        raise DataError("threshold must be a finite number.")
    for da, label in ((forecast, "forecast"), (truth, "truth")):
        missing = [d for d in spatial_dims if d not in da.dims]
        if missing:
            raise DataError(f"The {label} lacks the spatial dims {missing} (has {list(da.dims)}).")
    weights = _check_weights(weights)
    scalar = np.ndim(window_km) == 0
    widths = [float(window_km)] if scalar else [float(w) for w in window_km]
    dx = grid_spacing_km if grid_spacing_km is not None else _grid_spacing_km(truth, spatial_dims)
    if dx <= 0:
        raise DataError("grid_spacing_km must be positive.")
    n_cells = [window_cells(w, dx) for w in widths]
    cmp = _OPERATORS[operator]

    f, o = xr.broadcast(forecast, truth)
    other = [d for d in f.dims if d not in spatial_dims]
    present = list(
        dict.fromkeys(
            [*other, *(d for d in (weights.dims if weights is not None else ()) if d not in spatial_dims)]
        )
    )
    dims = _dims_to_reduce(present, reduce_dims, preserve_dims) if present else []
    dims = [d for d in dims if d not in spatial_dims]

    results = []
    for n in n_cells:

        def one(fv, ov, n=n):
            ((pf, po),) = _fss_sums(fv, ov, [n], threshold, cmp, padding)
            return np.stack([pf, po], axis=-3)

        ny, nx = f.sizes[spatial_dims[0]], f.sizes[spatial_dims[1]]
        out_y, out_x = (ny - n + 1, nx - n + 1) if padding == "valid" else (ny, nx)
        pp = xr.apply_ufunc(
            one,
            f,
            o,
            input_core_dims=[list(spatial_dims), list(spatial_dims)],
            output_core_dims=[["_p", "_wy", "_wx"]],
            dask="parallelized",
            output_dtypes=[np.float64],
            dask_gufunc_kwargs={"output_sizes": {"_p": 2, "_wy": out_y, "_wx": out_x}},
        )
        pf, po = pp.isel(_p=0), pp.isel(_p=1)
        w = None
        if weights is not None:
            w = weights
            if any(d in w.dims for d in spatial_dims):
                off = n // 2 if padding == "valid" else 0
                w = w.isel(
                    {spatial_dims[0]: slice(off, off + out_y), spatial_dims[1]: slice(off, off + out_x)}
                )
                w = w.rename({spatial_dims[0]: "_wy", spatial_dims[1]: "_wx"}).drop_vars(
                    [c for c in w.coords if set(w[c].dims) & {"_wy", "_wx"}]
                )
        ok = pf.notnull()
        num = (pf - po) ** 2
        den = pf**2 + po**2
        if w is not None:
            num, den = num * w, den * w
        sum_dims = [*dims, "_wy", "_wx"]
        num_s = num.where(ok).sum(sum_dims)
        den_s = den.where(ok).sum(sum_dims)
        results.append(fss_from_sums(num_s, den_s))
    if scalar:
        out = results[0]
    else:
        out = xr.concat(results, dim=xr.DataArray(widths, dims="window_km", name="window_km"))
        out = out.assign_coords(window_cells=("window_km", n_cells))
    drop = [c for c in out.coords if c in spatial_dims or set(out[c].dims) & set(spatial_dims)]
    out = out.drop_vars(drop).rename("fss")
    out.attrs.update(
        {"threshold": threshold, "operator": operator, "padding": padding, "grid_spacing_km": dx}
    )
    return out


def fss_scales(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    threshold: float,
    windows_km: Sequence[float],
    *,
    spatial_dims: tuple[str, str] = ("y", "x"),
    grid_spacing_km: float | None = None,
    operator: str = ">=",
    padding: str = "valid",
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.Dataset:
    """FSS at several scales and the smallest useful scale, where FSS reaches :math:`0.5 + f_o/2`.

    ``useful_scale_km`` is interpolated linearly in FSS between the two scales that bracket the target;
    NaN when no scale reaches it (or the first already does not need interpolation: then it is the
    smallest scale). ``base_rate`` :math:`f_o` is the observed event frequency over the pooled points.
    Parameters as in :func:`fss`.

    Returns
    -------
    xarray.Dataset
        ``fss`` (dim ``window_km``), ``base_rate``, ``fss_target`` and ``useful_scale_km``.
    """
    widths = sorted(float(w) for w in windows_km)
    if len(widths) < 2:
        raise DataError("fss_scales needs at least two window widths.")
    score = fss(
        forecast,
        truth,
        threshold,
        widths,
        spatial_dims=spatial_dims,
        grid_spacing_km=grid_spacing_km,
        operator=operator,
        padding=padding,
        reduce_dims=reduce_dims,
        preserve_dims=preserve_dims,
        weights=weights,
    )
    cmp = _OPERATORS[operator]
    valid = forecast.notnull() & truth.notnull()
    o_ev = (cmp(truth, threshold) & valid).astype(np.float64)
    keep = [d for d in score.dims if d != "window_km"]
    pool = [d for d in o_ev.dims if d not in keep]
    base = o_ev.sum(pool) / valid.astype(np.float64).sum(pool)
    target = 0.5 + base / 2

    def crossing(values, tgt):
        values = np.asarray(values, dtype=float)
        above = np.flatnonzero(values >= tgt)
        if not above.size or not np.isfinite(tgt):
            return np.nan
        k = above[0]
        if k == 0:
            return widths[0]
        f0, f1 = values[k - 1], values[k]
        return widths[k - 1] + (tgt - f0) / (f1 - f0) * (widths[k] - widths[k - 1])

    useful = xr.apply_ufunc(
        crossing, score, target, input_core_dims=[["window_km"], []], vectorize=True, output_dtypes=[float]
    )
    return xr.Dataset({"fss": score, "base_rate": base, "fss_target": target, "useful_scale_km": useful})
