"""Readers for real data, each returning the canonical form (canonical names, SI units, lazy xarray).

* :mod:`~workbench.sources.era5`: WeatherBench 2 and ARCO-ERA5 zarr stores.
* :mod:`~workbench.sources.hrrr`: the HRRR zarr archive and HRRR GRIB2 files.
* :mod:`~workbench.sources.reports`: NCEI Storm Events and SPC storm report CSVs.
* :mod:`~workbench.sources.remote`: fail-fast checks for remote paths.
* :mod:`~workbench.sources.intake_sources`: the Intake sources behind the catalog entries.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ARCO_ERA5_URL": "workbench.sources.era5",
        "HRRR_ZARR_ROOT": "workbench.sources.hrrr",
        "STORM_EVENTS_COLUMNS": "workbench.sources.reports",
        "STORM_EVENTS_REQUIRED": "workbench.sources.reports",
        "WB2_ERA5_URLS": "workbench.sources.era5",
        "check_remote": "workbench.sources.remote",
        "era5_url": "workbench.sources.era5",
        "from_era5_names": "workbench.sources.era5",
        "hrrr_grib_url": "workbench.sources.hrrr",
        "hrrr_zarr_url": "workbench.sources.hrrr",
        "is_remote": "workbench.sources.remote",
        "open_era5": "workbench.sources.era5",
        "open_hrrr_grib": "workbench.sources.hrrr",
        "open_hrrr_zarr": "workbench.sources.hrrr",
        "read_spc_reports": "workbench.sources.reports",
        "read_storm_events": "workbench.sources.reports",
        "rotate_to_earth": "workbench.sources.hrrr",
        "storm_events_url": "workbench.sources.reports",
    },
)
