"""Readers for real data, each returning the canonical form (canonical names, SI units, lazy xarray).

* :mod:`~workbench.sources.era5`: WeatherBench 2 and ARCO-ERA5 zarr stores.
* :mod:`~workbench.sources.hrrr`: the HRRR zarr archive and HRRR GRIB2 files.
* :mod:`~workbench.sources.reports`: NCEI Storm Events and SPC storm report CSVs.
* :mod:`~workbench.sources.remote`: fail-fast checks for remote paths.
* :mod:`~workbench.sources.intake_sources`: the Intake sources behind the catalog entries.
"""

from __future__ import annotations

from workbench.sources.era5 import ARCO_ERA5_URL, WB2_ERA5_URLS, era5_url, from_era5_names, open_era5
from workbench.sources.hrrr import (
    HRRR_ZARR_ROOT,
    hrrr_grib_url,
    hrrr_zarr_url,
    open_hrrr_grib,
    open_hrrr_zarr,
    rotate_to_earth,
)
from workbench.sources.remote import check_remote, is_remote
from workbench.sources.reports import (
    STORM_EVENTS_COLUMNS,
    STORM_EVENTS_REQUIRED,
    read_spc_reports,
    read_storm_events,
    storm_events_url,
)

__all__ = [
    "ARCO_ERA5_URL",
    "HRRR_ZARR_ROOT",
    "STORM_EVENTS_COLUMNS",
    "STORM_EVENTS_REQUIRED",
    "WB2_ERA5_URLS",
    "check_remote",
    "era5_url",
    "from_era5_names",
    "hrrr_grib_url",
    "hrrr_zarr_url",
    "is_remote",
    "open_era5",
    "open_hrrr_grib",
    "open_hrrr_zarr",
    "read_spc_reports",
    "read_storm_events",
    "rotate_to_earth",
    "storm_events_url",
]
