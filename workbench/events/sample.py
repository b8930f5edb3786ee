"""An out-of-sample climatology for the embedded sample's percentile events.

The sample's ``default`` size is three weeks; its percentiles cannot come from the week being
evaluated (they would be that week's own extremes). The ``long`` size runs the same generator on for
eight weeks, so its hours outside the evaluated period, with a gap of ``gap_hours`` on either side so
that one weather regime does not straddle the boundary, are a reference period disjoint from it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd
import xarray as xr

from workbench.errors import DataError
from workbench.events.climatology import climatology


def sample_climatology(
    evaluated: tuple,
    *,
    size: str = "long",
    gap_hours: int = 72,
    variables: Sequence[str] = ("t2m",),
    quantiles: Sequence[float] = (0.01, 0.99),
    cache_dir: str | os.PathLike | None = None,
) -> xr.Dataset:
    """Per-cell, per-hour quantiles from the sample's longer run, outside the evaluated period.

    Parameters
    ----------
    evaluated : (start, end)
        The evaluated period (anything ``pandas.Timestamp`` reads); it and ``gap_hours`` either side are
        left out of the reference.
    size : str
        The sample size the reference comes from (``"long"``: the default run continued to eight weeks).
    gap_hours : int
        Hours left out before and after the evaluated period.
    variables, quantiles
        As for :func:`~workbench.events.climatology.climatology`.
    cache_dir : path-like, optional
        Sample cache (default: the workbench cache).

    Returns
    -------
    xarray.Dataset
        The climatology; ``attrs["reference_period"]`` names the periods used and ``attrs["source"]``
        the sample size.

    Raises
    ------
    DataError
        When nothing of the run lies outside the evaluated period and its gaps.
    """
    from workbench.sample import open_sample

    try:
        start, end = (pd.Timestamp(t) for t in evaluated)
    except (TypeError, ValueError) as err:
        raise DataError(f"evaluated must be (start, end) times, got {evaluated!r} ({err})") from None
    if end < start:
        raise DataError(f"evaluated period ends before it starts: {start} > {end}")
    if gap_hours < 0:
        raise DataError(f"gap_hours must be >= 0, got {gap_hours}")
    run = open_sample("hrrr", size=size, cache_dir=cache_dir, progress=False)
    first, last = run.indexes["time"].min(), run.indexes["time"].max()
    gap = pd.Timedelta(hours=gap_hours)
    reference = []
    if start - gap > first:
        reference.append(slice(first, start - gap - pd.Timedelta(hours=1)))
    if end + gap < last:
        reference.append(slice(end + gap + pd.Timedelta(hours=1), last))
    if not reference:
        raise DataError(
            f"the {size!r} sample ({first} to {last}) has no hours outside {start} to {end} with a gap of "
            f"{gap_hours} h; use a longer run or a shorter gap"
        )
    clim = climatology(run, reference=reference, quantiles=quantiles, variables=list(variables)).load()
    clim.attrs["source"] = f"sample size {size!r}, outside the evaluated period with a {gap_hours} h gap"
    return clim


#: Sample sizes with a longer run of the same grid to take a climatology from.
LONGER_RUN = {"default": "long"}


def climatology_for_sample(
    size: str, evaluated: tuple, cache_dir: str | os.PathLike | None = None
) -> xr.Dataset | None:
    """:func:`sample_climatology` for a sample size that has a longer run on its grid, else ``None``
    (its events then use the fixed thresholds)."""
    if size not in LONGER_RUN:
        return None
    return sample_climatology(evaluated, size=LONGER_RUN[size], cache_dir=cache_dir)
