"""Storm reports derived from the sample's own storms and extremes, in NCEI and SPC layouts.

While the truth runs, :class:`ReportCollector` looks at every hour's fields: inside the window of each
live storm cell it records the maximum gust, reflectivity and hourly rain and where they occur; over
each state it records the hottest, coldest and windiest (non-convective) values. Afterwards
:func:`build_storm_events` turns exceedances into reports, with a reporting rate below one
(deterministic given the seed), the way real spotter networks miss events:

=====================  ==================================================================
EVENT_TYPE             derived from
=====================  ==================================================================
Thunderstorm Wind      cell gust >= 25.7 m/s (50 kt), MAGNITUDE in knots (EG/MG)
Hail                   cell reflectivity >= 60 dBZ, size 0.75-2.75 in from reflectivity
Tornado                a few of the strongest (rotating) cells near their peak, EF0-EF3
Flash Flood            cell hourly rain >= 35 mm
Heavy Rain             cell hourly rain >= 20 mm (and below the flash-flood threshold)
Excessive Heat / Heat  state maximum t2m >= 313.7 K (105 F) / 310.9 K (100 F)
Extreme Cold/Wind Chill state minimum t2m <= 255.4 K (0 F)
High Wind              non-convective 10 m wind >= 17.9 m/s (40 mph) or gust >= 25.9 m/s
=====================  ==================================================================

Convective reports of one storm system share an EPISODE_ID; zone events (heat, cold, high wind) of one
type on one UTC day share one. Times: ``BEGIN_TIME``/``BEGIN_DATE_TIME`` are in the local standard time
that ``CZ_TIMEZONE`` names (``"CST-6"`` means UTC-6), as in the real files, one zone per state; the
UTC time is local time minus the offset. Convective reports are county events (``CZ_TYPE`` C) with a
location; zone events (``CZ_TYPE`` Z) have empty BEGIN/END_LAT/LON, as in the real files. Report
times fall within the hour whose analysis shows the exceedance (convective: the report time floored to
the hour, in UTC, is that analysis time).

SPC-style daily files hold the tornado, hail and wind reports of the SPC day (12 UTC to 12 UTC) in UTC
``HHMM``; hail sizes in hundredths of an inch, wind speeds in mph (sometimes ``UNK``). As with the real
records, the two sources overlap but disagree a little: about 6% of tornado, hail and wind reports
appear only in the SPC files and 12% only in the Storm Events table.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from workbench._io import atomic_write
from workbench.sample import geography as geo
from workbench.sample.params import START
from workbench.sample.tracers import ModelGrid

#: Columns of NCEI Storm Events "details" files, in their order.
NCEI_COLUMNS = (
    "BEGIN_YEARMONTH", "BEGIN_DAY", "BEGIN_TIME", "END_YEARMONTH", "END_DAY", "END_TIME", "EPISODE_ID",
    "EVENT_ID", "STATE", "STATE_FIPS", "YEAR", "MONTH_NAME", "EVENT_TYPE", "CZ_TYPE", "CZ_FIPS", "CZ_NAME",
    "WFO", "BEGIN_DATE_TIME", "CZ_TIMEZONE", "END_DATE_TIME", "INJURIES_DIRECT", "INJURIES_INDIRECT",
    "DEATHS_DIRECT", "DEATHS_INDIRECT", "DAMAGE_PROPERTY", "DAMAGE_CROPS", "SOURCE", "MAGNITUDE",
    "MAGNITUDE_TYPE", "FLOOD_CAUSE", "CATEGORY", "TOR_F_SCALE", "TOR_LENGTH", "TOR_WIDTH", "TOR_OTHER_WFO",
    "TOR_OTHER_CZ_STATE", "TOR_OTHER_CZ_FIPS", "TOR_OTHER_CZ_NAME", "BEGIN_RANGE", "BEGIN_AZIMUTH",
    "BEGIN_LOCATION", "END_RANGE", "END_AZIMUTH", "END_LOCATION", "BEGIN_LAT", "BEGIN_LON", "END_LAT",
    "END_LON", "EPISODE_NARRATIVE", "EVENT_NARRATIVE", "DATA_SOURCE",
)  # fmt: skip

#: Columns of SPC daily report files (the magnitude column is F_Scale, Size or Speed).
SPC_COLUMNS = ("Time", "{mag}", "Location", "County", "State", "Lat", "Lon", "Comments")

# thresholds (SI)
WIND_GUST_MS = 25.7  # 50 kt, NWS severe thunderstorm wind
HAIL_DBZ = 60.0
FLASH_FLOOD_M = 0.035
HEAVY_RAIN_M = 0.020
HEAT_K = 310.93  # 100 F
EXCESSIVE_HEAT_K = 313.71  # 105 F
EXTREME_COLD_K = 255.37  # 0 F
HIGH_WIND_SUSTAINED_MS = 17.9  # 40 mph
HIGH_WIND_GUST_MS = 25.9  # 58 mph

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_MONTH_NAMES = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
#: A storm this close to a town (km) is reported from near the town.
REPORT_REACH_KM = 25.0
#: Chance that a storm over empty land (no town within reach) is reported at all.
EMPTY_LAND_REPORT_CHANCE = 0.3

_EPISODE_BASE = 149000
_EVENT_BASE = 893000


class ReportCollector:
    """Gathers, hour by hour, what the report writer needs from the truth run.

    Parameters
    ----------
    mg : ModelGrid
        The HRRR-like grid.
    """

    def __init__(self, mg: ModelGrid) -> None:
        self.mg = mg
        self.state = geo.state_index(mg.lat, mg.lon).ravel()
        self.n_states = len(geo.states().abbrev)
        self.cell_rows: list[tuple] = []
        self.zone_rows: list[tuple] = []

    def observe(self, t_h: int, fields: dict[str, np.ndarray], storms, rendered) -> None:
        """Record one analysis hour: per-cell maxima and per-state extremes."""
        gust, refc, tp = fields["gust"], fields["refc"], fields["tp"]
        if rendered is not None and storms is not None:
            cells = storms.cells
            for i, rows, cols, inten in rendered.windows:
                g = gust[rows, cols]
                r = refc[rows, cols]
                p = tp[rows, cols]
                kg, kr, kp = np.argmax(g), np.argmax(r), np.argmax(p)
                gy, gx = np.unravel_index(kg, g.shape)
                ry, rx = np.unravel_index(kr, r.shape)
                py, px = np.unravel_index(kp, p.shape)
                self.cell_rows.append(
                    (
                        t_h, int(cells["system"][i]), int(cells["id"][i]), bool(cells["tornado"][i]), inten,
                        float(cells["u"][i]), float(cells["v"][i]),
                        float(g.flat[kg]), rows.start + gy, cols.start + gx,
                        float(r.flat[kr]), rows.start + ry, cols.start + rx,
                        float(p.flat[kp]), rows.start + py, cols.start + px,
                    )
                )  # fmt: skip
        # per-state extremes: hottest and coldest t2m, strongest non-convective wind
        t2m = fields["t2m"].ravel()
        ws = np.hypot(fields["u10m"], fields["v10m"]).ravel()
        in_state = self.state > 0
        if not in_state.any():
            return
        idx = self.state[in_state]
        for kind, values, flag in (
            ("heat", t2m[in_state], t2m[in_state] >= HEAT_K),
            ("cold", -t2m[in_state], t2m[in_state] <= EXTREME_COLD_K),
            ("wind", ws[in_state], ws[in_state] >= HIGH_WIND_SUSTAINED_MS),
        ):
            if not flag.any():
                continue
            hit_states = np.unique(idx[flag])
            for s in hit_states:
                sel = flag & (idx == s)
                k = np.flatnonzero(sel)[np.argmax(values[sel])]
                cell = np.flatnonzero(in_state)[k]
                self.zone_rows.append((t_h, kind, int(s), float(abs(values[k])), int(sel.sum()), int(cell)))


def _fmt_date_time(ts: datetime) -> str:
    return f"{ts.day:02d}-{_MONTHS[ts.month - 1]}-{ts.year % 100:02d} {ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}"


_DAMAGE_STEPS = (0.0, 0.0, 0.0, 1.0, 2.0, 5.0, 10.0, 25.0)


def _damage(rng: np.random.Generator, scale: float) -> str:
    v = _DAMAGE_STEPS[int(rng.integers(len(_DAMAGE_STEPS)))] * scale
    return f"{v / 1000:.2f}M" if v >= 1000 else f"{v:.2f}K"


class _Builder:
    """Collects candidate reports, then locates them all at once (state, county, town, WFO)."""

    def __init__(self, mg: ModelGrid, rng: np.random.Generator) -> None:
        self.mg = mg
        self.rng = rng
        self.candidates: list[dict] = []
        self.episodes: dict[tuple, int] = {}
        self.tornado_cells: set[int] = set()
        self.flood_keys: set[tuple[int, int]] = set()

    def episode(self, key: tuple) -> int:
        if key not in self.episodes:
            self.episodes[key] = _EPISODE_BASE + len(self.episodes)
        return self.episodes[key]

    def point(self, iy: int, ix: int) -> tuple[float, float] | None:
        """Where a report of the storm over grid cell (iy, ix) is made, or None when nobody reports it.

        Reports come from people: a storm passing within :data:`REPORT_REACH_KM` of a town is reported
        from near it (a few miles out, toward the storm), as most real reports are (the median
        BEGIN_RANGE of real Storm Events is a few miles); one over empty land is reported from where
        it was only with :data:`EMPTY_LAND_REPORT_CHANCE`.
        """
        lat, lon = float(self.mg.lat[iy, ix]), float(self.mg.lon[iy, ix])
        j = 0.25 * self.mg.spacing_m / 111e3
        coslat = max(np.cos(np.deg2rad(lat)), 0.2)
        lat, lon = lat + self.rng.uniform(-j, j), lon + self.rng.uniform(-j, j) / coslat
        tlat, tlon, dist_km = geo.nearest_town_position(lat, lon)
        if dist_km > REPORT_REACH_KM:
            return (lat, lon) if self.rng.random() < EMPTY_LAND_REPORT_CHANCE else None
        # a few km from the town (gamma, mean ~4.5 km), toward the storm, never beyond it
        r_km = min(self.rng.gamma(1.5, 3.0), dist_km)
        bearing = np.arctan2((lon - tlon) * coslat, lat - tlat) + self.rng.normal(0.0, 0.5)
        return (
            tlat + r_km / 111.0 * np.cos(bearing),
            tlon + r_km / 111.0 * np.sin(bearing) / max(np.cos(np.deg2rad(tlat)), 0.2),
        )

    def add(
        self,
        event_type: str,
        begin_utc: datetime,
        end_utc: datetime,
        episode: int,
        lat: float,
        lon: float,
        *,
        zone: bool = False,
        end_lat: float | None = None,
        end_lon: float | None = None,
        spc: tuple[str, str, str] | None = None,
        narrative: str = "",
        **extra,
    ) -> None:
        """Queue a report; ``spc`` is ``(kind, magnitude, comment)`` for the SPC files."""
        route = "both"
        if spc is not None:
            # the preliminary (SPC) and final (NCEI) records disagree a little, as the real ones do
            u = self.rng.random()
            route = "spc" if u < 0.06 else "ncei" if u < 0.18 else "both"
        self.candidates.append(
            {
                "type": event_type,
                "begin": begin_utc,
                "end": end_utc,
                "episode": episode,
                "lat": lat,
                "lon": lon,
                "end_lat": lat if end_lat is None else end_lat,
                "end_lon": lon if end_lon is None else end_lon,
                "zone": zone,
                "spc": spc,
                "route": route,
                "narrative": narrative,
                "extra": extra,
            }
        )

    def finalize(self) -> tuple[list[dict], list[dict]]:
        """Rows of the storm events table (US reports only) and of the SPC files."""
        if not self.candidates:
            return [], []
        lat = np.array([c["lat"] for c in self.candidates])
        lon = np.array([c["lon"] for c in self.candidates])
        elat = np.array([c["end_lat"] for c in self.candidates])
        elon = np.array([c["end_lon"] for c in self.candidates])
        state = geo.state_index(lat, lon)
        keep = np.flatnonzero(state > 0)
        if not keep.size:
            return [], []
        st, co = geo.states(), geo.counties()
        county = geo.county_index(lat[keep], lon[keep])
        town, miles, az = geo.nearest_town(np.r_[lat[keep], elat[keep]], np.r_[lon[keep], elon[keep]])
        n = keep.size
        rows, spc_rows = [], []
        event_id = _EVENT_BASE
        for j, i in enumerate(keep):
            c = self.candidates[i]
            s = int(state[i])
            abbrev = st.abbrev[s]
            k = int(county[j])
            tz = geo.STATE_TIMEZONE[abbrev]
            offset = timedelta(hours=int(tz.split("-")[1]))
            b, e = c["begin"] - offset, c["end"] - offset
            row = dict.fromkeys(NCEI_COLUMNS, "")
            row.update(
                BEGIN_YEARMONTH=b.year * 100 + b.month,
                BEGIN_DAY=b.day,
                BEGIN_TIME=b.hour * 100 + b.minute,
                END_YEARMONTH=e.year * 100 + e.month,
                END_DAY=e.day,
                END_TIME=e.hour * 100 + e.minute,
                EPISODE_ID=c["episode"],
                EVENT_ID=event_id,
                STATE=st.name[s],
                STATE_FIPS=st.fips[s],
                YEAR=b.year,
                MONTH_NAME=_MONTH_NAMES[b.month - 1],
                EVENT_TYPE=c["type"],
                CZ_TYPE="Z" if c["zone"] else "C",
                CZ_FIPS=co.fips[k] if k else 0,
                CZ_NAME=co.name[k] if k else st.name[s],
                WFO=geo.STATE_WFO[abbrev],
                BEGIN_DATE_TIME=_fmt_date_time(b),
                CZ_TIMEZONE=tz,
                END_DATE_TIME=_fmt_date_time(e),
                INJURIES_DIRECT=0,
                INJURIES_INDIRECT=0,
                DEATHS_DIRECT=0,
                DEATHS_INDIRECT=0,
                DAMAGE_PROPERTY="0.00K",
                DAMAGE_CROPS="0.00K",
                EPISODE_NARRATIVE=c["narrative"],
                DATA_SOURCE="CSV",
            )
            if not c["zone"]:
                row.update(
                    BEGIN_RANGE=int(miles[j]),
                    BEGIN_AZIMUTH=az[j],
                    BEGIN_LOCATION=town[j],
                    END_RANGE=int(miles[n + j]),
                    END_AZIMUTH=az[n + j],
                    END_LOCATION=town[n + j],
                    BEGIN_LAT=round(c["lat"], 4),
                    BEGIN_LON=round(c["lon"], 4),
                    END_LAT=round(c["end_lat"], 4),
                    END_LON=round(c["end_lon"], 4),
                )
            row.update(c["extra"])
            row["_utc"] = c["begin"]
            if c["route"] != "spc":
                rows.append(row)
                event_id += 1
            if c["spc"] is not None and c["route"] != "ncei":
                kind, magnitude, comment = c["spc"]
                loc = f"{miles[j]} {az[j]} {town[j].title()}" if miles[j] > 0 else town[j].title()
                spc_rows.append(
                    {
                        "kind": kind,
                        "time": c["begin"],
                        "magnitude": magnitude,
                        "Location": loc,
                        "County": str(row["CZ_NAME"]).title(),
                        "State": abbrev,
                        "Lat": round(c["lat"], 2),
                        "Lon": round(c["lon"], 2),
                        "Comments": f"{comment} ({row['WFO']})",
                    }
                )
        return rows, spc_rows


def build_storm_events(
    collector: ReportCollector, rng: np.random.Generator, start: np.datetime64 = START
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn the collected exceedances into NCEI Storm Events rows and SPC reports.

    Returns
    -------
    (storm_events, spc) : tuple of DataFrame
        ``storm_events`` has exactly :data:`NCEI_COLUMNS`; ``spc`` has columns ``kind`` (torn, hail,
        wind), ``time`` (UTC), the SPC magnitude, location and comment fields.
    """
    mg = collector.mg
    b = _Builder(mg, rng)
    cols = (
        "t", "system", "cell", "tornado", "inten", "u", "v",
        "gust", "gy", "gx", "refc", "ry", "rx", "tp", "py", "px",
    )  # fmt: skip
    cells = pd.DataFrame(collector.cell_rows, columns=cols)
    start = pd.Timestamp(start).to_pydatetime()  # plain datetimes: per-row pandas arithmetic is slow
    # county "population": some places report more reliably than others (fixed per grid cell)
    population = 0.45 + 0.55 * np.random.default_rng(rng.integers(1 << 31)).random(mg.shape)
    if len(cells):
        # only cell-hours with something to report can make a report
        notable = (
            (cells["gust"] >= WIND_GUST_MS)
            | (cells["refc"] >= HAIL_DBZ)
            | (cells["tp"] >= HEAVY_RAIN_M)
            | cells["tornado"]
        )
        cells = cells[notable].sort_values(["t", "system", "cell"], kind="stable").reset_index(drop=True)
        _convective(b, cells, start, population)
    zones = pd.DataFrame(collector.zone_rows, columns=["t", "kind", "state", "value", "count", "cell"])
    if len(zones):
        _zones(b, zones, start)
    rows, spc_rows = b.finalize()
    events = pd.DataFrame(rows, columns=list(NCEI_COLUMNS) + ["_utc"])
    events = events.sort_values(["_utc", "EVENT_ID"], kind="stable")
    spc_cols = ["kind", "time", "magnitude", "Location", "County", "State", "Lat", "Lon", "Comments"]
    spc = pd.DataFrame(spc_rows, columns=spc_cols)
    return events[list(NCEI_COLUMNS)].reset_index(drop=True), spc


_SOURCES = ("Trained Spotter", "Public", "Law Enforcement", "Emergency Manager", "Mesonet", "Social Media")
_STORM_NARRATIVE = (
    "Thunderstorms developed in a warm, moist and unstable air mass and moved with the steering flow."
)
_HAIL_SIZES = (0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 2.75)


def _convective(b: _Builder, cells: pd.DataFrame, start: datetime, population: np.ndarray) -> None:
    rng = b.rng
    minute = timedelta(minutes=1)
    for rec in cells.itertuples(index=False):
        t = start + timedelta(hours=int(rec.t))
        episode = b.episode(("storm", rec.system))
        common = {"narrative": _STORM_NARRATIVE}
        # thunderstorm wind
        if rec.gust >= WIND_GUST_MS:
            p = min(0.95, (0.35 + 0.06 * (rec.gust - WIND_GUST_MS)) * population[rec.gy, rec.gx])
            if rng.random() < p and (pos := b.point(rec.gy, rec.gx)) is not None:
                lat, lon = pos
                when = t + int(rng.integers(0, 60)) * minute
                kt = max(round(rec.gust * 1.943844 + rng.normal(0, 2)), 50)
                measured = rng.random() < 0.2
                mph = "UNK" if rng.random() < 0.3 else str(int(round(kt * 1.15078)))
                b.add(
                    "Thunderstorm Wind", when, when + int(rng.integers(0, 6)) * minute, episode, lat, lon,
                    MAGNITUDE=f"{kt:.2f}", MAGNITUDE_TYPE="MG" if measured else "EG",
                    SOURCE="Mesonet" if measured else _SOURCES[int(rng.integers(len(_SOURCES)))],
                    DAMAGE_PROPERTY=_damage(rng, 1.0),
                    EVENT_NARRATIVE=f"Thunderstorm winds estimated at {kt} knots downed trees and power lines.",
                    spc=("wind", mph, "Trees and power lines down."), **common,
                )  # fmt: skip
        # hail
        if rec.refc >= HAIL_DBZ:
            p = min(0.95, (0.3 + 0.08 * (rec.refc - HAIL_DBZ)) * population[rec.ry, rec.rx])
            if rng.random() < p and (pos := b.point(rec.ry, rec.rx)) is not None:
                lat, lon = pos
                when = t + int(rng.integers(0, 60)) * minute
                k = int(np.clip((rec.refc - HAIL_DBZ) / 1.2 + rng.normal(0, 1), 0, len(_HAIL_SIZES) - 1))
                size = _HAIL_SIZES[k]
                b.add(
                    "Hail", when, when, episode, lat, lon,
                    MAGNITUDE=f"{size:.2f}", SOURCE=_SOURCES[int(rng.integers(len(_SOURCES)))],
                    DAMAGE_PROPERTY=_damage(rng, 2.0 * size),
                    EVENT_NARRATIVE=f"Hail of {size:.2f} inches in diameter was reported.",
                    spc=("hail", str(int(round(size * 100))), f"Hail up to {size:.2f} inches."), **common,
                )  # fmt: skip
        # tornado: once per tornadic cell, near its peak, where the storm is intense
        if rec.tornado and rec.inten > 0.9 and rec.refc >= 55.0 and rec.cell not in b.tornado_cells:
            b.tornado_cells.add(rec.cell)
            if rng.random() < 0.8 and (pos := b.point(rec.ry, rec.rx)) is not None:
                lat, lon = pos
                when = t + int(rng.integers(0, 60)) * minute
                dur = int(rng.integers(3, 25))
                path_m = np.hypot(rec.u, rec.v) * dur * 60.0
                ef = int(np.clip((rec.gust - 25.0) / 6.0 + rng.normal(0, 0.7), 0, 3))
                dlat = rec.v * dur * 60.0 / 111e3
                dlon = rec.u * dur * 60.0 / (111e3 * max(np.cos(np.deg2rad(lat)), 0.2))
                b.add(
                    "Tornado", when, when + dur * minute, episode, lat, lon,
                    end_lat=lat + dlat, end_lon=lon + dlon,
                    SOURCE="NWS Storm Survey", TOR_F_SCALE=f"EF{ef}", TOR_LENGTH=f"{path_m / 1609.34:.2f}",
                    TOR_WIDTH=int(rng.integers(25, 60) * (ef + 1) * 5), DAMAGE_PROPERTY=_damage(rng, 20.0 * (ef + 1)),
                    EVENT_NARRATIVE=f"An EF{ef} tornado tracked {path_m / 1609.34:.1f} miles.",
                    spc=("torn", "UNK" if rng.random() < 0.6 else str(ef), "Tornado reported."), **common,
                )  # fmt: skip
        # flash flood and heavy rain from the hour's accumulation
        # (flooding is reported per area and episode, not per storm cell: one per system per 3 hours)
        if rec.tp >= HEAVY_RAIN_M and (rec.system, rec.t // 3) not in b.flood_keys:
            b.flood_keys.add((rec.system, rec.t // 3))
            flash = rec.tp >= FLASH_FLOOD_M
            p = min(0.9, (0.25 + 12.0 * (rec.tp - HEAVY_RAIN_M)) * population[rec.py, rec.px])
            if rng.random() < p and (pos := b.point(rec.py, rec.px)) is not None:
                lat, lon = pos
                begin = t - int(rng.integers(0, 50)) * minute
                end = begin + int(rng.integers(60, 240)) * minute
                inches = rec.tp * 1000.0 / 25.4
                b.add(
                    "Flash Flood" if flash else "Heavy Rain", begin, end, episode, lat, lon,
                    FLOOD_CAUSE="Heavy Rain" if flash else "", SOURCE=_SOURCES[int(rng.integers(len(_SOURCES)))],
                    DAMAGE_PROPERTY=_damage(rng, 3.0 if flash else 0.5),
                    EVENT_NARRATIVE=f"Rainfall of {inches:.2f} inches in an hour "
                    + ("flooded roads and low-lying areas." if flash else "was measured."),
                    **common,
                )  # fmt: skip


def _zones(b: _Builder, zones: pd.DataFrame, start: datetime) -> None:
    rng = b.rng
    zones = zones.assign(day=zones["t"] // 24)
    narratives = {
        "heat": "A strong upper-level ridge brought hot air and high temperatures.",
        "cold": "A deep upper-level trough brought unusually cold air.",
        "wind": "A deep low-pressure system brought strong non-thunderstorm winds.",
    }
    for (kind, day, _state), grp in zones.groupby(["kind", "day", "state"], sort=True):
        hours = grp["t"].to_numpy()
        peak = grp.loc[grp["value"].idxmax()]
        if kind == "heat":
            etype = "Excessive Heat" if peak["value"] >= EXCESSIVE_HEAT_K else "Heat"
            if grp["count"].max() < 2 or rng.random() > 0.75:
                continue
            extra = {
                "EVENT_NARRATIVE": f"Temperatures peaked near {(peak['value'] - 273.15) * 1.8 + 32:.0f} F."
            }
        elif kind == "cold":
            etype = "Extreme Cold/Wind Chill"
            if rng.random() > 0.75:
                continue
            extra = {"EVENT_NARRATIVE": f"Temperatures fell to {(peak['value'] - 273.15) * 1.8 + 32:.0f} F."}
        else:
            etype = "High Wind"
            if rng.random() > 0.6:
                continue
            kt = max(round(peak["value"] * 1.943844 * 1.4), 50)
            extra = {
                "MAGNITUDE": f"{kt:.2f}",
                "MAGNITUDE_TYPE": "MG" if rng.random() < 0.5 else "EG",
                "SOURCE": "ASOS" if rng.random() < 0.5 else "Mesonet",
                "EVENT_NARRATIVE": f"Winds gusted to {kt} knots.",
            }
        cell = int(peak["cell"])
        iy, ix = np.unravel_index(cell, b.mg.shape)
        lat, lon = float(b.mg.lat[iy, ix]), float(b.mg.lon[iy, ix])
        begin = start + timedelta(hours=int(hours.min()))
        end = start + timedelta(hours=int(hours.max()), minutes=59)
        extra.setdefault("SOURCE", "ASOS")
        b.add(
            etype,
            begin,
            end,
            b.episode((kind, day)),
            lat,
            lon,
            zone=True,
            narrative=narratives[kind],
            **extra,
        )


def write_spc(
    spc: pd.DataFrame, directory: Path, first_day: pd.Timestamp, last_day: pd.Timestamp
) -> list[Path]:
    """Write SPC daily files ``YYMMDD_rpts_{torn,hail,wind}.csv`` for every SPC day in a range.

    The SPC day ``D`` runs from 12 UTC on ``D`` to 12 UTC on ``D + 1``; days without reports get files
    with the header only, as SPC publishes them.
    """
    directory.mkdir(parents=True, exist_ok=True)
    mag_name = {"torn": "F_Scale", "hail": "Size", "wind": "Speed"}
    written = []
    spc = spc.copy()
    if len(spc):
        spc["spc_day"] = (pd.to_datetime(spc["time"]) - pd.Timedelta(hours=12)).dt.floor("D")
    day = first_day
    while day <= last_day:
        for kind, mag in mag_name.items():
            sub = spc[(spc["kind"] == kind) & (spc["spc_day"] == day)] if len(spc) else spc
            out = pd.DataFrame(
                {
                    "Time": [f"{t.hour:02d}{t.minute:02d}" for t in pd.to_datetime(sub["time"])]
                    if len(sub)
                    else [],
                    mag: sub["magnitude"].to_list() if len(sub) else [],
                    **{c: (sub[c].to_list() if len(sub) else []) for c in SPC_COLUMNS[2:]},
                }
            )
            path = directory / f"{day:%y%m%d}_rpts_{kind}.csv"
            atomic_write(path, lambda tmp, out=out: out.to_csv(tmp, index=False))
            written.append(path)
        day += pd.Timedelta(days=1)
    return written
