"""Kerchunk references to runs of the AI-model archive: built from small files in the archive's exact
layout, read through fsspec's reference filesystem, and the same numbers as the direct reads."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import xarray as xr
from test_sources_archives import aiwp_run

from workbench.errors import DataError
from workbench.sources.archives import _aiwp_paths, open_aiwp_forecast
from workbench.sources.references import build_references, is_reference, open_reference

pytest.importorskip("kerchunk")


@pytest.fixture
def runs(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    return [aiwp_run(folder, t)[0] for t in ("2020-06-01T00", "2020-06-01T12")]


def assert_same(a: xr.Dataset, b: xr.Dataset) -> None:
    assert sorted(a.data_vars) == sorted(b.data_vars) and a.sizes == b.sizes
    for name in a.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_json_reference_reads_the_run_byte_for_byte(runs, tmp_path):
    refs = build_references(runs, tmp_path / "refs")
    assert [r.name for r in refs] == [
        "FOUR_v200_GFS_2020060100_f000_f240_06.json",
        "FOUR_v200_GFS_2020060112_f000_f240_06.json",
    ]
    raw = open_reference(refs[0])
    with xr.open_dataset(runs[0]) as direct:
        assert_same(raw.load(), direct.load())
    # the archive reader on the references gives the same canonical forecast as on the files
    direct = open_aiwp_forecast(runs, variables=["t2m", "z500", "tp"], lead_hours=12)
    through = open_aiwp_forecast(str(tmp_path / "refs" / "*.json"), variables=["t2m", "z500", "tp"], lead_hours=12)
    assert_same(through.load(), direct.load())
    assert through["tp"].attrs["units"] == "m"


def test_parquet_reference_gives_the_same_numbers(runs, tmp_path):
    pytest.importorskip("fastparquet")
    refs = build_references(runs, tmp_path / "refs", fmt="parquet")
    assert refs[0].is_dir() and refs[0].name.endswith(".parq")
    direct = open_aiwp_forecast(runs, variables=["2t", "z850"])
    through = open_aiwp_forecast([str(r) for r in refs], variables=["2t", "z850"])
    assert_same(through.load(), direct.load())


def test_catalog_entry_reads_references(runs, tmp_path):
    import workbench

    build_references(runs, tmp_path / "refs")
    ds = workbench.open_catalog()["aiwp_forecast"](
        files=str(tmp_path / "refs" / "FOUR_*.json"), start="2020-06-01T06"
    ).read()
    assert ds.sizes["init_time"] == 1 and str(ds.init_time.values[0]).startswith("2020-06-01T12")
    np.testing.assert_array_equal(
        ds["t2m"].values, open_aiwp_forecast(runs[1], variables=list(ds.data_vars))["t2m"].values
    )


def test_remote_references_are_accepted_and_bad_inputs_are_clear(runs, tmp_path, monkeypatch):
    url = "s3://noaa-oar-mlwp-data/refs/FOUR_v200_GFS_2023100100_f000_f240_06.json"
    assert is_reference(url) and _aiwp_paths([url]) == [url]  # not refused as a 4-5 GB download
    with pytest.raises(DataError, match="No reference"):
        open_reference(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="Cannot read the reference"):
        open_reference(tmp_path / "bad.json")
    (tmp_path / "plain.nc").write_text("not an HDF5 file")
    with pytest.raises(DataError, match="Cannot build a reference"):
        build_references([tmp_path / "plain.nc"], tmp_path / "refs")
    with pytest.raises(DataError, match="'json' or 'parquet'"):
        build_references(runs, tmp_path / "refs", fmt="zarr")
    monkeypatch.setitem(sys.modules, "kerchunk.hdf", None)
    with pytest.raises(DataError, match=r"workbench\[kerchunk\]"):
        build_references(runs, tmp_path / "refs")
