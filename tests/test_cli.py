"""The ``workbench`` command line, run in-process: catalog, events and a clear error for a bad entry."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.catalog import open_catalog
from workbench.cli import main


def test_catalog_lists_every_entry(capsys):
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    names = list(open_catalog())
    listed = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert listed == names
    assert {"sample_hrrr", "sample_reports", "forecasts"} <= set(listed)
    hrrr_line = next(line for line in out.splitlines() if line.startswith("sample_hrrr "))
    assert "HRRR-like hourly analysis" in hrrr_line


@pytest.fixture(scope="module")
def events_run(tiny_sample, tmp_path_factory):
    output = tmp_path_factory.mktemp("events") / "events.nc"
    args = ["events", "sample_hrrr", "--reports", "sample_reports", "--spc", "sample", "--param", "size=tiny",
            "-o", str(output)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zone-based reports without coordinates
        code = main(args)
    return code, output, args


def test_events_writes_masks_and_tables(events_run, tiny_sample, capsys):
    code, output, _ = events_run
    assert code == 0
    masks = xr.open_dataset(output)["mask"].load()
    truth = xr.open_zarr(tiny_sample.hrrr)
    assert masks.dims == ("event_type", "time", "y", "x")
    assert masks.dtype == bool
    assert masks.sizes["time"] == truth.sizes["time"] and masks.sizes["y"] == truth.sizes["y"]
    np.testing.assert_array_equal(masks["time"].values, truth["time"].values)

    table = pd.read_csv(output.with_name("events.nc.events.csv"), parse_dates=["start", "end"])
    index = pd.read_csv(output.with_name("events.nc.index.csv"))
    assert len(table) and len(index) == len(table)

    # the same input through the API gives the same masks and the same events
    from workbench.events import build_masks

    reports = open_catalog()["sample_reports"](size="tiny").read()
    spc = open_catalog()["sample_reports"](size="tiny", table="spc").read()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = build_masks(truth, reports=reports, spc=spc, allow_empty=True)
    assert masks["event_type"].values.tolist() == expected.masks["event_type"].values.tolist()
    np.testing.assert_array_equal(masks.values, expected.masks.values)
    assert table["event_id"].tolist() == expected.table["event_id"].tolist()
    assert table["event_type"].tolist() == expected.table["event_type"].tolist()
    # report cases and threshold events are both there, each painted in its own layer
    assert table["source"].str.contains("threshold").any() and (~table["source"].str.contains("threshold")).any()
    for row in table.itertuples():
        for family in row.event_type.split("+"):
            box = masks.sel(event_type=family, time=slice(row.start, row.end)).isel(
                y=slice(row.y_min, row.y_max + 1), x=slice(row.x_min, row.x_max + 1)
            )
            assert bool(box.any()), row.event_id


def test_events_refuses_an_existing_output_without_overwrite(events_run, capsys):
    _, output, args = events_run
    before = output.stat().st_mtime_ns
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # it stops before opening the data or building any climatology
        assert main(args) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert output.stat().st_mtime_ns == before


def test_unknown_catalog_entry_names_it_and_lists_the_valid_ones(tmp_path, capsys):
    assert main(["events", "sample_hrrrr", "-o", str(tmp_path / "e.nc")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("workbench events: error:")
    assert "'sample_hrrrr' is neither an existing file nor a catalog entry" in err
    for name in open_catalog():
        assert name in err
    assert not (tmp_path / "e.nc").exists()
