"""The embedded sample atmosphere: a small dynamical generator with extreme events.

It produces, deterministically from :data:`SEED`, an HRRR-like hourly analysis on the Lambert CONUS
grid, an ERA5-like 6-hourly global analysis on the 5.625-degree grid, an imperfect NWP forecast, and
storm reports (NCEI Storm Events and SPC layouts) derived from the storms and extremes it made.

>>> from workbench.sample import ensure_sample, open_sample
>>> paths = ensure_sample("tiny")            # doctest: +SKIP
>>> ds = open_sample("hrrr", size="tiny")    # doctest: +SKIP
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "NWP_PARAMS": "workbench.sample.params",
        "SEED": "workbench.sample.params",
        "SIZES": "workbench.sample.params",
        "START": "workbench.sample.params",
        "TRUTH_PARAMS": "workbench.sample.params",
        "VERSION": "workbench.sample.params",
        "AtmosphereParams": "workbench.sample.params",
        "SamplePaths": "workbench.sample.store",
        "SizeSpec": "workbench.sample.params",
        "cache_root": "workbench.sample.store",
        "ensure_sample": "workbench.sample.store",
        "open_sample": "workbench.sample.store",
        "sample_dir": "workbench.sample.store",
        "size_spec": "workbench.sample.params",
    },
)
