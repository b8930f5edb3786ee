"""Block bootstrap over initial times: confidence intervals of any score built from per-init sums.

Scores of a forecast verified over many initial times are not independent from one init to the next
(consecutive inits share weather regimes), so initial times are resampled in blocks of consecutive
inits (moving blocks, Kunsch 1989; circular by default so every init is drawn equally often). A
resample is stored as the number of times each init is drawn, ``counts`` of shape
``(n_resamples, n_init)``: resampled sums of per-init sufficient statistics are then one matrix
product, ``counts @ per_init``, so 1000 resamples cost a small fraction of one pass over the data.

Two choices make the intervals cover at their nominal rate (checked over 500 synthetic trials with
known answer, ``tests/test_scoring_bootstrap.py``):

- the block length (``block_length="auto"``) grows with the lag-1 autocorrelation :math:`\\rho` of the
  per-init score, :math:`L = \\lceil n^{1/3} (1+\\rho)/(1-\\rho) \\rceil` (at most :math:`n/3`): the
  variance of a mean of AR(1) data is :math:`(1+\\rho)/(1-\\rho)` times the independent one, and
  blocks much shorter than the memory of the series cut that dependence away and give too narrow
  intervals (:math:`n^{1/3}` alone covered 80 % instead of 90 % at :math:`\\rho = 0.3`);
- the interval is the *expanded* percentile interval (Hesterberg 2015): the percentiles at
  :math:`\\Phi\\big(\\sqrt{k/(k-1)}\\, t_{k-1}(\\alpha/2)\\big)` instead of :math:`\\alpha/2`, with
  :math:`k = n/L` independent blocks, which corrects the known narrowness of percentile intervals in
  small samples (11 daily inits are 3-4 blocks). ``interval="percentile"`` gives the plain one.

Coverage stays below nominal (about 85 %) for strongly autocorrelated scores (:math:`\\rho \\ge 0.5`)
with few inits; the intervals are then a lower bound on the uncertainty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from workbench.errors import DataError

__all__ = [
    "auto_block_length",
    "block_bootstrap",
    "interval_levels",
    "block_counts",
    "default_block_length",
    "nan_quantiles",
    "percentile_interval",
    "resample_sums",
]


def default_block_length(n: int) -> int:
    """:math:`\\lceil n^{1/3} \\rceil`, the usual order for the moving-block bootstrap of a mean."""
    return max(1, int(np.ceil(n ** (1.0 / 3.0))))


def auto_block_length(series: np.ndarray) -> int:
    """Block length from the lag-1 autocorrelation of per-init scores ``(n_init, ...)`` (median over the
    other axes): :math:`\\lceil n^{1/3}(1+\\rho)/(1-\\rho) \\rceil`, :math:`\\rho` clipped to [0, 0.9],
    at most :math:`n/3` (and at least 1)."""
    x = np.asarray(series, dtype=np.float64)
    n = x.shape[0]
    x = x.reshape(n, -1)
    x = x[:, np.isfinite(x).all(0)]
    rho = 0.0
    if n > 2 and x.shape[1]:
        x = x - x.mean(0)
        den = np.sum(x * x, axis=0)
        ok = den > 0
        if ok.any():
            rho = float(np.median(np.sum(x[1:] * x[:-1], axis=0)[ok] / den[ok]))
    rho = min(max(rho, 0.0), 0.9)
    return int(min(max(1, np.ceil(n ** (1 / 3) * (1 + rho) / (1 - rho))), max(1, n // 3)))


def interval_levels(
    n: int, block_length: int, confidence: float, interval: str = "expanded"
) -> tuple[float, float]:
    """The percentiles (as fractions) that bound the interval: see the module notes."""
    if interval not in ("expanded", "percentile"):
        raise DataError(f"interval must be 'expanded' or 'percentile', not {interval!r}.")
    alpha = (1 - confidence) / 2
    if interval == "percentile":
        return alpha, 1 - alpha
    from scipy import special  # scipy.stats costs seconds to import; these two functions do not

    k = max(n / block_length, 2.0)
    low = float(special.ndtr(np.sqrt(k / (k - 1)) * special.stdtrit(k - 1, alpha)))
    return low, 1 - low


def _check(n: int, n_resamples: int, block_length: int | None, confidence: float | None = None) -> int:
    if n < 2:
        raise DataError(f"The bootstrap needs at least 2 initial times, not {n}.")
    if n_resamples < 1:
        raise DataError("n_resamples must be positive.")
    length = default_block_length(n) if block_length is None else int(block_length)
    if not 1 <= length <= n:
        raise DataError(
            f"block_length must be between 1 and the number of initial times ({n}), not {length}."
        )
    if confidence is not None and not 0 < confidence < 1:
        raise DataError(f"confidence must be between 0 and 1, not {confidence}.")
    return length


def block_counts(
    n: int, n_resamples: int = 1000, block_length: int | None = None, seed: int = 0, circular: bool = True
) -> np.ndarray:
    """How often each of ``n`` initial times is drawn in each resample.

    Each resample concatenates :math:`\\lceil n/L \\rceil` blocks of ``L`` consecutive inits with
    random starts and keeps the first ``n`` draws.

    Returns
    -------
    numpy.ndarray
        Integer counts ``(n_resamples, n)``, each row summing to ``n``.
    """
    length = _check(n, n_resamples, block_length)
    rng = np.random.default_rng(seed)
    n_blocks = -(-n // length)
    n_starts = n if circular else n - length + 1
    starts = rng.integers(0, n_starts, size=(n_resamples, n_blocks))
    idx = (starts[:, :, None] + np.arange(length)).reshape(n_resamples, -1)[:, :n] % n
    counts = np.zeros((n_resamples, n), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n_resamples), n), idx.ravel()), 1)
    return counts


def resample_sums(per_init: np.ndarray, counts: np.ndarray, axis: int = 0) -> np.ndarray:
    """Sums of ``per_init`` (init along ``axis``) over each resample: shape ``(n_resamples, *rest)``.

    NaN entries (e.g. an init without data) count as zero; keep a count column among the statistics
    to know how much data each resample holds.
    """
    x = np.moveaxis(np.asarray(per_init, dtype=np.float64), axis, 0)
    if x.shape[0] != counts.shape[1]:
        raise DataError(f"counts cover {counts.shape[1]} initial times, the statistics {x.shape[0]}.")
    flat = np.nan_to_num(x.reshape(x.shape[0], -1), nan=0.0)
    return (counts.astype(np.float64) @ flat).reshape(counts.shape[0], *x.shape[1:])


def nan_quantiles(samples: np.ndarray, levels: Sequence[float], axis: int = 0) -> np.ndarray:
    """Quantiles (linear interpolation, as ``numpy.quantile``) along ``axis`` ignoring NaN, vectorised:
    one sort of all slices instead of ``numpy.nanquantile``'s loop over every slice. All-NaN slices
    give NaN. ``samples`` is not modified.

    Returns an array with the quantile levels on the first axis.
    """
    x = np.moveaxis(np.asarray(samples, dtype=np.float64), axis, -1)
    rest, m = x.shape[:-1], x.shape[-1]
    if m == 0:  # no samples: every quantile is undefined
        return np.full((len(levels), *rest), np.nan)
    # the samples on the last, contiguous axis, as rows of a matrix: sorting contiguous rows is several
    # times faster than sorting strided columns
    x = x.reshape(int(np.prod(rest)), m)
    if np.may_share_memory(x, samples):
        x = x.copy()
    # a full sort, NaN last: NumPy's vectorised sort of a thousand doubles beats its partition around
    # the two to four positions needed, and handles the slices with NaN alike
    x.sort(axis=-1)
    n = m - np.isnan(x).sum(axis=-1)
    last = np.maximum(n - 1, 0)
    out = []
    for q in levels:
        pos = q * last
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        a = np.take_along_axis(x, lo[:, None], axis=-1)[:, 0]
        b = np.take_along_axis(x, hi[:, None], axis=-1)[:, 0]
        out.append(np.where(n > 0, a + (b - a) * (pos - lo), np.nan))
    return np.stack(out).reshape(len(levels), *rest)


def percentile_interval(
    samples: np.ndarray, levels: tuple[float, float], axis: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``samples`` at the percentile ``levels`` (:func:`interval_levels`) along ``axis``;
    NaN samples are ignored and all-NaN slices give NaN."""
    low, high = nan_quantiles(samples, levels, axis=axis)
    return low, high


def block_bootstrap(
    per_init: xr.Dataset | xr.DataArray,
    statistic: Callable[[xr.Dataset | xr.DataArray], xr.Dataset | xr.DataArray] | None = None,
    *,
    dim: str = "init_time",
    n_resamples: int = 1000,
    block_length: int | str | None = "auto",
    confidence: float = 0.9,
    seed: int = 0,
    circular: bool = True,
    interval: str = "expanded",
) -> xr.Dataset | xr.DataArray:
    """Confidence bounds of a score computed from per-init sums.

    Parameters
    ----------
    per_init : xarray.Dataset or DataArray
        Sufficient statistics per initial time (e.g. sums of weighted squared errors and weights),
        along ``dim``; they must add over inits.
    statistic : callable, optional
        Score from the sums over ``dim`` (a Dataset or DataArray without ``dim``), vectorised over any
        extra leading dim; default: the mean over inits (``per_init`` holds per-init scores).
    dim : str
        The initial-time dimension.
    n_resamples, block_length, confidence, seed, circular
        See :func:`block_counts`; ``block_length="auto"`` uses :func:`auto_block_length` on the
        per-init scores, None :func:`default_block_length`.
    interval : {"expanded", "percentile"}
        See :func:`interval_levels`.

    Returns
    -------
    xarray.Dataset or DataArray
        The score on the full sample and its bounds, along a new dim ``bound`` = ``estimate``,
        ``low``, ``high``.
    """
    if dim not in per_init.dims:
        raise DataError(f"The statistics have no {dim!r} dim (dims {list(per_init.dims)}).")
    n = per_init.sizes[dim]
    if block_length == "auto":
        scores = per_init if statistic is None else statistic(per_init)
        arrays = [scores] if isinstance(scores, xr.DataArray) else list(scores.data_vars.values())
        block_length = auto_block_length(
            np.concatenate([a.transpose(dim, ...).values.reshape(n, -1) for a in arrays], axis=1)
        )
    length = _check(n, n_resamples, block_length, confidence)
    counts = block_counts(n, n_resamples, length, seed, circular)
    weights = xr.DataArray(counts.astype(np.float64), dims=("resample", dim))
    filled = per_init.fillna(0.0)

    def dot(a: xr.DataArray) -> xr.DataArray:
        return xr.dot(weights, a, dim=dim)

    resampled_sums = dot(filled) if isinstance(filled, xr.DataArray) else filled.map(dot)
    if statistic is None:
        full = per_init.mean(dim)
        resampled = resampled_sums / n
    else:
        full = statistic(filled.sum(dim))
        resampled = statistic(resampled_sums)
    levels = interval_levels(n, length, confidence, interval)
    bounds = resampled.quantile(list(levels), dim="resample", skipna=True)
    bounds = bounds.assign_coords(quantile=["low", "high"]).rename(quantile="bound")
    out = xr.concat([full.expand_dims(bound=["estimate"]), bounds], dim="bound")
    out.attrs.update(
        {
            "confidence": confidence,
            "n_resamples": n_resamples,
            "block_length": length,
            "seed": seed,
            "interval": interval,
            "method": f"circular moving-block bootstrap over initial times, {interval} percentile interval",
        }
    )
    return out
