"""What a page's URL may ask of the dashboard: a choice among what the server already has.

A URL is written by anyone who can reach the page, so its parameters only *select*:

* the view parameters (``model``, ``variable``, ``metric``, ``region``, ``event_type``, ``init_time``,
  ``lead_time``, ``reference``) pick one of the options the dashboard's widgets offer
  (:func:`choose`, :func:`apply_query`);
* ``scores`` picks one of the scores results that already exist - by *name* - among those the server was
  started with and the scores files lying in the catalog's forecast-store folder (:func:`scores_choices`).
  A URL never names a path, a catalog entry or a URL, so it cannot make the server generate a sample,
  download anything or read a file the catalog does not name.

Anything else is refused with a short message (escaped with :mod:`workbench.viz.safety`) and the page
keeps its current selection; nothing here raises on any input.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import param

from workbench.viz.safety import escape, shown_value

#: Parameters kept in the page's URL (query parameter names are the same), in the order they are applied:
#: the model first, since the initial and lead times offered depend on it.
URL_PARAMETERS = (
    "model",
    "variable",
    "metric",
    "region",
    "event_type",
    "init_time",
    "lead_time",
    "reference",
)

#: Longest query value looked at; anything longer is refused unread.
MAX_VALUE_CHARS = 200

#: A scores result's name: a file name, no folder part.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,119}")
_INT = re.compile(r"[+-]?[0-9]{1,6}(?:\.0*)?")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2})?)?)?Z?")


def query_value(raw: object) -> str | None:
    """One query parameter's value as text: the first of a list, bytes decoded; ``None`` if unusable."""
    if isinstance(raw, list | tuple):
        raw = raw[0] if raw else None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if raw is None or isinstance(raw, dict | list | tuple | set):
        return None
    if isinstance(raw, bool):
        return str(raw).lower()
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        raw = int(raw)
    return str(raw)


def choose(name: str, raw: object, options: Sequence) -> object | None:
    """The option of ``options`` that a URL value ``raw`` names, or ``None`` if it names none.

    Lead times are whole hours (``6``, ``"6"``, ``"6.0"``); initial times match with or without seconds
    (``2020-06-01T12:00`` or ``2020-06-01T12:00:00``); everything else must equal an option's text.
    """
    text = query_value(raw)
    if text is None or len(text) > MAX_VALUE_CHARS:
        return None
    text = text.strip()
    if name == "lead_time":
        if not _INT.fullmatch(text):
            return None
        hours = int(float(text))
        return hours if hours in options else None
    if name == "init_time" and _TIME.fullmatch(text):
        wanted = text.replace(" ", "T").removesuffix("Z")
        for option in options:
            if wanted in (str(option), f"{option}:00") or (
                len(wanted) == 10 and str(option) == wanted + "T00:00"
            ):
                return option
        return None
    for option in options:
        if text == str(option):
            return option
    return None


def _echo(raw: object) -> str:
    """A sent value as the visitor typed it (decoded, the first of a list), quoted, cut and escaped."""
    text = query_value(raw)
    return shown_value(raw if text is None else text)


def refusal(name: str, raw: object, options: Sequence, kept: object) -> str:
    """The page's one-line message for a URL value that names no option (escaped Markdown)."""
    listed = [str(o) for o in options]
    if len(listed) > 8:
        listed = [*listed[:4], "...", *listed[-2:]]
    return (
        f"URL parameter {escape(name)}={_echo(raw)} is not one of "
        f"{escape(', '.join(listed))}; showing {escape(kept)}."
    )


def apply_query(state: param.Parameterized, query: Mapping[str, object]) -> list[str]:
    """Apply a URL's view parameters to ``state`` one by one; returns a message per refused value.

    Unknown parameter names are ignored (they select nothing); a refused value keeps the state's current
    choice. Each value is checked against the options the state offers at that moment (the model's
    initial and lead times once the model is set).

    Parameters
    ----------
    state : SkillState
        The selection; a parameter's options are ``state.param[name].objects``.
    query : mapping
        Parameter name to value (text, bytes, a list of them as in ``pn.state.session_args``, or a
        number as Panel's query parser gives).
    """
    problems = []
    for name in URL_PARAMETERS:
        if name not in query:
            continue
        options = list(state.param[name].objects)
        value = choose(name, query[name], options)
        if value is None:
            problems.append(refusal(name, query[name], options, getattr(state, name)))
        elif value != getattr(state, name):
            setattr(state, name, value)
    return problems


def scores_choices(launched: str | None = None) -> dict[str, str]:
    """The scores results a URL may pick, by name: the one the server was started with, then every
    scores file (``*.nc``, ``*.zarr``) already in the catalog's forecast-store folder.

    Only folders that exist are listed; nothing is created, generated or downloaded. A forecast store
    (a ``.zarr`` folder with a ``_progress`` record) is not a scores result and is left out.

    Parameters
    ----------
    launched : str, optional
        The scores the server was started with (``--scores`` / ``$WORKBENCH_SCORES``), a catalog entry
        or path the operator chose; it is listed under its last path part.

    Returns
    -------
    dict of str to str
        Name shown (and accepted in ``?scores=``) to what the loader opens.
    """
    from workbench.sources.intake_sources import forecasts_dir

    found: dict[str, str] = {}
    if launched:
        found[Path(str(launched)).name or str(launched)] = str(launched)
    folder = forecasts_dir()
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        entries = []
    for path in entries:
        if path.suffix not in (".nc", ".zarr") or not _NAME.fullmatch(path.name):
            continue
        if path.suffix == ".zarr" and (path / "_progress").exists():
            continue
        found.setdefault(path.name, str(path))
    return found


def choose_scores(raw: object, choices: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``(what to open, None)`` for a ``?scores=`` value naming a result, else ``(None, message)``.

    A name may leave out its ``.nc`` / ``.zarr`` suffix when that is unambiguous. The message names the
    results there are, never a path.
    """
    text = query_value(raw)
    if text is not None and len(text) <= MAX_VALUE_CHARS and _NAME.fullmatch(text.strip()):
        text = text.strip()
        if text in choices:
            return choices[text], None
        stems = [n for n in choices if Path(n).stem == text]
        if len(stems) == 1:
            return choices[stems[0]], None
    there = ", ".join(choices) if choices else "none besides the sample's own"
    return None, (
        f"**Refused** scores={_echo(raw)}: a URL can only pick scores results this server already has "
        f"({escape(there)}); showing the default scores."
    )


def url_search(state: param.Parameterized, extra: Mapping[str, str] | None = None) -> str:
    """The query string (``?model=...&...``) that reselects ``state``, with ``extra`` first."""
    from urllib.parse import urlencode

    values = dict(extra or {})
    for name in URL_PARAMETERS:
        value = getattr(state, name)
        if value is not None:
            values[name] = str(value)
    return "?" + urlencode(values)


def session_location():
    """The session's ``pn.state.location``, made so that no address can break the page.

    Panel's :class:`~panel.io.location.Location` parses the whole query string whenever its ``search``
    changes - on creation from the request, and when the browser reports its address - and that parser
    raises on some values (``lead_time=`` and 5000 digits, ``lead_time=²``): the session then fails
    before the page is built. The dashboard reads the URL itself (:func:`apply_query`) and only writes
    it, so the session gets a Location that parses nothing unless something is synced with it. It is
    registered where Panel looks for the session's Location (``servable`` and ``pn.serve`` reuse it).

    Returns
    -------
    panel.io.location.Location or None
        ``None`` outside a server session.
    """
    import panel as pn

    doc = pn.state.curdoc
    context = getattr(doc, "session_context", None)
    if doc is not None and context is not None and doc not in pn.state._locations:
        pn.state._locations[doc] = _quiet_location_class().from_request(context.request)
    return pn.state.location


@functools.cache
def _quiet_location_class():
    from panel.io.location import Location

    class QuietLocation(Location):
        """A Location that leaves the raw query string alone while nothing is synced with it."""

        def _update_synced(self, event=None) -> None:
            if self._synced:
                super()._update_synced(event)

    return QuietLocation
