"""Extreme-event cases and masks: from storm reports (the HR-Extreme method) and from thresholds.

Typical use::

    from workbench.events import build_masks, masks_at
    events = build_masks(truth, reports=storm_events, spc=spc_reports)
    events.table                      # one row per case / object
    m = masks_at(events.masks, forecast.valid_time)   # (event_type, init_time, lead_time, y, x)
"""

from __future__ import annotations

from workbench.events.cases import CaseRules, cases_from_reports
from workbench.events.climatology import climatology
from workbench.events.grid import GridLocator, grid_info
from workbench.events.masks import build_masks, combine_masks, masks_at, masks_from_cases
from workbench.events.table import EVENT_COLUMNS, read_index_csv, to_index_frame, write_index_csv
from workbench.events.thresholds import (
    DEFAULT_RULES,
    EventSet,
    ThresholdRule,
    percentile_rules,
    threshold_events,
)
from workbench.events.types import DEFAULT_EVENT_TYPES, FAMILY_ORDER, family_of, split_types

__all__ = [
    "DEFAULT_EVENT_TYPES",
    "DEFAULT_RULES",
    "EVENT_COLUMNS",
    "FAMILY_ORDER",
    "CaseRules",
    "EventSet",
    "GridLocator",
    "ThresholdRule",
    "build_masks",
    "cases_from_reports",
    "climatology",
    "combine_masks",
    "family_of",
    "grid_info",
    "masks_at",
    "masks_from_cases",
    "percentile_rules",
    "read_index_csv",
    "split_types",
    "threshold_events",
    "to_index_frame",
    "write_index_csv",
]
