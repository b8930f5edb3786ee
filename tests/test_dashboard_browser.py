"""The served dashboard in headless Chromium: it renders, widgets update the views, hostile URLs are refused.

Starts ``panel serve apps/skill.py`` on a free loopback port with the ``tiny`` sample (its results are built
in this process first, into the test session's cache), drives it with Playwright and reads the plots'
data back from BokehJS (``Bokeh.documents[0]``). The layout test opens the page at 1280, 1600 and 1920 px
and checks that no figure or table leaves its card, no title is cut off and no legend covers a plot; its
screenshots go to the test's tmp dir, and the 1600-px one also to ``$WORKBENCH_DASHBOARD_SCREENSHOT``
when that is set (``docs/dashboard.png`` for the README).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest

pytestmark = pytest.mark.browser

#: The manifest of the shipped scores of the tiny sample: the learned models the page shows at once.
SHIPPED_TINY = json.loads(
    (Path(__file__).resolve().parents[1] / "workbench" / "data" / "shipped-tiny.json").read_text()
)

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

#: Every figure of the page with its glyphs' data, read from BokehJS.
FIGURES_JS = """() => {
  const out = {};
  if (!window.Bokeh || !Bokeh.documents.length) return out;
  for (const m of Bokeh.documents[0].all_models) {
    if (m.constructor.__name__ !== 'Figure' || !m.title) continue;
    const glyphs = [];
    for (const r of m.renderers) {
      if (!r.data_source || !r.glyph || !r.visible) continue;
      const d = r.data_source.data;
      const get = (k) => (d instanceof Map ? d.get(k) : d[k]);
      const kind = r.glyph.constructor.__name__;
      let n = 0, finite = 0, sum = 0;
      const column = kind === 'Image' ? get('image')[0] : (get('value') || get('zvalues') || get('xs') || []);
      n = column.length;
      for (let i = 0; i < column.length; i++) {
        const v = column[i];
        if (typeof v === 'number' && isFinite(v)) { finite++; sum += v; }
      }
      glyphs.push({kind, n, finite, sum});
    }
    out[m.title.text] = {glyphs, x_range: [m.x_range.start, m.x_range.end]};
  }
  return out;
}"""


#: A ``sitecustomize`` for the server process: an audit hook that appends every host it resolves or
#: connects to, other than this machine, to ``$WORKBENCH_TEST_NETWORK_LOG``.
NETWORK_HOOK = """
import os, sys

_LOG = os.environ.get("WORKBENCH_TEST_NETWORK_LOG")
_LOCAL = ("127.", "::1", "localhost", "0.0.0.0", "None")


def _hook(event, args):
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    else:
        return
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host and not host.startswith(_LOCAL):
        with open(_LOG, "a") as log:
            log.write(f"{event} {host}\\n")


if _LOG:
    sys.addaudithook(_hook)
"""


@pytest.fixture(scope="module")
def server(tiny_sample, workbench_cache, tmp_path_factory, dashboard_benchmark):
    """``panel serve apps/skill.py`` on the tiny sample; yields ``(url, log_path)``.

    The tiny results are built before the server starts, so it only opens them; the learned models
    (minutes of CPU) are left out of this test of the page.
    """
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (CI installs it)")
    log_path = tmp_path_factory.mktemp("dashboard") / "server.log"
    # the server process records every network address it looks up or connects to (see NETWORK_HOOK)
    hook = log_path.parent / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NETWORK_HOOK)
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "WORKBENCH_TEST_NETWORK_LOG")}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook), saved["PYTHONPATH"]) if p)
    os.environ["WORKBENCH_TEST_NETWORK_LOG"] = str(log_path.parent / "network.log")
    try:
        with dashboard_benchmark.serve_dashboard("tiny", workbench_cache, log_path, start_timeout=180) as (
            url,
            _,
            _,
        ):
            yield url, log_path
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def figures(page) -> dict:
    return page.evaluate(FIGURES_JS)


def wait_for(page, predicate, timeout: float = 30.0, what: str = "the page"):
    """Poll the figures until ``predicate(figures)`` is true; returns the figures."""
    deadline = time.time() + timeout
    figs = {}
    while time.time() < deadline:
        figs = figures(page)
        if predicate(figs):
            return figs
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; figures: {sorted(figs)}")


def titled(figs: dict, prefix: str) -> dict:
    matches = [f for t, f in figs.items() if t.startswith(prefix)]
    assert matches, f"no figure titled {prefix!r}; figures: {sorted(figs)}"
    return matches[0]


def glyphs(fig: dict, kind: str) -> list[dict]:
    return [g for g in fig["glyphs"] if g["kind"] == kind]


def test_dashboard_renders_updates_and_zooms(server, browser, tmp_path):
    url, log_path = server
    page = browser.new_page(viewport={"width": 1500, "height": 1900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, timeout=90_000)
    figs = wait_for(page, lambda f: any(t.startswith("error ·") for t in f), 90, "the maps")

    # skill curves: one line per model (the 3 baselines, and the learned models, scored at once from the
    # shipped scores while their forecasts are off), side by side for all and extreme, with finite values
    models = 3 + len(SHIPPED_TINY["checkpoints"])
    for region in ("all", "extreme"):
        lines = glyphs(titled(figs, f"RMSE of t2m — {region}"), "Line")
        assert len(lines) == models and all(g["n"] == 9 and g["finite"] > 0 for g in lines)
    # scorecard, first tab (the 5 surface variables of the 11): (variables x non-reference models) rows x 9
    # lead times
    cells = glyphs(titled(figs, "RMSE vs nwp — all"), "Rect")[0]
    assert cells["n"] == 5 * (models - 1) * 9
    # maps: truth, forecast and error images with data, outlines and borders on top
    for kind in ("truth", "forecast", "error"):
        fig = titled(figs, f"{kind} ·")
        (image,) = glyphs(fig, "Image")
        assert image["finite"] > 0.9 * image["n"] > 0
        assert glyphs(fig, "MultiLine")
    truth_before = glyphs(titled(figs, "truth ·"), "Image")[0]["sum"]

    # a widget change updates the curves, the scorecard's hover data and the maps, and the URL
    page.get_by_label("Variable").select_option("refc")
    figs = wait_for(
        page,
        lambda f: (
            any(t.startswith("RMSE of refc") for t in f)
            and any("refc" in t for t in f if t.startswith("truth"))
        ),
        30,
        "the views to show refc",
    )
    assert glyphs(titled(figs, "truth · analysis · refc"), "Image")[0]["sum"] != truth_before
    assert "variable=refc" in page.url

    # clicking an event (the smallest on the first page of the table) zooms the maps onto it
    full = titled(figs, "truth ·")["x_range"]
    rows = page.locator(".tabulator-row")
    size_cell = ".tabulator-cell[tabulator-field='size_km2']"
    sizes = [int(rows.nth(i).locator(size_cell).inner_text().replace(",", "")) for i in range(rows.count())]
    rows.nth(sizes.index(min(sizes))).locator(".tabulator-cell[tabulator-field='type']").click()
    figs = wait_for(
        page,
        lambda f: (lambda r: r[1] - r[0] < 0.9 * (full[1] - full[0]))(titled(f, "truth ·")["x_range"]),
        45,
        "the maps to zoom to the event",
    )
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    page.close()
    assert not errors, errors
    log = log_path.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log


def test_a_path_outside_the_catalog_is_refused_on_the_page(server, browser):
    url, log_path = server
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{url}?scores=/etc/passwd&variable=msl&lead_time=6", timeout=90_000)
    alert = page.get_by_text("a URL can only pick scores results", exact=False).first
    alert.wait_for(timeout=60_000)
    text = alert.inner_text()
    assert text.startswith("Refused scores='/etc/passwd'"), text
    # the rest of the page still works, on the sample, with the URL's selection
    figs = wait_for(page, lambda f: any(t.startswith("RMSE of msl — all") for t in f), 60, "the skill curves")
    init = page.get_by_label("Initial time (UTC)").input_value()
    valid = (pd.Timestamp(init) + pd.Timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M")
    figs = wait_for(page, lambda f: any(t.startswith("truth") for t in f), 60, "the maps")
    assert titled(figs, "truth ·") and any(t == f"truth · analysis · msl · {valid}" for t in figs), sorted(
        figs
    )
    page.close()


#: Hostile page addresses: (case, query string). Each payload sets ``window.__pwned`` if its markup runs.
PAYLOAD = '<img src=x onerror="window.__pwned=1">'
SVG_PAYLOAD = '<svg onload="window.__pwned=2">'
HOSTILE_URLS = [
    ("markup in scores", "?scores=" + quote(PAYLOAD)),
    (
        "markup in view parameters",
        f"?model={quote(PAYLOAD)}&variable={quote(SVG_PAYLOAD)}"
        f"&metric={quote('<script>window.__pwned=3</script>')}",
    ),
    ("path traversal", "?scores=../../etc/passwd&variable=msl"),
    ("huge numbers", "?lead_time=" + "9" * 5000 + "&init_time=99999-99-99T99:99"),
    (
        "unknown names",
        "?model=banana&variable=banana&metric=banana&region=banana&event_type=banana"
        "&reference=banana&lead_time=1e400",
    ),
    # a catalog entry of another sample size (the server shows tiny): it would be generated
    ("sample generation", "?scores=sample_hrrr"),
    # an entry whose path is a download
    ("network access", "?scores=storm_events"),
]


#: The page's visible text, shadow roots included (Panel renders its panes inside them).
TEXT_JS = """() => {
  const out = [];
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) out.push(child.textContent);
      else if (!['STYLE', 'SCRIPT'].includes(child.nodeName)) walk(child);
    }
  };
  walk(document.body);
  return out.join(' ');
}"""


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("query", [q for _, q in HOSTILE_URLS], ids=[c for c, _ in HOSTILE_URLS])
def test_hostile_urls_are_refused_and_the_page_keeps_working(server, browser, workbench_cache, query):
    url, log_path = server
    files_before = _files(workbench_cache)
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    dialogs, errors = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + query, timeout=90_000)
    # a refusal is on the page, as text
    page.get_by_text("Refused", exact=False).or_(
        page.get_by_text("URL parameter", exact=False)
    ).first.wait_for(timeout=60_000)
    wait_for(page, lambda f: any(t.startswith("RMSE of") for t in f), 60, "the skill curves")
    text = page.evaluate(TEXT_JS)

    # no markup of the URL ran, and it is shown as the text that was sent
    assert page.evaluate("() => window.__pwned") is None and not dialogs
    if "pwned" in query:
        assert "window.__pwned=" in text
    # no server path, and nothing read from outside the catalog
    for secret in (str(workbench_cache), str(Path(__file__).resolve().parents[1]), "root:x:0", "/tmp/"):
        assert secret not in text, secret
    # no data was generated or fetched for the URL, and the server looked up no other machine
    assert _files(workbench_cache) == files_before
    network = log_path.parent / "network.log"
    assert not network.exists(), network.read_text()

    # the next widget change updates the views and replaces the refused values in the address
    page.get_by_label("Variable").select_option("refc")
    wait_for(page, lambda f: any(t.startswith("RMSE of refc") for t in f), 30, "the views to show refc")
    page.wait_for_function("() => window.location.search.includes('variable=refc')", timeout=10_000)
    assert all(bad not in page.url for bad in ("pwned", "banana", "passwd", "99999", "sample_hrrr", "storm"))
    page.close()
    assert not errors, errors
    assert not _server_errors(log_path.read_text())


def _server_errors(log: str) -> list[str]:
    """Tracebacks in the server log, less the closed websockets of pages the tests have closed."""
    blocks = log.split("Traceback (most recent call last):")[1:]
    return [b for b in blocks if "WebSocketClosedError" not in b and "StreamClosedError" not in b]


#: What a reader would see cut off or covered, per figure and table of the page (shadow roots included):
#: a figure or table sticking out of its card, a title longer than its canvas, a legend over a plot's data
#: area, a table wider than its card that does not scroll inside it.
LAYOUT_PROBLEMS_JS = """() => {
  const problems = [];
  const ctx = document.createElement('canvas').getContext('2d');
  const parentOf = (el) => el.parentNode instanceof ShadowRoot ? el.parentNode.host : el.parentNode;
  const cardOf = (el) => {
    for (let e = el; e && e !== document; e = parentOf(e)) {
      if (e.classList && e.classList.contains('card')) return e;
    }
    return null;
  };
  const inside = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1 && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
  const box = (r) => `${Math.round(r.left)}-${Math.round(r.right)} x ${Math.round(r.top)}-${Math.round(r.bottom)}`;
  let figures = 0;
  for (const m of Bokeh.documents[0].all_models) {
    if (m.constructor.__name__ !== 'Figure') continue;
    const view = Bokeh.index.find_one(m);
    if (!view || !view.el.isConnected || view.el.getBoundingClientRect().width === 0) continue;  // a hidden tab
    figures++;
    const name = m.title && m.title.text ? m.title.text : m.id;
    const rect = view.el.getBoundingClientRect();
    const card = cardOf(view.el);
    if (!card) problems.push(`${name}: not in a card`);
    else if (!inside(rect, card.getBoundingClientRect()))
      problems.push(`${name}: figure ${box(rect)} outside its card ${box(card.getBoundingClientRect())}`);
    if (m.title && m.title.text) {
      const t = m.title;
      ctx.font = `${t.text_font_style} ${t.text_font_size} ${t.text_font}`;
      const right = view.frame.bbox.left + ctx.measureText(t.text).width;
      if (right > rect.width + 1) problems.push(`${name}: title ends at ${Math.round(right)} px of ${Math.round(rect.width)}`);
    }
    for (const r of m.center) {
      if (r.constructor.__name__ === 'Legend' && r.visible && r.items.length)
        problems.push(`${name}: a legend inside the plot area`);
    }
  }
  const walk = function* (root) {
    for (const el of root.querySelectorAll('*')) { yield el; if (el.shadowRoot) yield* walk(el.shadowRoot); }
  };
  let tables = 0;
  for (const el of walk(document)) {
    if (!el.classList.contains('tabulator')) continue;
    tables++;
    const card = cardOf(el);
    const rect = el.getBoundingClientRect();
    if (card && !inside(rect, card.getBoundingClientRect()))
      problems.push(`table ${box(rect)} outside its card ${box(card.getBoundingClientRect())}`);
    const holder = el.querySelector('.tabulator-tableholder');
    if (holder && holder.scrollWidth > holder.clientWidth + 1 && !['auto', 'scroll'].includes(getComputedStyle(holder).overflowX))
      problems.push('table: wider than its card and does not scroll');
  }
  return {problems, figures, tables};
}"""


@pytest.mark.parametrize("width", [1280, 1600, 1920])
def test_layout_holds_at_common_screen_widths(server, browser, tmp_path, width):
    url, log_path = server
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.goto(url, timeout=90_000)
    wait_for(page, lambda f: any(t.startswith("error ·") for t in f), 90, "the maps")
    time.sleep(1.0)  # the last layout pass
    found = page.evaluate(LAYOUT_PROBLEMS_JS)
    # skill curves (2), maps (3), scorecard (2 panels of the first group); the event table
    assert found["figures"] >= 7 and found["tables"] == 1, found
    assert not found["problems"], "\n".join(found["problems"])
    # a full-page picture: the template scrolls its main area, so the page is made tall enough to show it
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": width, "height": min(int(height) + 50, 4000)})
    time.sleep(1.0)
    shot = tmp_path / f"dashboard-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    target = os.environ.get("WORKBENCH_DASHBOARD_SCREENSHOT")
    if target and width == 1600:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target)
    page.close()
