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
    """Kernel rows (all, extreme, events...) to output regions (all, extreme, non_extreme, events...)."""
    if not has_masks:
        return x
    non_extreme = x[:, :1] - x[:, 1:2]
    return np.concatenate([x[:, :2], non_extreme, x[:, 2:]], axis=1)


def summarise(
    sums: np.ndarray, layout: StatLayout, lead_times: np.ndarray, event_types: Sequence[str] | None
) -> xr.Dataset:
    """Metrics of one variable from its sums.

    Parameters
    ----------
    sums : numpy.ndarray
        ``(n_lead, R, K)`` sums from the kernels (rows all, extreme, event types).
    layout : StatLayout
        The columns of ``sums``.
    lead_times : numpy.ndarray
        The lead times (timedelta64).
    event_types : sequence of str or None
        Event types of the masks, or None when there were none.

    Returns
    -------
    xarray.Dataset
        Dims ``(lead_time, region)``.
    """
    has_masks = event_types is not None
    s = {name: _regions_from_rows(sums[..., k], has_masks) for k, name in enumerate(layout.columns)}
    n_valid = np.rint(s["n_valid"]).astype(np.int64)
    n_nan = np.rint(s["n_nan"]).astype(np.int64)
    empty = n_valid == 0
    empty_all = empty[:, :1]
    # non_extreme comes from a subtraction: zero the sums of empty regions and clip the rounding noise
    # that can leave a sum of squares slightly below zero
    for name, value in s.items():
        if name in ("swe", "swfo"):
            s[name] = np.where(empty, 0.0, value)
        elif name not in ("n_valid", "n_nan"):
            s[name] = np.where(empty, 0.0, np.maximum(value, 0.0))
    sw = s["sw"]
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):

        def mean(name: str) -> np.ndarray:
            return np.where(empty, np.nan, s[name] / sw)

        out["rmse"] = np.sqrt(mean("swe2"))
        out["mae"] = mean("swae")
        out["bias"] = mean("swe")
        out["area_fraction"] = np.where(empty_all, np.nan, sw / sw[:, :1])
        out["error_share"] = np.where(empty_all, np.nan, s["swe2"] / s["swe2"][:, :1])
        out["error_ratio"] = mean("swe2") / mean("swe2")[:, :1]
        if layout.acc:
            out["acc"] = np.where(empty, np.nan, s["swfo"] / np.sqrt(s["swfa2"] * s["swoa2"]))
        if layout.ensemble:
            m = layout.n_members
            var = mean("swvar")
            out["crps"] = mean("swcrps")
            out["spread"] = np.sqrt(m / (m - 1.0) * var)
            out["spread_skill_ratio"] = np.sqrt((m + 1.0) / m) * out["spread"] / out["rmse"]
        if layout.split:
            factor = (m + 1.0) / (m - 1.0)
            parts = {"total": var, "aleatoric": mean("swalea"), "epistemic": mean("swepi")}
            for part, value in parts.items():
                out[f"spread_{part}"] = value
            for part, value in parts.items():
                out[f"spread_skill_{part}"] = np.sqrt(factor * value) / out["rmse"]
    out["n_valid"] = n_valid
    out["n_nan"] = n_nan
    regions = region_labels(event_types)
    data_vars = {}
    for name, value in out.items():
        long_name, formula = _DESCRIPTIONS[name]
        data_vars[name] = (("lead_time", "region"), value, {"long_name": long_name, "formula": formula})
    return xr.Dataset(data_vars, coords={"lead_time": lead_times, "region": regions})
