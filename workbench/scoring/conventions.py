"""Averaging conventions the scores rely on: means of logarithmic quantities, and which climatology.

Reflectivity in dBZ is a logarithm, :math:`\\mathrm{dBZ} = 10 \\log_{10} Z`. Its arithmetic mean is the
log of a *geometric* mean of Z: two cells at 0 and 60 dBZ average to 30 dBZ, a thousand times less
power than the 57 dBZ of their mean Z. Every mean of reflectivity the workbench takes (ensemble means,
climatologies, upscaling to a coarser grid) is therefore taken in linear units,

.. math:: \\overline{\\mathrm{dBZ}} = 10 \\log_{10} \\Big( \\sum_i w_i\\, 10^{\\mathrm{dBZ}_i/10} \\big/
          \\sum_i w_i \\Big),

by :func:`physical_mean` (and :func:`ensemble_mean`, :func:`coarsen_mean`), chosen by the ``units``
attribute (``dBZ`` or ``dB``); other variables keep the arithmetic mean. The one-pass kernels of
:func:`workbench.scoring.decompose` follow the same rule for the ensemble mean they score (all engines),
so an ensemble of reflectivity needs no averaging beforehand. Errors, by contrast, are
taken in dBZ (a 3 dB error is a factor 2 in Z whatever the echo), so RMSE of reflectivity is in dBZ.

ACC needs a climatology; its value depends strongly on which one (a climatology of a few days before the
forecasts is close to persistence and rewards little). :func:`workbench.scoring.decompose` and
:func:`workbench.scoring.metrics.acc` therefore take the climatology in the call and the scores record
its name (``climatology_name`` or the climatology's ``attrs["climatology_name"]``); none is ever
derived silently from the data being scored.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from workbench.errors import DataError

__all__ = [
    "LOG_UNITS",
    "climatology_label",
    "coarsen_mean",
    "ensemble_mean",
    "from_linear",
    "is_logarithmic",
    "physical_mean",
    "to_linear",
]

#: Units whose means are taken in linear units.
LOG_UNITS = ("dBZ", "dB", "dbz", "dBz")


def is_logarithmic(da: xr.DataArray) -> bool:
    """Whether ``da`` is in decibels (by its ``units`` attribute)."""
    return str(da.attrs.get("units", "")) in LOG_UNITS


def to_linear(da: xr.DataArray) -> xr.DataArray:
    """:math:`Z = 10^{\\mathrm{dBZ}/10}` (attributes kept, units noted as linear)."""
    return (10.0 ** (da / 10.0)).assign_attrs({**da.attrs, "units": "linear (10^(dB/10))"})


def from_linear(da: xr.DataArray, units: str = "dBZ") -> xr.DataArray:
    """:math:`10 \\log_{10} Z`; a zero mean power gives -inf, kept as NaN-free -inf on purpose."""
    with np.errstate(divide="ignore"):
        return (10.0 * np.log10(da)).assign_attrs({**da.attrs, "units": units})


def physical_mean(
    da: xr.DataArray,
    dim: Hashable | Sequence[Hashable],
    weights: xr.DataArray | None = None,
    skipna: bool = True,
) -> xr.DataArray:
    """Mean over ``dim``: in linear units for dBZ/dB data, arithmetic otherwise (see module notes)."""
    dims = [dim] if isinstance(dim, str) or not isinstance(dim, Sequence) else list(dim)
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise DataError(f"Cannot average over {missing}: not dimensions of {list(da.dims)}.")
    log = is_logarithmic(da)
    x = to_linear(da) if log else da
    m = x.mean(dims, skipna=skipna) if weights is None else x.weighted(weights).mean(dims, skipna=skipna)
    out = from_linear(m, str(da.attrs["units"])) if log else m
    out.attrs = dict(da.attrs)
    if log:
        out.attrs["averaging"] = "mean of 10^(dBZ/10), converted back to dBZ"
    return out


def ensemble_mean(fcst: xr.DataArray, member_dims: str | Sequence[str] = "member") -> xr.DataArray:
    """Ensemble mean over the member dim(s), in linear units for reflectivity."""
    return physical_mean(fcst, member_dims, skipna=False)


def coarsen_mean(da: xr.DataArray, factors: dict[str, int], boundary: str = "trim") -> xr.DataArray:
    """Block mean to a coarser grid (``factors`` per dim), in linear units for reflectivity."""
    log = is_logarithmic(da)
    x = to_linear(da) if log else da
    m = x.coarsen(factors, boundary=boundary).mean()
    out = from_linear(m, str(da.attrs["units"])) if log else m
    out.attrs = dict(da.attrs)
    return out


def climatology_label(climatology, name: str | None) -> str | None:
    """The name of the climatology used for ACC: ``name``, else its ``climatology_name`` (or
    ``description``) attribute, else None (the caller warns)."""
    if name:
        return str(name)
    if climatology is None:
        return None
    attrs = getattr(climatology, "attrs", {})
    for key in ("climatology_name", "description"):
        if attrs.get(key):
            return str(attrs[key])
    return None
