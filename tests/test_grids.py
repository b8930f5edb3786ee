import numpy as np
import pytest
import xarray as xr

from workbench.errors import GridError
from workbench.grids import area_weights, hrrr_grid, latlon_grid


def test_hrrr_3km_is_noaa_grid():
    g = hrrr_grid(3.0)
    assert g.shape == (1059, 1799)
    # NOAA's published corner points of the HRRR CONUS grid
    np.testing.assert_allclose([g.latitude[0, 0], g.longitude[0, 0]], [21.138123, -122.719528], atol=1e-6)
    np.testing.assert_allclose([g.latitude[-1, -1], g.longitude[-1, -1]], [47.842195, 299.082807 - 360], atol=1e-4)


def test_coarser_spacing_keeps_domain():
    g = hrrr_grid(24)
    assert g.shape == (133, 225)
    assert g.x[0] == hrrr_grid(3).x[0]
    assert g.dx == 24000.0


def test_projection_round_trip_and_map_factor():
    g = hrrr_grid(24)
    lat = np.array([25.0, 38.5, 49.0])
    lon = np.array([-80.0, -97.5, -120.0])
    back = g.unproject(*g.project(lat, lon))
    np.testing.assert_allclose(back, (lat, lon), atol=1e-9)
    # tangent cone: the scale is exactly 1 on the standard parallel and larger away from it
    assert g.map_factor(38.5) == pytest.approx(1.0)
    assert g.map_factor(25.0) > 1.0 and g.map_factor(50.0) > 1.0


def test_nearest_index_of_grid_points():
    g = hrrr_grid(48)
    iy, ix = g.nearest_index(g.latitude[[3, 10], [7, 20]], g.longitude[[3, 10], [7, 20]])
    assert iy.tolist() == [3, 10] and ix.tolist() == [7, 20]
    assert g.contains(np.array([38.5, 0.0]), np.array([-97.5, 0.0])).tolist() == [True, False]


@pytest.mark.parametrize("res,shape", [(5.625, (32, 64)), (1.40625, (128, 256)), (0.25, (721, 1440))])
def test_weatherbench_latlon_grids(res, shape):
    g = latlon_grid(res)
    assert g.shape == shape
    assert np.all(np.diff(g.latitude) > 0)


def test_weatherbench_5625_latitudes_are_cell_centres():
    assert latlon_grid(5.625).latitude[0] == pytest.approx(-87.1875)


def test_area_weights_latlon_is_normalised_cosine():
    g = latlon_grid(5.625)
    ds = xr.Dataset(coords=g.coords())
    w = area_weights(ds)
    assert float(w.mean()) == pytest.approx(1.0)
    expected = np.cos(np.deg2rad(g.latitude))
    np.testing.assert_allclose(w.values, expected / expected.mean())


def test_area_weights_lambert_match_map_factor_area():
    g = hrrr_grid(24)
    w = area_weights(xr.Dataset(coords=g.coords()))
    exact = g.cell_area() / g.cell_area().mean()
    np.testing.assert_allclose(w.values, exact, rtol=2e-3)


@pytest.mark.parametrize("bad", [0, -3, float("nan"), "three", 1e7])
def test_bad_grid_specs_are_refused(bad):
    with pytest.raises(GridError):
        hrrr_grid(bad)


@pytest.mark.parametrize("bad", [0, 7.0, -1, 200])
def test_bad_latlon_resolution(bad):
    with pytest.raises(GridError):
        latlon_grid(bad)


def test_area_weights_need_a_grid():
    with pytest.raises(GridError, match="latitude"):
        area_weights(xr.DataArray(np.zeros(3), dims="station"))
