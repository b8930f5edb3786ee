"""Paired tests of a model against a reference over initial times: is "better than NWP" significant?

Both tests take the per-init loss of the two forecasts on the same inits (e.g. the per-init RMSE or
MSE), so the day-to-day weather that both share cancels in the difference
:math:`d_t = L_{model,t} - L_{ref,t}` (negative = the model has the smaller loss).

- :func:`paired_bootstrap`: block bootstrap of the mean difference (:mod:`workbench.scoring.bootstrap`),
  its percentile interval and the two-sided p-value :math:`2\\min(P^*(\\bar d \\le 0), P^*(\\bar d \\ge 0))`.
- :func:`diebold_mariano`: the Diebold-Mariano statistic :math:`\\bar d / \\sqrt{\\hat V}` with a HAC
  variance: ``kernel="truncated"`` sums the autocovariances up to lag :math:`h-1` (Diebold and Mariano
  1995) with the small-sample correction of Harvey, Leybourne and Newbold (1997), as the "HLN" method
  of ``scores.stats.statistical_tests.diebold_mariano``; ``kernel="bartlett"`` is the Newey-West
  variance (always positive) with bandwidth :math:`h`. p-values from the normal or Student-t
  (:math:`n-1` dof) distribution.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import special as _special

from workbench.errors import DataError
from workbench.scoring.bootstrap import _check, auto_block_length, block_counts, interval_levels

__all__ = ["diebold_mariano", "paired_bootstrap"]


def _difference(loss: xr.DataArray, reference: xr.DataArray, dim: str) -> xr.DataArray:
    for name, da in (("loss", loss), ("reference", reference)):
        if not isinstance(da, xr.DataArray):
            raise DataError(f"{name} must be an xarray.DataArray of per-init losses.")
        if dim not in da.dims:
            raise DataError(f"{name} has no {dim!r} dim (dims {list(da.dims)}).")
    if loss.sizes[dim] != reference.sizes[dim]:
        raise DataError("loss and reference must cover the same initial times.")
    return loss - reference


def paired_bootstrap(
    loss: xr.DataArray,
    reference: xr.DataArray,
    *,
    dim: str = "init_time",
    n_resamples: int = 1000,
    block_length: int | str | None = "auto",
    confidence: float = 0.9,
    seed: int = 0,
    interval: str = "expanded",
) -> xr.Dataset:
    """Block bootstrap of the mean paired difference ``loss - reference`` over ``dim``.

    Inits where either loss is NaN are left out of both (the pairing is kept). ``block_length`` and
    ``interval`` as in :func:`workbench.scoring.bootstrap.block_bootstrap` (auto: from the
    autocorrelation of the differences).

    Returns
    -------
    xarray.Dataset
        ``difference`` (mean over inits), ``low``/``high`` (percentile interval), ``p_value``
        (two-sided, against no difference) and ``significant`` (p below ``1 - confidence``).
    """
    d = _difference(loss, reference, dim).transpose(dim, ...)
    n = d.sizes[dim]
    if block_length == "auto":
        block_length = auto_block_length(d.values)
    length = _check(n, n_resamples, block_length, confidence)
    counts = block_counts(n, n_resamples, length, seed).astype(np.float64)
    values = d.values.reshape(n, -1)
    ok = ~np.isnan(values)
    sums = counts @ np.where(ok, values, 0.0)
    nums = counts @ ok.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = sums / nums
        mean = np.where(ok, values, 0.0).sum(0) / ok.sum(0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(boot, list(interval_levels(n, length, confidence, interval)), axis=0)
    le = np.mean(boot <= 0, axis=0)
    ge = np.mean(boot >= 0, axis=0)
    p = np.minimum(1.0, 2 * np.minimum(le, ge))
    p = np.where(np.isnan(mean), np.nan, p)
    shape = d.shape[1:]
    dims = d.dims[1:]
    coords = {k: v for k, v in d.coords.items() if dim not in v.dims}

    def wrap(x):
        return xr.DataArray(np.reshape(x, shape), dims=dims, coords=coords)

    out = xr.Dataset(
        {
            "difference": wrap(mean),
            "low": wrap(low),
            "high": wrap(high),
            "p_value": wrap(p),
        }
    )
    out["significant"] = out["p_value"] < 1 - confidence
    out.attrs.update(
        {"confidence": confidence, "n_resamples": n_resamples, "block_length": length, "seed": seed}
    )
    return out


def _dm_one(d: np.ndarray, h: int, kernel: str) -> tuple[float, float, int]:
    d = d[~np.isnan(d)]
    n = d.size
    if n < 2 or not 0 < h < n or np.all(d == 0):
        return np.nan, np.nan, n
    dbar = d.mean()
    x = d - dbar
    gamma = [np.sum(x[k:] * x[: n - k]) / n for k in range(h if kernel == "truncated" else h + 1)]
    if kernel == "truncated":
        v = (gamma[0] + 2 * sum(gamma[1:h])) / n
        if v <= 0:
            return dbar, np.nan, n
        stat = dbar / np.sqrt(v) * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    else:
        v = (gamma[0] + 2 * sum((1 - k / (h + 1)) * gamma[k] for k in range(1, h + 1))) / n
        stat = dbar / np.sqrt(v)
    return dbar, stat, n


def diebold_mariano(
    loss: xr.DataArray,
    reference: xr.DataArray,
    *,
    dim: str = "init_time",
    h: int = 1,
    kernel: str = "truncated",
    distribution: str = "t",
) -> xr.Dataset:
    """Diebold-Mariano test of equal mean loss, per series along the other dims.

    Parameters
    ----------
    loss, reference : xarray.DataArray
        Per-init losses of the model and the reference, same inits along ``dim``.
    h : int
        Forecast horizon in init steps (autocorrelation is expected up to lag ``h - 1``): e.g. 1 for
        24-h leads from daily inits, 2 for 36-48 h, ``ceil(lead / init spacing)`` in general.
    kernel : {"truncated", "bartlett"}
        HAC variance: truncated with the HLN correction, or Newey-West.
    distribution : {"t", "normal"}
        Null distribution of the statistic.

    Returns
    -------
    xarray.Dataset
        ``difference`` (mean), ``dm_statistic``, ``p_value`` (two-sided), ``n``.
    """
    if kernel not in ("truncated", "bartlett"):
        raise DataError(f"kernel must be 'truncated' or 'bartlett', not {kernel!r}.")
    if distribution not in ("t", "normal"):
        raise DataError(f"distribution must be 't' or 'normal', not {distribution!r}.")
    if int(h) != h or h < 1:
        raise DataError(f"h must be a positive integer, not {h!r}.")
    d = _difference(loss, reference, dim)
    res = xr.apply_ufunc(
        lambda x: np.array(_dm_one(x, int(h), kernel)),
        d,
        input_core_dims=[[dim]],
        output_core_dims=[["_out"]],
        vectorize=True,
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"_out": 3}},
    )
    stat = res.isel(_out=1)
    n = res.isel(_out=2)
    if distribution == "normal":
        p = 2 * _special.ndtr(-np.abs(stat.values))
    else:
        p = 2 * _special.stdtr(np.maximum(n.values - 1, 1), -np.abs(stat.values))
    out = xr.Dataset(
        {
            "difference": res.isel(_out=0),
            "dm_statistic": stat,
            "p_value": stat.copy(data=np.asarray(p)),
            "n": n.astype(int),
        }
    )
    out.attrs.update({"h": int(h), "kernel": kernel, "distribution": distribution})
    return out
