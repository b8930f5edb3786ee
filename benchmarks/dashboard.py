"""Dashboard benchmark: server-side update times of the maps, time to first render, and a load test.

    python benchmarks/dashboard.py                 # updates and first render: default sample and 3-km field
    python benchmarks/dashboard.py --load-test     # also: ten browser sessions changing widgets for a minute
    python benchmarks/dashboard.py --screenshot docs/dashboard.png   # a picture of the page (default sample)

**Update time** is what the server spends between a widget's new value arriving and the new maps being
ready to send: the :class:`~workbench.viz.dashboard.SkillDashboard` maps (truth, forecast, error, each
resampled by datashader to the pixels on screen, with the event outline and state borders) are rendered
into a Bokeh document as a server session would, then a parameter of the shared state is changed and
the synchronous update (field selection, datashader, the in-place update of each map's Bokeh models -
one binary image column per map, colour range, titles - and the event table's refresh) is timed. The first visit of a (variable, lead time) also loads the fields into
memory and computes the event table's errors; it is timed apart. Parts are timed alone too: selecting a
field, datashader's raster at the map's size (and HoloViews' ``rasterize`` operation, which the
notebooks use, for comparison), the outline.

**Time to first render** is the server-side build of the whole page for a new session (state, views,
template, Bokeh document), with the results already cached in the server process, and, with
``--load-test``, the time until a browser shows the maps.

The 3-km case uses :func:`workbench.workflow.synthetic.synthetic_results` on the full 1059 x 1799 HRRR grid
(the sample pipeline at 3 km would take far longer than the view code being measured). The targets at
3 km: p90 of an update under 100 ms, a first visit of a (variable, lead time) under 200 ms. On a shared
machine read the CPU columns: they are what the server spends, whatever else runs.

**Load test** (``--load-test``, :func:`run_load_test`): the sample's results are built or opened first,
then ``panel serve apps/skill.py`` starts on a free loopback port (the learned models' background
forecasts are not started: those already cached are shown), ten headless Chromium pages (Playwright, one
browser) open a second apart, each changes widgets (variable, model, metric, initial time) in a loop for
a minute and waits for the maps' titles to show each change; then every page must answer one more change,
and the server log must hold no error. It reports per session the changes made, timeouts, page errors and
the browser-side latency, and the CPU the server and the browser spent during the minute.
``tests/test_dashboard_load.py`` runs the same test on the tiny sample.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def _ms(seconds: list[float], cpu: list[float] | None = None) -> str:
    a = np.asarray(seconds) * 1000
    text = f"median {np.median(a):7.1f} ms   p90 {np.percentile(a, 90):7.1f} ms   max {a.max():7.1f} ms"
    if cpu is not None:
        # CPU time of this process: what the work costs when the machine is shared with other jobs
        c = np.asarray(cpu) * 1000
        text += f"   cpu median {np.median(c):7.1f} ms   cpu p90 {np.percentile(c, 90):7.1f} ms"
    return text + f"   (n={a.size})"


def _timed(fn, repeats: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def bench_results(results, label: str, repeats: int) -> dict:
    """Update, component and first-render timings for one Results."""
    import holoviews as hv
    from bokeh.document import Document
    from holoviews.operation.datashader import rasterize

    from workbench.viz import maps as vmaps
    from workbench.viz.dashboard import MAP_WIDTH, SkillDashboard

    print(
        f"\n== {label}: grid {results.grid.ny} x {results.grid.nx} ({results.grid.dx / 1000:g} km), "
        f"models {results.map_models}"
    )
    out = {}

    # Time to first render: a new session's whole page, results already in memory.
    def first_render():
        page = SkillDashboard(results).template()
        page.server_doc(Document())

    first, first_cpu = _timed(first_render, max(2, repeats // 4))
    print(f"first render (server-side, whole page) ......... {_ms(first, first_cpu)}")
    out["first_render"] = first

    # Updates of the maps alone, as one session sees them.
    board = SkillDashboard(results)
    doc = Document()
    doc.add_root(board.maps(("truth", "forecast", "error")).get_root(doc))
    state = board.state
    leads = state.param.lead_time.objects
    inits = state.param.init_time.objects
    variables = state.param.variable.objects
    models = state.param.model.objects
    state.lead_time = leads[0]  # warm-up: the first datashader call compiles its kernels
    some_vars = variables[:3]
    # First visits load a variable's fields into memory and compute the event table's errors for a
    # (variable, lead time): timed apart from the steady state, which then moves among visited values.
    first_visit, first_cpu = [], []
    for update in [{"variable": v, "lead_time": h} for v in some_vars for h in leads] + [
        {"model": m} for m in models
    ]:
        t, c = time.perf_counter(), time.process_time()
        state.param.update(**update)
        first_visit.append(time.perf_counter() - t)
        first_cpu.append(time.process_time() - c)
    print(f"first visit of a (variable, lead) or model ..... {_ms(first_visit, first_cpu)}")
    out["first_visit"] = first_visit
    state.param.update(variable=some_vars[0], model=models[-1])
    changes = {
        "lead time": [{"lead_time": leads[i % len(leads)]} for i in range(1, repeats + 1)],
        "initial time": [{"init_time": inits[i % len(inits)]} for i in range(1, repeats + 1)],
        "variable": [{"variable": some_vars[i % len(some_vars)]} for i in range(1, repeats + 1)],
        "model": [{"model": models[i % len(models)]} for i in range(1, repeats + 1)],
    }
    for name, updates in changes.items():
        times, cpu = [], []
        for update in updates:
            t, c = time.perf_counter(), time.process_time()
            state.param.update(**update)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        print(f"map update after a {name + ' change':<22s} ... {_ms(times, cpu)}")
        out[f"update_{name}"] = times

    # The parts, for the currently selected fields.
    s = state
    grid = results.grid
    height = int(round(MAP_WIDTH * grid.ny / grid.nx))
    field = results.field("error", s.model, s.variable, s.init_time, s.lead_time)
    image = vmaps.field_image(field, kind="error")
    screen = (None, None, MAP_WIDTH, height)
    parts = {
        "select one field (error = forecast - truth)": lambda: results.field(
            "error", s.model, s.variable, s.init_time, s.lead_time
        ),
        "datashader raster of it (what the maps use)": lambda: vmaps.raster_field(field, *screen),
        "same with HoloViews rasterize (notebooks)": lambda: rasterize(
            image, width=MAP_WIDTH, height=height, dynamic=False
        ),
        "event outline (contours, cached per time)": lambda: (
            vmaps.mask_outline(results.mask_at(s.valid_time, "all"))
            if results.mask_at(s.valid_time, "all") is not None
            else None
        ),
    }
    for name, fn in parts.items():
        fn()
        times, cpu = _timed(fn, repeats)
        print(f"  {name:<46s}{_ms(times, cpu)}")
        out[name] = times
    hv.renderer("bokeh")  # keep the import used for the renderer registration
    return out


def full_grid_results():
    """Synthetic results on the full 3-km HRRR grid (see the module docstring)."""
    from workbench.workflow.synthetic import synthetic_results

    t = time.perf_counter()
    results = synthetic_results(
        spacing_km=3.0,
        days=1.0,
        lead_hours=(0, 3, 6),
        init_every_hours=6,
        models=("nwp", "persistence", "pangu"),
        ensemble_model=None,
        n_storms=6,
        score_stride=8,
    )
    print(f"(generated synthetic 3-km results in {time.perf_counter() - t:.1f} s)")
    return results


# -- load test -----------------------------------------------------------------------------------------
FIGURE_TITLES_JS = """() => {
  const out = [];
  if (!window.Bokeh || !Bokeh.documents.length) return out;
  for (const m of Bokeh.documents[0].all_models)
    if (m.constructor.__name__ === 'Figure' && m.title) out.push(m.title.text);
  return out;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Seconds a page may take to show a change (ten Chromium pages and the server share two cores).
CHANGE_TIMEOUT = 120.0


class _Session:
    """One browser page of the load test, with its own counts."""

    def __init__(self, browser, url: str, seed: int) -> None:
        self.browser, self.url = browser, url
        self.rng = random.Random(seed)
        self.page_errors: list[str] = []
        self.page = None
        self.first_render: float | None = None
        self.latency: list[float] = []
        self.changes = 0
        self.timeouts = 0
        self.answered = False

    async def open(self) -> None:
        self.page = await self.browser.new_page(viewport={"width": 1400, "height": 1200})
        self.page.set_default_timeout(CHANGE_TIMEOUT * 1000)
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        t0 = time.perf_counter()
        await self.page.goto(self.url, timeout=600_000)
        await self.page.wait_for_function(
            "() => window.Bokeh && Bokeh.documents.length && [...Bokeh.documents[0].all_models]"
            ".some(m => m.constructor.__name__ === 'Figure' && m.title && m.title.text.startsWith('error'))",
            timeout=600_000,
        )
        self.first_render = time.perf_counter() - t0

    async def titles(self) -> list[str]:
        return await self.page.evaluate(FIGURE_TITLES_JS)

    async def change_to(self, select, value, expect) -> bool:
        t = time.perf_counter()
        await select.select_option(value)
        while time.perf_counter() < t + CHANGE_TIMEOUT:
            if any(expect(title) for title in await self.titles()):
                self.latency.append(time.perf_counter() - t)
                self.changes += 1
                return True
            await asyncio.sleep(0.1)
        self.timeouts += 1
        return False

    async def change(self, label: str, expect) -> bool:
        select = self.page.get_by_label(label)
        options = await select.evaluate("e => [...e.options].map(o => o.value)")
        current = await select.input_value()
        value = self.rng.choice([o for o in options if o != current] or options)
        return await self.change_to(select, value, lambda title: expect(value, title))

    async def change_variable(self) -> bool:
        return await self.change("Variable", lambda v, t: t.startswith("truth") and f" {v} " in t)

    async def change_model(self) -> bool:
        return await self.change("Model", lambda v, t: t.startswith(f"forecast · {v} ·"))

    async def change_metric(self) -> bool:
        from workbench.viz.style import metric_info

        return await self.change("Metric", lambda v, t: t.startswith(f"{metric_info(v).label} of "))

    async def change_init(self) -> bool:
        # The maps' titles end with the valid time: the new initial time plus the unchanged lead time.
        select = self.page.get_by_label("Initial time (UTC)")
        options = await select.evaluate("e => [...e.options].map(o => o.value)")
        current = await select.input_value()
        truth = [t for t in await self.titles() if t.startswith("truth · analysis")][0]
        lead = np.datetime64(truth.rsplit(" · ", 1)[1]) - np.datetime64(current)
        value = self.rng.choice([o for o in options if o != current] or options)
        valid = str(np.datetime64(value) + lead)[:16]
        return await self.change_to(
            select, value, lambda t: t.startswith("truth · analysis") and t.endswith(valid)
        )

    async def run(self, until: float) -> None:
        actions = [self.change_variable, self.change_model, self.change_metric, self.change_init]
        while time.perf_counter() < until:
            await self.rng.choice(actions)()

    async def final_check(self) -> None:
        self.answered = await self.change_variable()

    def summary(self, index: int) -> dict:
        return {
            "session": index,
            "first_render_s": self.first_render,
            "changes": self.changes,
            "timeouts": self.timeouts,
            "page_errors": len(self.page_errors),
            "answered": self.answered,
            "median_latency_s": float(np.median(self.latency)) if self.latency else None,
        }


def _cpu_seconds(procs) -> float:
    import psutil

    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


@dataclasses.dataclass
class LoadReport:
    """What a load test saw: per-session counts, browser-side latencies, failures and the server log."""

    url: str
    size: str
    models: list[str]
    sessions: list[dict]
    first_render: list[float]
    latency: list[float]
    failures: list[str]
    page_errors: list[str]
    log_errors: list[str]
    server_cpu_s: float
    browser_cpu_s: float
    duration_s: float
    log_path: Path

    @property
    def answered(self) -> int:
        return sum(1 for s in self.sessions if s["answered"])

    @property
    def ok(self) -> bool:
        """Every session opened and answered the final change; no page error, failure or server error."""
        return (
            bool(self.sessions)
            and self.answered == len(self.sessions)
            and not self.failures
            and not self.page_errors
            and not self.log_errors
        )


async def _drive(url: str, sessions: int, duration: float, server_pid: int, log_path: Path) -> dict:
    import psutil
    from playwright.async_api import async_playwright

    failures: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = [_Session(browser, url, seed=i) for i in range(sessions)]
        # 1. Users arrive a second apart; every page must open and show its maps.
        opening = []
        for page in pages:
            opening.append(asyncio.create_task(page.open()))
            await asyncio.sleep(1.0)
        results = await asyncio.gather(*opening, return_exceptions=True)
        failures += [f"session {i} open: {r!r}" for i, r in enumerate(results) if isinstance(r, Exception)]
        live = [p for p, r in zip(pages, results, strict=True) if not isinstance(r, Exception)]
        # 2. Every open page changes widgets for the same stretch of time. CPU is counted for the server
        #    and for Chromium (every process under this one but the server) over this phase only.
        server = psutil.Process(server_pid)
        others = [p for p in psutil.Process().children(recursive=True) if p.pid != server_pid]
        cpu0 = (_cpu_seconds([server]), _cpu_seconds(others))
        t0 = time.perf_counter()
        results = await asyncio.gather(*(p.run(t0 + duration) for p in live), return_exceptions=True)
        failures += [f"session {pages.index(p)} run: {r!r}" for p, r in zip(live, results, strict=True) if r]
        # 3. Every page must still answer a change.
        results = await asyncio.gather(*(p.final_check() for p in live), return_exceptions=True)
        failures += [
            f"session {pages.index(p)} final: {r!r}" for p, r in zip(live, results, strict=True) if r
        ]
        elapsed = time.perf_counter() - t0
        cpu = (_cpu_seconds([server]) - cpu0[0], _cpu_seconds(others) - cpu0[1])
        # The server log up to here is the test's; closing pages while the server still sends them updates
        # can log a closed-socket traceback from tornado, which is not the dashboard's doing.
        log_text = log_path.read_text(errors="replace")
        # Leave the pages cleanly, so the server closes their sessions instead of writing to dead sockets.
        await asyncio.gather(*(p.page.close() for p in live), return_exceptions=True)
        await asyncio.sleep(2.0)
        await browser.close()
    return {"pages": pages, "failures": failures, "cpu": cpu, "elapsed": elapsed, "log": log_text}


def run_load_test(
    size: str = "default",
    sessions: int = 10,
    duration: float = 60.0,
    cache_dir: str | os.PathLike | None = None,
    log_dir: str | os.PathLike | None = None,
) -> LoadReport:
    """Serve ``apps/skill.py`` on a free loopback port and drive it from ``sessions`` Chromium pages.

    The sample's results are built (or opened) in this process first, so the server only reads them; the
    learned models' background forecasts are not started during the test (``WORKBENCH_DASHBOARD_LEARNED=off``:
    learned models already in the cache are shown, missing ones are left out).

    Parameters
    ----------
    size : str
        Sample size (``tiny``, ``default``).
    sessions : int
        Browser pages, each changing widgets in a loop and waiting for the maps to show each change.
    duration : float
        Seconds of widget changes, after every page has opened.
    cache_dir : path, optional
        Workbench cache (default ``$WORKBENCH_CACHE`` or ``~/.cache/workbench``).
    log_dir : path, optional
        Where the server log goes (a new temporary directory by default).

    Returns
    -------
    LoadReport
        ``.ok`` is true when every session opened, answered the final change, and neither the pages nor
        the server log reported an error.
    """
    log_path = Path(log_dir or tempfile.mkdtemp(prefix="workbench-load-")) / "server.log"
    with serve_dashboard(size, cache_dir, log_path) as (url, server_pid, models):
        run = asyncio.run(_drive(url, sessions, duration, server_pid, log_path))
    pages = run["pages"]
    return LoadReport(
        url=url,
        size=size,
        models=models,
        sessions=[p.summary(i) for i, p in enumerate(pages)],
        first_render=[p.first_render for p in pages if p.first_render is not None],
        latency=[t for p in pages for t in p.latency],
        failures=run["failures"],
        page_errors=[e for p in pages for e in p.page_errors],
        log_errors=[
            line for line in run["log"].splitlines() if re.search(r"ERROR|Traceback|Exception", line)
        ],
        server_cpu_s=run["cpu"][0],
        browser_cpu_s=run["cpu"][1],
        duration_s=run["elapsed"],
        log_path=log_path,
    )


@contextlib.contextmanager
def serve_dashboard(size: str, cache_dir, log_path: Path, start_timeout: float = 300):
    """``panel serve apps/skill.py`` on a free loopback port; yields ``(url, pid, models shown)``."""
    from workbench.workflow.pipeline import sample_results

    env = dict(
        os.environ, WORKBENCH_SAMPLE_SIZE=size, WORKBENCH_DASHBOARD_LEARNED="off", PYTHONUNBUFFERED="1"
    )
    if cache_dir is not None:
        env["WORKBENCH_CACHE"] = str(cache_dir)
    env.pop("WORKBENCH_SCORES", None)
    previous = os.environ.get("WORKBENCH_CACHE")
    try:
        if cache_dir is not None:
            os.environ["WORKBENCH_CACHE"] = str(cache_dir)
        models = sample_results(size, learned="off").map_models
    finally:
        if previous is None:
            os.environ.pop("WORKBENCH_CACHE", None)
        else:
            os.environ["WORKBENCH_CACHE"] = previous
    with panel_server(env, log_path, start_timeout, warm=True) as (url, server):
        yield url, server.pid, list(models)


@contextlib.contextmanager
def panel_server(env: dict, log_path: Path, start_timeout: float, warm: bool = False):
    """``panel serve apps/skill.py`` on a free loopback port with ``env``, its output in ``log_path``;
    yields ``(url, process)`` once the port answers, and stops the server afterwards."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "panel",
        "serve",
        str(REPO / "apps" / "skill.py"),
        "--port",
        str(port),
        "--address",
        "127.0.0.1",
        "--allow-websocket-origin",
        f"127.0.0.1:{port}",
    ]
    if warm:
        cmd.append("--warm")  # open the results before the first visitor, as a deployed server would
    with open(log_path, "w") as log:
        server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, server, log_path, start_timeout)
        yield f"http://127.0.0.1:{port}/skill", server
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _wait_for_port(port: int, server: subprocess.Popen, log_path: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            # a plain TCP connect: an HTTP request would open a session and run the app
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"panel serve did not start:\n{log_path.read_text()}") from None
            time.sleep(0.5)


def print_load_report(report: LoadReport) -> None:
    """The load test's results as the benchmark prints them."""
    n = len(report.sessions)
    print(
        f"\n== load test: {n} browser sessions on {report.url} (sample {report.size}, "
        f"models {report.models}), {report.duration_s:.0f} s of widget changes and the final check"
    )
    if report.first_render:
        print(f"first render in a browser (per session) ........ {_ms(report.first_render)}")
    if report.latency:
        print(f"widget change -> maps updated, in the browser ... {_ms(report.latency)}")
    changes = sum(s["changes"] for s in report.sessions)
    print(
        f"CPU during the changes: server {report.server_cpu_s:.1f} s "
        f"({1000 * report.server_cpu_s / max(changes, 1):.0f} ms per change), "
        f"browser (Chromium, Playwright) {report.browser_cpu_s:.1f} s, over {report.duration_s:.0f} s on {os.cpu_count()} CPUs"
    )
    print("session  first render  changes  timeouts  page errors  median latency  answered at the end")
    for s in report.sessions:
        first = f"{s['first_render_s']:9.1f} s" if s["first_render_s"] is not None else "   failed  "
        median = f"{1000 * s['median_latency_s']:10.0f} ms" if s["median_latency_s"] is not None else " " * 13
        print(
            f"{s['session']:7d}  {first}  {s['changes']:7d}  {s['timeouts']:8d}  {s['page_errors']:11d}  "
            f"{median}    {'yes' if s['answered'] else 'NO'}"
        )
    print(
        f"changes {changes}, sessions answering at the end {report.answered}/{n}, page errors "
        f"{len(report.page_errors)}, session failures {len(report.failures)}, server log error lines "
        f"{len(report.log_errors)}"
    )
    for line in report.failures + report.page_errors[:10] + report.log_errors[:20]:
        print("   ", line)
    print("load test:", "PASS" if report.ok else "FAIL", f"(server log: {report.log_path})")


def screenshot(size: str, path: str) -> None:
    """Save a full-page screenshot of the dashboard on the sample of ``size``."""
    log_path = Path(tempfile.mkdtemp(prefix="workbench-shot-")) / "server.log"
    with serve_dashboard(size, None, log_path) as (url, _, _):
        asyncio.run(_screenshot(url, path))


async def _screenshot(url: str, path: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1600, "height": 2600})  # the README picture
        await page.goto(url, timeout=180_000)
        await page.wait_for_function(
            "() => window.Bokeh && Bokeh.documents.length && [...Bokeh.documents[0].all_models]"
            ".some(m => m.constructor.__name__ === 'Figure' && m.title && m.title.text.startsWith('error'))",
            timeout=180_000,
        )
        await asyncio.sleep(2)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=path, full_page=True)
        await browser.close()
    print(f"screenshot: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="default", help="sample size for the sample benchmark (default)")
    parser.add_argument("--repeats", type=int, default=12, help="changes timed per kind (default 12)")
    parser.add_argument("--skip-3km", action="store_true", help="leave out the full 3-km grid")
    parser.add_argument("--skip-sample", action="store_true", help="leave out the sample")
    parser.add_argument("--load-test", action="store_true", help="run the ten-session browser load test")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of widget changes per session")
    parser.add_argument("--screenshot", default=None, help="save a screenshot of the page here (load test)")
    args = parser.parse_args(argv)

    # Measure what is cached: a benchmark must not start the learned models' forecasts in the background.
    os.environ.setdefault("WORKBENCH_DASHBOARD_LEARNED", "off")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    if not args.skip_sample:
        from workbench.viz.dashboard import cached_results

        t = time.perf_counter()
        results = cached_results(args.size)
        print(f"(opened the {args.size} sample results in {time.perf_counter() - t:.1f} s: {results.label})")
        bench_results(results, f"sample '{args.size}'", args.repeats)
        del results
    if not args.skip_3km:
        bench_results(full_grid_results(), "full HRRR grid, 3 km (synthetic fields)", args.repeats)
    ok = True
    if args.screenshot:
        screenshot(args.size, args.screenshot)
    if args.load_test:
        report = run_load_test(args.size, args.sessions, args.duration)
        print_load_report(report)
        ok = report.ok
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
