"""Forecast event masks: the threshold rules applied to each forecast, for forecast-conditioned scoring.

Each initial time's forecast is treated as a sequence of fields along its lead times (valid times) and
run through :func:`~workbench.events.thresholds.threshold_events` with the same rules, climatology and
size filter as the observed events, so "the forecast said extreme" means exactly what "it was extreme"
means. Objects connect across consecutive stored lead times, whatever their spacing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import xarray as xr

from workbench.errors import DataError
from workbench.events.thresholds import DEFAULT_RULES, ThresholdRule, threshold_events


def forecast_event_masks(
    forecast: xr.Dataset,
    clim: xr.Dataset | None = None,
    rules: Sequence[ThresholdRule] | None = None,
    *,
    min_cells: int = 2,
    min_duration: int = 1,
    step_hours: float = 1.0,
    allow_in_sample: bool = False,
) -> xr.DataArray:
    """Event masks of a forecast, ``(event_type, init_time, lead_time, *grid)``.

    Parameters
    ----------
    forecast : xarray.Dataset
        Dims ``(init_time, lead_time, *grid)`` (deterministic, or an ensemble mean), canonical names and
        units, with a ``valid_time`` coordinate or ``init_time + lead_time``.
    clim, rules, min_cells, min_duration, allow_in_sample
        As for :func:`~workbench.events.thresholds.threshold_events` (default rules
        :data:`~workbench.events.thresholds.DEFAULT_RULES`; rules whose variable the forecast lacks are
        skipped). The climatology's reference period is checked against the forecast's valid times.
    step_hours : float
        Accumulation period of the forecast's ``tp`` (per-hour rules are scaled by it; the stored lead
        times may be unevenly spaced, so it is not inferred from them).

    Returns
    -------
    xarray.DataArray
        Bool ``mask`` with a ``valid_time`` coordinate; ``attrs`` as the observed masks'
        (``thresholds``, ``reference_period``, ``in_sample``).

    Raises
    ------
    DataError
        A forecast without ``init_time``/``lead_time``, with member dims, or a rule problem.
    """
    if not isinstance(forecast, xr.Dataset) or not {"init_time", "lead_time"} <= set(forecast.dims):
        raise DataError("forecast_event_masks needs a forecast Dataset with (init_time, lead_time) dims")
    vt = (
        forecast.coords["valid_time"]
        if "valid_time" in forecast.coords
        else forecast.init_time + forecast.lead_time
    )
    grid = [d for d in forecast[next(iter(forecast.data_vars))].dims if d not in ("init_time", "lead_time")]
    extra = [d for d in grid if d not in ("y", "x", "latitude", "longitude")]
    if extra:
        raise DataError(f"forecast_event_masks takes one forecast per field; reduce the dims {extra} first")
    layers, attrs = [], {}
    for i in range(forecast.sizes["init_time"]):
        one = forecast.isel(init_time=i).drop_vars(["valid_time", "init_time"], errors="ignore")
        times = vt.isel(init_time=i).values.astype("datetime64[ns]")
        one = one.rename({"lead_time": "time"}).assign_coords(time=times)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # rules without their variable: skipped
            found = threshold_events(
                one,
                clim,
                rules if rules is not None else DEFAULT_RULES,
                min_cells=min_cells,
                min_duration=min_duration,
                skip_missing=True,
                allow_in_sample=allow_in_sample,
                step_hours=step_hours,
            )
        attrs = found.masks.attrs
        layers.append(
            found.masks.rename({"time": "lead_time"}).assign_coords(lead_time=forecast["lead_time"].values)
        )
    out = xr.concat(layers, dim="init_time", join="outer", fill_value=False)
    out = out.assign_coords(init_time=forecast["init_time"].values)
    out = out.assign_coords(
        valid_time=(("init_time", "lead_time"), vt.transpose("init_time", "lead_time").values)
    )
    out = out.transpose("event_type", "init_time", "lead_time", ...).astype(bool).rename("mask")
    out.attrs = {**attrs, "description": "forecast event masks (the threshold rules on each forecast)"}
    return out
