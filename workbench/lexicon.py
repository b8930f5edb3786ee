"""Canonical variable names and units, and the maps from other naming schemes onto them.

Names follow Earth2Studio's style: single-level fields by short name (``t2m``, ``u10m``, ``msl``) and
pressure-level fields as a letter plus the level in hPa (``z500``, ``t850``). Units are SI and are
recorded in ``attrs["units"]`` of every DataArray the workbench produces.

The maps translate

* ERA5 / WeatherBench 2 long names (``2m_temperature``, ``geopotential`` on a ``level`` dimension),
* HRRR GRIB2 short names as cfgrib reports them (``2t``, ``gh`` on ``isobaricInhPa``),
* HRRR zarr archive paths (``2m_above_ground/TMP``),
* CMIP6 variable ids (``tas``, ``zg``),

into canonical names, together with the unit conversion each source needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import xarray as xr

from workbench.errors import DataError, UnitsError

#: Standard gravity (m s-2), used to turn geopotential height (gpm) into geopotential.
GRAVITY = 9.80665


@dataclass(frozen=True)
class VariableInfo:
    """What a canonical variable is.

    Attributes
    ----------
    name : str
        Canonical short name, e.g. ``"t2m"``.
    long_name : str
        Human-readable description.
    units : str
        Canonical SI units.
    level : int or None
        Pressure level in hPa for upper-air fields, ``None`` for single-level fields.
    """

    name: str
    long_name: str
    units: str
    level: int | None = None


_SURFACE = [
    VariableInfo("t2m", "2 m temperature", "K"),
    VariableInfo("d2m", "2 m dewpoint temperature", "K"),
    VariableInfo("u10m", "10 m eastward wind", "m s-1"),
    VariableInfo("v10m", "10 m northward wind", "m s-1"),
    VariableInfo("ws10m", "10 m wind speed", "m s-1"),
    VariableInfo("msl", "mean sea level pressure", "Pa"),
    VariableInfo("sp", "surface pressure", "Pa"),
    VariableInfo("tp", "total precipitation accumulated over the preceding time step", "m"),
    VariableInfo("refc", "composite radar reflectivity", "dBZ"),
    VariableInfo("gust", "surface wind gust", "m s-1"),
    VariableInfo("tcwv", "total column water vapour", "kg m-2"),
]

_LEVEL_FIELDS = {
    "z": ("geopotential", "m2 s-2"),
    "t": ("temperature", "K"),
    "u": ("eastward wind", "m s-1"),
    "v": ("northward wind", "m s-1"),
    "q": ("specific humidity", "kg kg-1"),
    "r": ("relative humidity", "%"),
    "w": ("vertical velocity", "Pa s-1"),
}

#: Pressure levels (hPa) of ERA5 / WeatherBench 2 and of Pangu-Weather's upper-air input.
PRESSURE_LEVELS = (1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50)

#: The variables of the embedded sample atmosphere, in a fixed order used for model channels.
SAMPLE_VARIABLES = ("t2m", "u10m", "v10m", "msl", "tp", "refc", "gust", "z500", "t850", "u850", "v850")

_LEVEL_NAME = re.compile(r"^([ztuvqrw])(\d{2,4})$")


def level_name(field: str, level: int) -> str:
    """Canonical name of an upper-air field on a pressure level, e.g. ``level_name("z", 500) == "z500"``."""
    if field not in _LEVEL_FIELDS:
        raise DataError(f"Unknown upper-air field {field!r}; known fields: {sorted(_LEVEL_FIELDS)}.")
    return f"{field}{int(level)}"


def info(name: str) -> VariableInfo:
    """Describe a canonical variable.

    Parameters
    ----------
    name : str
        Canonical name, single-level (``"t2m"``) or pressure-level (``"z500"``).

    Returns
    -------
    VariableInfo

    Raises
    ------
    DataError
        If the name is not canonical; the message lists the known names.
    """
    if name in VARIABLES:
        return VARIABLES[name]
    match = _LEVEL_NAME.match(name)
    if match:
        field, level = match.group(1), int(match.group(2))
        long_name, units = _LEVEL_FIELDS[field]
        return VariableInfo(name, f"{long_name} at {level} hPa", units, level)
    raise DataError(
        f"{name!r} is not a canonical variable name. Use one of {sorted(VARIABLES)} or a pressure-level "
        f"name such as 'z500' (field letter {sorted(_LEVEL_FIELDS)} + level in hPa)."
    )


VARIABLES: dict[str, VariableInfo] = {v.name: v for v in _SURFACE}
for _field, (_long, _units) in _LEVEL_FIELDS.items():
    for _level in PRESSURE_LEVELS:
        _name = level_name(_field, _level)
        VARIABLES[_name] = VariableInfo(_name, f"{_long} at {_level} hPa", _units, _level)


# ---------------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------------

# Spellings that mean the same unit; the first of each group is canonical.
_UNIT_ALIASES = [
    ("K", "kelvin", "degK", "Kelvin"),
    ("m s-1", "m/s", "m s**-1", "m.s-1", "m s^-1", "meter second-1", "metre s-1"),
    ("Pa", "pascal", "Pascal"),
    ("m", "metre", "meter", "metres", "meters"),
    ("dBZ", "dBz", "dbz", "dB"),  # cfgrib labels HRRR REFC "dB"
    ("m2 s-2", "m**2 s**-2", "m^2 s^-2", "m2/s2", "m2 s**-2"),
    ("kg m-2", "kg m**-2", "kg/m2", "kg m^-2", "mm"),
    ("kg kg-1", "kg kg**-1", "kg/kg"),
    ("%", "percent"),
    ("Pa s-1", "Pa s**-1", "Pa/s"),
]
_CANONICAL_UNIT = {alias: group[0] for group in _UNIT_ALIASES for alias in group}


def normalize_units(units: str) -> str:
    """Map a unit spelling onto its canonical spelling (unknown spellings are returned stripped)."""
    units = units.strip()
    return _CANONICAL_UNIT.get(units, units)


# (from, to) -> converter; sources call these so data arrive in canonical units.
_CONVERSIONS: dict[tuple[str, str], Callable] = {
    ("gpm", "m2 s-2"): lambda x: x * GRAVITY,
    ("m", "m2 s-2"): lambda x: x * GRAVITY,  # geopotential height in metres
    ("kg m-2", "m"): lambda x: x / 1000.0,  # precipitation depth: 1 kg m-2 of water is 1 mm
    ("mm", "m"): lambda x: x / 1000.0,
    ("hPa", "Pa"): lambda x: x * 100.0,
    ("degC", "K"): lambda x: x + 273.15,
    ("C", "K"): lambda x: x + 273.15,
    ("knots", "m s-1"): lambda x: x * 0.514444,
    ("kt", "m s-1"): lambda x: x * 0.514444,
}


def convert_units(da: xr.DataArray, from_units: str, name: str) -> xr.DataArray:
    """Convert ``da`` from ``from_units`` into the canonical units of variable ``name``.

    Parameters
    ----------
    da : xarray.DataArray
        Values in ``from_units``.
    from_units : str
        Units of the input (source spelling, e.g. ``"gpm"``, ``"kg m-2"``, ``"hPa"``).
    name : str
        Canonical variable name whose units are wanted.

    Returns
    -------
    xarray.DataArray
        Converted values named ``name`` with ``attrs["units"]`` set to the canonical units.

    Raises
    ------
    UnitsError
        If no conversion between the two units is known.
    """
    target = info(name).units
    source = from_units.strip()
    if normalize_units(source) == target:
        out = da
    elif (source, target) in _CONVERSIONS:
        out = _CONVERSIONS[(source, target)](da)
    elif (normalize_units(source), target) in _CONVERSIONS:
        out = _CONVERSIONS[(normalize_units(source), target)](da)
    else:
        raise UnitsError(
            f"Cannot convert {name!r} from {from_units!r} to {target!r}: no conversion is known. "
            f"Convert the data to {target!r} before passing it in."
        )
    out = out.rename(name)
    out.attrs = {**da.attrs, "units": target, "long_name": info(name).long_name}
    return out


def check_units(da: xr.DataArray, name: str | None = None) -> None:
    """Check that ``da`` carries the canonical units of its variable.

    Parameters
    ----------
    da : xarray.DataArray
        A variable with ``attrs["units"]``.
    name : str, optional
        Canonical name; defaults to ``da.name``.

    Raises
    ------
    UnitsError
        If the units are missing or differ from the canonical ones; the message says which are expected.
    """
    name = name or str(da.name)
    expected = info(name).units
    units = da.attrs.get("units")
    if units is None:
        raise UnitsError(
            f"Variable {name!r} has no 'units' attribute; expected {expected!r}. Set "
            f"da.attrs['units'] = {expected!r} once you have checked the values are in those units."
        )
    if normalize_units(str(units)) != expected:
        raise UnitsError(
            f"Variable {name!r} is in {units!r} but the workbench expects {expected!r}. Convert it "
            f"(workbench.lexicon.convert_units(da, {units!r}, {name!r})) before scoring."
        )


# ---------------------------------------------------------------------------------------------------
# Plausible ranges: values a variable can take on Earth in its canonical units. They are wide on
# purpose (record extremes plus a margin); they exist to catch mislabelled data (2 m temperature in
# degrees C labelled K, pressure in hPa labelled Pa, geopotential height labelled geopotential), not to
# judge a forecast. A forecast that leaves them is broken rather than merely wrong.
# ---------------------------------------------------------------------------------------------------

_SURFACE_RANGES: dict[str, tuple[float, float]] = {
    "t2m": (150.0, 350.0),
    "d2m": (150.0, 350.0),
    "u10m": (-150.0, 150.0),
    "v10m": (-150.0, 150.0),
    "ws10m": (-50.0, 150.0),  # below zero only from a learned forecast's excursions, never from data
    "gust": (-50.0, 150.0),
    "msl": (80_000.0, 110_000.0),
    "sp": (30_000.0, 110_000.0),
    "tp": (-0.5, 1.0),  # one step's depth in metres; learned forecasts dip below zero
    "refc": (-100.0, 100.0),
    "tcwv": (0.0, 150.0),
}
_LEVEL_RANGES: dict[str, tuple[float, float]] = {
    "t": (150.0, 350.0),
    "u": (-250.0, 250.0),
    "v": (-250.0, 250.0),
    "q": (0.0, 0.06),
    "r": (0.0, 110.0),
    "w": (-100.0, 100.0),
}


def _standard_height(level_hpa: float) -> float:
    """Height (m) of a pressure level in the ICAO standard atmosphere (troposphere formula)."""
    return 44_330.8 * (1.0 - (level_hpa / 1013.25) ** 0.190263)


def plausible_range(name: str) -> tuple[float, float] | None:
    """The range of values variable ``name`` can plausibly take in its canonical units, or None.

    Geopotential gets a range per level: ``g`` times the standard-atmosphere height of the level,
    from 70 % of it minus 1500 m to 130 % plus 1500 m, so a field in geopotential metres (ten times
    smaller) falls outside it from 850 hPa upwards.

    Raises
    ------
    DataError
        If ``name`` is not a canonical variable name.
    """
    var = info(name)
    if var.level is None:
        return _SURFACE_RANGES.get(name)
    field = name[0]
    if field == "z":
        height = _standard_height(var.level)
        return (GRAVITY * (0.7 * height - 1500.0), GRAVITY * (1.3 * height + 1500.0))
    return _LEVEL_RANGES.get(field)


def sample_values(da: xr.DataArray, max_fields: int = 3, max_bytes: int = 64 * 2**20):
    """A small sample of ``da`` as a numpy array: all of it when it is at most ``max_bytes``, else its
    first, middle and last field along each leading dimension.

    Lazily read data whose picked fields lie in chunks of more than ``max_bytes`` together (a forecast
    store chunked by initial time, each chunk all of its lead times) give the first, middle and last
    field of the first chunk instead, so the check reads one chunk (units are a property of the store,
    not of a chunk). Neither reads, nor copies, the whole data: a check before scoring must cost little
    next to the scoring pass.
    """
    import numpy as np

    lead_dims = list(da.dims[:-2]) if da.ndim > 2 else []

    def picks_within(lengths: dict) -> dict:
        return {d: sorted({0, n // 2, n - 1})[:max_fields] if n else [] for d, n in lengths.items()}

    if da.chunks is None:
        if da.nbytes <= max_bytes or not lead_dims:
            return np.asarray(da.values)
        return np.asarray(da.isel(picks_within({d: da.sizes[d] for d in lead_dims})).values)
    picks = picks_within({d: da.sizes[d] for d in lead_dims})
    chunk_bytes = da.dtype.itemsize * np.prod([max(c) if c else 0 for c in da.chunks], dtype=float)
    n_chunks = np.prod([len(p) for p in picks.values()], dtype=float)
    if n_chunks > 1 and n_chunks * chunk_bytes > max_bytes:
        picks = picks_within({d: da.chunks[da.get_axis_num(d)][0] if da.sizes[d] else 0 for d in lead_dims})
    return np.asarray(da.isel(picks).values)


def check_plausible(da: xr.DataArray, name: str | None = None, label: str = "data") -> None:
    """Check that the values of ``da`` (a small sample when lazy) lie in the plausible range of its variable.

    Variables the lexicon has no range for, and all-NaN samples, pass.

    Raises
    ------
    UnitsError
        Naming the variable, the range found, the plausible range and the likely fix.
    """
    import numpy as np

    name = name or str(da.name)
    if name not in VARIABLES:
        return
    bounds = plausible_range(name)
    if bounds is None or da.dtype.kind not in "fiu" or da.size == 0:
        return
    values = sample_values(da)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return
    low, high = float(finite.min()), float(finite.max())
    lo, hi = bounds
    if low >= lo and high <= hi:
        return
    units = info(name).units
    hint = _RANGE_HINTS.get(name, _RANGE_HINTS.get(name[0] if info(name).level else "", ""))
    raise UnitsError(
        f"Variable {name!r} in the {label} has values {low:.6g} to {high:.6g}, outside the plausible range "
        f"{lo:.6g} to {hi:.6g} {units} for its units {da.attrs.get('units', units)!r}.{hint} Convert it "
        f"(workbench.lexicon.convert_units) or fix its 'units' attribute."
    )


def check_dataset(ds: xr.Dataset, label: str = "data") -> None:
    """Check units and plausible values of every canonical variable of ``ds`` (a small sample when lazy).

    Variables the lexicon does not know are left alone; scoring checks their units where they are used.

    Raises
    ------
    UnitsError
        For the first variable with missing or non-canonical units, or implausible values.
    """
    for name in ds.data_vars:
        if str(name) not in VARIABLES:
            continue
        try:
            check_units(ds[name], str(name))
        except UnitsError as exc:
            raise UnitsError(f"In the {label}: {exc}") from None
        check_plausible(ds[name], str(name), label)


_RANGE_HINTS = {
    "t2m": " Values near 0-40 are degrees C labelled K.",
    "d2m": " Values near 0-40 are degrees C labelled K.",
    "msl": " Values near 1000 are hPa labelled Pa.",
    "sp": " Values near 1000 are hPa labelled Pa.",
    "tp": " Values in the tens are millimetres labelled metres.",
    "t": " Values near -60-40 are degrees C labelled K.",
    "z": " Values ten times too small are geopotential height (gpm) labelled geopotential.",
}


# ---------------------------------------------------------------------------------------------------
# Maps from other naming schemes: source name -> (canonical field or name, level or None, source units)
# ---------------------------------------------------------------------------------------------------

#: ERA5 as served by WeatherBench 2 and ARCO-ERA5. Upper-air entries give the field letter; the level
#: comes from the store's ``level`` dimension.
ERA5_NAMES: dict[str, tuple[str, bool, str]] = {
    "2m_temperature": ("t2m", False, "K"),
    "2m_dewpoint_temperature": ("d2m", False, "K"),
    "10m_u_component_of_wind": ("u10m", False, "m s-1"),
    "10m_v_component_of_wind": ("v10m", False, "m s-1"),
    "10m_wind_speed": ("ws10m", False, "m s-1"),
    "mean_sea_level_pressure": ("msl", False, "Pa"),
    "surface_pressure": ("sp", False, "Pa"),
    "total_precipitation": ("tp", False, "m"),
    "total_precipitation_1hr": ("tp", False, "m"),
    "total_precipitation_6hr": ("tp", False, "m"),
    "instantaneous_10m_wind_gust": ("gust", False, "m s-1"),
    "10m_wind_gust_since_previous_post_processing": ("gust", False, "m s-1"),
    "total_column_water_vapour": ("tcwv", False, "kg m-2"),
    "geopotential": ("z", True, "m2 s-2"),
    "temperature": ("t", True, "K"),
    "u_component_of_wind": ("u", True, "m s-1"),
    "v_component_of_wind": ("v", True, "m s-1"),
    "specific_humidity": ("q", True, "kg kg-1"),
    "relative_humidity": ("r", True, "%"),
    "vertical_velocity": ("w", True, "Pa s-1"),
}

#: HRRR GRIB2 messages as cfgrib names them: (shortName, typeOfLevel) -> (field or name, upper-air?, units).
HRRR_GRIB_NAMES: dict[tuple[str, str], tuple[str, bool, str]] = {
    ("2t", "heightAboveGround"): ("t2m", False, "K"),
    ("2d", "heightAboveGround"): ("d2m", False, "K"),
    ("10u", "heightAboveGround"): ("u10m", False, "m s-1"),
    ("10v", "heightAboveGround"): ("v10m", False, "m s-1"),
    ("mslma", "meanSea"): ("msl", False, "Pa"),
    ("sp", "surface"): ("sp", False, "Pa"),
    ("tp", "surface"): ("tp", False, "kg m-2"),
    ("refc", "atmosphere"): ("refc", False, "dBZ"),
    ("gust", "surface"): ("gust", False, "m s-1"),
    ("gh", "isobaricInhPa"): ("z", True, "gpm"),
    ("t", "isobaricInhPa"): ("t", True, "K"),
    ("u", "isobaricInhPa"): ("u", True, "m s-1"),
    ("v", "isobaricInhPa"): ("v", True, "m s-1"),
    ("q", "isobaricInhPa"): ("q", True, "kg kg-1"),
}

#: The public HRRR zarr archive (``s3://hrrrzarr``): group path -> (canonical name, source units).
HRRR_ZARR_NAMES: dict[str, tuple[str, str]] = {
    "2m_above_ground/TMP": ("t2m", "K"),
    "2m_above_ground/DPT": ("d2m", "K"),
    "10m_above_ground/UGRD": ("u10m", "m s-1"),
    "10m_above_ground/VGRD": ("v10m", "m s-1"),
    "mean_sea_level/MSLMA": ("msl", "Pa"),
    "surface/PRES": ("sp", "Pa"),
    "surface/APCP_1hr_acc_fcst": ("tp", "kg m-2"),
    "entire_atmosphere/REFC": ("refc", "dBZ"),
    "surface/GUST": ("gust", "m s-1"),
    "500mb/HGT": ("z500", "gpm"),
    "500mb/TMP": ("t500", "K"),
    "500mb/UGRD": ("u500", "m s-1"),
    "500mb/VGRD": ("v500", "m s-1"),
    "850mb/HGT": ("z850", "gpm"),
    "850mb/TMP": ("t850", "K"),
    "850mb/UGRD": ("u850", "m s-1"),
    "850mb/VGRD": ("v850", "m s-1"),
    "700mb/TMP": ("t700", "K"),
}

#: CMIP6 variable ids -> (field or name, upper-air?, units). ``pr`` is a rate and needs the time step.
CMIP6_NAMES: dict[str, tuple[str, bool, str]] = {
    "tas": ("t2m", False, "K"),
    "uas": ("u10m", False, "m s-1"),
    "vas": ("v10m", False, "m s-1"),
    "sfcWind": ("ws10m", False, "m s-1"),
    "psl": ("msl", False, "Pa"),
    "ps": ("sp", False, "Pa"),
    "pr": ("tp", False, "kg m-2 s-1"),
    "prw": ("tcwv", False, "kg m-2"),
    "zg": ("z", True, "gpm"),
    "ta": ("t", True, "K"),
    "ua": ("u", True, "m s-1"),
    "va": ("v", True, "m s-1"),
    "hus": ("q", True, "kg kg-1"),
}


def precipitation_rate_to_depth(rate: xr.DataArray, step_seconds: float) -> xr.DataArray:
    """Turn a precipitation rate (kg m-2 s-1, CMIP6 ``pr``) into ``tp``: metres over the time step."""
    out = (rate * step_seconds / 1000.0).rename("tp")
    out.attrs = {**rate.attrs, "units": "m", "long_name": info("tp").long_name}
    return out


# ---------------------------------------------------------------------------------------------------
# ECMWF short names (what the Copernicus data store, MARS and cfgrib use) as requested variable names
# ---------------------------------------------------------------------------------------------------

#: ECMWF parameter short names of single-level fields, in both the GRIB spelling (``2t``) and the
#: netCDF / cfgrib spelling (``t2m``), -> canonical name.
ECMWF_SHORT_NAMES: dict[str, str] = {
    "2t": "t2m",
    "t2m": "t2m",
    "2d": "d2m",
    "d2m": "d2m",
    "10u": "u10m",
    "u10": "u10m",
    "10v": "v10m",
    "v10": "v10m",
    "10si": "ws10m",
    "si10": "ws10m",
    "msl": "msl",
    "sp": "sp",
    "tp": "tp",
    "tcwv": "tcwv",
    "10fg": "gust",
    "fg10": "gust",
    "i10fg": "gust",
    "gust": "gust",
}

#: ECMWF short names of pressure-level fields -> canonical field letter (the same letters).
ECMWF_LEVEL_FIELDS: dict[str, str] = {field: field for field in _LEVEL_FIELDS}


def resolve_names(
    requested: list[str] | tuple[str, ...], available: list[str] | tuple[str, ...], what: str
) -> list[str]:
    """Canonical names for what a caller asked for, accepting ECMWF short names.

    ``"2t"`` and ``"t2m"`` mean ``t2m``; ``"10u"`` and ``"u10"`` mean ``u10m``; a bare pressure-level
    field (``"z"``, ``"t"``) means that field at every level ``available`` holds.

    Parameters
    ----------
    requested : list of str
        Names as given by the caller.
    available : list of str
        Canonical names the source can provide.
    what : str
        The source, for the error message.

    Returns
    -------
    list of str
        Canonical names, in the order asked, without repeats.

    Raises
    ------
    DataError
        For any name the source cannot provide; the message lists the names it can, and the ECMWF short
        names accepted for them.
    """
    out: list[str] = []
    unknown: list[str] = []
    for raw in requested:
        name = str(raw).strip()
        if name in available:
            out.append(name)
        elif name in ECMWF_SHORT_NAMES and ECMWF_SHORT_NAMES[name] in available:
            out.append(ECMWF_SHORT_NAMES[name])
        elif name in ECMWF_LEVEL_FIELDS and any(_LEVEL_NAME.match(a) and a[0] == name for a in available):
            out += [a for a in available if (m := _LEVEL_NAME.match(a)) and m.group(1) == name]
        else:
            unknown.append(name)
    if unknown:
        aliases = sorted(k for k, v in ECMWF_SHORT_NAMES.items() if v in available and k != v)
        fields = sorted({m.group(1) for a in available if (m := _LEVEL_NAME.match(a))})
        raise DataError(
            f"Variable(s) {unknown} cannot be read from {what}; available: {summarize_names(available)}"
            + (f"; ECMWF short names {aliases}" if aliases else "")
            + (f"; a bare field letter {fields} for every level" if fields else "")
            + "."
        )
    return list(dict.fromkeys(out))


def summarize_names(names: list[str] | tuple[str, ...]) -> str:
    """A compact list of canonical names: single-level names, then each field with its levels."""
    single: list[str] = []
    upper: dict[str, list[int]] = {}
    for name in names:
        match = _LEVEL_NAME.match(name)
        if match:
            upper.setdefault(match.group(1), []).append(int(match.group(2)))
        else:
            single.append(name)
    parts = single + [f"{f}<level> for levels {sorted(levs)}" for f, levs in upper.items()]
    return ", ".join(parts)


#: The public archive of AI-model forecasts run from GFS/IFS initial conditions (NOAA/CIRA, one netCDF
#: per run, e.g. ``FOUR_v200_GFS_2023100100_f000_f240_06.nc``): variable -> (field or name, upper-air?,
#: units when the file gives none). ``apcp`` is the precipitation over the 6-hour output step.
AIWP_NAMES: dict[str, tuple[str, bool, str]] = {
    "t2": ("t2m", False, "K"),
    "u10": ("u10m", False, "m s-1"),
    "v10": ("v10m", False, "m s-1"),
    "msl": ("msl", False, "Pa"),
    "apcp": ("tp", False, "kg m-2"),
    "z": ("z", True, "m2 s-2"),
    "t": ("t", True, "K"),
    "u": ("u", True, "m s-1"),
    "v": ("v", True, "m s-1"),
    "q": ("q", True, "kg kg-1"),
    "r": ("r", True, "%"),
}

#: HRRR surface-file fields as Herbie searches them in NCEP's index files (``:VAR:level:``), by
#: canonical name; pressure-level fields are added below for every level HRRR's surface file has.
HERBIE_HRRR_SEARCH: dict[str, str] = {
    "t2m": ":TMP:2 m above ground:",
    "d2m": ":DPT:2 m above ground:",
    "u10m": ":UGRD:10 m above ground:",
    "v10m": ":VGRD:10 m above ground:",
    "msl": ":MSLMA:mean sea level:",
    "sp": ":PRES:surface:",
    "tp": ":APCP:surface:",
    "refc": ":REFC:entire atmosphere",
    "gust": ":GUST:surface:",
}
for _field, _var in (("z", "HGT"), ("t", "TMP"), ("u", "UGRD"), ("v", "VGRD"), ("q", "SPFH")):
    for _level in (1000, 925, 850, 700, 500, 300, 250):
        HERBIE_HRRR_SEARCH[level_name(_field, _level)] = f":{_var}:{_level} mb:"


def earth2_name(name: str) -> str | None:
    """Canonical name of an Earth2Studio lexicon name, or ``None`` when the workbench has no equivalent.

    The workbench's names follow Earth2Studio's (``t2m``, ``u10m``, ``msl``, ``z500``), so the table is
    the identity on every canonical name plus the few Earth2Studio spellings listed in
    :data:`EARTH2_NAMES`.
    """
    if name in EARTH2_NAMES:
        return EARTH2_NAMES[name]
    try:
        return info(name).name
    except DataError:
        return None


#: Earth2Studio names that differ from the canonical ones (all others are the same).
EARTH2_NAMES: dict[str, str] = {
    "fg10m": "gust",  # maximum 10 m wind gust since the previous output
    "i10fg": "gust",  # instantaneous 10 m wind gust
}
