"""Who may open the dashboard: this machine only, unless the operator exposes it on purpose.

``workbench serve`` and the README's ``panel serve apps/skill.py --address 127.0.0.1`` listen on the
loopback interface. ``panel serve apps/skill.py`` without ``--address`` would listen on every interface
(Bokeh's default), so the page also checks each visitor: a session from another machine gets a short
page that says how to expose the dashboard, and the server does no work for it. Setting
``$WORKBENCH_DASHBOARD_EXPOSE=1`` lifts the check, for a server put on a network deliberately;
``workbench serve --address HOST`` with an address other than loopback sets it (see SECURITY.md).
"""

from __future__ import annotations

import ipaddress
import os

#: Environment variable that lets visitors from other machines in.
EXPOSE_ENV = "WORKBENCH_DASHBOARD_EXPOSE"


def exposed() -> bool:
    """Whether the operator opened the dashboard to other machines (``$WORKBENCH_DASHBOARD_EXPOSE``)."""
    return os.environ.get(EXPOSE_ENV, "").strip().lower() in ("1", "true", "yes")


def is_loopback(address: str | None) -> bool:
    """Whether ``address`` (a visitor's IP) is this machine: ``127.0.0.0/8``, ``::1`` or IPv4-mapped."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def visitor_allowed(remote_ip: str | None) -> bool:
    """Whether a session from ``remote_ip`` may see the dashboard.

    ``None`` (no request: a notebook, a test building the page in-process) is this machine.
    """
    return remote_ip is None or exposed() or is_loopback(remote_ip)


def session_remote_ip() -> str | None:
    """The current server session's client address, or ``None`` outside a server session."""
    import panel as pn

    context = getattr(pn.state.curdoc, "session_context", None)
    request = getattr(context, "request", None)
    if request is None:
        return None
    try:
        return request.remote_ip
    except AttributeError:
        return None


LOCAL_ONLY_PAGE = (
    "## This dashboard serves this machine only\n\n"
    "Open it on the machine that runs it, or ask its operator to expose it deliberately "
    "(`workbench serve --address HOST`, or `panel serve` with `WORKBENCH_DASHBOARD_EXPOSE=1`; see "
    "SECURITY.md)."
)
