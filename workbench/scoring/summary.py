"""From accumulated sums to the scores Dataset: regions, metrics and the error budget."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from workbench.scoring.stats import StatLayout

ALL, EXTREME, NON_EXTREME = "all", "extreme", "non_extreme"

_DESCRIPTIONS = {
    "rmse": ("root mean squared error", "sqrt(sum w e^2 / sum w), e = forecast (ensemble mean) - truth"),
    "mae": ("mean absolute error", "sum w |e| / sum w"),
    "bias": ("mean error (forecast minus truth)", "sum w e / sum w"),
    "area_fraction": ("share of the weighted cell-times", "sum_region w / sum_all w, over valid points"),
    "error_share": ("share of the total weighted squared error", "sum_region w e^2 / sum_all w e^2"),
    "error_ratio": (
        "squared error per unit area relative to the whole domain",
        "error_share / area_fraction = MSE(region) / MSE(all)",
    ),
    "n_valid": ("number of scored cell-times", "cells where forecast and truth are both non-NaN"),
    "n_nan": ("number of skipped cell-times", "cells where the forecast or the truth is NaN"),
    "acc": (
        "anomaly correlation coefficient",
        "sum w f'o' / sqrt(sum w f'^2 sum w o'^2), anomalies from the climatology (uncentred)",
    ),
    "crps": ("continuous ranked probability score (fair)", "sum w CRPS_fair / sum w"),
    "spread": ("ensemble spread", "sqrt(M/(M-1) * sum w Var_pop / sum w): unbiased ensemble std"),
    "spread_skill_ratio": ("spread-skill ratio", "sqrt((M+1)/M) * spread / rmse"),
    "spread_total": (
        "total ensemble variance",
        "sum w Var_{a,n}[f] / sum w (population variance, units squared); = aleatoric + epistemic",
    ),
    "spread_aleatoric": ("aleatoric ensemble variance", "sum w E_a[Var_n f] / sum w (units squared)"),
    "spread_epistemic": ("epistemic ensemble variance", "sum w Var_a[E_n f] / sum w (units squared)"),
    "spread_skill_total": (
        "spread-skill ratio of the total variance",
        "sqrt((M+1)/(M-1) * spread_total) / rmse",
    ),
    "spread_skill_aleatoric": (
        "spread-skill ratio of the aleatoric variance",
        "sqrt((M+1)/(M-1) * spread_aleatoric) / rmse; the squares of the parts add to the total's",
    ),
    "spread_skill_epistemic": (
        "spread-skill ratio of the epistemic variance",
        "sqrt((M+1)/(M-1) * spread_epistemic) / rmse",
    ),
}


def region_labels(event_types: Sequence[str] | None) -> list[str]:
    """Region coordinate: ``all`` alone without masks, else all, extreme, non_extreme and each type."""
    if event_types is None:
        return [ALL]
    return [ALL, EXTREME, NON_EXTREME, *event_types]


def _regions_from_rows(x: np.ndarray, has_masks: bool) -> np.ndarray:
    """Kernel rows (all, extreme, events...) to output regions (all, extreme, non_extreme, events...),
    along the last axis."""
    if not has_masks:
        return x
    non_extreme = x[..., :1] - x[..., 1:2]
    return np.concatenate([x[..., :2], non_extreme, x[..., 2:]], axis=-1)


RMSE_AVERAGES = ("per_init", "pooled")
SPREAD_ESTIMATORS = ("anova", "population")


def _clean(s: dict[str, np.ndarray], empty: np.ndarray) -> None:
    # non_extreme comes from a subtraction: zero the sums of empty regions and clip the rounding noise
    # that can leave a sum of squares slightly below zero
    for name, value in s.items():
        if name in ("swe", "swfo"):
            s[name] = np.where(empty, 0.0, value)
        elif name not in ("n_valid", "n_nan"):
            s[name] = np.where(empty, 0.0, np.maximum(value, 0.0))


def metric_arrays(
    sums: np.ndarray,
    layout: StatLayout,
    has_masks: bool,
    *,
    init_weights: np.ndarray | None = None,
    rmse_average: str = "per_init",
    spread_estimator: str = "anova",
) -> dict[str, np.ndarray]:
    """Metrics from per-init sums, optionally for many weightings of the inits at once.

    Parameters
    ----------
    sums : numpy.ndarray
        ``(n_init, n_lead, R, K)`` per-init sums from the kernels (rows all, extreme, event types).
    layout : StatLayout
        The columns of ``sums``.
    has_masks : bool
        Whether the rows hold extreme and event regions.
    init_weights : numpy.ndarray, optional
        ``(B, n_init)`` weights of the inits (bootstrap counts): every metric is computed for each of
        the ``B`` weightings, adding a leading axis. Default: every init once.
    rmse_average : {"per_init", "pooled"}
        ``per_init``: RMSE of each initial time, then the mean over the inits whose region is not empty
        (WeatherBench 2's convention; each init counts once whatever its number of valid cells).
        ``pooled``: :math:`\\sqrt{\\sum w e^2 / \\sum w}` over all inits together.
    spread_estimator : {"anova", "population"}
        Estimator of the epistemic/aleatoric variance parts (see :func:`summarise`).

    Returns
    -------
    dict of numpy.ndarray
        ``(n_lead, R_out)`` arrays (``(B, n_lead, R_out)`` with ``init_weights``).
    """
    if rmse_average not in RMSE_AVERAGES:
        raise ValueError(f"rmse_average must be one of {RMSE_AVERAGES}, not {rmse_average!r}.")
    if spread_estimator not in SPREAD_ESTIMATORS:
        raise ValueError(f"spread_estimator must be one of {SPREAD_ESTIMATORS}, not {spread_estimator!r}.")
    if sums.ndim == 3:
        sums = sums[None]
    if init_weights is None:
        pooled = sums.sum(0)
    else:
        pooled = np.tensordot(np.asarray(init_weights, dtype=np.float64), sums, axes=(1, 0))
    s = {name: _regions_from_rows(pooled[..., k], has_masks) for k, name in enumerate(layout.columns)}
    n_valid = np.rint(s["n_valid"]).astype(np.int64)
    n_nan = np.rint(s["n_nan"]).astype(np.int64)
    empty = n_valid == 0
    empty_all = empty[..., :1]
    _clean(s, empty)
    sw = s["sw"]
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):

        def mean(name: str) -> np.ndarray:
            return np.where(empty, np.nan, s[name] / sw)

        rmse_pooled = np.sqrt(mean("swe2"))
        if rmse_average == "pooled":
            out["rmse"] = rmse_pooled
        else:
            out["rmse"] = _per_init_rmse(sums, layout, has_masks, init_weights)
        out["mae"] = mean("swae")
        out["bias"] = mean("swe")
        out["area_fraction"] = np.where(empty_all, np.nan, sw / sw[..., :1])
        out["error_share"] = np.where(empty_all, np.nan, s["swe2"] / s["swe2"][..., :1])
        out["error_ratio"] = mean("swe2") / mean("swe2")[..., :1]
        if layout.acc:
            out["acc"] = np.where(empty, np.nan, s["swfo"] / np.sqrt(s["swfa2"] * s["swoa2"]))
        if layout.ensemble:
            m = layout.n_members
            var = mean("swvar")
            out["crps"] = mean("swcrps")
            out["spread"] = np.sqrt(m / (m - 1.0) * var)
            # spread and error are compared as pooled variances, whatever the RMSE convention
            out["spread_skill_ratio"] = np.sqrt((m + 1.0) / m) * out["spread"] / rmse_pooled
        if layout.split:
            out.update(_split(mean("swalea"), mean("swepi"), var, layout, rmse_pooled, spread_estimator))
    out["n_valid"] = n_valid
    out["n_nan"] = n_nan
    return out


def _per_init_rmse(sums, layout, has_masks, init_weights) -> np.ndarray:
    cols = layout.columns
    sw = _regions_from_rows(sums[..., cols.index("sw")], has_masks)
    swe2 = _regions_from_rows(sums[..., cols.index("swe2")], has_masks)
    nv = _regions_from_rows(sums[..., cols.index("n_valid")], has_masks)
    ok = (np.rint(nv) > 0) & (sw > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(ok, np.sqrt(np.maximum(swe2, 0.0) / np.where(ok, sw, 1.0)), 0.0)
    okf = ok.astype(np.float64)
    if init_weights is None:
        num, den = r.sum(0), okf.sum(0)
    else:
        w = np.asarray(init_weights, dtype=np.float64)
        num, den = np.tensordot(w, r, axes=(1, 0)), np.tensordot(w, okf, axes=(1, 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _split(alea_pop, epi_pop, var_pop, layout, rmse, estimator) -> dict[str, np.ndarray]:
    """Epistemic/aleatoric variance parts and their spread-skill ratios.

    ``population``: the law of total variance with population variances, total = aleatoric + epistemic
    exactly, every part scaled by the total's (M+1)/(M-1). ``anova``: the unbiased one-way ANOVA
    estimators of the two variance components, with W weight members of N noise members each,

    .. math:: \\hat\\sigma_a^2 = \\tfrac{N}{N-1}\\,\\mathrm{E}_a[\\mathrm{Var}_n],\\qquad
              \\hat\\sigma_e^2 = \\tfrac{W}{W-1}\\,\\mathrm{Var}_a[\\mathrm{E}_n] - \\hat\\sigma_a^2/N

    (the population variance of the W member means is biased by (W-1)/W and carries sigma_a^2/N of
    noise), total = their sum; and the spread-skill factor of each part follows from the error of the
    ensemble mean of a perfect ensemble, :math:`\\sigma_e^2 (1 + 1/W) + \\sigma_a^2 (1 + 1/(WN))`:
    ``(W+1)/W`` for the epistemic part, ``(M+1)/M`` for the aleatoric one, so the squares of the parts'
    ratios add up to the square of the total's, which is 1 for a perfect ensemble.
    """
    m, w, n = layout.n_members, layout.n_weight, layout.n_noise
    out = {}
    if estimator == "population":
        factor = (m + 1.0) / (m - 1.0)
        parts = {"total": var_pop, "aleatoric": alea_pop, "epistemic": epi_pop}
        for part, value in parts.items():
            out[f"spread_{part}"] = value
        for part, value in parts.items():
            out[f"spread_skill_{part}"] = np.sqrt(factor * value) / rmse
        return out
    alea = n / (n - 1.0) * alea_pop if n > 1 else np.zeros_like(alea_pop)
    epi = w / (w - 1.0) * epi_pop - alea / n
    out["spread_total"] = alea + epi
    out["spread_aleatoric"] = alea
    out["spread_epistemic"] = epi
    sq_epi = (w + 1.0) / w * np.maximum(epi, 0.0)
    sq_alea = (m + 1.0) / m * alea
    out["spread_skill_total"] = np.sqrt(sq_epi + sq_alea) / rmse
    out["spread_skill_aleatoric"] = np.sqrt(sq_alea) / rmse
    out["spread_skill_epistemic"] = np.sqrt(sq_epi) / rmse
    return out


def summarise(
    sums: np.ndarray,
    layout: StatLayout,
    lead_times: np.ndarray,
    event_types: Sequence[str] | None,
    *,
    rmse_average: str = "per_init",
    spread_estimator: str = "anova",
    bootstrap: dict | None = None,
) -> xr.Dataset:
    """Metrics of one variable from its sums.

    Parameters
    ----------
    sums : numpy.ndarray
        ``(n_init, n_lead, R, K)`` per-init sums from the kernels (rows all, extreme, event types), or
        ``(n_lead, R, K)`` already summed over inits (then both RMSE conventions agree).
    layout : StatLayout
        The columns of ``sums``.
    lead_times : numpy.ndarray
        The lead times (timedelta64).
    event_types : sequence of str or None
        Event types of the masks, or None when there were none.
    rmse_average, spread_estimator
        See :func:`metric_arrays`.
    bootstrap : dict, optional
        ``{"counts": (B, n_init) resample counts, "levels": (low, high) percentile levels}``: adds
        ``<metric>_low`` and ``<metric>_high`` for every metric but the counts.

    Returns
    -------
    xarray.Dataset
        Dims ``(lead_time, region)``.
    """
    has_masks = event_types is not None
    kw = {"rmse_average": rmse_average, "spread_estimator": spread_estimator}
    out = metric_arrays(sums, layout, has_masks, **kw)
    regions = region_labels(event_types)
    data_vars = {}
    for name, value in out.items():
        long_name, formula = _DESCRIPTIONS[name]
        if name == "rmse" and rmse_average == "per_init":
            formula = "mean over initial times of sqrt(sum w e^2 / sum w) per initial time (WeatherBench 2)"
        if name.startswith("spread_") and spread_estimator == "anova" and name in _ANOVA:
            formula = _ANOVA[name]
        data_vars[name] = (("lead_time", "region"), value, {"long_name": long_name, "formula": formula})
    if bootstrap is not None:
        from workbench.scoring.bootstrap import nan_quantiles

        boot = metric_arrays(sums, layout, has_masks, init_weights=bootstrap["counts"], **kw)
        for name, value in boot.items():
            if name in ("n_valid", "n_nan"):
                continue
            low, high = nan_quantiles(value, bootstrap["levels"], axis=0)
            long_name = _DESCRIPTIONS[name][0]
            data_vars[f"{name}_low"] = (
                ("lead_time", "region"),
                low,
                {"long_name": f"{long_name}, lower bound"},
            )
            data_vars[f"{name}_high"] = (
                ("lead_time", "region"),
                high,
                {"long_name": f"{long_name}, upper bound"},
            )
    return xr.Dataset(data_vars, coords={"lead_time": lead_times, "region": regions})


_ANOVA = {
    "spread_total": "spread_aleatoric + spread_epistemic (unbiased ANOVA variance components, units squared)",
    "spread_aleatoric": "N/(N-1) * sum w E_a[Var_n f] / sum w (unbiased within-member variance)",
    "spread_epistemic": "W/(W-1) * sum w Var_a[E_n f] / sum w - spread_aleatoric / N (unbiased)",
    "spread_skill_total": "sqrt((W+1)/W * epistemic + (M+1)/M * aleatoric) / rmse (pooled)",
    "spread_skill_aleatoric": "sqrt((M+1)/M * spread_aleatoric) / rmse (pooled)",
    "spread_skill_epistemic": "sqrt((W+1)/W * spread_epistemic) / rmse (pooled)",
}
