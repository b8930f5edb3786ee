"""The inputs shared by ``workbench events`` and ``workbench score``: --param lists, paths and entries."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import workbench
from workbench.cli_inputs import open_path, open_source, parse_params
from workbench.errors import CatalogError, DataError, UnitsError


def test_parse_params():
    assert parse_params(["size=tiny", " model = pangu ", "empty="]) == {
        "size": "tiny",
        "model": "pangu",
        "empty": "",
    }
    assert parse_params([]) == {}
    for bad in ("size", "=tiny"):
        with pytest.raises(DataError, match="KEY=VALUE"):
            parse_params([bad])


def test_open_path_and_source(tmp_path, tiny_sample):
    ds = xr.Dataset({"t2m": (("time", "x"), 280 + np.arange(6.0).reshape(3, 2), {"units": "K"})})
    ds.to_zarr(tmp_path / "a.zarr", zarr_format=2)
    ds.to_netcdf(tmp_path / "a.nc")
    for name in ("a.zarr", "a.nc"):
        opened = open_path(tmp_path / name)
        assert opened["t2m"].chunks is not None  # lazy
        np.testing.assert_array_equal(opened["t2m"].values, ds["t2m"].values)
        np.testing.assert_array_equal(open_source(str(tmp_path / name), {})["t2m"].values, ds["t2m"].values)
    # canonical variables are checked on opening: units present, values plausible for them
    ds.assign(t2m=ds["t2m"].drop_attrs()).to_netcdf(tmp_path / "no_units.nc")
    with pytest.raises(UnitsError, match="'t2m' has no 'units' attribute"):
        open_source(str(tmp_path / "no_units.nc"), {})
    ds.assign(t2m=(ds["t2m"] - 273.15).assign_attrs(units="K")).to_netcdf(tmp_path / "celsius.nc")
    with pytest.raises(UnitsError, match="values 6.85 to 11.85, outside the plausible range 150 to 350 K"):
        open_source(str(tmp_path / "celsius.nc"), {})
    # an entry takes the parameters it declares and ignores the others
    hrrr = open_source("sample_hrrr", {"size": "tiny", "model": "pangu"})
    assert hrrr.sizes["time"] == xr.open_zarr(tiny_sample.hrrr).sizes["time"]
    with pytest.raises(CatalogError, match="'nowhere' is neither an existing file nor a catalog entry") as err:
        open_source("nowhere", {})
    assert "sample_hrrr" in str(err.value)


def test_the_commands_share_one_module():
    root = Path(workbench.__file__).parent
    for command in ("events/command.py", "scoring/command.py"):
        tree = ast.parse((root / command).read_text())
        sources = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "workbench.cli_inputs" in sources, command
        assert "workbench.scoring.command" not in sources, command
