"""Categorical and neighbourhood scores of every region in one pass, kept per initial time.

:func:`event_statistics` reads each forecast field once and, in the same loop over its cells, adds

- the weighted contingency table (hits, false alarms, misses, correct negatives) at every threshold for
  every region (``all``, ``extreme`` = any event, each event type; the masks follow the valid time), and
- the fractions-skill-score sums :math:`\\sum w (P_f-P_o)^2` and :math:`\\sum w (P_f^2+P_o^2)` at every
  window size over the whole domain, from summed-area tables (O(N) per scale; windows wholly inside
  the domain, weights at the window centre; NaN cells leave the fractions' denominators),

to arrays indexed by initial time. :func:`event_scores` turns the sums into POD, FAR, CSI, ETS,
frequency bias, SEDI (:mod:`workbench.scoring.categorical`) and FSS (:mod:`workbench.scoring.neighbourhood`),
equal to those functions on the same data, and with ``confidence`` adds bootstrap bounds by resampling
the per-init sums (:mod:`workbench.scoring.bootstrap`): one matrix product, no second pass.

The loop is compiled with numba when it is installed (fields of a block in parallel); otherwise the
xarray functions are called field by field.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from workbench.errors import DataError
from workbench.scoring import kernels
from workbench.scoring.categorical import TABLE, scores_from_table
from workbench.scoring.neighbourhood import _grid_spacing_km, window_cells

__all__ = ["event_scores", "event_statistics"]

if kernels.HAVE_NUMBA:
    import numba as nb

    @nb.njit(parallel=True, cache=True)
    def _nb_fields(f, o, w, codes, thr, fss_thr, windows, ny, nx, hist, fss):  # pragma: no cover - compiled
        # ``thr`` ascending: a cell adds its weight to one bin (number of thresholds the forecast
        # passes, number the truth passes) per region; the tables of every threshold follow from
        # those (T+1)^2 bins (:func:`_tables_from_bins`), one update per cell instead of one per threshold
        n_fields, n_points = f.shape
        n_thr = thr.shape[0]
        for l in nb.prange(n_fields):  # noqa: E741
            for p in range(n_points):
                fv = f[l, p]
                ov = o[l, p]
                if np.isnan(fv) or np.isnan(ov):
                    continue
                bf = 0
                while bf < n_thr and fv >= thr[bf]:
                    bf += 1
                bo = 0
                while bo < n_thr and ov >= thr[bo]:
                    bo += 1
                wp = w[p]
                hist[l, 0, bf, bo] += wp
                code = np.int64(codes[l, p])
                if code != 0:
                    hist[l, 1, bf, bo] += wp
                    c = code
                    b = 0
                    while c:
                        if c & 1:
                            hist[l, 2 + b, bf, bo] += wp
                        c >>= 1
                        b += 1
            if windows.shape[0] == 0:
                continue
            # summed-area tables of forecast events, observed events and valid cells
            sf = np.zeros((ny + 1, nx + 1), np.int32)
            so = np.zeros((ny + 1, nx + 1), np.int32)
            sv = np.zeros((ny + 1, nx + 1), np.int32)
            for i in range(ny):
                rf = 0
                ro = 0
                rv = 0
                for j in range(nx):
                    fv = f[l, i * nx + j]
                    ov = o[l, i * nx + j]
                    if not (np.isnan(fv) or np.isnan(ov)):
                        rv += 1
                        if fv >= fss_thr:
                            rf += 1
                        if ov >= fss_thr:
                            ro += 1
                    sf[i + 1, j + 1] = sf[i, j + 1] + rf
                    so[i + 1, j + 1] = so[i, j + 1] + ro
                    sv[i + 1, j + 1] = sv[i, j + 1] + rv
            for s in range(windows.shape[0]):
                n = windows[s]
                h = n // 2
                num = 0.0
                den = 0.0
                for i in range(ny - n + 1):
                    for j in range(nx - n + 1):
                        cf = sf[i + n, j + n] - sf[i, j + n] - sf[i + n, j] + sf[i, j]
                        co = so[i + n, j + n] - so[i, j + n] - so[i + n, j] + so[i, j]
                        if cf == 0 and co == 0:
                            continue  # no event in the window: adds nothing (most windows, for extremes)
                        nv = sv[i + n, j + n] - sv[i, j + n] - sv[i + n, j] + sv[i, j]
                        pf = cf / nv
                        po = co / nv
                        wc = w[(i + h) * nx + j + h]
                        num += wc * (pf - po) * (pf - po)
                        den += wc * (pf * pf + po * po)
                fss[l, s, 0] = num
                fss[l, s, 1] = den


def _tables_from_bins(hist: np.ndarray) -> np.ndarray:
    """``(..., T+1, T+1)`` weights by (thresholds passed by the forecast, by the truth) to ``(..., T, 4)``
    tables (hits, false alarms, misses, correct negatives) of each threshold."""
    n_thr = hist.shape[-1] - 1
    out = np.empty((*hist.shape[:-2], n_thr, 4))
    for t in range(n_thr):
        fe, oe = slice(t + 1, None), slice(t + 1, None)
        fn, on = slice(0, t + 1), slice(0, t + 1)
        out[..., t, 0] = hist[..., fe, oe].sum((-1, -2))
        out[..., t, 1] = hist[..., fe, on].sum((-1, -2))
        out[..., t, 2] = hist[..., fn, oe].sum((-1, -2))
        out[..., t, 3] = hist[..., fn, on].sum((-1, -2))
    return out


def _fields_numpy(f, o, w, codes, thr, fss_thr, windows, ny, nx, table, fss, n_events):
    """The same sums with NumPy, field by field (no numba)."""
    from workbench.scoring.neighbourhood import _sat, _window_sums

    bits = np.arange(n_events)
    for l in range(f.shape[0]):  # noqa: E741
        valid = ~(np.isnan(f[l]) | np.isnan(o[l]))
        member = (codes[l][None, :].astype(np.int64) >> bits[:, None]) & 1 if n_events else None
        rows = [np.ones(f.shape[1], bool)]
        if n_events:
            rows += [codes[l] != 0, *(member[e].astype(bool) for e in range(n_events))]
        for t, value in enumerate(thr):
            fe, oe = (f[l] >= value) & valid, (o[l] >= value) & valid
            fn, on = ~fe & valid, ~oe & valid
            cells = (fe & oe, fe & on, fn & oe, fn & on)
            for r, region in enumerate(rows):
                for k, cell in enumerate(cells):
                    table[l, r, t, k] += float(np.sum(w[cell & region], dtype=np.float64))
        if not len(windows):
            continue
        fe = ((f[l] >= fss_thr) & valid).reshape(ny, nx)
        oe = ((o[l] >= fss_thr) & valid).reshape(ny, nx)
        sf, so, sv = _sat(fe), _sat(oe), _sat(valid.reshape(ny, nx))
        w2 = w.reshape(ny, nx)
        for s, n in enumerate(windows):
            nv = _window_sums(sv, n, "valid")
            ok = nv > 0
            with np.errstate(invalid="ignore", divide="ignore"):
                pf = np.where(ok, _window_sums(sf, n, "valid") / nv, 0.0)
                po = np.where(ok, _window_sums(so, n, "valid") / nv, 0.0)
            h = n // 2
            wc = w2[h : h + nv.shape[0], h : h + nv.shape[1]] * ok
            fss[l, s, 0] = float(np.sum(wc * (pf - po) ** 2))
            fss[l, s, 1] = float(np.sum(wc * (pf**2 + po**2)))


def event_statistics(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    thresholds: Sequence[float],
    masks: xr.DataArray | None = None,
    *,
    fss_threshold: float | None = None,
    windows_km: Sequence[float] = (),
    weights: xr.DataArray | None = None,
    spatial_dims: tuple[str, str] = ("y", "x"),
    grid_spacing_km: float | None = None,
    engine: str = "auto",
) -> xr.Dataset:
    """Per-init contingency tables of every region and FSS sums, in one pass over the forecast.

    Parameters
    ----------
    forecast : xarray.DataArray
        Dims ``(init_time, lead_time, *spatial_dims)`` with coordinate ``valid_time``.
    truth : xarray.DataArray
        Dims ``(time, *spatial_dims)`` covering the valid times.
    thresholds : sequence of float
        Event thresholds (``>=``) of the contingency tables; sorted (and made unique) in the output.
    masks : xarray.DataArray, optional
        Bool ``(event_type, time, *spatial_dims)``: adds the ``extreme`` and per-type regions.
    fss_threshold : float, optional
        Threshold of the FSS (default: the middle of ``thresholds``).
    windows_km : sequence of float
        FSS window widths (none: no FSS).
    weights : xarray.DataArray, optional
        Area weights over the spatial dims (default 1).
    grid_spacing_km : float, optional
        For the windows; by default from the projected coordinates.
    engine : {"auto", "numba", "numpy"}
        Compiled loop or NumPy.

    Returns
    -------
    xarray.Dataset
        ``table`` ``(init_time, lead_time, region, threshold, cell)`` weighted counts and, with windows,
        ``fss_sums`` ``(init_time, lead_time, window_km, term)`` with terms ``num``, ``den``.
    """
    if engine not in ("auto", "numba", "numpy"):
        raise DataError(f"engine must be 'auto', 'numba' or 'numpy', not {engine!r}.")
    if engine == "numba" and not kernels.HAVE_NUMBA:
        raise DataError("engine='numba' needs the numba package.")
    use_numba = kernels.HAVE_NUMBA and engine != "numpy"
    for dim in ("init_time", "lead_time", *spatial_dims):
        if dim not in forecast.dims:
            raise DataError(f"The forecast lacks the dim {dim!r} (dims {list(forecast.dims)}).")
    extra = [d for d in forecast.dims if d not in ("init_time", "lead_time", *spatial_dims)]
    if extra:
        raise DataError(f"event_statistics scores deterministic fields; reduce the dims {extra} first.")
    thr = np.unique(np.asarray(thresholds, dtype=np.float64).reshape(-1))  # sorted, as the bins need
    if thr.size == 0 or not np.isfinite(thr).all():
        raise DataError("thresholds must be a non-empty sequence of finite numbers.")
    ny, nx = forecast.sizes[spatial_dims[0]], forecast.sizes[spatial_dims[1]]
    windows = np.zeros(0, dtype=np.int64)
    widths = [float(x) for x in windows_km]
    if widths:
        dx = grid_spacing_km if grid_spacing_km is not None else _grid_spacing_km(truth, spatial_dims)
        windows = np.array([window_cells(x, dx) for x in widths], dtype=np.int64)
        if (windows > min(ny, nx)).any():
            raise DataError(f"A window of {int(windows.max())} cells does not fit the {ny} x {nx} grid.")
    fss_thr = float(np.median(thr) if fss_threshold is None else fss_threshold)
    n_points = ny * nx
    w = np.ones(n_points) if weights is None else np.asarray(weights.transpose(*spatial_dims).values, float)
    w = np.ascontiguousarray(w.reshape(-1), dtype=np.float64)
    if w.size != n_points or (w < 0).any() or np.isnan(w).any():
        raise DataError("weights must be finite, non-negative and on the forecast's grid.")
    fc = forecast.transpose("init_time", "lead_time", *spatial_dims)
    tr = truth.transpose("time", *spatial_dims)
    vt = fc["valid_time"].values if "valid_time" in fc.coords else (fc["init_time"] + fc["lead_time"]).values
    tpos = tr.indexes["time"].get_indexer(np.asarray(vt).reshape(-1)).reshape(np.shape(vt))
    if (tpos < 0).any():
        raise DataError(f"The truth lacks {int((tpos < 0).sum())} forecast valid time(s).")
    n_events = 0
    mpos = None
    if masks is not None:
        mk = masks.transpose("event_type", "time", *spatial_dims)
        n_events = mk.sizes["event_type"]
        mpos = mk.indexes["time"].get_indexer(np.asarray(vt).reshape(-1)).reshape(np.shape(vt))
        if (mpos < 0).any():
            raise DataError(f"The masks do not cover {int((mpos < 0).sum())} forecast valid time(s).")
        mask_values = mk.values
    n_init, n_lead = fc.sizes["init_time"], fc.sizes["lead_time"]
    n_rows = 1 if masks is None else 2 + n_events
    table = np.zeros((n_init, n_lead, n_rows, thr.size, 4))
    fss = np.zeros((n_init, n_lead, max(len(windows), 1), 2))
    truth_values = tr.values if isinstance(tr.variable._data, np.ndarray) else None
    code_cache: dict[int, np.ndarray] = {}
    for i in range(n_init):
        f = np.ascontiguousarray(fc.isel(init_time=i).values).reshape(n_lead, n_points)
        if truth_values is not None:
            o = truth_values[tpos[i]].reshape(n_lead, n_points)
        else:
            o = tr.isel(time=tpos[i]).values.reshape(n_lead, n_points)
        dtype = np.result_type(f.dtype, o.dtype)
        f, o = f.astype(dtype, copy=False), np.ascontiguousarray(o, dtype=dtype)
        if masks is None:
            codes = np.zeros((n_lead, n_points), dtype=np.uint8)
        else:
            # the event bits of a valid time are shared by the fields of every init valid then:
            # built once per valid time (114 for 384 fields in the 3-km benchmark), kept while needed
            for j in range(n_lead):
                k = int(mpos[i, j])
                if k not in code_cache:
                    code_cache[k] = kernels.event_codes(mask_values[:, k].reshape(n_events, n_points))
            codes = np.stack([code_cache[int(mpos[i, j])] for j in range(n_lead)])
            for k in [k for k in code_cache if k < int(mpos[i].min())]:
                del code_cache[k]  # inits are in time order: earlier valid times are not needed again
        if use_numba:
            hist = np.zeros((n_lead, n_rows, thr.size + 1, thr.size + 1))
            _nb_fields(f, o, w, codes, thr.astype(dtype), dtype.type(fss_thr), windows, ny, nx, hist, fss[i])
            table[i] = _tables_from_bins(hist)
        else:
            args = (f, o, w, codes, thr.astype(dtype), dtype.type(fss_thr), windows, ny, nx, table[i], fss[i])
            _fields_numpy(*args, n_events=n_events)
    regions = ["all"]
    if masks is not None:
        # non_extreme = all minus extreme, as in decompose (the counts are sums)
        table = np.concatenate([table[:, :, :2], table[:, :, :1] - table[:, :, 1:2], table[:, :, 2:]], axis=2)
        regions = ["all", "extreme", "non_extreme", *(str(e) for e in masks["event_type"].values)]
    coords = {
        "init_time": fc["init_time"].values,
        "lead_time": fc["lead_time"].values,
        "region": regions,
        "threshold": thr,
        "cell": list(TABLE),
    }
    out = xr.Dataset(
        {"table": (("init_time", "lead_time", "region", "threshold", "cell"), table)}, coords=coords
    )
    if widths:
        out["fss_sums"] = (("init_time", "lead_time", "window_km", "term"), fss)
        out = out.assign_coords(window_km=widths, window_cells=("window_km", windows), term=["num", "den"])
        out.attrs["fss_threshold"] = fss_thr
    return out


def _scores(table: xr.DataArray, fss_sums: xr.DataArray | None) -> xr.Dataset:
    cells = {k: table.sel(cell=k, drop=True) for k in TABLE}
    out = scores_from_table(xr.Dataset(cells))
    if fss_sums is not None:
        num, den = fss_sums.sel(term="num", drop=True), fss_sums.sel(term="den", drop=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["fss"] = (1.0 - num / den).where(den > 0)
    return out


def event_scores(
    stats: xr.Dataset,
    *,
    confidence: float | None = None,
    n_resamples: int = 1000,
    block_length: int | str | None = "auto",
    seed: int = 0,
) -> xr.Dataset:
    """POD, FAR, POFD, CSI, ETS, frequency bias, SEDI per lead, region and threshold, and FSS per lead
    and window, from :func:`event_statistics` (tables pooled over initial times); with ``confidence``
    also ``<score>_low`` / ``<score>_high`` from a block bootstrap over the initial times."""
    table = stats["table"]
    fss_sums = stats.get("fss_sums")
    out = _scores(table.sum("init_time"), None if fss_sums is None else fss_sums.sum("init_time"))
    out["n_events_observed"] = (table.sel(cell="hits") + table.sel(cell="misses")).sum("init_time")
    if confidence is None:
        return out
    from workbench.scoring.bootstrap import (
        auto_block_length,
        block_counts,
        default_block_length,
        interval_levels,
        nan_quantiles,
    )

    n_init = stats.sizes["init_time"]
    if block_length == "auto":
        # the memory of the per-init event frequency sets the block length
        obs = (table.sel(cell="hits") + table.sel(cell="misses")).sel(region="all")
        block_length = auto_block_length(obs.transpose("init_time", ...).values)
    elif block_length is None:
        block_length = default_block_length(n_init)
    counts = block_counts(n_init, n_resamples, block_length, seed).astype(np.float64)

    def resampled(da: xr.DataArray) -> xr.DataArray:
        # the per-init sums of each resample: one matrix product
        da = da.transpose("init_time", ...)
        values = counts @ da.values.reshape(n_init, -1)
        dims = ("resample", *da.dims[1:])
        # plain labels only: the resampled scores are put back on the estimate's coordinates below,
        # and coordinate-free arithmetic skips xarray's alignment of the float threshold labels
        keep = {k: da[k].values for k in ("cell", "term") if k in da.dims}
        return xr.DataArray(values.reshape(n_resamples, *da.shape[1:]), dims=dims, coords=keep)

    boot = _scores(resampled(table), None if fss_sums is None else resampled(fss_sums))
    levels = interval_levels(n_init, int(block_length), confidence)
    for name in list(boot.data_vars):
        da = boot[name].transpose("resample", *out[name].dims)
        low, high = nan_quantiles(da.values, levels, axis=0)
        out[f"{name}_low"] = out[name].copy(data=low)
        out[f"{name}_high"] = out[name].copy(data=high)
    out.attrs.update({"confidence": confidence, "n_resamples": n_resamples, "bootstrap_seed": seed})
    return out


#: Thresholds of the dashboard's categorical scores: moderate events that the 24-km sample has in every
#: week (tp in m per hour, refc in dBZ, gust in m s-1); the events' own rules (25.4 mm/h, 50 dBZ,
#: 25.7 m s-1) are too rare on it for a stable CSI.
DASHBOARD_THRESHOLDS: dict[str, float] = {"tp": 0.0005, "refc": 35.0, "gust": 20.0}
DASHBOARD_WINDOW_KM = 72.0


def event_metrics(
    forecasts: dict[str, xr.Dataset],
    truth: xr.Dataset,
    masks: xr.DataArray | None = None,
    thresholds: dict[str, float] | None = None,
    window_km: float = DASHBOARD_WINDOW_KM,
    weights: xr.DataArray | None = None,
) -> xr.Dataset:
    """POD, FAR, CSI, ETS, SEDI (one threshold per variable) and FSS (one window) of several models, laid
    out as the scores of :func:`workbench.scoring.decompose`: dims ``(variable, lead_time, region,
    model)``, to merge with them (FSS is a domain score: region ``all`` only, NaN elsewhere).

    Deterministic forecasts only; variables without a threshold or missing from a forecast are skipped.
    """
    thresholds = DASHBOARD_THRESHOLDS if thresholds is None else thresholds
    per_model = []
    names = []
    for name, fc in forecasts.items():
        per_var = []
        variables = []
        for v, thr in thresholds.items():
            if v not in fc or v not in truth:
                continue
            da = fc[v]
            extra = [d for d in da.dims if d not in ("init_time", "lead_time", "y", "x")]
            if extra:
                continue
            stats = event_statistics(da, truth[v], [thr], masks, windows_km=[window_km], weights=weights)
            s = event_scores(stats).isel(threshold=0, drop=True)
            ds = s[["pod", "far", "csi", "ets", "sedi"]]
            fss = s["fss"].sel(window_km=window_km, drop=True).drop_vars("window_cells", errors="ignore")
            ds["fss"] = fss.expand_dims(region=["all"]).reindex(region=ds["region"].values)
            for k in ds.data_vars:
                ds[k].attrs["threshold"] = f"{v} >= {thr:g}"
            per_var.append(ds.drop_vars(["window_km", "window_cells"], errors="ignore"))
            variables.append(v)
        if per_var:
            per_model.append(
                xr.concat(per_var, dim=xr.DataArray(variables, dims="variable", name="variable"))
            )
            names.append(str(name))
    if not per_model:
        return xr.Dataset()
    out = xr.concat(per_model, dim=xr.DataArray(names, dims="model", name="model"), join="outer")
    return out.transpose("variable", "lead_time", "region", "model")
