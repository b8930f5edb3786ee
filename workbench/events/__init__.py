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
* :func:`climatology`: per-cell quantiles (1st, 99th) per hour of day, pooling +-2 hours.
* :func:`threshold_events` (step 3 and more), rules in :data:`DEFAULT_RULES`: heat / cold beyond the
  99th / 1st percentile (38 C / -29 C without a climatology), 10-m wind >= 17.9 m/s, gust >= 25.7 m/s,
  rain >= 25.4 mm/h, reflectivity >= 50 dBZ; objects smaller than 2 cells or shorter than 1 step dropped.
* :func:`masks_from_cases`, :func:`build_masks`, :func:`masks_at`: bool masks ``(event_type, time, y, x)``
  over the families ``tornado, hail, wind, gust, heavy_rain, reflectivity, winter, heat, cold``.
* :func:`write_index_csv` / :func:`read_index_csv`: HR-Extreme's index CSV.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "DEFAULT_EVENT_TYPES": "workbench.events.types",
        "DEFAULT_RULES": "workbench.events.thresholds",
        "EVENT_COLUMNS": "workbench.events.table",
        "FAMILY_ORDER": "workbench.events.types",
        "CaseRules": "workbench.events.cases",
        "EventSet": "workbench.events.thresholds",
        "GridLocator": "workbench.events.grid",
        "ThresholdRule": "workbench.events.thresholds",
        "build_masks": "workbench.events.masks",
        "cases_from_reports": "workbench.events.cases",
        "climatology": "workbench.events.climatology",
        "combine_masks": "workbench.events.masks",
        "family_of": "workbench.events.types",
        "grid_info": "workbench.events.grid",
        "masks_at": "workbench.events.masks",
        "masks_from_cases": "workbench.events.masks",
        "percentile_rules": "workbench.events.thresholds",
        "read_index_csv": "workbench.events.table",
        "split_types": "workbench.events.types",
        "threshold_events": "workbench.events.thresholds",
        "to_index_frame": "workbench.events.table",
        "write_index_csv": "workbench.events.table",
    },
)
