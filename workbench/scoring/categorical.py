"""Categorical (yes/no event) scores from a weighted 2x2 contingency table, per threshold.

An event is "the field passes the threshold" (``>=`` by default, as in ``scores``'
``ThresholdEventOperator``). For every threshold, with weights :math:`w_i` over the valid points
(forecast and truth both non-NaN; NaN points are skipped, never counted as "no event"):

=======================  ======================================================
``hits`` (a)             :math:`\\sum w_i [f_i \\ge t][o_i \\ge t]`
``false_alarms`` (b)     :math:`\\sum w_i [f_i \\ge t][o_i < t]`
``misses`` (c)           :math:`\\sum w_i [f_i < t][o_i \\ge t]`
``correct_negatives`` d  :math:`\\sum w_i [f_i < t][o_i < t]`
=======================  ======================================================

and, with :math:`n = a+b+c+d`, :math:`H = a/(a+c)` and :math:`F = b/(b+d)`:

- ``pod`` :math:`= H`, ``far`` (false alarm *ratio*) :math:`= b/(a+b)`, ``pofd`` :math:`= F`;
- ``csi`` :math:`= a/(a+b+c)`; ``frequency_bias`` :math:`= (a+b)/(a+c)`;
- ``ets`` :math:`= (a - a_r)/(a+b+c-a_r)`, :math:`a_r = (a+b)(a+c)/n` (hits expected by chance);
- ``sedi`` :math:`= \\frac{\\ln F - \\ln H - \\ln(1-F) + \\ln(1-H)}{\\ln F + \\ln H + \\ln(1-F) + \\ln(1-H)}`
  (Ferro and Stephenson 2011; it does not degenerate to 0 for rare events as CSI and ETS do).

A ratio whose denominator is 0 (e.g. POD when the event never happened) is NaN, never 0 or 1.
The table holds sums, so tables of chunks, initial times or workers add up before the ratios are taken.
"""

from __future__ import annotations

import operator as _op
from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
import xarray as xr

try:  # numba ships with datashader, a dependency; the array formulas stand in without it
    import numba as _numba
except ImportError:  # pragma: no cover - exercised only without numba
    _numba = None

from workbench.errors import DataError
from workbench.scoring.metrics import Dims, _check_weights, _dims_to_reduce

__all__ = [
    "contingency_scores",
    "contingency_table",
    "scores_from_table",
    "table_scores",
    "thresholds_from_rules",
]

TABLE = ("hits", "false_alarms", "misses", "correct_negatives")
SCORES = ("pod", "far", "pofd", "csi", "ets", "frequency_bias", "sedi")
_OPERATORS = {">=": _op.ge, ">": _op.gt, "<=": _op.le, "<": _op.lt}


def _threshold_array(thresholds) -> xr.DataArray:
    if isinstance(thresholds, xr.DataArray):
        if "threshold" not in thresholds.dims:
            if thresholds.ndim:
                raise DataError("A thresholds DataArray needs a 'threshold' dimension.")
            thresholds = thresholds.expand_dims("threshold")
        out = thresholds
    else:
        values = np.atleast_1d(np.asarray(thresholds, dtype=float))
        if values.ndim != 1 or values.size == 0:
            raise DataError("thresholds must be a number or a non-empty 1-D sequence of numbers.")
        out = xr.DataArray(values, dims="threshold", coords={"threshold": values})
    if bool(out.isnull().any()):
        raise DataError("thresholds contain NaN.")
    return out


def contingency_table(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    thresholds: float | Sequence[float] | xr.DataArray,
    *,
    operator: str = ">=",
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.Dataset:
    """Weighted 2x2 contingency table per threshold.

    Parameters
    ----------
    fcst, obs : xarray.DataArray
        Forecast and observation (NumPy or Dask backed), broadcast against each other.
    thresholds : float, sequence of float, or DataArray with a ``threshold`` dim
        Event thresholds; a DataArray may also vary over other dims (e.g. per grid point).
    operator : {">=", ">", "<=", "<"}
        How a value is compared with the threshold to be an event.
    reduce_dims, preserve_dims, weights
        As in :func:`workbench.scoring.metrics.rmse`; ``threshold`` is always kept.

    Returns
    -------
    xarray.Dataset
        ``hits``, ``false_alarms``, ``misses``, ``correct_negatives`` (weighted counts) and ``n_valid``
        (weighted count of valid points), with a ``threshold`` dim.
    """
    if operator not in _OPERATORS:
        raise DataError(f"operator must be one of {sorted(_OPERATORS)}, not {operator!r}.")
    if not isinstance(fcst, xr.DataArray) or not isinstance(obs, xr.DataArray):
        raise DataError("fcst and obs must be xarray.DataArray (use contingency_scores for Datasets).")
    weights = _check_weights(weights)
    thr = _threshold_array(thresholds)
    present = list(dict.fromkeys([*fcst.dims, *obs.dims, *(() if weights is None else weights.dims)]))
    dims = [d for d in _dims_to_reduce(present, reduce_dims, preserve_dims) if d != "threshold"]
    cmp = _OPERATORS[operator]
    valid = fcst.notnull() & obs.notnull()
    f_ev = cmp(fcst, thr) & valid
    o_ev = cmp(obs, thr) & valid
    f_no = ~cmp(fcst, thr) & valid
    o_no = ~cmp(obs, thr) & valid
    cells = {
        "hits": f_ev & o_ev,
        "false_alarms": f_ev & o_no,
        "misses": f_no & o_ev,
        "correct_negatives": f_no & o_no,
    }
    out = {}
    for name, cell in cells.items():
        x = cell.astype(np.float64)
        if weights is not None:
            x = x * weights
        out[name] = x.sum(dims) if dims else x
    table = xr.Dataset(out)
    table["n_valid"] = sum(table[k] for k in TABLE)
    table.attrs.update({"operator": operator, "event": f"value {operator} threshold"})
    return table


SCORE_NAMES = ("pod", "far", "pofd", "csi", "ets", "frequency_bias", "sedi")


def table_scores(a, b, c, d) -> dict:
    """POD, FAR, POFD, CSI, ETS, frequency bias and SEDI from the four cells of contingency tables
    (hits, false alarms, misses, correct negatives): NumPy arrays or xarray objects, any shape; NaN
    where a score's denominator is zero. NumPy arrays keep the bootstrap's thousand resampled tables
    free of xarray's per-operation alignment, and are scored by one compiled loop where numba is
    installed (the same formulas, about 4x faster than thirty NumPy passes)."""
    if _nb_table_scores is not None and all(isinstance(x, np.ndarray) for x in (a, b, c, d)):
        cells = np.broadcast_arrays(a, b, c, d)
        shape = cells[0].shape
        flat = [np.ascontiguousarray(x, dtype=np.float64).reshape(-1) for x in cells]
        out = np.empty((len(SCORE_NAMES), flat[0].size))
        _nb_table_scores(*flat, out)
        return {k: out[j].reshape(shape) for j, k in enumerate(SCORE_NAMES)}
    return _table_scores_array(a, b, c, d)


def _table_scores_array(a, b, c, d) -> dict:
    """:func:`table_scores` in array operations: xarray, Dask, or NumPy without numba."""
    n = a + b + c + d

    def ratio(num, den):
        q = num / den
        return q.where(den > 0) if isinstance(q, xr.DataArray) else np.where(den > 0, q, np.nan)

    with np.errstate(divide="ignore", invalid="ignore"):
        hit_rate = ratio(a, a + c)
        f_rate = ratio(b, b + d)
        a_random = ratio((a + b) * (a + c), n)
        out = {
            "pod": hit_rate,
            "far": ratio(b, a + b),
            "pofd": f_rate,
            "csi": ratio(a, a + b + c),
            "ets": ratio(a - a_random, a + b + c - a_random),
            "frequency_bias": ratio(a + b, a + c),
        }
        lf, lh = np.log(f_rate), np.log(hit_rate)
        l1f, l1h = np.log(1 - f_rate), np.log(1 - hit_rate)
        out["sedi"] = (lf - lh - l1f + l1h) / (lf + lh + l1f + l1h)
    return out


_nb_table_scores = None
if _numba is not None:
    # no fastmath: it would let LLVM assume no NaN or infinity, which the empty tables and SEDI's logs
    # of 0 produce on purpose; error_model="numpy" gives IEEE results for x / 0 instead of raising
    @_numba.njit(nogil=True, cache=True, error_model="numpy")
    def _nb_table_scores(a, b, c, d, out):  # pragma: no cover - compiled
        """The rows of ``out`` (:data:`SCORE_NAMES`) from the flat cells ``a, b, c, d``: the formulas of
        :func:`_table_scores_array`, each table's seven scores from its four cells in registers."""
        nan = np.nan
        for i in range(a.shape[0]):
            ai, bi, ci, di = a[i], b[i], c[i], d[i]
            n = ai + bi + ci + di
            h = ai / (ai + ci) if ai + ci > 0 else nan
            f = bi / (bi + di) if bi + di > 0 else nan
            a_r = (ai + bi) * (ai + ci) / n if n > 0 else nan
            out[0, i] = h
            out[1, i] = bi / (ai + bi) if ai + bi > 0 else nan
            out[2, i] = f
            out[3, i] = ai / (ai + bi + ci) if ai + bi + ci > 0 else nan
            e = ai + bi + ci - a_r
            out[4, i] = (ai - a_r) / e if e > 0 else nan
            out[5, i] = (ai + bi) / (ai + ci) if ai + ci > 0 else nan
            lf, lh, l1f, l1h = np.log(f), np.log(h), np.log(1 - f), np.log(1 - h)
            out[6, i] = (lf - lh - l1f + l1h) / (lf + lh + l1f + l1h)


def scores_from_table(table: xr.Dataset) -> xr.Dataset:
    """POD, FAR, POFD, CSI, ETS, frequency bias and SEDI from a contingency table (see module doc)."""
    missing = [k for k in TABLE if k not in table]
    if missing:
        raise DataError(f"The contingency table lacks {missing}.")
    # aligned once, then scored on the arrays (NumPy or Dask): xarray's alignment at each of the
    # score's thirty operations cost more than the arithmetic on a bootstrap's tables
    cells = xr.broadcast(*(table[k] for k in TABLE))
    dims, coords = cells[0].dims, cells[0].coords
    out = {k: xr.DataArray(v, coords, dims) for k, v in table_scores(*(c.data for c in cells)).items()}
    long_names = {
        "pod": "probability of detection (hit rate)",
        "far": "false alarm ratio",
        "pofd": "probability of false detection (false alarm rate)",
        "csi": "critical success index (threat score)",
        "ets": "equitable threat score (Gilbert skill score)",
        "frequency_bias": "frequency bias (forecast events / observed events)",
        "sedi": "symmetric extremal dependence index",
    }
    return xr.Dataset({k: v.assign_attrs(long_name=long_names[k]) for k, v in out.items()})


def contingency_scores(
    forecast: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    thresholds: float | Sequence[float] | xr.DataArray | Mapping[Hashable, float | Sequence[float]],
    *,
    operator: str | Mapping[Hashable, str] = ">=",
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
    include_table: bool = True,
) -> xr.Dataset:
    """Contingency table and categorical scores per threshold (and variable, for Datasets).

    Parameters
    ----------
    forecast, truth : xarray.DataArray or Dataset
        With Datasets, every forecast variable that has ``thresholds`` is scored and the result gains
        a ``variable`` dim (thresholds are then indexed by ``threshold_index``, as they differ per
        variable; the values are in the ``threshold`` coordinate).
    thresholds : number, sequence, DataArray, or mapping ``{variable: thresholds}``
        A mapping (e.g. from :func:`thresholds_from_rules`) is required for Datasets.
    operator : str or mapping ``{variable: operator}``
        Event comparison, ``">="`` by default.
    reduce_dims, preserve_dims, weights
        As in :func:`contingency_table`. To score per region and lead time, preserve ``lead_time`` and
        pass area weights times the region mask (one call per region), or keep a ``region`` dim on the
        weights and preserve it.
    include_table : bool
        Keep the table counts next to the scores.

    Returns
    -------
    xarray.Dataset
        The scores of :func:`scores_from_table` (and the table) with a ``threshold`` dim.
    """
    if isinstance(forecast, xr.Dataset) != isinstance(truth, xr.Dataset):
        raise DataError("forecast and truth must both be DataArrays or both be Datasets.")
    if isinstance(forecast, xr.DataArray):
        if isinstance(thresholds, Mapping):
            name = forecast.name
            if name not in thresholds:
                raise DataError(
                    f"thresholds has no entry for {name!r} (it has {sorted(map(str, thresholds))})."
                )
            thresholds = thresholds[name]
        op = operator[forecast.name] if isinstance(operator, Mapping) else operator
        table = contingency_table(
            forecast,
            truth,
            thresholds,
            operator=op,
            reduce_dims=reduce_dims,
            preserve_dims=preserve_dims,
            weights=weights,
        )
        scores = scores_from_table(table)
        return xr.merge([table, scores]) if include_table else scores
    if not isinstance(thresholds, Mapping):
        raise DataError("With Datasets, give thresholds as a mapping {variable: thresholds}.")
    names = [v for v in forecast.data_vars if v in thresholds]
    if not names:
        raise DataError(f"No forecast variable has thresholds (given for {sorted(map(str, thresholds))}).")
    missing = [v for v in names if v not in truth]
    if missing:
        raise DataError(f"The truth lacks the variables {missing}.")
    parts = []
    for name in names:
        ds = contingency_scores(
            forecast[name],
            truth[name],
            thresholds,
            operator=operator,
            reduce_dims=reduce_dims,
            preserve_dims=preserve_dims,
            weights=weights,
            include_table=include_table,
        )
        values = ds["threshold"].values
        ds = ds.rename({"threshold": "threshold_index"}).assign_coords(
            threshold_index=np.arange(values.size), threshold=("threshold_index", values)
        )
        parts.append(ds)
    return xr.concat(parts, dim=xr.DataArray(names, dims="variable", name="variable"), join="outer")


def thresholds_from_rules(rules: Iterable, variables: Iterable[str] | None = None) -> dict[str, list[float]]:
    """Fixed thresholds per variable from event rules (objects with ``variable``, ``value`` and
    optionally ``per_hour``), e.g. :data:`workbench.events.thresholds.DEFAULT_RULES`.

    Rules with a quantile and no fixed ``value`` are skipped (their threshold depends on a climatology
    and is per grid point: pass it as a DataArray). Per-hour rules give the hourly value; scale it to
    the accumulation period of the data before use.
    """
    out: dict[str, list[float]] = {}
    for rule in rules:
        var, value = getattr(rule, "variable", None), getattr(rule, "value", None)
        if var is None or value is None:
            continue
        if variables is not None and var not in variables:
            continue
        out.setdefault(str(var), [])
        if float(value) not in out[str(var)]:
            out[str(var)].append(float(value))
    return {k: sorted(v) for k, v in out.items()}
