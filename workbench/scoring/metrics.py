"""Verification metrics in the calling style of the ``scores`` package.

Every metric takes ``fcst, obs`` as xarray objects and the keywords ``reduce_dims``, ``preserve_dims``
(at most one of them; ``preserve_dims="all"`` keeps every dimension) and ``weights`` (broadcast against
the data, e.g. :func:`workbench.grids.area_weights`, or area weights times a region mask). Points where
the forecast or the observation is NaN are skipped: they enter neither the weighted sums nor the sum of
weights, so a missing value is never averaged as a zero error.

For weights :math:`w_i \\ge 0` over the reduced points :math:`i` with valid data, the weighted mean is
:math:`\\langle x \\rangle_w = \\sum_i w_i x_i / \\sum_i w_i`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import xarray as xr

from workbench.errors import DataError

__all__ = [
    "acc",
    "bias",
    "crps_ensemble",
    "mae",
    "mean_error",
    "rank_histogram",
    "rmse",
    "spread",
    "spread_skill_ratio",
    "variance_split",
]

Dims = Iterable[Hashable] | str | None


def _as_list(dims: Dims) -> list[Hashable] | None:
    if dims is None:
        return None
    if isinstance(dims, str):
        return [dims]
    return list(dims)


def _dims_to_reduce(present: Sequence[Hashable], reduce_dims: Dims, preserve_dims: Dims) -> list[Hashable]:
    """The dimensions to average over, following the ``scores`` rules."""
    if reduce_dims is not None and preserve_dims is not None:
        raise DataError("Give reduce_dims or preserve_dims, not both.")
    if preserve_dims == "all":
        return []
    if reduce_dims is not None:
        wanted = _as_list(reduce_dims)
        missing = [d for d in wanted if d not in present]
        if missing:
            raise DataError(f"reduce_dims {missing} are not dimensions of the data {list(present)}.")
        return wanted
    if preserve_dims is not None:
        keep = _as_list(preserve_dims)
        missing = [d for d in keep if d not in present]
        if missing:
            raise DataError(f"preserve_dims {missing} are not dimensions of the data {list(present)}.")
        return [d for d in present if d not in keep]
    return list(present)


def _check_weights(weights: xr.DataArray | None) -> xr.DataArray | None:
    if weights is None:
        return None
    if not isinstance(weights, xr.DataArray):
        raise DataError("weights must be an xarray.DataArray with named dimensions.")
    values = weights.values if weights.chunks is None else None
    if values is not None:
        if np.isnan(values).any():
            raise DataError("weights contain NaN; replace them, e.g. weights.fillna(0).")
        if (values < 0).any():
            raise DataError("weights must not be negative.")
    return weights


def _weighted_sum(x: xr.DataArray, weights: xr.DataArray | None, dims: list[Hashable]) -> xr.DataArray:
    """Sum of ``w * x`` over ``dims``, NaN in ``x`` skipped."""
    if weights is None:
        return x.sum(dims, skipna=True) if dims else x.fillna(0.0)
    if not dims:
        return (x * weights).fillna(0.0)
    return x.weighted(weights).sum(dims, skipna=True)


def _weighted_mean(x: xr.DataArray, weights: xr.DataArray | None, dims: list[Hashable]) -> xr.DataArray:
    """Weighted mean over ``dims``; NaN points leave both the numerator and the sum of weights."""
    if not dims:
        return x
    if weights is None:
        return x.mean(dims, skipna=True)
    return x.weighted(weights).mean(dims, skipna=True)


def _error(fcst: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    return fcst - obs


def _mean_of(
    x: xr.DataArray, reduce_dims: Dims, preserve_dims: Dims, weights: xr.DataArray | None
) -> xr.DataArray:
    weights = _check_weights(weights)
    present = list(x.dims)
    if weights is not None:
        present += [d for d in weights.dims if d not in present]
    dims = _dims_to_reduce(present, reduce_dims, preserve_dims)
    if weights is not None and dims:
        # weights are broadcast over the reduced dims only; extra weight dims are data dims too
        x, _ = xr.broadcast(x, weights)
    return _weighted_mean(x, weights, dims)


def rmse(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Root mean squared error.

    .. math:: \\mathrm{RMSE} = \\sqrt{\\sum_i w_i (f_i - o_i)^2 \\big/ \\sum_i w_i}

    Parameters
    ----------
    fcst, obs : xarray.DataArray
        Forecast and observation, broadcast against each other.
    reduce_dims, preserve_dims : str or iterable of str, optional
        Dimensions to average over, or to keep (all others are averaged). At most one of them.
        ``preserve_dims="all"`` returns the pointwise absolute error.
    weights : xarray.DataArray, optional
        Non-negative weights, e.g. area weights times a region mask.

    Returns
    -------
    xarray.DataArray
        The RMSE over the reduced dimensions.
    """
    err = _error(fcst, obs)
    return np.sqrt(_mean_of(err**2, reduce_dims, preserve_dims, weights)).rename("rmse")


def mae(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Mean absolute error.

    .. math:: \\mathrm{MAE} = \\sum_i w_i |f_i - o_i| \\big/ \\sum_i w_i

    Parameters and returns as in :func:`rmse`.
    """
    err = _error(fcst, obs)
    return _mean_of(abs(err), reduce_dims, preserve_dims, weights).rename("mae")


def bias(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Bias (mean error), forecast minus observation.

    .. math:: \\mathrm{bias} = \\sum_i w_i (f_i - o_i) \\big/ \\sum_i w_i

    Positive values mean the forecast is too high. Parameters and returns as in :func:`rmse`.
    """
    err = _error(fcst, obs)
    return _mean_of(err, reduce_dims, preserve_dims, weights).rename("bias")


mean_error = bias


def acc(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    climatology: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Anomaly correlation coefficient against a climatology (uncentred, as in WeatherBench 2).

    With anomalies :math:`f'_i = f_i - c_i` and :math:`o'_i = o_i - c_i`,

    .. math:: \\mathrm{ACC} = \\frac{\\sum_i w_i f'_i o'_i}{\\sqrt{\\sum_i w_i f'^2_i \\; \\sum_i w_i o'^2_i}}

    The sums run over points where forecast, observation and climatology are all valid.

    Parameters
    ----------
    fcst, obs : xarray.DataArray
        Forecast and observation.
    climatology : xarray.DataArray
        The climatological mean, broadcast against ``obs`` (already selected for the valid times).
    reduce_dims, preserve_dims, weights
        As in :func:`rmse`.

    Returns
    -------
    xarray.DataArray
        ACC in [-1, 1] over the reduced dimensions.
    """
    weights = _check_weights(weights)
    fa = fcst - climatology
    oa = obs - climatology
    valid = fa.notnull() & oa.notnull()
    fa = fa.where(valid)
    oa = oa.where(valid)
    present = list(fa.dims) + ([d for d in weights.dims if d not in fa.dims] if weights is not None else [])
    dims = _dims_to_reduce(present, reduce_dims, preserve_dims)
    if weights is not None:
        fa, oa, _ = xr.broadcast(fa, oa, weights)
    num = _weighted_sum(fa * oa, weights, dims)
    den = np.sqrt(_weighted_sum(fa**2, weights, dims) * _weighted_sum(oa**2, weights, dims))
    return (num / den).rename("acc")


# ---------------------------------------------------------------------------------------------------
# Ensembles


def _stack_members(fcst: xr.DataArray, member_dim: str | Sequence[str]) -> tuple[xr.DataArray, int]:
    """Put the ensemble on one dimension named ``_member``; returns it and the number of members."""
    dims = [member_dim] if isinstance(member_dim, str) else list(member_dim)
    missing = [d for d in dims if d not in fcst.dims]
    if missing:
        raise DataError(f"member dimension(s) {missing} not in the forecast dims {list(fcst.dims)}.")
    stacked = fcst.stack(_member=dims) if len(dims) > 1 else fcst.rename({dims[0]: "_member"})
    stacked = stacked.drop_vars([d for d in ("_member", *dims) if d in stacked.coords], errors="ignore")
    return stacked, int(stacked.sizes["_member"])


def _fair_crps_pointwise(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Fair CRPS of ensemble ``ens`` (members on the last axis) for ``obs``.

    Uses the sorted-members identity :math:`\\sum_{i,j}|x_i - x_j| = 2\\sum_k (2k - M + 1) x_{(k)}`
    (0-based ranks ``k``), which is O(M log M) instead of O(M^2).
    """
    m = ens.shape[-1]
    skill = np.abs(ens - obs[..., None]).mean(-1)
    ranked = np.sort(ens, axis=-1)
    coef = 2.0 * np.arange(m) - m + 1.0
    pair_sum = (ranked * coef).sum(-1)  # = (1/2) sum_{i,j} |x_i - x_j|
    return skill - pair_sum / (m * (m - 1))


def crps_ensemble(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: str | Sequence[str] = "member",
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Continuous ranked probability score of an ensemble, fair (unbiased in ensemble size) estimator.

    For members :math:`x_1..x_M` and observation :math:`y` (Ferro 2014),

    .. math:: \\mathrm{CRPS}_F = \\frac{1}{M}\\sum_{i}|x_i - y|
              - \\frac{1}{2M(M-1)}\\sum_{i}\\sum_{j}|x_i - x_j|

    then averaged with ``weights`` over the reduced dimensions. It is the expected CRPS of an
    infinite ensemble drawn from the same distribution, so ensembles of different sizes compare fairly.

    Parameters
    ----------
    fcst : xarray.DataArray
        Ensemble forecast with the member dimension(s).
    obs : xarray.DataArray
        Observation (no member dimension).
    member_dim : str or sequence of str
        The member dimension; several (e.g. ``("weight_member", "noise_member")``) are pooled.
    reduce_dims, preserve_dims, weights
        As in :func:`rmse`, over the dimensions left after removing the members.

    Returns
    -------
    xarray.DataArray
        The weighted mean fair CRPS, in the units of the data.
    """
    ens, m = _stack_members(fcst, member_dim)
    if m < 2:
        raise DataError("The fair CRPS needs at least 2 ensemble members.")
    ens, obs_b = xr.broadcast(ens, obs, exclude=["_member"])
    point = xr.apply_ufunc(
        _fair_crps_pointwise,
        ens,
        obs_b,
        input_core_dims=[["_member"], []],
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    return _mean_of(point, reduce_dims, preserve_dims, weights).rename("crps")


def spread(
    fcst: xr.DataArray,
    obs: xr.DataArray | None = None,
    *,
    member_dim: str | Sequence[str] = "member",
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
    ddof: int = 1,
) -> xr.DataArray:
    """Ensemble spread: square root of the weighted mean ensemble variance.

    .. math:: \\mathrm{spread} = \\sqrt{\\sum_i w_i s_i^2 \\big/ \\sum_i w_i},\\quad
              s_i^2 = \\frac{1}{M - \\mathrm{ddof}}\\sum_m (x_{i,m} - \\bar{x}_i)^2

    Parameters
    ----------
    fcst : xarray.DataArray
        Ensemble forecast.
    obs : xarray.DataArray, optional
        When given, points where the observation is NaN are left out, so the spread covers the same
        points as the error it is compared with.
    member_dim : str or sequence of str
        The member dimension(s); several are pooled.
    reduce_dims, preserve_dims, weights
        As in :func:`rmse`.
    ddof : int
        1 (default) for the unbiased variance, 0 for the population variance.

    Returns
    -------
    xarray.DataArray
        The spread, in the units of the data.
    """
    ens, m = _stack_members(fcst, member_dim)
    if m - ddof < 1:
        raise DataError(f"spread with ddof={ddof} needs more than {ddof} members; got {m}.")
    var = ens.var("_member", ddof=ddof, skipna=False)
    if obs is not None:
        var = var.where(obs.notnull())
    return np.sqrt(_mean_of(var, reduce_dims, preserve_dims, weights)).rename("spread")


def spread_skill_ratio(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: str | Sequence[str] = "member",
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Spread-skill ratio with the finite-ensemble correction (Fortin et al. 2014; WeatherBench 2).

    .. math:: \\mathrm{SSR} = \\sqrt{\\frac{M+1}{M}}\\,
              \\frac{\\mathrm{spread}}{\\mathrm{RMSE}(\\bar{x}, y)}

    with the unbiased spread of :func:`spread` and the RMSE of the ensemble mean, both over the same
    valid points. A statistically consistent ensemble has SSR = 1; below 1 it is over-confident.

    Parameters and returns as in :func:`spread`.
    """
    ens, m = _stack_members(fcst, member_dim)
    if m < 2:
        raise DataError("The spread-skill ratio needs at least 2 ensemble members.")
    mean = ens.mean("_member", skipna=False)
    valid = mean.notnull() & obs.notnull()
    var = ens.var("_member", ddof=1, skipna=False).where(valid)
    sq = ((mean - obs) ** 2).where(valid)
    spr = np.sqrt(_mean_of(var, reduce_dims, preserve_dims, weights))
    skill = np.sqrt(_mean_of(sq, reduce_dims, preserve_dims, weights))
    return (np.sqrt((m + 1) / m) * spr / skill).rename("spread_skill_ratio")


_GOLDEN = 0x9E3779B97F4A7C15


def _position_uniform(index: np.ndarray, seed: int) -> np.ndarray:
    """Uniform numbers in [0, 1), one per flat position ``index``, from the SplitMix64 mixer.

    A counter-based generator: the draw at a position depends on the position and ``seed`` only.
    """
    z = index.astype(np.uint64) + np.uint64((seed * _GOLDEN + 1) % 2**64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def rank_histogram(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: str | Sequence[str] = "member",
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """Rank histogram (Talagrand diagram): weighted frequency of the observation's rank in the ensemble.

    The rank of :math:`y` among :math:`M` members is :math:`r = \\#\\{m: x_m < y\\} + U`, with
    :math:`U` uniform on :math:`0..\\#\\{m: x_m = y\\}` so that ties are split at random; the result is
    :math:`h_k = \\sum_i w_i [r_i = k] / \\sum_i w_i` for :math:`k = 0..M`. A flat histogram
    (each :math:`h_k = 1/(M+1)`) means a calibrated ensemble; a U shape, an under-dispersed one.

    Parameters
    ----------
    fcst, obs, member_dim, reduce_dims, preserve_dims, weights
        As in :func:`crps_ensemble`.
    seed : int
        Seed of the random tie-breaking, so results are reproducible. The draw at a point depends on
        the seed and the point's position only, so dask-backed input (which stays lazy) gives the same
        histogram as numpy-backed input, whatever its chunks.

    Returns
    -------
    xarray.DataArray
        Relative frequencies along a new dimension ``rank`` (0..M), summing to 1.
    """
    ens, m = _stack_members(fcst, member_dim)
    ens, obs_b = xr.broadcast(ens, obs, exclude=["_member"])
    # each point's tie-breaking draw is a function of its position, not of the order blocks are
    # computed in, so dask-backed input gives exactly the numpy result whatever its chunks
    strides = np.cumprod([1, *obs_b.shape[::-1]])[-2::-1] if obs_b.ndim else []
    positions = [
        xr.DataArray(np.arange(n, dtype=np.uint64) * np.uint64(s), dims=d)
        for d, n, s in zip(obs_b.dims, obs_b.shape, strides, strict=True)
    ]

    def _rank(x: np.ndarray, y: np.ndarray, *offsets: np.ndarray) -> np.ndarray:
        index = np.zeros(np.shape(y), dtype=np.uint64)
        for offset in offsets:
            index = index + offset
        below = (x < y[..., None]).sum(-1)
        ties = (x == y[..., None]).sum(-1)
        rank = below + np.floor(_position_uniform(index, seed) * (ties + 1)).astype(np.int64)
        bad = np.isnan(y) | np.isnan(x).any(-1)
        return np.where(bad, -1, rank)

    if ens.chunks is not None:
        ens = ens.chunk({"_member": -1})  # the rank needs every member of a point in one block
    rank = xr.apply_ufunc(
        _rank,
        ens,
        obs_b,
        *positions,
        input_core_dims=[["_member"], *[[] for _ in range(1 + len(positions))]],
        dask="parallelized",
        output_dtypes=[np.int64],
    )
    weights = _check_weights(weights)
    present = list(rank.dims) + (
        [d for d in weights.dims if d not in rank.dims] if weights is not None else []
    )
    dims = _dims_to_reduce(present, reduce_dims, preserve_dims)
    if weights is not None:
        rank, weights_b = xr.broadcast(rank, weights)
    hits = xr.concat([(rank == k).where(rank >= 0) for k in range(m + 1)], dim="rank")
    hits = hits.assign_coords(rank=np.arange(m + 1))
    out = _weighted_mean(hits, weights_b if weights is not None else None, dims)
    return out.transpose("rank", ...).rename("rank_histogram")


def variance_split(
    fcst: xr.DataArray,
    obs: xr.DataArray | None = None,
    *,
    epistemic_dim: str = "weight_member",
    aleatoric_dim: str = "noise_member",
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: xr.DataArray | None = None,
    estimator: str = "anova",
) -> xr.Dataset:
    """Split ensemble variance into aleatoric and epistemic parts.

    For members :math:`x_{a,n}` with weight (epistemic) index :math:`a = 1..W` and noise (aleatoric)
    index :math:`n = 1..N`, using population variances (divisor :math:`N`, :math:`W`, :math:`WN`):

    .. math:: \\underbrace{\\mathrm{Var}_{a,n}[x]}_{\\text{total}}
              = \\underbrace{\\mathrm{E}_a\\big[\\mathrm{Var}_n[x]\\big]}_{\\text{aleatoric}}
              + \\underbrace{\\mathrm{Var}_a\\big[\\mathrm{E}_n[x]\\big]}_{\\text{epistemic}}

    The identity holds exactly at every point, hence also for the weighted means (``estimator=
    "population"``). But the population variance of only W member means is biased low by
    :math:`(W-1)/W` and carries :math:`\\sigma_a^2/N` of noise, so the default ``estimator="anova"``
    returns the unbiased one-way ANOVA variance components of the weighted means,

    .. math:: \\hat\\sigma_a^2 = \\tfrac{N}{N-1}\\,\\mathrm{aleatoric}_{pop},\\qquad
              \\hat\\sigma_e^2 = \\tfrac{W}{W-1}\\,\\mathrm{epistemic}_{pop} - \\hat\\sigma_a^2 / N,

    total = their sum (the variance of a new member drawn at a new weight); :math:`\\hat\\sigma_e^2`
    is unbiased and may be slightly negative when the epistemic part is small.

    Parameters
    ----------
    fcst : xarray.DataArray
        Ensemble with both member dimensions.
    obs : xarray.DataArray, optional
        Points where it is NaN are left out.
    epistemic_dim, aleatoric_dim : str
        Names of the weight and noise member dimensions.
    reduce_dims, preserve_dims, weights
        As in :func:`rmse`.
    estimator : {"anova", "population"}
        Unbiased variance components (default) or the population law of total variance.

    Returns
    -------
    xarray.Dataset
        ``total``, ``aleatoric`` and ``epistemic`` weighted mean variances (units of the data squared).
    """
    if estimator not in ("anova", "population"):
        raise DataError(f"estimator must be 'anova' or 'population', not {estimator!r}.")
    for dim in (epistemic_dim, aleatoric_dim):
        if dim not in fcst.dims:
            raise DataError(f"member dimension {dim!r} not in the forecast dims {list(fcst.dims)}.")
    inner_mean = fcst.mean(aleatoric_dim, skipna=False)
    aleatoric = fcst.var(aleatoric_dim, ddof=0, skipna=False).mean(epistemic_dim, skipna=False)
    epistemic = inner_mean.var(epistemic_dim, ddof=0, skipna=False)
    total = fcst.var([epistemic_dim, aleatoric_dim], ddof=0, skipna=False)
    parts = {"total": total, "aleatoric": aleatoric, "epistemic": epistemic}
    if obs is not None:
        parts = {k: v.where(obs.notnull()) for k, v in parts.items()}
    out = xr.Dataset({k: _mean_of(v, reduce_dims, preserve_dims, weights) for k, v in parts.items()})
    if estimator == "population":
        return out
    w, n = fcst.sizes[epistemic_dim], fcst.sizes[aleatoric_dim]
    alea = out["aleatoric"] * (n / (n - 1.0)) if n > 1 else xr.zeros_like(out["aleatoric"])
    epi = out["epistemic"] * (w / (w - 1.0)) - alea / n
    return xr.Dataset({"total": alea + epi, "aleatoric": alea, "epistemic": epi})
