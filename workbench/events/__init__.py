"""Extreme-event cases and masks: from storm reports (the HR-Extreme method) and from thresholds.

Typical use::

    from workbench.events import build_masks, masks_at
    events = build_masks(truth, reports=storm_events, spc=spc_reports)
    events.table                                      # one row per case / object
    m = masks_at(events.masks, forecast.valid_time)   # (event_type, init_time, lead_time, y, x)

The pieces and their documented defaults:

* :func:`cases_from_reports` (steps 1 and 2 of HR-Extreme), parameters in :class:`CaseRules`:
  kept NCEI types :data:`DEFAULT_EVENT_TYPES` (Thunderstorm Wind, Hail, Tornado, Flash Flood, Flood,
  Heavy Rain, High/Strong Wind, Hurricane, Tropical Storm, Winter Storm/Weather, Heavy Snow, Lake-Effect
  Snow, Blizzard, Ice Storm, Excessive Heat, Heat, Extreme Cold/Wind Chill, Cold/Wind Chill); SPC reports
  join an episode within 1 degree and inside an event's hours; boxes padded by 60 km (20 cells on the
  3-km HRRR grid); spans capped at 3 days, plus 4 hours; leftover SPC reports of one family grouped when
  within 100 km and 2 hours (single linkage); minimum case size 1 report (HR-Extreme: 2).
* :func:`climatology`: per-cell quantiles (1st, 99th) per hour of day, pooling +-2 hours, from a
  reference period (or several) recorded in its attributes; :func:`check_out_of_sample` refuses one
  that overlaps the evaluated period unless ``allow_in_sample=True``; :func:`sample_climatology` gives
  the sample's, from its longer run outside the evaluated period.
* :func:`threshold_events` (step 3 and more), rules in :data:`DEFAULT_RULES`: heat / cold beyond the
  99th / 1st percentile of an out-of-sample climatology and beyond 30 C / 0 C (38 C / -29 C without a
  climatology), 10-m wind >= 17.9 m/s, gust >= 25.7 m/s,
  rain >= 25.4 mm/h, reflectivity >= 50 dBZ; objects smaller than 2 cells or shorter than 1 step dropped.
* :func:`masks_from_cases`, :func:`build_masks`, :func:`masks_at`: bool masks ``(event_type, time, y, x)``
  over the families ``tornado, hail, wind, gust, heavy_rain, reflectivity, winter, heat, cold``.
* :func:`write_index_csv` / :func:`read_index_csv`: HR-Extreme's index CSV.
* :func:`hr_extreme_cases` (``build_masks(..., method="hr-extreme")``): HR-Extreme's exact steps 1-3,
  its 17 :data:`HR_EXTREME_TYPES` and index layout (:func:`write_hr_extreme_index`); the differences from
  the default method are tabled in :mod:`workbench.events.hrextreme`.
* :func:`forecast_event_masks`: the threshold rules applied to each forecast, ``(event_type, init_time,
  lead_time, y, x)``, for the forecast-conditioned regions of :mod:`workbench.scoring.regions`.
* :func:`control_cases`: a matched non-extreme case (same hours and box size, nearest clear position)
  for every case.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "CaseRules": "workbench.events.cases",
        "DEFAULT_EVENT_TYPES": "workbench.events.types",
        "DEFAULT_RULES": "workbench.events.thresholds",
        "EVENT_COLUMNS": "workbench.events.table",
        "EventSet": "workbench.events.thresholds",
        "FAMILY_ORDER": "workbench.events.types",
        "GridLocator": "workbench.events.grid",
        "HRExtremeParams": "workbench.events.hrextreme",
        "HR_EXTREME_TYPES": "workbench.events.hrextreme",
        "ThresholdRule": "workbench.events.thresholds",
        "build_masks": "workbench.events.masks",
        "cases_from_reports": "workbench.events.cases",
        "check_out_of_sample": "workbench.events.climatology",
        "climatology": "workbench.events.climatology",
        "combine_masks": "workbench.events.masks",
        "control_cases": "workbench.events.controls",
        "family_of": "workbench.events.types",
        "forecast_event_masks": "workbench.events.forecast",
        "grid_info": "workbench.events.grid",
        "hr_extreme_cases": "workbench.events.hrextreme",
        "masks_at": "workbench.events.align",
        "masks_from_cases": "workbench.events.masks",
        "percentile_rules": "workbench.events.thresholds",
        "read_index_csv": "workbench.events.table",
        "reference_periods": "workbench.events.climatology",
        "sample_climatology": "workbench.events.sample",
        "split_types": "workbench.events.types",
        "threshold_events": "workbench.events.thresholds",
        "to_hr_extreme_index": "workbench.events.hrextreme",
        "to_index_frame": "workbench.events.table",
        "write_hr_extreme_index": "workbench.events.hrextreme",
        "write_index_csv": "workbench.events.table",
    },
)
