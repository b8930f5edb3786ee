import numpy as np
import pytest
import xarray as xr

from workbench import lexicon
from workbench.errors import DataError, UnitsError


def test_sample_variables_are_canonical_with_si_units():
    units = {name: lexicon.info(name).units for name in lexicon.SAMPLE_VARIABLES}
    assert units["t2m"] == "K" and units["msl"] == "Pa" and units["z500"] == "m2 s-2"
    assert units["tp"] == "m" and units["refc"] == "dBZ" and units["u850"] == "m s-1"


def test_level_names():
    assert lexicon.level_name("z", 500) == "z500"
    assert lexicon.info("t850").level == 850
    assert lexicon.info("q700").units == "kg kg-1"


def test_unknown_name_lists_known_ones():
    with pytest.raises(DataError, match="not a canonical variable"):
        lexicon.info("temperature_2m")


def test_geopotential_height_to_geopotential():
    gh = xr.DataArray(np.array([5500.0, 5800.0]), dims="x", attrs={"units": "gpm"})
    z = lexicon.convert_units(gh, "gpm", "z500")
    np.testing.assert_allclose(z.values, [5500 * 9.80665, 5800 * 9.80665])
    assert z.attrs["units"] == "m2 s-2" and z.name == "z500"


def test_precip_kg_m2_to_metres_and_rate_to_depth():
    apcp = xr.DataArray(np.array([25.4]), dims="x")
    np.testing.assert_allclose(lexicon.convert_units(apcp, "kg m-2", "tp").values, [0.0254])
    pr = xr.DataArray(np.array([1e-3]), dims="x", attrs={"units": "kg m-2 s-1"})
    np.testing.assert_allclose(lexicon.precipitation_rate_to_depth(pr, 3600).values, [0.0036])


def test_check_units_accepts_aliases_and_rejects_wrong_units():
    lexicon.check_units(xr.DataArray(1.0, name="u10m", attrs={"units": "m/s"}))
    with pytest.raises(UnitsError, match="expects 'K'"):
        lexicon.check_units(xr.DataArray(20.0, name="t2m", attrs={"units": "degC"}))
    with pytest.raises(UnitsError, match="no 'units'"):
        lexicon.check_units(xr.DataArray(1.0, name="msl"))


def test_unknown_conversion_is_an_error():
    with pytest.raises(UnitsError, match="no conversion"):
        lexicon.convert_units(xr.DataArray(1.0), "furlongs", "t2m")


def test_source_maps_point_at_canonical_names():
    for name, upper, _ in lexicon.ERA5_NAMES.values():
        assert (lexicon.info(lexicon.level_name(name, 500)) if upper else lexicon.info(name))
    for name, _ in lexicon.HRRR_ZARR_NAMES.values():
        assert lexicon.info(name)
    assert lexicon.HRRR_GRIB_NAMES[("gh", "isobaricInhPa")] == ("z", True, "gpm")
