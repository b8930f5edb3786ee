"""Probabilistic scores: exceedance probabilities from members, the Brier score and its decomposition,
reliability diagrams, ROC, the threshold-weighted CRPS and the energy score.

Calling style as :mod:`workbench.scoring.metrics` (``reduce_dims``, ``preserve_dims``, ``weights``);
NaN points are skipped, never scored as zero. Probabilities are in [0, 1]; binary observations are 0/1
(or booleans), NaN where missing.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from workbench.errors import DataError
from workbench.scoring.metrics import Dims, _check_weights, _dims_to_reduce, _mean_of

__all__ = [
    "brier_decomposition",
    "brier_score",
    "energy_score",
    "probability_of_exceedance",
    "reliability_diagram",
    "roc",
    "tw_crps",
]


def _reduce_dims_of(arrays, reduce_dims, preserve_dims, weights, exclude=()) -> list[Hashable]:
    present = []
    for a in [*arrays, weights]:
        if a is not None:
            present += [d for d in a.dims if d not in present and d not in exclude]
    return _dims_to_reduce(present, reduce_dims, preserve_dims)


def _check_probability(p: xr.DataArray) -> None:
    if p.chunks is None:
        v = p.values
        if np.any((v < 0) | (v > 1)):
            raise DataError("Probabilities must lie in [0, 1].")


def _check_binary(o: xr.DataArray) -> xr.DataArray:
    o = o.astype(np.float64) if o.dtype == bool else o
    if o.chunks is None:
        v = o.values
        bad = ~np.isnan(v) & (v != 0) & (v != 1)
        if bad.any():
            raise DataError("Binary observations must be 0, 1 or NaN.")
    return o


def probability_of_exceedance(
    fcst: xr.DataArray, threshold: float | xr.DataArray, member_dim: str = "member", operator: str = ">="
) -> xr.DataArray:
    """Fraction of ensemble members passing ``threshold`` (NaN where any member is NaN).

    .. math:: p_i = \\frac{1}{M}\\sum_m [x_{i,m} \\ge t]
    """
    if member_dim not in fcst.dims:
        raise DataError(f"fcst has no member dim {member_dim!r} (dims {list(fcst.dims)}).")
    ops = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less}
    if operator not in ops:
        raise DataError(f"operator must be one of {sorted(ops)}, not {operator!r}.")
    event = ops[operator](fcst, threshold).astype(np.float64)
    p = event.mean(member_dim).where(fcst.notnull().all(member_dim))
    return p.rename("probability").assign_attrs(threshold=str(threshold), operator=operator)


def brier_score(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Brier score :math:`\\sum_i w_i (p_i - o_i)^2 / \\sum_i w_i` of probabilities against 0/1 outcomes."""
    _check_probability(fcst)
    obs = _check_binary(obs)
    return _mean_of((fcst - obs) ** 2, reduce_dims, preserve_dims, weights).rename("brier_score")


def _bin_index(p: xr.DataArray, edges: np.ndarray) -> xr.DataArray:
    k = len(edges) - 1
    return xr.apply_ufunc(
        lambda x: np.clip(np.searchsorted(edges, x, side="right") - 1, 0, k - 1),
        p,
        dask="parallelized",
        output_dtypes=[np.int64],
    )


def _bin_sums(fcst, obs, bins, reduce_dims, preserve_dims, weights):
    """Per probability bin: weight, weighted sum of p, of p^2, of o; over the reduced dims."""
    _check_probability(fcst)
    obs = _check_binary(obs)
    weights = _check_weights(weights)
    if np.ndim(bins) == 0:
        n = int(bins)
        if n < 1:
            raise DataError("bins must be a positive number of bins or a sequence of edges.")
        edges = np.linspace(0.0, 1.0, n + 1)
    else:
        edges = np.asarray(bins, dtype=float)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise DataError("bin edges must be an increasing sequence of at least two numbers.")
    dims = _reduce_dims_of([fcst, obs], reduce_dims, preserve_dims, weights)
    valid = fcst.notnull() & obs.notnull()
    w = valid.astype(np.float64) if weights is None else valid * weights
    p = fcst.where(valid, 0.0)
    o = obs.where(valid, 0.0)
    k = xr.DataArray(np.arange(len(edges) - 1), dims="bin")
    onehot = (_bin_index(fcst.fillna(0.0), edges) == k) * w
    sums = xr.Dataset(
        {
            "weight": onehot.sum(dims),
            "sum_p": (onehot * p).sum(dims),
            "sum_p2": (onehot * p * p).sum(dims),
            "sum_o": (onehot * o).sum(dims),
            "sum_po": (onehot * p * o).sum(dims),
        }
    )
    centres = 0.5 * (edges[:-1] + edges[1:])
    return sums.assign_coords(bin=centres, bin_lower=("bin", edges[:-1]), bin_upper=("bin", edges[1:]))


def reliability_diagram(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    bins: int | Sequence[float] = 10,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.Dataset:
    """Reliability diagram data per probability bin.

    Returns
    -------
    xarray.Dataset
        Over dim ``bin`` (centres; ``bin_lower``/``bin_upper`` edges): ``forecast_probability``
        (weighted mean forecast probability in the bin), ``observed_frequency`` (weighted event
        frequency), ``weight`` (sum of weights, the sharpness histogram) and ``fraction``.
    """
    s = _bin_sums(fcst, obs, bins, reduce_dims, preserve_dims, weights)
    has = s["weight"] > 0
    return xr.Dataset(
        {
            "forecast_probability": (s["sum_p"] / s["weight"]).where(has),
            "observed_frequency": (s["sum_o"] / s["weight"]).where(has),
            "weight": s["weight"],
            "fraction": s["weight"] / s["weight"].sum("bin"),
        }
    )


def brier_decomposition(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    bins: int | Sequence[float] = 10,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.Dataset:
    """Brier score and its Murphy (1973) parts, with the within-bin terms of Stephenson et al. (2008).

    With bins :math:`k` of weight share :math:`n_k/N`, mean forecast :math:`\\bar p_k`, event frequency
    :math:`\\bar o_k` and overall frequency :math:`\\bar o`:

    .. math:: \\mathrm{REL} = \\sum_k \\tfrac{n_k}{N}(\\bar p_k - \\bar o_k)^2,\\quad
              \\mathrm{RES} = \\sum_k \\tfrac{n_k}{N}(\\bar o_k - \\bar o)^2,\\quad
              \\mathrm{UNC} = \\bar o (1 - \\bar o)

    and :math:`\\mathrm{BS} = \\mathrm{REL} - \\mathrm{RES} + \\mathrm{UNC} + \\mathrm{WBV} - 2\\,\\mathrm{WBC}`,
    where the within-bin variance WBV and covariance WBC of the forecast vanish when every bin holds a
    single probability value (e.g. the :math:`M+1` values of an :math:`M`-member ensemble, with one bin
    per value). The identity holds exactly; ``brier_score`` is the direct score.
    """
    s = _bin_sums(fcst, obs, bins, reduce_dims, preserve_dims, weights)
    obs_f = _check_binary(obs)
    n = s["weight"].sum("bin")
    has = s["weight"] > 0
    pk = (s["sum_p"] / s["weight"]).where(has, 0.0)
    ok = (s["sum_o"] / s["weight"]).where(has, 0.0)
    obar = s["sum_o"].sum("bin") / n
    share = s["weight"] / n
    rel = (share * (pk - ok) ** 2).sum("bin")
    res = (share * (ok - obar) ** 2).sum("bin")
    unc = obar * (1 - obar)
    wbv = ((s["sum_p2"] - s["weight"] * pk**2) / n).sum("bin")
    wbc = ((s["sum_po"] - s["weight"] * pk * ok) / n).sum("bin")
    bs = brier_score(fcst, obs_f, reduce_dims=reduce_dims, preserve_dims=preserve_dims, weights=weights)
    return xr.Dataset(
        {
            "brier_score": bs,
            "reliability": rel,
            "resolution": res,
            "uncertainty": unc,
            "within_bin_variance": wbv,
            "within_bin_covariance": wbc,
        }
    )


def roc(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    thresholds: Sequence[float] | None = None,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.Dataset:
    """Relative operating characteristic: POD and POFD of "p >= threshold" per probability threshold,
    and the area under the curve (trapezoids through (0, 0) and (1, 1)).

    Returns
    -------
    xarray.Dataset
        ``pod`` and ``pofd`` over dim ``threshold`` (default 0, 0.1, ..., 1), ``auc``.
    """
    _check_probability(fcst)
    obs = _check_binary(obs)
    weights = _check_weights(weights)
    thr = np.linspace(0, 1, 11) if thresholds is None else np.sort(np.asarray(thresholds, dtype=float))
    if thr.ndim != 1 or thr.size == 0 or np.any((thr < 0) | (thr > 1)):
        raise DataError("ROC thresholds must be probabilities in [0, 1].")
    dims = _reduce_dims_of([fcst, obs], reduce_dims, preserve_dims, weights)
    valid = fcst.notnull() & obs.notnull()
    w = valid.astype(np.float64) if weights is None else valid * weights
    t = xr.DataArray(thr, dims="threshold", coords={"threshold": thr})
    warn = (fcst >= t) & valid
    o = obs.where(valid, 0.0)
    hits = (warn * o * w).sum(dims)
    fas = (warn * (1 - o) * w).sum(dims)
    n_event = (o * w).sum(dims)
    n_none = ((1 - o) * w).sum(dims)
    pod = (hits / n_event).where(n_event > 0)
    pofd = (fas / n_none).where(n_none > 0)
    # the curve runs from (1, 1) at threshold 0 down to (0, 0): close it at both ends
    x = xr.concat(
        [xr.ones_like(pofd.isel(threshold=0)), pofd, xr.zeros_like(pofd.isel(threshold=0))], "threshold"
    )
    y = xr.concat(
        [xr.ones_like(pod.isel(threshold=0)), pod, xr.zeros_like(pod.isel(threshold=0))], "threshold"
    )
    dx = x.diff("threshold", label="lower").drop_vars("threshold", errors="ignore")
    ym = (
        ((y.shift(threshold=-1) + y) / 2)
        .isel(threshold=slice(None, -1))
        .drop_vars("threshold", errors="ignore")
    )
    auc = -(dx * ym).sum("threshold", skipna=False)
    return xr.Dataset({"pod": pod, "pofd": pofd, "auc": auc})


def _crps_pointwise(ens: np.ndarray, obs: np.ndarray, fair: bool) -> np.ndarray:
    """Ensemble CRPS along the last axis, O(M log M): mean|x-y| - sum_ij|xi-xj| / (2 M^2 or 2M(M-1))."""
    m = ens.shape[-1]
    x = np.sort(ens, axis=-1)
    skill = np.mean(np.abs(x - obs[..., None]), axis=-1)
    # sum_ij |x_i - x_j| = 2 sum_i (2i - M - 1) x_(i) for sorted x, i = 1..M
    coef = 2.0 * np.arange(1, m + 1) - m - 1
    pair = 2.0 * np.sum(coef * x, axis=-1)
    return skill - pair / (2.0 * m * (m - 1) if fair else 2.0 * m * m)


def tw_crps(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    threshold: float | xr.DataArray,
    member_dim: str = "member",
    *,
    tail: str = "upper",
    method: str = "ecdf",
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Threshold-weighted CRPS of an ensemble with tail weight :math:`[x \\ge t]` (upper) or
    :math:`[x \\le t]` (lower): the CRPS of the chained values :math:`v(x) = \\max(x, t)` (upper) or
    :math:`\\min(x, t)` (lower) (Allen et al. 2023), so only errors in the tail count.

    ``method="ecdf"`` uses the empirical CDF of the members (divisor :math:`2M^2`), ``"fair"`` the
    fair estimator (:math:`2M(M-1)`), as ``scores.probability.tail_tw_crps_for_ensemble``. Points where
    the observation or any member is NaN are skipped.
    """
    if tail not in ("upper", "lower"):
        raise DataError(f"tail must be 'upper' or 'lower', not {tail!r}.")
    if method not in ("ecdf", "fair"):
        raise DataError(f"method must be 'ecdf' or 'fair', not {method!r}.")
    if member_dim not in fcst.dims:
        raise DataError(f"fcst has no member dim {member_dim!r} (dims {list(fcst.dims)}).")
    if fcst.sizes[member_dim] < 2 and method == "fair":
        raise DataError("The fair estimator needs at least 2 members.")
    chain = np.maximum if tail == "upper" else np.minimum
    vf = chain(fcst, threshold).where(fcst.notnull())
    vo = chain(obs, threshold).where(obs.notnull())
    vf, vo = xr.broadcast(vf, vo, exclude=[member_dim])
    point = xr.apply_ufunc(
        _crps_pointwise,
        vf,
        vo,
        input_core_dims=[[member_dim], []],
        kwargs={"fair": method == "fair"},
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    return _mean_of(point, reduce_dims, preserve_dims, weights).rename("tw_crps")


def _energy_pointwise(ens: np.ndarray, obs: np.ndarray, fair: bool) -> np.ndarray:
    """``ens`` (..., M, D), ``obs`` (..., D)."""
    m = ens.shape[-2]
    skill = np.linalg.norm(ens - obs[..., None, :], axis=-1).mean(-1)
    diff = ens[..., :, None, :] - ens[..., None, :, :]
    pair = np.linalg.norm(diff, axis=-1).sum((-1, -2))
    return skill - pair / (2.0 * m * (m - 1) if fair else 2.0 * m * m)


def energy_score(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    vector_dims: str | Sequence[str],
    member_dim: str = "member",
    *,
    fair: bool = True,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Energy score of a multivariate ensemble (Gneiting and Raftery 2007):

    .. math:: \\mathrm{ES} = \\frac1M\\sum_m \\lVert x_m - y\\rVert
              - \\frac{1}{2M(M-1)}\\sum_{m,k}\\lVert x_m - x_k\\rVert

    (``fair=False``: divisor :math:`2M^2`). The Euclidean norm runs over ``vector_dims`` (e.g.
    ``"variable"`` or the grid, ideally of standardised fields); a vector with any NaN is skipped.
    It reduces to the CRPS for one component.
    """
    vdims = [vector_dims] if isinstance(vector_dims, str) else list(vector_dims)
    for d in [*vdims, member_dim]:
        if d not in fcst.dims:
            raise DataError(f"fcst has no dim {d!r} (dims {list(fcst.dims)}).")
    m = fcst.sizes[member_dim]
    if m < 2:
        raise DataError("The energy score needs at least 2 members.")
    f = fcst.stack(_vec=vdims)
    o = obs.stack(_vec=vdims)
    f, o = xr.broadcast(f, o, exclude=[member_dim, "_vec"])
    point = xr.apply_ufunc(
        _energy_pointwise,
        f,
        o,
        input_core_dims=[[member_dim, "_vec"], ["_vec"]],
        kwargs={"fair": fair},
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    bad = f.isnull().any([member_dim, "_vec"]) | o.isnull().any("_vec")
    point = point.where(~bad)
    return _mean_of(point, reduce_dims, preserve_dims, weights).rename("energy_score")
