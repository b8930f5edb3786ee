"""What a URL may ask of the dashboard: each value selects an option or is refused with escaped text.

The page's Markdown is rendered with Panel's own renderer and parsed back: a refusal may contain only
plain text and the few tags the messages write themselves (``p``, ``strong``), never an attribute.
"""

from __future__ import annotations

import html
import string
from html.parser import HTMLParser

import panel as pn
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.viz import dashboard as dash
from workbench.viz import urlstate
from workbench.viz.safety import escape, hide_paths, page_text
from workbench.workflow.synthetic import synthetic_results

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>window.pwned=1</script>",
    "[click](javascript:alert(1))",
    "http://evil.example/x",
    "<http://evil.example>",
    "<a href='javascript:alert(1)'>x</a>",
    "\n\n<div onmouseover=alert(1)>x</div>",
    "../../etc/passwd",
    "/etc/passwd",
    "9" * 5000,
    "1e400",
    "nan",
    "²",
    "-1",
    "[1, 2]",
    '{"a": 1}',
    "",
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, attrs))


def rendered_tags(markdown: str) -> list[tuple[str, list]]:
    """The HTML tags Panel's Markdown pane sends to the browser for ``markdown``."""
    out = html.unescape(pn.pane.Markdown(markdown)._transform_object(markdown)["object"])
    parser = _Tags()
    parser.feed(out)
    return parser.tags


def assert_plain(markdown: str) -> None:
    tags = rendered_tags(markdown)
    assert all(tag in ("p", "strong") and not attrs for tag, attrs in tags), (markdown, tags)


@pytest.fixture(scope="module")
def results():
    return synthetic_results(spacing_km=150.0, days=2.0, lead_hours=(0, 6, 12), n_storms=5)


# -- escaping ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_renders_as_plain_text(text):
    assert_plain(f"**Refused** {escape(text)}")
    # and reads back as the text itself (control characters become spaces)
    shown = html.unescape(pn.pane.Markdown(escape(text))._transform_object(escape(text))["object"])
    assert html.unescape(shown.removeprefix("<p>").removesuffix("</p>\n")) == text.replace("\n", " ").strip()


def test_raw_markup_would_run():
    # why the escaping is needed: Panel's Markdown passes raw HTML through
    assert ("img", [("src", "x"), ("onerror", "alert(1)")]) in rendered_tags("<img src=x onerror=alert(1)>")


def test_paths_are_hidden():
    message = (
        "Refusing '/srv/data/cache/sample/x.zarr': not inside (/home/u/.cache/workbench/sample, C:\\a\\b)"
    )
    assert hide_paths(message) == "Refusing 'x.zarr': not inside (sample, b)"
    assert hide_paths("file:///etc/passwd is not scores") == "passwd is not scores"
    assert (
        hide_paths("relative ../../etc/passwd stays as typed") == "relative ../../etc/passwd stays as typed"
    )
    assert "/" not in html.unescape(page_text("No scores file at /tmp/w/forecasts/s.nc"))


# -- view parameters --------------------------------------------------------------------------------
def test_choices_name_an_option():
    leads = [0, 6, 12]
    assert urlstate.choose("lead_time", "6", leads) == 6
    assert urlstate.choose("lead_time", 6, leads) == 6
    assert urlstate.choose("lead_time", "6.0", leads) == 6
    assert urlstate.choose("lead_time", [b"12"], leads) == 12
    for bad in ("7", "1e400", "9" * 5000, "nan", "inf", "²", "6h", float("nan"), None, [], {"a": 1}):
        assert urlstate.choose("lead_time", bad, leads) is None
    inits = ["2020-06-01T00:00", "2020-06-01T12:00"]
    assert urlstate.choose("init_time", "2020-06-01T12:00", inits) == "2020-06-01T12:00"
    assert urlstate.choose("init_time", "2020-06-01T12:00:00Z", inits) == "2020-06-01T12:00"
    assert urlstate.choose("init_time", "2020-06-01", inits) == "2020-06-01T00:00"
    assert urlstate.choose("init_time", "2020-06-02", inits) is None
    assert urlstate.choose("model", "pangu", ["nwp", "pangu"]) == "pangu"
    assert urlstate.choose("model", " pangu ", ["nwp", "pangu"]) == "pangu"
    assert urlstate.choose("model", "Pangu", ["nwp", "pangu"]) is None


@pytest.mark.parametrize("name", urlstate.URL_PARAMETERS)
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_refused_on_the_page(results, name, value):
    state = dash.SkillState(results)
    before = {p: getattr(state, p) for p in urlstate.URL_PARAMETERS}
    problems = state.apply_url_values({name: value})
    assert {p: getattr(state, p) for p in urlstate.URL_PARAMETERS} == before
    assert len(problems) == 1
    assert_plain(problems[0])
    shown = html.unescape(problems[0])
    # the value is echoed as sent (cut to 40 characters), followed by the options there are
    assert shown.startswith(f"URL parameter {name}={str(value)[:37]!r}"[:-1]) and len(shown) < 400


def test_model_first_then_its_times(results):
    state = dash.SkillState(results)
    inits = state.param.init_time.objects
    problems = state.apply_url_values(
        {"lead_time": ["12"], "init_time": [inits[0].encode()], "model": [b"nwp"], "colour": ["red"]}
    )
    assert problems == []
    assert (state.model, state.init_time, state.lead_time) == ("nwp", inits[0], 12)


def test_url_search_reselects_the_state(results):
    state = dash.SkillState(results)
    state.apply_url_values({"variable": "refc", "lead_time": "6"})
    search = urlstate.url_search(state, {"scores": "s.nc"})
    assert search.startswith("?scores=s.nc&model=pangu&variable=refc")
    other = dash.SkillState(results)
    from urllib.parse import parse_qs

    assert other.apply_url_values(parse_qs(search[1:])) == []
    assert {p: getattr(other, p) for p in urlstate.URL_PARAMETERS} == {
        p: getattr(state, p) for p in urlstate.URL_PARAMETERS
    }


# -- property: any text for any parameter selects an option or is refused ---------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(urlstate.URL_PARAMETERS),
    value=st.one_of(
        st.text(max_size=60),
        st.text(alphabet=string.digits + ".-+e", max_size=12),
        st.sampled_from(HOSTILE),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.binary(max_size=30).map(lambda b: [b]),
    ),
)
def test_any_url_value_selects_or_is_refused(results, name, value):
    state = dash.SkillState(results)
    before = getattr(state, name)
    problems = state.apply_url_values({name: value})
    now = getattr(state, name)
    assert now in state.param[name].objects
    if problems:
        assert len(problems) == 1 and now == before
        assert_plain(problems[0])
    else:
        assert now == urlstate.choose(name, value, state.param[name].objects)


# -- scores: a name among existing results, never a path, an entry or a download ---------------------
@pytest.fixture
def scores_folder(tmp_path, monkeypatch):
    """An empty cache with one scores file and one forecast store in the forecast-store folder."""
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    folder = tmp_path / "forecasts"
    (folder / "pangu.zarr" / "_progress").mkdir(parents=True)
    (folder / "week1-scores.nc").write_bytes(b"")
    (folder / "notes.txt").write_text("")
    return folder


def test_scores_choices_are_existing_results(scores_folder):
    choices = urlstate.scores_choices()
    assert choices == {"week1-scores.nc": str(scores_folder / "week1-scores.nc")}
    assert urlstate.choose_scores("week1-scores", choices) == (str(scores_folder / "week1-scores.nc"), None)
    launched = urlstate.scores_choices("/srv/other/launch-scores.zarr")
    assert list(launched) == ["launch-scores.zarr", "week1-scores.nc"]


@pytest.mark.parametrize(
    "value",
    [
        *HOSTILE,
        "sample_hrrr",
        "storm_events",
        "hrrr",
        "forecasts",
        "pangu.zarr",
        "notes.txt",
        "week1-scores.nc/..",
    ],
)
def test_scores_that_are_not_an_existing_result_are_refused(scores_folder, value):
    chosen, message = urlstate.choose_scores([value.encode()], urlstate.scores_choices())
    assert chosen is None
    assert_plain(message)
    shown = html.unescape(message)
    assert "week1-scores.nc" in shown and str(scores_folder) not in shown


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(max_size=80), st.sampled_from(HOSTILE), st.binary(max_size=40)))
def test_any_scores_value_picks_a_result_or_is_refused(scores_folder, value):
    choices = urlstate.scores_choices()
    chosen, message = urlstate.choose_scores(value, choices)
    assert (chosen in choices.values()) != (message is not None)
    if message:
        assert_plain(message)


def _session_args(monkeypatch, **query):
    args = {k: [v.encode() for v in vs] for k, vs in query.items()}
    monkeypatch.setattr(type(pn.state), "session_args", property(lambda self: args))


@pytest.mark.parametrize(
    "value", ["sample_hrrr", "storm_events", "../../etc/passwd", "<img src=x onerror=1>"]
)
def test_a_url_never_reaches_the_catalog(results, scores_folder, monkeypatch, value):
    import workbench.catalog

    def no_catalog(*args, **kwargs):
        raise AssertionError("a URL value reached the catalog")

    monkeypatch.setattr(workbench.catalog, "resolve_path", no_catalog)
    asked = []

    def loader(size, scores):
        asked.append(scores)  # the sample's own results, never what the URL named
        return results

    _session_args(monkeypatch, scores=[value], variable=["<script>window.pwned=1</script>"])
    page = dash.create_app(loader=loader, size="tiny")
    assert asked == [None]
    alerts = [obj for obj in page.main[0].objects if isinstance(obj, pn.pane.Alert)]
    assert [a.alert_type for a in alerts] == ["danger", "warning"]
    for alert in alerts:
        assert_plain(alert.object)
    shown = html.unescape(alerts[0].object)
    assert shown.startswith(f"**Refused** scores={value!r}") and "already has (week1-scores.nc)" in shown


def test_a_url_picks_an_existing_scores_result(results, scores_folder, monkeypatch):
    asked = []

    def loader(size, scores):
        asked.append(scores)
        return results

    _session_args(monkeypatch, scores=["week1-scores"])
    page = dash.create_app(loader=loader, size="tiny")
    assert asked == [str(scores_folder / "week1-scores.nc")]
    assert not [obj for obj in page.main[0].objects if isinstance(obj, pn.pane.Alert)]


# -- who may open the page --------------------------------------------------------------------------
def test_loopback_addresses():
    from workbench.viz.access import is_loopback

    assert all(is_loopback(a) for a in ("127.0.0.1", "127.8.0.1", "::1", "::ffff:127.0.0.1"))
    assert not any(is_loopback(a) for a in ("10.0.0.7", "192.168.1.2", "::ffff:10.0.0.7", "", None, "x"))


def test_another_machine_gets_the_local_only_page(results, monkeypatch):
    from workbench.viz import access

    monkeypatch.setenv(access.EXPOSE_ENV, "")
    monkeypatch.setattr(access, "session_remote_ip", lambda: "203.0.113.9")
    monkeypatch.setattr(dash, "session_remote_ip", lambda: "203.0.113.9")
    asked = []

    def loader(size, scores):
        asked.append(scores)
        return results

    page = dash.create_app(loader=loader, size="tiny")
    assert asked == [] and isinstance(page, pn.pane.Markdown) and "this machine only" in page.object
    monkeypatch.setenv(access.EXPOSE_ENV, "1")  # exposed on purpose: the visitor gets the dashboard
    page = dash.create_app(loader=loader, size="tiny")
    assert asked == [None] and isinstance(page, pn.template.BaseTemplate)


def test_serve_listens_on_loopback_by_default_and_the_readme_says_so():
    import argparse
    from pathlib import Path

    from workbench.viz import command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["serve"])
    assert args.address == "127.0.0.1"
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    # every command line that starts the page, except the one that exposes it on purpose
    commands = [
        line
        for line in readme.splitlines()
        if "panel serve apps/skill.py" in line and "`" not in line and "EXPOSE" not in line
    ]
    assert commands and all("--address 127.0.0.1" in line for line in commands), commands


def test_header_text_from_files_is_escaped_and_pathless(results):
    import dataclasses

    shown = dataclasses.replace(
        results,
        label="scores from /srv/cache/forecasts/week1-scores.nc; <b onmouseover=alert(1)>x</b>",
        notes=["pangu: not shown, its forecast failed: No forecasts at /srv/cache/forecasts/pangu.zarr"],
    )
    page = dash.SkillDashboard(shown).template()
    header = next(o for o in page.sidebar if isinstance(o, pn.pane.Markdown) and "Data:" in str(o.object))
    tags = rendered_tags(header.object)
    assert all(tag in ("p", "strong", "br") and not attrs for tag, attrs in tags), tags
    text = html.unescape(header.object)
    assert "/srv" not in text and "week1-scores.nc" in text and "pangu.zarr" in text


@pytest.mark.parametrize(("address", "exposed"), [(None, False), ("localhost", False), ("0.0.0.0", True)])
def test_serve_exposes_only_on_an_address_other_than_loopback(monkeypatch, address, exposed):
    from workbench.cli import main
    from workbench.viz import access

    monkeypatch.setenv(access.EXPOSE_ENV, "")  # so that what `serve` sets is undone after the test
    served = {}
    monkeypatch.setattr(pn, "serve", lambda apps, **kw: served.update(kw))
    monkeypatch.setattr(dash, "cached_results", lambda **kw: None)
    argv = ["serve", "--size", "tiny", "--learned", "off"] + (["--address", address] if address else [])
    assert main(argv) == 0
    assert served["address"] == (address or "127.0.0.1")
    assert access.exposed() is exposed
