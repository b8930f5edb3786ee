"""The served dashboard in headless Chromium: it renders, widgets update the views, bad paths are refused.

Starts ``panel serve apps/skill.py`` on a free loopback port with the ``tiny`` sample (its results are built
in this process first, into the test session's cache), drives it with Playwright and reads the plots'
data back from BokehJS (``Bokeh.documents[0]``). A screenshot goes to the test's tmp dir, and also to
``$WORKBENCH_DASHBOARD_SCREENSHOT`` when that is set (``docs/dashboard.png`` for the README).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.browser

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


@pytest.fixture(scope="module")
def server(tiny_sample, workbench_cache, tmp_path_factory, dashboard_benchmark):
    """``panel serve apps/skill.py`` on the tiny sample; yields ``(url, log_path)``.

    The tiny results are built before the server starts, so it only opens them; the learned models
    (minutes of CPU) are left out of this test of the page.
    """
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (CI installs it)")
    log_path = tmp_path_factory.mktemp("dashboard") / "server.log"
    with dashboard_benchmark.serve_dashboard("tiny", workbench_cache, log_path, start_timeout=60) as (url, _, _):
        yield url, log_path


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

    # skill curves: one line per model, side by side for all and extreme, with finite values
    for region in ("all", "extreme"):
        lines = glyphs(titled(figs, f"RMSE of t2m — {region}"), "Line")
        assert len(lines) == 3 and all(g["n"] == 9 and g["finite"] > 0 for g in lines)
    # scorecard: (variables x non-reference models) rows x 9 lead times
    cells = glyphs(titled(figs, "RMSE: % better than nwp — all"), "Rect")[0]
    assert cells["n"] == 11 * 2 * 9
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
    target = os.environ.get("WORKBENCH_DASHBOARD_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "dashboard.png", target)
    page.close()
    assert not errors, errors
    log = log_path.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log


def test_a_path_outside_the_catalog_is_refused_on_the_page(server, browser):
    url, log_path = server
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{url}?scores=/etc/passwd&variable=msl&lead_time=6", timeout=90_000)
    alert = page.get_by_text("not a catalog entry", exact=False).first
    alert.wait_for(timeout=60_000)
    text = alert.inner_text()
    assert text.startswith("Refused:") and "/etc/passwd" in text, text
    # the rest of the page still works, on the sample, with the URL's selection
    figs = wait_for(page, lambda f: any(t.startswith("RMSE of msl — all") for t in f), 60, "the skill curves")
    init = page.get_by_label("Initial time (UTC)").input_value()
    valid = (pd.Timestamp(init) + pd.Timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M")
    figs = wait_for(page, lambda f: any(t.startswith("truth") for t in f), 60, "the maps")
    assert titled(figs, "truth ·") and any(t == f"truth · analysis · msl · {valid}" for t in figs), sorted(
        figs
    )
    page.close()
