"""Intake data sources behind the entries of ``catalogs/workbench.yaml``.

Each class is an ``intake.source.base.DataSource`` (Intake 2 keeps the version-1 catalog machinery, so a
YAML entry names its driver by import path and declares user ``parameters``). ``read()`` and
``to_dask()`` return the same object: a lazy, dask-backed :class:`xarray.Dataset` for gridded data
(nothing is loaded until computed) or a :class:`pandas.DataFrame` for storm reports. Every source also
has a ``path`` property naming the file, store or URL it reads, used by
:func:`workbench.catalog.resolve_path`.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr
from intake.source.base import DataSource, Schema

from workbench.errors import DataError
from workbench.sources.remote import cache_root

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Completion record of a forecast store (workbench.inference.store: PROGRESS_DIR / COMPLETE_RECORD).
_PROGRESS_DIR, _COMPLETE_RECORD = "_progress", "complete.json"


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _time(value: Any) -> pd.Timestamp | None:
    return None if _empty(value) else pd.Timestamp(value)


def _variables(value: Any) -> list[str] | None:
    if _empty(value):
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value) or None


@contextlib.contextmanager
def quiet_intake():
    """Silence Intake's note that it did not run a ``shell()`` default: the catalog has none."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Shell command not executed due to getshell=False")
        yield


class WorkbenchSource(DataSource):
    """Common behaviour: open once, lazily; ``read()`` and ``to_dask()`` return the same object."""

    container = "xarray"
    version = "1"
    partition_access = False

    def __init__(self, metadata: dict | None = None):
        super().__init__(metadata=metadata)
        self._data = None

    def configure_new(self, **kwargs):
        """A new source from the same catalog entry with other parameters: ``cat.entry(**params)``."""
        with quiet_intake():
            return super().configure_new(**kwargs)

    __call__ = get = configure_new

    def _get_schema(self) -> Schema:
        return Schema(datashape=None, dtype=None, shape=None, npartitions=1, extra_metadata={})

    def _open(self):
        raise NotImplementedError

    def read(self):
        """The data: a lazy xarray Dataset, or a pandas DataFrame for reports."""
        if self._data is None:
            self._data = self._open()
        return self._data

    def to_dask(self):
        """Same as :meth:`read`: Datasets are already dask-backed; report tables are small pandas frames."""
        return self.read()

    def _close(self) -> None:
        self._data = None

    @property
    def path(self) -> Path | str:
        """The file, directory, store or URL this source reads."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------
# Sample data
# ---------------------------------------------------------------------------------------------------


class SampleSource(WorkbenchSource):
    """The embedded sample atmosphere, generated into the cache on first use.

    Parameters
    ----------
    kind : {"hrrr", "era5", "nwp", "analysis", "reports"}
        Which part of the sample (``analysis``: the state every forecast starts from).
    size : {"tiny", "default", "full", "train", "validation"}
        Sample size.
    table : {"storm_events", "spc"}
        For ``kind="reports"``: the NCEI-style Storm Events table or the SPC-style reports.
    """

    name = "workbench_sample"

    def __init__(self, kind: str, size: str = "default", table: str = "storm_events", metadata=None):
        super().__init__(metadata=metadata)
        if kind not in ("hrrr", "era5", "nwp", "analysis", "reports"):
            raise DataError(f"Unknown sample kind {kind!r}; use hrrr, era5, nwp, analysis or reports.")
        if kind == "reports" and table not in ("storm_events", "spc"):
            raise DataError(f"table must be 'storm_events' or 'spc', got {table!r}.")
        self.kind, self.size, self.table = kind, str(size), table
        if kind == "reports":
            self.container = "dataframe"

    def _paths(self):
        from workbench.sample import ensure_sample

        return ensure_sample(self.size)

    @property
    def path(self) -> Path:
        paths = self._paths()
        if self.kind != "reports":
            return Path(getattr(paths, self.kind))
        return Path(paths.storm_events if self.table == "storm_events" else paths.spc_dir)

    def _open(self):
        from workbench.sources.reports import read_spc_reports, read_storm_events

        if self.kind == "reports":
            path = self.path
            return read_storm_events(path) if self.table == "storm_events" else read_spc_reports(path)
        from workbench.sample import open_sample

        return open_sample(self.kind, size=self.size)


# ---------------------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------------------


class ERA5Source(WorkbenchSource):
    """ERA5 from WeatherBench 2 / ARCO-ERA5 (see :func:`workbench.sources.era5.open_era5`)."""

    name = "workbench_era5"

    def __init__(
        self,
        resolution: str = "5.625",
        start: Any = None,
        end: Any = None,
        variables: Any = None,
        url: str = "",
        step_hours: int = 0,
        metadata=None,
    ):
        super().__init__(metadata=metadata)
        self.resolution, self.url, self.step_hours = str(resolution), url, int(step_hours or 0)
        self.start, self.end, self.variables = _time(start), _time(end), _variables(variables)

    @property
    def path(self) -> str:
        from workbench.sources.era5 import era5_url

        return self.url if not _empty(self.url) else era5_url(self.resolution)

    def _open(self):
        from workbench.sources.era5 import open_era5

        return open_era5(
            self.path,
            variables=self.variables,
            start=self.start,
            end=self.end,
            step_hours=self.step_hours or None,
        )


class HRRRSource(WorkbenchSource):
    """HRRR analyses or forecasts from the zarr archive or from GRIB2 files.

    Parameters
    ----------
    kind : {"anl", "fcst"}
        Analyses ``(time, y, x)`` or forecasts ``(init_time, lead_time, y, x)``.
    format : {"zarr", "grib"}
        The zarr archive (``root``) or GRIB2 files (``files``: paths, a glob pattern or URLs).
    """

    name = "workbench_hrrr"

    def __init__(
        self,
        kind: str = "anl",
        format: str = "zarr",
        start: Any = None,
        end: Any = None,
        variables: Any = None,
        root: str = "",
        files: Any = "",
        init_step_hours: int = 6,
        lead_hours: int = 48,
        metadata=None,
    ):
        super().__init__(metadata=metadata)
        if format not in ("zarr", "grib"):
            raise DataError(f"format must be 'zarr' or 'grib', got {format!r}.")
        self.kind, self.format = kind, format
        self.start, self.end, self.variables = _time(start), _time(end), _variables(variables)
        self.root, self.files = root, files
        self.init_step_hours, self.lead_hours = int(init_step_hours), int(lead_hours)

    @property
    def path(self) -> str | list[str]:
        from workbench.sources.hrrr import HRRR_ZARR_ROOT

        if self.format == "grib":
            return self.files
        return self.root if not _empty(self.root) else HRRR_ZARR_ROOT

    def _open(self):
        from workbench.sources.hrrr import open_hrrr_grib, open_hrrr_zarr

        # A parameter of the other format would be silently ignored: refuse it instead.
        if self.format == "grib" and not _empty(self.root):
            raise DataError("root= is the zarr archive's; with format='grib' pass the GRIB2 files as files=.")
        if self.format == "zarr" and not _empty(self.files):
            raise DataError("files= is for format='grib'; the zarr archive is read from root= (or s3://hrrrzarr).")
        if self.format == "grib":
            if _empty(self.files):
                raise DataError("format='grib' needs files=: GRIB2 paths, a glob pattern or URLs.")
            files = _variables(self.files) if isinstance(self.files, str) else self.files
            forecast = self.kind == "fcst"
            # Every parameter the entry declares is honoured here as on the zarr path, or refused.
            return open_hrrr_grib(
                files,
                variables=self.variables,
                kind="forecast" if forecast else "analysis",
                start=self.start,
                end=self.end,
                lead_hours=self.lead_hours if forecast else None,
                init_step_hours=self.init_step_hours if forecast else None,
            )
        if self.start is None:
            raise DataError("The HRRR zarr archive needs a start time (start=...).")
        return open_hrrr_zarr(
            self.start,
            self.end,
            variables=self.variables,
            kind=self.kind,
            root=self.path,
            init_step_hours=self.init_step_hours,
            lead_hours=self.lead_hours if self.kind == "fcst" else None,
        )


class _ArchiveForecastSource(WorkbenchSource):
    """What the forecast-archive sources share: a time window, variables and a lead-time cap.

    Each subclass keeps its own ``__init__``, because its keyword names (``url=``, ``files=``) are the
    catalog entry's user parameters.
    """

    def _window(self, start: Any, end: Any, variables: Any, lead_hours: int) -> None:
        self.lead_hours = int(lead_hours or 0)
        self.start, self.end, self.variables = _time(start), _time(end), _variables(variables)

    def _read(self, reader, target):
        """``reader(target, ...)`` over this source's window; a lead cap of 0 means every lead."""
        return reader(
            target,
            variables=self.variables,
            start=self.start,
            end=self.end,
            lead_hours=self.lead_hours or None,
        )


class WB2ForecastSource(_ArchiveForecastSource):
    """A WeatherBench 2 forecast store (see :func:`workbench.sources.archives.open_wb2_forecast`)."""

    name = "workbench_wb2_forecast"

    def __init__(
        self,
        url: str = "",
        start: Any = None,
        end: Any = None,
        variables: Any = None,
        lead_hours: int = 0,
        metadata=None,
    ):
        super().__init__(metadata=metadata)
        self.url = url
        self._window(start, end, variables, lead_hours)

    @property
    def path(self) -> str:
        if _empty(self.url):
            raise DataError(
                "wb2_forecast needs url=: a WeatherBench 2 forecast store, e.g. "
                "gs://weatherbench2/datasets/hres/2016-2022-0012-1440x721.zarr, or a local copy."
            )
        return self.url

    def _open(self):
        from workbench.sources.archives import open_wb2_forecast

        return self._read(open_wb2_forecast, self.path)


class AIWPForecastSource(_ArchiveForecastSource):
    """Runs of the AI-model forecast archive (see :func:`workbench.sources.archives.open_aiwp_forecast`)."""

    name = "workbench_aiwp_forecast"

    def __init__(
        self,
        files: Any = "",
        start: Any = None,
        end: Any = None,
        variables: Any = None,
        lead_hours: int = 0,
        metadata=None,
    ):
        super().__init__(metadata=metadata)
        self.files = files
        self._window(start, end, variables, lead_hours)

    @property
    def path(self) -> str | list[str]:
        if _empty(self.files):
            raise DataError(
                "aiwp_forecast needs files=: run files such as FOUR_v200_GFS_2023100100_f000_f240_06.nc "
                "(paths or a glob pattern, comma-separated)."
            )
        return self.files

    def _open(self):
        from workbench.sources.archives import open_aiwp_forecast

        files = _variables(self.files) if isinstance(self.files, str) else self.files
        return self._read(open_aiwp_forecast, files)


class HRRRHerbieSource(WorkbenchSource):
    """HRRR forecasts as GRIB2 subsets fetched by Herbie (see :func:`workbench.sources.archives.open_hrrr_herbie`)."""

    name = "workbench_hrrr_herbie"

    def __init__(
        self,
        start: Any = None,
        end: Any = None,
        variables: Any = None,
        lead_hours: int = 18,
        init_step_hours: int = 6,
        save_dir: str = "",
        metadata=None,
    ):
        super().__init__(metadata=metadata)
        self.start, self.end, self.variables = _time(start), _time(end), _variables(variables)
        self.lead_hours, self.init_step_hours, self.save_dir = int(lead_hours), int(init_step_hours), save_dir

    @property
    def path(self) -> str:
        from workbench.sources.hrrr import HRRR_GRIB_URL

        return HRRR_GRIB_URL

    def _open(self):
        from workbench.sources.archives import open_hrrr_herbie

        if self.start is None:
            raise DataError("hrrr_herbie needs a start time (start=...).")
        return open_hrrr_herbie(
            self.start,
            self.end,
            variables=self.variables,
            lead_hours=self.lead_hours,
            init_step_hours=self.init_step_hours,
            save_dir=None if _empty(self.save_dir) else self.save_dir,
        )


class Earth2DataSource(WorkbenchSource):
    """An Earth2Studio data source (``earth2studio.data.<source>``) in canonical form (the earth2 extra)."""

    name = "workbench_earth2_data"

    def __init__(
        self,
        source: str = "GFS",
        start: Any = None,
        end: Any = None,
        step_hours: int = 6,
        variables: Any = None,
        metadata=None,
    ):
        super().__init__(metadata=metadata)
        self.source, self.step_hours = str(source), int(step_hours)
        self.start, self.end, self.variables = _time(start), _time(end), _variables(variables)

    @property
    def path(self) -> str:
        return f"earth2studio.data.{self.source}"

    def _open(self):
        try:
            import earth2studio.data as e2s_data
        except ImportError:
            raise DataError(
                "Earth2Studio data sources need the earth2 extra: pip install 'workbench[earth2]'."
            ) from None
        from workbench.sources.earth2 import from_earth2_source

        if not hasattr(e2s_data, self.source):
            raise DataError(
                f"earth2studio.data has no source {self.source!r} (e.g. GFS, ARCO, WB2ERA5, HRRR)."
            )
        if self.start is None:
            raise DataError("earth2_data needs a start time (start=...).")
        times = pd.date_range(self.start, self.end or self.start, freq=f"{self.step_hours}h")
        return from_earth2_source(
            getattr(e2s_data, self.source)(), times, self.variables or ["t2m", "u10m", "v10m", "msl", "z500"]
        )


class StormEventsSource(WorkbenchSource):
    """NCEI Storm Events details for a year, from NCEI (downloaded once into the cache) or a local file."""

    name = "workbench_storm_events"
    container = "dataframe"

    def __init__(self, year: int = 2020, path: str = "", metadata=None):
        super().__init__(metadata=metadata)
        self.year, self._path = int(year), path

    @property
    def path(self) -> str:
        from workbench.sources.reports import storm_events_url

        return self._path if not _empty(self._path) else storm_events_url(self.year)

    def _open(self):
        from workbench.sources.reports import read_storm_events

        return read_storm_events(self.path)


class SPCReportsSource(WorkbenchSource):
    """SPC daily storm reports from a directory (or list) of ``YYMMDD_rpts_*.csv`` files."""

    name = "workbench_spc_reports"
    container = "dataframe"

    def __init__(self, path: Any = "", metadata=None):
        super().__init__(metadata=metadata)
        self._path = path

    @property
    def path(self) -> str:
        if _empty(self._path):
            raise DataError(
                "spc_reports needs path=: a directory of SPC YYMMDD_rpts_torn|hail|wind.csv files "
                "(from https://www.spc.noaa.gov/climo/reports/)."
            )
        return self._path

    def _open(self):
        from workbench.sources.reports import read_spc_reports

        return read_spc_reports(self.path)


# ---------------------------------------------------------------------------------------------------
# Forecast stores written by the workbench
# ---------------------------------------------------------------------------------------------------


def forecasts_dir() -> Path:
    """Where the workbench keeps model forecasts: ``<cache>/forecasts``."""
    return cache_root() / "forecasts"


def forecast_store_path(model: str) -> Path:
    """The store of ``model``'s forecasts, ``<cache>/forecasts/<model>.zarr``.

    Raises
    ------
    DataError
        If the name could escape the forecasts directory (only letters, digits, ``_``, ``.``, ``-``).
    """
    if not isinstance(model, str) or not _MODEL_NAME.match(model) or ".." in model:
        raise DataError(
            f"Invalid model name {model!r}: use letters, digits, '_', '.' and '-' only (e.g. 'pangu')."
        )
    return forecasts_dir() / f"{model}.zarr"


def available_forecasts() -> list[str]:
    """Models with a forecast store in the cache."""
    folder = forecasts_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".zarr")] for p in folder.glob("*.zarr") if p.is_dir())


class ForecastSource(WorkbenchSource):
    """A model's forecasts as written by ``workbench infer`` (``<cache>/forecasts/<model>.zarr``)."""

    name = "workbench_forecasts"

    def __init__(self, model: str = "", require_complete: bool = False, metadata=None):
        super().__init__(metadata=metadata)
        self.model, self.require_complete = model, bool(require_complete)

    @property
    def path(self) -> Path:
        if _empty(self.model):
            raise DataError(
                f"The forecasts entry needs model=...; forecasts in {forecasts_dir()}: {available_forecasts()}."
            )
        return forecast_store_path(self.model)

    def _open(self):
        path = self.path
        if not path.exists():
            raise DataError(
                f"No forecasts for model {self.model!r} at {path}. Available: {available_forecasts()}. "
                "Write some with `workbench infer`."
            )
        # The store is a plain zarr group; opening it here, rather than through workbench.inference,
        # keeps torch out of processes that only read forecasts (the dashboard, notebooks).
        complete = (path / _PROGRESS_DIR / _COMPLETE_RECORD).exists()
        if not complete:
            if self.require_complete:
                raise DataError(
                    f"The forecast store {path} is not complete; rerun the same `workbench infer` command to "
                    "resume it, or pass require_complete=False to read what is there."
                )
            warnings.warn(
                f"The forecast store {path} is not complete (its run was interrupted or is still going); "
                "missing blocks read as NaN.",
                stacklevel=2,
            )
        return xr.open_zarr(path)
