"""The served page during a first start: a progress view, replaced by the dashboard without a reload.

:func:`first_start_app` is what ``apps/skill.py`` and ``workbench serve`` serve. It answers at once: while
the sample's results are built (:class:`workbench.workflow.firststart.FirstStart`, a thread of the
server), the page shows the steps - sample, events, baselines, learned models - with their state,
elapsed time and what happens now. A periodic callback of the session (Panel's way to change a served
page from the server: it runs on the session's event loop, holding the document's lock) follows the
job; when the baselines are scored, the results are opened in a worker thread and the dashboard takes
the progress view's place in the same page; when the learned models finish, the dashboard is rebuilt
with them, keeping the selection. A failed step shows as one escaped line.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import time
from collections.abc import Callable
from urllib.parse import parse_qs

import panel as pn

from workbench.viz.access import EXPOSE_ENV, LOCAL_ONLY_PAGE, session_remote_ip, visitor_allowed
from workbench.viz.safety import escape, page_text
from workbench.workflow.firststart import FirstStart, Snapshot, existing_job, first_start

log = logging.getLogger(__name__)

__all__ = ["first_start_app", "progress_markdown"]

TITLE = "Extreme Weather Workbench — skill"

#: Milliseconds between two looks at the job from a page.
POLL_MS = 500

#: Symbol per step state (text, so it reads the same in any font).
_MARK = {"waiting": "·", "running": "…", "done": "✓", "skipped": "–", "failed": "✗"}

#: One worker opens results for every page of the server: opening is I/O and must not block the pages.
_LOADER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-results")


def progress_markdown(snapshot: Snapshot, size: str) -> str:
    """The progress view's text: a table of the steps and a line on what happens now (escaped)."""
    rows = ["| step | state | elapsed |", "| --- | --- | --- |"]
    for step in snapshot.steps:
        elapsed = step.elapsed(snapshot.clock)
        shown = "" if elapsed is None else f"{elapsed:.0f} s"
        detail = f" ({escape(step.detail[:120])})" if step.state in ("done", "skipped") and step.detail else ""
        rows.append(f"| {escape(step.name)} | {_MARK.get(step.state, '')} {step.state}{detail} | {shown} |")
    lines = [
        f"### Preparing the dashboard ({escape(size)} sample)",
        "The first start builds the sample, its extreme-event masks and the baselines' scores into the "
        "cache; the dashboard replaces this view when they are ready, and the learned models join it "
        "when their forecasts are done. Later starts read the cache and take seconds.",
        "",
        *rows,
        "",
        f"**Now:** {escape(snapshot.now)}",
    ]
    return "\n".join(lines)


def _default_loader(size: str, scores: str | None):
    from workbench.viz.dashboard import cached_results

    return cached_results(size=size, scores=scores)


def _current_query() -> dict | None:
    """The page's current URL query (kept up to date by the dashboard), as ``session_args`` has it."""
    location = pn.state.location
    search = getattr(location, "search", "") if location is not None else ""
    if not search:
        return None
    return {k: [v.encode() for v in vals] for k, vals in parse_qs(search.lstrip("?")).items()}


def first_start_app(
    size: str | None = None,
    scores: str | None = None,
    loader: Callable[..., object] | None = None,
    learned: str | None = None,
) -> pn.viewable.Viewable:
    """The page for the current session: the dashboard, preceded by a progress view on a first start.

    Parameters
    ----------
    size : str, optional
        Sample size; ``$WORKBENCH_SAMPLE_SIZE`` or ``default``.
    scores : str, optional
        Scores to show instead of the sample's (see :func:`workbench.viz.dashboard.create_app`).
    loader : callable, optional
        ``loader(size=..., scores=...) -> Results``; :func:`workbench.viz.dashboard.cached_results` by
        default. Called in a worker thread, never in the page's callbacks.
    learned : {"background", "wait", "off"}, optional
        How the learned models are run; ``$WORKBENCH_DASHBOARD_LEARNED`` by default.

    Returns
    -------
    panel.viewable.Viewable
        A page template; call ``.servable()`` on it.
    """
    # The dashboard's modules (HoloViews, xarray, ...) take seconds to import on a busy machine: they
    # load in the worker thread with the results, never before the progress view is sent.
    if not visitor_allowed(session_remote_ip()):
        log.warning("a visitor from another machine got the local-only page (%s unset)", EXPOSE_ENV)
        return pn.pane.Markdown(LOCAL_ONLY_PAGE, sizing_mode="stretch_width")
    size = size or os.environ.get("WORKBENCH_SAMPLE_SIZE", "default")
    for name in ("workbench.workflow", __name__):  # the steps in the server's terminal
        logging.getLogger(name).setLevel(logging.INFO)
    load = loader or (lambda size, scores: _default_loader(size, scores))
    job = existing_job(size, learned=learned)
    snapshot = job.snapshot() if job is not None else FirstStart(size, learned=learned).snapshot()
    if job is not None and job.done and snapshot.ready and snapshot.learned_finished and snapshot.error is None:
        from workbench.viz.dashboard import create_app

        return create_app(loader=lambda **kw: load(**kw), size=size, scores=scores)

    progress = pn.pane.Markdown(progress_markdown(snapshot, size), sizing_mode="stretch_width")
    # one line above the dashboard while the learned models are still being forecast
    pending = pn.pane.Markdown("", visible=False, sizing_mode="stretch_width", css_classes=["learned-pending"])
    error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
    sidebar = pn.Column(sizing_mode="stretch_width")
    main = pn.Column(error, progress, sizing_mode="stretch_width", css_classes=["first-start"])
    template = pn.template.BootstrapTemplate(title=TITLE, sidebar=[sidebar], main=[main], sidebar_width=300)
    shown: dict = {"generation": None, "future": None, "learned": False}

    def swap_in(results, generation: int, learned_finished: bool) -> None:
        from workbench.viz.dashboard import create_app

        t0 = time.perf_counter()
        page = create_app(loader=lambda **kw: results, size=size, scores=scores, query=_current_query())
        if isinstance(page, pn.template.BaseTemplate):
            sidebar[:] = list(page.sidebar)
            main[:] = [error, pending, *page.main]
        else:
            main[:] = [error, pending, page]
        shown["generation"], shown["learned"] = generation, learned_finished
        log.info(
            "first start %s: dashboard shown with %s (built in %.1f s)",
            size,
            ", ".join(results.map_models) if hasattr(results, "map_models") else "its results",
            time.perf_counter() - t0,
        )

    def open_results(snap: Snapshot):
        t0 = time.perf_counter()
        import workbench.viz.dashboard  # noqa: F401  (imported here, off the page's event loop)

        results = load(size=size, scores=scores)
        log.info("first start %s: results opened (%.1f s)", size, time.perf_counter() - t0)
        return results, snap.generation, snap.learned_finished

    def tick() -> None:
        snap = job.snapshot()
        future = shown["future"]
        if future is not None and future.done():
            shown["future"] = None
            try:
                swap_in(*future.result())
            except Exception as exc:  # shown as one line; the log keeps the traceback
                log.exception("opening the %s results failed", size)
                error.object, error.visible = f"Opening the results failed: {page_text(exc, 300)}", True
                callback.stop()
                return
        if shown["generation"] is None:
            progress.object = progress_markdown(snap, size)
        else:
            learned = snap.steps[-1]
            pending.visible = learned.state == "running"
            if pending.visible:
                pending.object = (
                    f"*Learned models: running in the background ({learned.elapsed(snap.clock) or 0:.0f} s so "
                    f"far); their forecasts, then their ensemble, join this page when done. "
                    f"Now: {escape(snap.now)}*"
                )
        if snap.error:
            error.object, error.visible = page_text(snap.error, 300), True
        if shown["generation"] is not None and snap.learned_finished and snap.generation == shown["generation"]:
            shown["learned"] = True
        if shown["future"] is None and snap.ready and not shown["learned"] and (
            shown["generation"] is None or snap.generation != shown["generation"]
        ):
            shown["future"] = _LOADER.submit(open_results, snap)
        if shown["future"] is None and (shown["learned"] or (snap.error is not None and not snap.ready)):
            pending.visible = False
            callback.stop()

    callback = None

    def start() -> None:
        # After the page is in the browser: the job's thread imports the pipeline's libraries, which
        # would otherwise compete with sending this first view
        nonlocal job, callback
        job = first_start(size, learned=learned)
        snap = job.snapshot()
        if snap.ready:
            # the baselines are ready (the learned models may still run): the dashboard at once
            swap_in(*open_results(snap))
        callback = pn.state.add_periodic_callback(tick, period=POLL_MS)

    pn.state.onload(start)
    return template
