"""Coarse geography for the sample: land masks, US states and counties, towns, time zones, WFOs.

Everything comes from data installed with ``bokeh-sampledata`` (US state and county outlines, a world
gazetteer), rasterised once per process onto a 0.05-degree lookup grid over CONUS. The lookups are
coarse by design (one time zone and one NWS forecast office per state) and documented as such; they
only have to make the sample's storm reports look and parse like real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.spatial import cKDTree

from workbench._io import atomic_write

# CONUS lookup raster: 0.05 degrees over 20..53 N, 135..60 W
_RES = 0.05
_LAT0, _LAT1 = 20.0, 53.0
_LON0, _LON1 = -135.0, -60.0
_NY = int(round((_LAT1 - _LAT0) / _RES))
_NX = int(round((_LON1 - _LON0) / _RES))

#: Standard-time zone of each state as NCEI writes it in CZ_TIMEZONE (one zone per state: coarse).
STATE_TIMEZONE = {
    **dict.fromkeys(
        [
            "ME",
            "NH",
            "VT",
            "MA",
            "RI",
            "CT",
            "NY",
            "NJ",
            "PA",
            "DE",
            "MD",
            "DC",
            "VA",
            "WV",
            "NC",
            "SC",
            "GA",
            "FL",
            "OH",
            "MI",
            "IN",
            "KY",
        ],
        "EST-5",
    ),
    **dict.fromkeys(
        ["AL", "MS", "TN", "LA", "AR", "MO", "IA", "MN", "WI", "IL", "OK", "KS", "NE", "SD", "ND", "TX"],
        "CST-6",
    ),
    **dict.fromkeys(["MT", "WY", "CO", "NM", "AZ", "UT", "ID"], "MST-7"),
    **dict.fromkeys(["CA", "NV", "OR", "WA"], "PST-8"),
}

#: One NWS forecast office per state (coarse: real states are split between several WFOs).
STATE_WFO = {
    "AL": "BMX", "AZ": "PSR", "AR": "LZK", "CA": "LOX", "CO": "BOU", "CT": "OKX", "DE": "PHI", "DC": "LWX",
    "FL": "MLB", "GA": "FFC", "ID": "BOI", "IL": "LOT", "IN": "IND", "IA": "DMX", "KS": "TOP", "KY": "LMK",
    "LA": "LIX", "ME": "GYX", "MD": "LWX", "MA": "BOX", "MI": "DTX", "MN": "MPX", "MS": "JAN", "MO": "SGF",
    "MT": "TFX", "NE": "OAX", "NV": "REV", "NH": "GYX", "NJ": "PHI", "NM": "ABQ", "NY": "OKX", "NC": "RAH",
    "ND": "BIS", "OH": "ILN", "OK": "OUN", "OR": "PQR", "PA": "CTP", "RI": "BOX", "SC": "CAE", "SD": "FSD",
    "TN": "OHX", "TX": "FWD", "UT": "SLC", "VT": "BTV", "VA": "AKQ", "WA": "SEW", "WV": "RLX", "WI": "MKX",
    "WY": "CYS",
}  # fmt: skip

#: FIPS codes of the CONUS states and DC.
STATE_FIPS = {
    "AL": 1, "AZ": 4, "AR": 5, "CA": 6, "CO": 8, "CT": 9, "DE": 10, "DC": 11, "FL": 12, "GA": 13, "ID": 16,
    "IL": 17, "IN": 18, "IA": 19, "KS": 20, "KY": 21, "LA": 22, "ME": 23, "MD": 24, "MA": 25, "MI": 26,
    "MN": 27, "MS": 28, "MO": 29, "MT": 30, "NE": 31, "NV": 32, "NH": 33, "NJ": 34, "NM": 35, "NY": 36,
    "NC": 37, "ND": 38, "OH": 39, "OK": 40, "OR": 41, "PA": 42, "RI": 44, "SC": 45, "SD": 46, "TN": 47,
    "TX": 48, "UT": 49, "VT": 50, "VA": 51, "WA": 53, "WV": 54, "WI": 55, "WY": 56,
}  # fmt: skip

_AZIMUTHS = [
    "N",
    "NNE",
    "NE",
    "ENE",
    "E",
    "ESE",
    "SE",
    "SSE",
    "S",
    "SSW",
    "SW",
    "WSW",
    "W",
    "WNW",
    "NW",
    "NNW",
]


def _to_pixels(lats: np.ndarray, lons: np.ndarray) -> list[float]:
    """Flat ``[x0, y0, x1, y1, ...]`` pixel coordinates, as PIL's polygon drawing takes them."""
    col = (np.asarray(lons) - _LON0) / _RES
    row = (_LAT1 - np.asarray(lats)) / _RES
    ok = np.isfinite(col) & np.isfinite(row)
    return np.stack([col[ok], row[ok]], axis=1).ravel().tolist()


def _rasterise(polygons: list[tuple[int, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Paint polygons (value, lats, lons; NaN separates rings) into an int32 raster; 0 means none."""
    img = Image.new("I", (_NX, _NY), 0)
    draw = ImageDraw.Draw(img)
    for value, lats, lons in polygons:
        lats = np.asarray(lats, dtype=float)
        lons = np.asarray(lons, dtype=float)
        breaks = np.flatnonzero(~np.isfinite(lats))
        for ring in np.split(np.arange(lats.size), breaks):
            ring = ring[np.isfinite(lats[ring])]
            if ring.size >= 3:
                draw.polygon(_to_pixels(lats[ring], lons[ring]), fill=int(value))
    return np.asarray(img, dtype=np.int32)[::-1]  # row 0 = southernmost


@dataclass(frozen=True)
class Regions:
    """Polygons rasterised on the lookup grid: index raster (0 = none) and per-index attributes."""

    raster: np.ndarray
    name: tuple[str, ...]
    abbrev: tuple[str, ...]  # state abbreviation (of the county, for counties)
    fips: tuple[int, ...]  # state FIPS, or county FIPS within its state


_CACHE_VERSION = 1
_cache_dir: Path | None = None


def use_cache_dir(path: Path | None) -> None:
    """Keep the rasterised states and counties in ``path`` (reading outlines takes seconds; this is once)."""
    global _cache_dir
    _cache_dir = None if path is None else Path(path)


def states() -> Regions:
    """The CONUS states (and DC): names in capitals as NCEI writes them, abbreviations, FIPS codes."""
    return _regions("states", _cache_dir)


def counties() -> Regions:
    """US counties: names in capitals, their state's abbreviation, county FIPS codes."""
    return _regions("counties", _cache_dir)


def _outlines(table: str) -> list[tuple[dict, list[tuple[np.ndarray, np.ndarray]]]] | None:
    """Records and exterior rings (lats, lons) of bokeh-sampledata's US state or county outlines.

    Reads the package's geometry database with vectorised shapely calls (its own dictionaries build
    the same rings one by one, several times slower); returns None if that layout is not there.
    """
    try:
        import json
        import sqlite3
        from contextlib import closing

        import shapely
        from bokeh_sampledata import package_path

        uri = package_path("geographic_boundaries.db").as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as con:
            rows = con.execute(f"SELECT metadata, geometry FROM {table} ORDER BY ordinal").fetchall()
    except Exception:  # noqa: BLE001 - any failure falls back to the public dictionaries
        return None
    records = [json.loads(m) for m, _ in rows]
    parts, owner = shapely.get_parts(shapely.from_wkb([w for _, w in rows]), return_index=True)
    coords, ring = shapely.get_coordinates(shapely.get_exterior_ring(parts), return_index=True)
    splits = np.flatnonzero(np.diff(ring)) + 1
    rings: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in records]
    for r, xy in zip(ring[np.r_[0, splits]], np.split(coords, splits), strict=True):
        rings[owner[r]].append((xy[:, 1], xy[:, 0]))
    return list(zip(records, rings, strict=True))


def _polys(
    value: int, rings: list[tuple[np.ndarray, np.ndarray]]
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    return [(value, lats, lons) for lats, lons in rings]


def _build_states() -> Regions:
    outlines = _outlines("us_states")
    if outlines is None:
        from bokeh_sampledata.us_states import data as us_states

        outlines = [({"code": a, "name": v["name"]}, [(v["lats"], v["lons"])]) for a, v in us_states.items()]
    outlines = sorted((o for o in outlines if o[0]["code"] in STATE_TIMEZONE), key=lambda o: o[0]["code"])
    polys = [p for i, (_, rings) in enumerate(outlines) for p in _polys(i + 1, rings)]
    return Regions(
        raster=_rasterise(polys),
        name=("",) + tuple(rec["name"].upper() for rec, _ in outlines),
        abbrev=("",) + tuple(rec["code"] for rec, _ in outlines),
        fips=(0,) + tuple(STATE_FIPS.get(rec["code"], 0) for rec, _ in outlines),
    )


def _build_counties() -> Regions:
    outlines = _outlines("us_counties")
    if outlines is None:
        from bokeh_sampledata.us_counties import data as raw

        outlines = [
            (
                {"name": v["name"], "state": v["state"], "state_fips": k[0], "county_fips": k[1]},
                [(v["lats"], v["lons"])],
            )
            for k, v in raw.items()
        ]
    outlines = sorted(outlines, key=lambda o: (int(o[0]["state_fips"]), int(o[0]["county_fips"])))
    polys = [p for i, (_, rings) in enumerate(outlines) for p in _polys(i + 1, rings)]
    return Regions(
        raster=_rasterise(polys),
        name=("",) + tuple(rec["name"].upper() for rec, _ in outlines),
        abbrev=("",) + tuple(rec["state"].upper() for rec, _ in outlines),
        fips=(0,) + tuple(int(rec["county_fips"]) for rec, _ in outlines),
    )


@lru_cache(maxsize=8)
def _regions(kind: str, cache_dir: Path | None) -> Regions:
    cached = None if cache_dir is None else cache_dir / f"{kind}-v{_CACHE_VERSION}.npz"
    if cached is not None and cached.is_file():
        try:
            with np.load(cached) as z:
                return Regions(
                    raster=z["raster"].astype(np.int32),
                    name=tuple(z["name"].tolist()),
                    abbrev=tuple(z["abbrev"].tolist()),
                    fips=tuple(int(f) for f in z["fips"]),
                )
        except (OSError, ValueError, KeyError):
            pass  # unreadable: rebuild it below
    result = _build_states() if kind == "states" else _build_counties()
    if cached is not None:
        try:
            def write(tmp: Path) -> None:
                with open(tmp, "wb") as f:  # a file object: savez would append ".npz" to a bare name
                    np.savez_compressed(
                        f,
                        raster=result.raster.astype(np.int16),
                        name=np.array(result.name),
                        abbrev=np.array(result.abbrev),
                        fips=np.array(result.fips),
                    )

            atomic_write(cached, write)
        except OSError:
            pass  # a read-only cache only costs the rebuild next time
    return result


def _lookup(raster: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    lat = np.asarray(lat, dtype=float)
    lon = (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0
    row = np.floor((lat - _LAT0) / _RES).astype(np.int64)
    col = np.floor((lon - _LON0) / _RES).astype(np.int64)
    inside = (row >= 0) & (row < _NY) & (col >= 0) & (col < _NX)
    out = np.zeros(lat.shape, dtype=np.int32)
    out[inside] = raster[row[inside], col[inside]]
    return out


def state_index(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Index into :func:`states` of each point (0 outside CONUS)."""
    return _lookup(states().raster, lat, lon)


def county_index(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Index into :func:`counties` of each point (0 outside any county)."""
    return _lookup(counties().raster, lat, lon)


@lru_cache(maxsize=1)
def _cities() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from bokeh_sampledata.world_cities import data as cities

    return cities["lat"].to_numpy(float), cities["lng"].to_numpy(float), cities["name"].to_numpy(str)


def _xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


@lru_cache(maxsize=1)
def _foreign_town_tree() -> cKDTree:
    """Towns outside the US states (the US has its own outlines; its coastal towns would spill seaward)."""
    lat, lon, _ = _cities()
    foreign = state_index(lat, lon) == 0
    return cKDTree(_xyz(lat[foreign], lon[foreign]))


def land_fraction(lat: np.ndarray, lon: np.ndarray, radius_km: float = 120.0) -> np.ndarray:
    """Coarse land mask (0 or 1): inside a US state, within ``radius_km`` of a town elsewhere, or Antarctica."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    dist, _ = _foreign_town_tree().query(
        _xyz(lat, lon).reshape(-1, 3), k=1, distance_upper_bound=radius_km / 6371.0
    )
    near_town = np.isfinite(dist).reshape(lat.shape)
    land = near_town | (state_index(lat, lon) > 0) | (lat < -68.0)
    return land.astype(np.float32)


def grid_land_fraction(
    lat2d: np.ndarray, lon2d: np.ndarray, subsample: int = 3, radius_km: float = 120.0
) -> np.ndarray:
    """Land fraction of grid cells, from ``subsample**2`` points per cell around each centre.

    ``radius_km`` is the town radius of :func:`land_fraction`; coarse grids want a larger one, since
    the gazetteer is thin in empty lands (deserts, tundra) that a coarse cell should still call land.
    """
    if subsample <= 1 or lat2d.shape[0] < 2 or lat2d.shape[1] < 2:
        return land_fraction(lat2d, lon2d, radius_km)
    dlat = np.gradient(lat2d, axis=0)
    dlon = np.gradient(lon2d, axis=1)
    dlon = (dlon + 180.0) % 360.0 - 180.0
    acc = np.zeros(lat2d.shape, dtype=np.float64)
    offs = (np.arange(subsample) + 0.5) / subsample - 0.5
    for oy in offs:
        for ox in offs:
            acc += land_fraction(lat2d + oy * dlat, lon2d + ox * dlon, radius_km)
    return (acc / subsample**2).astype(np.float32)


@lru_cache(maxsize=1)
def _us_towns() -> tuple[cKDTree, np.ndarray, np.ndarray, np.ndarray]:
    lat, lon, name = _cities()
    keep = state_index(lat, lon) > 0
    return cKDTree(_xyz(lat[keep], lon[keep])), lat[keep], lon[keep], name[keep]


def nearest_town(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest US town to each point: (NAME in capitals, range in miles, 16-point azimuth from the town)."""
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    tree, tlat, tlon, tname = _us_towns()
    _, idx = tree.query(_xyz(lat, lon), k=1)
    t_lat, t_lon = tlat[idx], tlon[idx]
    dy = (lat - t_lat) * 69.05
    dx = (lon - t_lon) * 69.05 * np.cos(np.deg2rad(lat))
    miles = np.hypot(dx, dy)
    bearing = (np.rad2deg(np.arctan2(dx, dy)) + 360.0) % 360.0
    az = np.array(_AZIMUTHS)[np.rint(bearing / 22.5).astype(int) % 16]
    names = np.char.upper(tname[idx].astype(str))
    return names, np.rint(miles).astype(int), az


# Coarse orography of North America: (lat0, lat1, lon centre, half-width in degrees of longitude, peak
# height m) of the main ranges as smooth ridges, plus plateaus. Coarse by design: it only has to put
# the Rockies, the High Plains' slope, the Great Basin, the Sierra/Cascades and the Appalachians where
# they are, so that the sample's surface heating, storms and diurnal cycle know where the high ground is.
_RIDGES = (
    (31.0, 60.0, -108.5, 3.0, 2400.0),  # Rocky Mountains
    (35.0, 49.5, -120.5, 1.0, 1700.0),  # Sierra Nevada and Cascades
    (33.0, 44.0, -80.5, 2.2, 700.0),  # Appalachians
    (18.0, 30.0, -104.0, 3.0, 1500.0),  # Sierra Madre / Mexican plateau
)


def _ridge(lat, lon, lat0, lat1, lon_c, half, peak):
    along = np.clip(np.minimum(lat - lat0, lat1 - lat) / 2.0, 0.0, 1.0)
    return peak * along * np.exp(-(((lon - lon_c) / half) ** 2))


def orography(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Surface height (m) of a smooth, coarse North American orography (0 elsewhere).

    Over land only when multiplied by a land mask; the High Plains rise linearly from ~400 m at
    97 W to ~1,600 m at the foot of the Rockies (105 W), the Great Basin and Colorado Plateau stand at
    ~1,500 m between the Sierra and the Rockies.
    """
    lat = np.asarray(lat, dtype=float)
    lon = (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0
    h = np.zeros(np.broadcast(lat, lon).shape)
    for r in _RIDGES:
        h = np.maximum(h, _ridge(lat, lon, *r))
    in_lat = np.clip(np.minimum(lat - 28.0, 55.0 - lat) / 3.0, 0.0, 1.0)
    plains = 400.0 + 1200.0 * np.clip((-97.0 - lon) / 8.0, 0.0, 1.0)
    plains = np.where(lon > -97.0, 400.0 * np.clip((lon + 85.0) / -12.0, 0.0, 1.0), plains)
    basin = 1500.0 * np.clip((lon + 119.5) / 1.5, 0.0, 1.0) * np.clip((-106.0 - lon) / 1.5, 0.0, 1.0)
    return np.maximum(h, in_lat * np.maximum(np.where(lon > -106.0, plains, 0.0), basin))


def nearest_town_position(lat: float, lon: float) -> tuple[float, float, float]:
    """Latitude, longitude and distance (km) of the US town nearest to a point."""
    tree, tlat, tlon, _ = _us_towns()
    dist, idx = tree.query(_xyz(np.atleast_1d(lat), np.atleast_1d(lon)), k=1)
    return float(tlat[idx[0]]), float(tlon[idx[0]]), float(dist[0] * 6371.0)
