"""Text that is safe to put on a served page: escaped, short, and without server paths.

Every text that reaches a dashboard pane from outside the code - a URL parameter, a file (event tables,
notes of the cached results) or an exception - goes through :func:`page_text`. Panel renders
``Markdown`` and ``Alert`` panes as Markdown *with* raw HTML, so escaping ``<`` alone is not enough: a
``[link](javascript:...)`` or an emphasis marker is markup too. :func:`escape` therefore writes every
character that HTML or Markdown give a meaning as a numeric character reference (``&#60;``), which both
show as the plain character and neither ever reads as structure.
"""

from __future__ import annotations

import re
import unicodedata

#: Characters written as numeric references: HTML's specials and every Markdown punctuation mark.
_SPECIAL = frozenset("<>&\"'`\\*_{}[]()#+-.!|~=:;/@%$^?,")

#: Longest text kept from outside input (a URL value, a file name); longer text is cut with "...".
MAX_SHOWN_CHARS = 80

# An absolute POSIX path of two or more segments, or a Windows drive path; ``file://`` URLs included.
_PATH = re.compile(
    r"(?:file://)?(?:(?<![\w.~-])/(?:[^\s/'\"<>:,;()\[\]]+/)+[^\s/'\"<>:,;()\[\]]*"
    r"|\b[A-Za-z]:\\(?:[^\s\\'\"<>]+\\)*[^\s\\'\"<>]*|~/[^\s'\"<>]*)"
)


def escape(text: object) -> str:
    """``text`` as characters that Markdown and HTML both show literally.

    Control and format characters (newlines included) become spaces, so a value cannot start a new
    Markdown block (a heading, a list, a raw HTML block).

    Parameters
    ----------
    text : object
        Anything; it is converted with ``str``.

    Returns
    -------
    str
        Safe inside ``pn.pane.Markdown``, ``pn.pane.Alert`` and ``pn.pane.HTML``.
    """
    out = []
    for ch in str(text):
        if ch in _SPECIAL:
            out.append(f"&#{ord(ch)};")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def hide_paths(text: str) -> str:
    """``text`` with every absolute path replaced by its last part (``/srv/cache/x/s.zarr`` -> ``s.zarr``).

    The page may name a data set, never where the server keeps it.
    """

    def name(match: re.Match) -> str:
        parts = [p for p in re.split(r"[/\\]", match.group(0).removeprefix("file://")) if p and p != "~"]
        return parts[-1] if parts else "(path)"

    return _PATH.sub(name, text)


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def page_text(text: object, limit: int | None = None) -> str:
    """Outside text as it may appear on the page: paths hidden, cut to ``limit`` characters, escaped."""
    plain = hide_paths(str(text))
    return escape(shorten(plain, limit) if limit else plain)


def shown_value(value: object) -> str:
    """A value a visitor sent (a URL parameter), quoted, short and escaped, for a refusal message."""
    return escape(repr(shorten(str(value), 40)))
