"""The embedded sample atmosphere: a small dynamical generator with extreme events.

It produces, deterministically from :data:`SEED`, an HRRR-like hourly analysis on the Lambert CONUS
grid, an ERA5-like 6-hourly global analysis on the 5.625-degree grid, an imperfect NWP forecast, and
storm reports (NCEI Storm Events and SPC layouts) derived from the storms and extremes it made.

>>> from workbench.sample import ensure_sample, open_sample
>>> paths = ensure_sample("tiny")            # doctest: +SKIP
>>> ds = open_sample("hrrr", size="tiny")    # doctest: +SKIP
"""

from __future__ import annotations

from workbench.sample.params import (
    NWP_PARAMS,
    SEED,
    SIZES,
    START,
    TRUTH_PARAMS,
    VERSION,
    AtmosphereParams,
    SizeSpec,
    size_spec,
)
from workbench.sample.store import SamplePaths, cache_root, ensure_sample, open_sample, sample_dir

__all__ = [
    "NWP_PARAMS",
    "SEED",
    "SIZES",
    "START",
    "TRUTH_PARAMS",
    "VERSION",
    "AtmosphereParams",
    "SamplePaths",
    "SizeSpec",
    "cache_root",
    "ensure_sample",
    "open_sample",
    "sample_dir",
    "size_spec",
]
