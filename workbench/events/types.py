"""Event types: which reports count as extreme, and the families they are grouped into.

NCEI Storm Events use 48 detailed event types; SPC local storm reports use three (tornado, hail, wind).
Masks are built per *family*, a coarse label shared by reports and threshold events so that, for
example, an ``Excessive Heat`` episode and a 99th-percentile ``t2m`` object both land on the ``heat``
layer. The detailed types are kept in the event table's ``details`` column.
"""

from __future__ import annotations

from collections.abc import Iterable

#: NCEI Storm Events types kept by default. These are the severe-convective, precipitation, wind,
#: winter and temperature extremes that a weather model's surface fields can represent. Types that a
#: forecast of the canonical variables cannot verify (Drought, Wildfire, Rip Current, Dense Fog, High
#: Surf, Lightning, marine-only and coastal types, ...) are left out.
DEFAULT_EVENT_TYPES: tuple[str, ...] = (
    "Thunderstorm Wind",
    "Hail",
    "Tornado",
    "Flash Flood",
    "Flood",
    "Heavy Rain",
    "High Wind",
    "Strong Wind",
    "Hurricane (Typhoon)",
    "Tropical Storm",
    "Winter Storm",
    "Winter Weather",
    "Heavy Snow",
    "Lake-Effect Snow",
    "Blizzard",
    "Ice Storm",
    "Excessive Heat",
    "Heat",
    "Extreme Cold/Wind Chill",
    "Cold/Wind Chill",
)

#: Order of the families on a mask's ``event_type`` dimension (others follow alphabetically).
FAMILY_ORDER: tuple[str, ...] = (
    "tornado",
    "hail",
    "wind",
    "gust",
    "heavy_rain",
    "reflectivity",
    "winter",
    "heat",
    "cold",
)

# Keys are lower-case with spaces; see `_key`.
_FAMILY_OF: dict[str, str] = {
    # severe convection
    "tornado": "tornado",
    "torn": "tornado",
    "waterspout": "tornado",
    "funnel cloud": "tornado",
    "hail": "hail",
    "marine hail": "hail",
    # wind
    "thunderstorm wind": "wind",
    "marine thunderstorm wind": "wind",
    "high wind": "wind",
    "marine high wind": "wind",
    "strong wind": "wind",
    "marine strong wind": "wind",
    "hurricane (typhoon)": "wind",
    "hurricane": "wind",
    "tropical storm": "wind",
    "tropical depression": "wind",
    "dust storm": "wind",
    "wind": "wind",
    # rain and flooding
    "flash flood": "heavy_rain",
    "flood": "heavy_rain",
    "heavy rain": "heavy_rain",
    "debris flow": "heavy_rain",
    "heavy_rain": "heavy_rain",
    # winter
    "winter storm": "winter",
    "winter weather": "winter",
    "heavy snow": "winter",
    "lake-effect snow": "winter",
    "blizzard": "winter",
    "ice storm": "winter",
    "sleet": "winter",
    "winter": "winter",
    # temperature
    "excessive heat": "heat",
    "heat": "heat",
    "extreme cold/wind chill": "cold",
    "cold/wind chill": "cold",
    "frost/freeze": "cold",
    "cold": "cold",
    # threshold-only families
    "gust": "gust",
    "reflectivity": "reflectivity",
}

#: SPC report types (as in the file names ``YYMMDD_rpts_<type>.csv``) and the NCEI type they match.
SPC_DETAILED_TYPE: dict[str, str] = {"tornado": "Tornado", "hail": "Hail", "wind": "Thunderstorm Wind"}


def _key(name: str) -> str:
    # HR-Extreme writes types with underscores ("Thunderstorm_Wind"); NCEI with spaces.
    return " ".join(str(name).replace("_", " ").split()).lower()


def family_of(event_type: str) -> str | None:
    """The family (mask label) of a detailed event type, or ``None`` when it has none.

    Parameters
    ----------
    event_type : str
        An NCEI Storm Events type (``"Thunderstorm Wind"``), an SPC type (``"torn"``, ``"hail"``,
        ``"wind"``) or a family name; case, underscores and extra spaces are ignored.

    Returns
    -------
    str or None
        One of ``tornado, hail, wind, heavy_rain, winter, heat, cold`` (or ``gust``, ``reflectivity``
        for threshold events).
    """
    return _FAMILY_OF.get(_key(event_type))


def normalise_types(event_types: Iterable[str]) -> set[str]:
    """Lower-case keys of event types, for case- and underscore-insensitive membership tests."""
    return {_key(t) for t in event_types}


def is_kept(event_type: str, kept: set[str]) -> bool:
    """Whether ``event_type`` is in ``kept`` (a set from :func:`normalise_types`)."""
    return _key(event_type) in kept


def sort_families(families: Iterable[str]) -> list[str]:
    """Families in :data:`FAMILY_ORDER`, unknown ones after them alphabetically."""
    rank = {f: i for i, f in enumerate(FAMILY_ORDER)}
    return sorted(set(families), key=lambda f: (rank.get(f, len(rank)), f))


def join_types(types: Iterable[str]) -> str:
    """The ``'+'``-joined label of a set of families (in :data:`FAMILY_ORDER`)."""
    return "+".join(sort_families(types))


def split_types(label: str) -> list[str]:
    """The families of a ``'+'``-joined ``event_type`` label (``"hail+wind"`` -> ``["hail", "wind"]``)."""
    return [part for part in str(label).split("+") if part]
