"""Fuzzing the command-line parsers, catalog YAML and checkpoint configs.

Invariant for every target: an input either parses to a valid canonical object (checked here) or
raises the package's own error type; never another exception, never a hang (per-input deadline).
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.catalog import default_catalog_path, open_catalog
from workbench.cli_inputs import (
    MAX_LEAD_HOURS,
    MAX_LEADS,
    parse_leads,
    parse_params,
    parse_time,
    parse_time_range,
)
from workbench.errors import CatalogError, CheckpointError, WorkbenchError
from workbench.models.config_checks import validate_config
from workbench.models.weights import read_config

pytestmark = pytest.mark.timeout(120)

# Targets that write a file per input get a share of the profile's examples.
FILE_EXAMPLES = max(10, settings().max_examples * 3 // 5)

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24)
NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**15), 10**15).map(str),
    st.sampled_from(
        ["1e12", "nan", "inf", "-0", "1_000", "0x10", "６", " 6 ", "6h", "90min", "2 days", "-1h"]
    ),
)


def either(valid: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """Valid inputs three times in four, hostile ones otherwise (hypothesis merges repeated branches)."""
    return st.integers(0, 3).flatmap(lambda pick: valid if pick else hostile)


ISO_TIMES = st.datetimes(
    pd.Timestamp("1990-01-01").to_pydatetime(), pd.Timestamp("2040-01-01").to_pydatetime()
).map(lambda d: d.isoformat(sep=" " if d.second % 2 else "T"))
HOSTILE_TIME_TEXT = st.one_of(
    TEXT,
    st.datetimes(min_value=pd.Timestamp("1000-01-01").to_pydatetime()).map(lambda d: d.isoformat()),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2})?)?(Z|[+-]\d{2}:\d{2})?\Z"),
    st.sampled_from(
        ["yesterday", "now", "today", "NaT", "", "2020-02-30", "2020-06-15T25:00", "99999-01-01"]
    ),
)
TIME_TEXT = either(ISO_TIMES, HOSTILE_TIME_TEXT)


@given(st.lists(either(st.from_regex(r"\A[a-z_]{1,6}=[^\n]{0,8}\Z"), TEXT), max_size=5))
def test_param_lists(fuzz_counts, items):
    fuzz_counts["--param"] += 1
    try:
        params = parse_params(items)
    except WorkbenchError:
        fuzz_counts["--param (refused)"] += 1
        return
    assert all(key.isidentifier() and key.isascii() for key in params)
    assert all(isinstance(v, str) for v in params.values())


@given(TIME_TEXT)
def test_times(fuzz_counts, text):
    fuzz_counts["times"] += 1
    try:
        stamp = parse_time(text, "--init")
    except WorkbenchError:
        fuzz_counts["times (refused)"] += 1
        return
    assert isinstance(stamp, pd.Timestamp) and not pd.isna(stamp) and stamp.tzinfo is None


STEPS = st.sampled_from(["1h", "6h", "12h", "30min", "1D", "90 minutes"])


@given(TIME_TEXT, st.integers(-48, 10**5), either(STEPS, st.one_of(NUMBER_TEXT, TEXT)), st.booleans())
def test_time_ranges(fuzz_counts, start, hours, every, hostile_end):
    try:  # END a number of hours after START, or a hostile text of its own
        end = str(pd.Timestamp(start) + pd.Timedelta(hours=hours)) if not hostile_end else start[::-1]
    except (ValueError, TypeError, OverflowError):
        end = start
    fuzz_counts["time ranges"] += 1
    try:
        times = parse_time_range(start, end, every)
    except WorkbenchError:
        fuzz_counts["time ranges (refused)"] += 1
        return
    assert 1 <= len(times) <= MAX_LEADS and times.is_monotonic_increasing and times.tz is None


VALID_LEAD_TEXT = st.one_of(
    st.integers(0, 240).map(str),
    st.sampled_from(["90min", "6h", "1 day"]),
    st.tuples(st.integers(0, 24), st.integers(0, 240), st.integers(1, 24)).map(lambda t: ":".join(map(str, t))),
)
LEAD_TEXT = either(
    VALID_LEAD_TEXT, st.one_of(NUMBER_TEXT, TEXT, st.lists(NUMBER_TEXT, min_size=1, max_size=4).map(":".join))
)


@given(st.lists(LEAD_TEXT, max_size=4))
def test_leads(fuzz_counts, items):
    fuzz_counts["leads"] += 1
    try:
        leads = parse_leads(items)
    except WorkbenchError:
        fuzz_counts["leads (refused)"] += 1
        return
    assert 1 <= len(leads) <= MAX_LEADS
    for lead in leads:
        assert isinstance(lead, pd.Timedelta) and pd.Timedelta(0) <= lead <= pd.Timedelta(
            hours=MAX_LEAD_HOURS
        )


# --------------------------------------------------------------------------------------------------
# Catalog YAML: random documents, random text and the shipped catalog with lines dropped or mangled
# --------------------------------------------------------------------------------------------------

SHIPPED_CATALOG = default_catalog_path().read_text().splitlines()
YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(TEXT, children, max_size=3)),
    max_leaves=12,
)


@st.composite
def mangled_catalog(draw) -> str:
    lines = list(SHIPPED_CATALOG)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "replace", "indent", "truncate"]))
        if action == "drop":
            del lines[i]
        elif action == "replace":
            lines[i] = draw(TEXT)
        elif action == "indent":
            lines[i] = " " * draw(st.integers(1, 3)) + lines[i]
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    return "\n".join(lines)


CATALOG_TEXT = st.one_of(
    TEXT,
    YAML_VALUES.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
    st.dictionaries(st.sampled_from(["sources", "metadata", "plugins"]), YAML_VALUES, max_size=3).map(
        yaml.safe_dump
    ),
    mangled_catalog(),
)


@settings(max_examples=FILE_EXAMPLES)
@given(CATALOG_TEXT)
def test_catalog_yaml(fuzz_counts, text):
    fuzz_counts["catalog YAML"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            cat = open_catalog(path)
        except CatalogError:
            fuzz_counts["catalog YAML (refused)"] += 1
            return
        names = list(cat)
        assert names and all(isinstance(n, str) for n in names)


# --------------------------------------------------------------------------------------------------
# Checkpoint configs: the shipped config with random values put at random keys, and random documents
# --------------------------------------------------------------------------------------------------

SHIPPED_CONFIG = json.loads(
    (Path(str(resources.files("workbench") / "checkpoints")) / "pangu_6h.json").read_text()
)
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=True, allow_infinity=True),
        TEXT,
    ),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=3)),
    max_leaves=8,
)


@st.composite
def mutated_config(draw) -> dict:
    config = copy.deepcopy(SHIPPED_CONFIG["config"])
    for _ in range(draw(st.integers(1, 3))):
        target = config
        key = draw(st.sampled_from(sorted(config)))
        if isinstance(config[key], dict) and config[key] and draw(st.booleans()):
            target = config[key]
            key = draw(st.sampled_from(sorted(target)))
        target[key] = draw(JSON_VALUES)
    return config


def _check_valid(config: dict) -> None:
    from workbench import lexicon

    assert config["variables"] and all(v in lexicon.VARIABLES or lexicon.info(v) for v in config["variables"])
    assert len(set(config["variables"])) == len(config["variables"])
    assert math.isfinite(config["time_step_hours"]) and config["time_step_hours"] > 0


@given(mutated_config())
def test_checkpoint_configs(fuzz_counts, config):
    fuzz_counts["checkpoint configs"] += 1
    try:
        validate_config(config, "fuzz.json")
    except CheckpointError:
        fuzz_counts["checkpoint configs (refused)"] += 1
        return
    _check_valid(config)


@settings(max_examples=FILE_EXAMPLES)
@given(
    st.one_of(
        TEXT,
        JSON_VALUES.map(json.dumps),
        mutated_config().map(lambda c: json.dumps({**SHIPPED_CONFIG, "config": c})),
    )
)
def test_checkpoint_documents(fuzz_counts, text):
    fuzz_counts["checkpoint documents"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.json"
        path.write_text(text, encoding="utf-8")
        try:
            document = read_config(path)
        except CheckpointError:
            fuzz_counts["checkpoint documents (refused)"] += 1
            return
        _check_valid(document["config"])
