"""Dashboard benchmark: server-side update times of the maps, time to first render, and a load test.

    python benchmarks/dashboard.py                 # updates and first render: default sample and 3-km field
    python benchmarks/dashboard.py --load-test     # also: ten browser sessions changing widgets for a minute
    python benchmarks/dashboard.py --screenshot docs/dashboard.png   # a picture of the page (default sample)

**Update time** is what the server spends between a widget's new value arriving and the new maps being
ready to send: the :class:`~workbench.viz.dashboard.SkillDashboard` maps (truth, forecast, error, each
resampled by datashader to the pixels on screen, with the event outline and state borders) are rendered
into a Bokeh document as a server session would, then a parameter of the shared state is changed and
the synchronous update (field selection, datashader, HoloViews callbacks, Bokeh model changes, and the
event table's refresh) is timed. The first visit of a (variable, lead time) also loads the fields into
memory and computes the event table's errors; it is timed apart. Parts are timed alone too: selecting a
field, datashader's raster at the map's size (and HoloViews' ``rasterize`` operation, which the
notebooks use, for comparison), the outline.

**Time to first render** is the server-side build of the whole page for a new session (state, views,
template, Bokeh document), with the results already cached in the server process, and, with
``--load-test``, the time until a browser shows the maps.

The 3-km case uses :func:`workbench.viz.synthetic.synthetic_results` on the full 1059 x 1799 HRRR grid
(the sample pipeline at 3 km would take far longer than the view code being measured). The target is
under 200 ms for an update at 3 km.

**Load test** (``--load-test``): ``panel serve apps/skill.py`` on a free loopback port, ten headless
Chromium pages (Playwright, one browser) each changing widgets in a loop for a minute and waiting for
the views to show each change; then every page must answer one more change, and the server log must
hold no error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
        text += f"   cpu median {np.median(cpu) * 1000:7.1f} ms"
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
    from workbench.viz.synthetic import synthetic_results

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
    """One browser page of the load test."""

    def __init__(self, browser, url: str, seed: int, stats: dict) -> None:
        self.browser, self.url, self.stats = browser, url, stats
        self.rng = random.Random(seed)
        self.errors: list[str] = []
        self.page = None

    async def open(self) -> None:
        self.page = await self.browser.new_page(viewport={"width": 1400, "height": 1200})
        self.page.set_default_timeout(CHANGE_TIMEOUT * 1000)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        t0 = time.perf_counter()
        await self.page.goto(self.url, timeout=600_000)
        await self.page.wait_for_function(
            "() => window.Bokeh && Bokeh.documents.length && [...Bokeh.documents[0].all_models]"
            ".some(m => m.constructor.__name__ === 'Figure' && m.title && m.title.text.startsWith('error'))",
            timeout=600_000,
        )
        self.stats["first_render"].append(time.perf_counter() - t0)

    async def titles(self) -> list[str]:
        return await self.page.evaluate(FIGURE_TITLES_JS)

    async def change_to(self, select, value, expect) -> bool:
        t = time.perf_counter()
        await select.select_option(value)
        while time.perf_counter() < t + CHANGE_TIMEOUT:
            if any(expect(title) for title in await self.titles()):
                self.stats["latency"].append(time.perf_counter() - t)
                return True
            await asyncio.sleep(0.1)
        self.stats["timeouts"] += 1
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
        return await self.change("Metric", lambda v, t: " of " in t and t.lower().startswith(v))

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
            self.stats["actions"] += 1


async def _load(url: str, sessions: int, duration: float, mark_end) -> dict:
    from playwright.async_api import async_playwright

    stats = {"first_render": [], "latency": [], "timeouts": 0, "actions": 0, "answered": 0, "page_errors": 0}
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = [_Session(browser, url, seed=i, stats=stats) for i in range(sessions)]
        # 1. Users arrive one after another; all pages open at once from then on.
        opening = []
        for page in pages:
            opening.append(asyncio.create_task(page.open()))
            await asyncio.sleep(1.0)
        results = await asyncio.gather(*opening, return_exceptions=True)
        errors += [f"open: {r!r}" for r in results if isinstance(r, Exception)]
        live = [p for p, r in zip(pages, results, strict=True) if not isinstance(r, Exception)]
        # 2. Every open page changes widgets for the same minute.
        until = time.perf_counter() + duration
        results = await asyncio.gather(*(p.run(until) for p in live), return_exceptions=True)
        errors += [f"run: {r!r}" for r in results if isinstance(r, Exception)]
        # 3. Every page must still answer a change.
        results = await asyncio.gather(*(p.change_variable() for p in live), return_exceptions=True)
        stats["answered"] = sum(1 for r in results if r is True)
        errors += [f"final change: {r!r}" for r in results if isinstance(r, Exception)]
        stats["page_errors"] = sum(len(p.errors) for p in pages)
        mark_end()
        # Leave the pages cleanly, so the server closes their sessions instead of writing to dead sockets.
        for p in live:
            with contextlib.suppress(Exception):
                await p.page.goto("about:blank")
        await asyncio.sleep(2.0)
        await browser.close()
    stats["session_errors"] = errors
    return stats


def load_test(size: str, sessions: int, duration: float, screenshot: str | None) -> bool:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/skill"
    log_path = Path(tempfile.mkdtemp(prefix="workbench-load-")) / "server.log"
    env = dict(os.environ, WORKBENCH_SAMPLE_SIZE=size, PYTHONUNBUFFERED="1")
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
        "--warm",
    ]
    print(
        f"\n== load test: {sessions} browser sessions, then {duration:.0f} s of widget changes, on {url} "
        f"(size {size})"
    )
    with open(log_path, "w") as log:
        server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    print(log_path.read_text())
                    raise RuntimeError("panel serve did not start") from None
                time.sleep(0.5)
        if screenshot:
            asyncio.run(_screenshot(url, screenshot))
        marks = {}
        stats = asyncio.run(
            _load(url, sessions, duration, lambda: marks.setdefault("end", log_path.stat().st_size))
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
    # The server log up to the end of the test (what follows is the shutdown).
    log = log_path.read_bytes()[: marks.get("end")].decode("utf-8", "replace")
    if not sessions:
        return True
    bad = [line for line in log.splitlines() if re.search(r"ERROR|Traceback|Exception", line)]
    print(f"first render in a browser (per session) ........ {_ms(stats['first_render'])}")
    if stats["latency"]:
        print(f"widget change -> views updated, in the browser .. {_ms(stats['latency'])}")
    print(
        f"actions {stats['actions']}, timeouts {stats['timeouts']}, sessions answering at the end "
        f"{stats['answered']}/{sessions}, page errors {stats['page_errors']}, "
        f"session failures {len(stats['session_errors'])}, server log error lines {len(bad)}"
    )
    for line in stats["session_errors"] + bad[:20]:
        print("   ", line)
    ok = (
        stats["answered"] == sessions and not bad and not stats["session_errors"] and not stats["page_errors"]
    )
    print("load test:", "PASS" if ok else "FAIL", f"(server log: {log_path})")
    return ok


async def _screenshot(url: str, path: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1500, "height": 1700})
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
    if args.load_test or args.screenshot:
        ok = load_test(args.size, args.sessions if args.load_test else 0, args.duration, args.screenshot)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
