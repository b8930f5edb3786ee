"""Regridding between regular lat-lon grids and the HRRR Lambert grid, checked against analytic fields
and hand-computed block means."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from workbench.errors import GridError
from workbench.grids import hrrr_grid
from workbench.regrid import LatLonAxes, grid_of, regrid, regrid_mask, weights


def smooth(lat, lon):
    """An analytic field of order 1 with curvature in both directions."""
    return 2.0 + np.sin(3 * np.deg2rad(lat)) * np.cos(2 * np.deg2rad(lon))


def latlon_field(lat, lon, name="t2m", fn=smooth):
    return xr.DataArray(
        fn(lat[:, None], lon[None, :]),
        dims=("latitude", "longitude"),
        coords={"latitude": lat, "longitude": lon},
        name=name,
    )


def lambert_field(grid, values, name):
    return xr.DataArray(values, dims=("y", "x"), coords=grid.coords(), name=name)


LAT = np.arange(10.0, 60.001, 0.25)
LON = np.arange(-140.0, -50.001, 0.25)


def test_smooth_field_round_trip_latlon_lambert_latlon_within_1e_3():
    grid = hrrr_grid(12.0)
    ll = latlon_field(LAT, LON)
    lam = regrid(ll, grid)
    assert lam.dims == ("y", "x") and lam.shape == grid.shape
    assert lam.attrs["regrid_method"] == "bilinear"
    np.testing.assert_allclose(lam.values, smooth(grid.latitude, grid.longitude), rtol=1e-4)
    back = regrid(lam, ll)
    inside = np.isfinite(back.values)
    assert 0.3 < inside.mean() < 0.5  # the HRRR domain covers part of the lat-lon box; the rest is NaN
    rel = np.abs(back.values[inside] - ll.values[inside]) / np.abs(ll.values[inside])
    assert rel.max() < 1e-3


def test_any_orientation_of_the_latlon_grid_gives_the_same_result():
    grid = hrrr_grid(48.0)
    ascending = regrid(latlon_field(LAT, LON), grid)
    # latitude descending, longitude from 0 to 360, dims (longitude, latitude)
    flipped = latlon_field(LAT[::-1], np.mod(LON, 360.0)).transpose("longitude", "latitude")
    np.testing.assert_allclose(regrid(flipped, grid).values, ascending.values, rtol=1e-12)
    # a global grid wraps across the date line: the Lambert grid straddles no seam, but points do land
    # on the last column, interpolated with the first
    glon = np.arange(0.0, 360.0, 1.0)
    glat = np.arange(-90.0, 90.001, 1.0)
    global_ = regrid(latlon_field(glat, glon), grid)
    np.testing.assert_allclose(global_.values, smooth(grid.latitude, grid.longitude), rtol=1e-3)
    seam = weights(grid_of(latlon_field(glat, glon)), LatLonAxes(0.5, 1.0, 3, 359.5, 1.0, 1), "bilinear")
    assert set(seam.matrix.indices % 360) == {0, 359}


def test_conservative_preserves_the_area_integral_to_1e_6():
    fine = hrrr_grid(6.0)
    rng = np.random.default_rng(0)
    values = rng.gamma(0.5, 0.002, fine.shape)
    values[:20], values[-20:], values[:, :20], values[:, -20:] = 0, 0, 0, 0  # nothing at the edges
    tp = lambert_field(fine, values, "tp")
    target = latlon_field(LAT, LON)
    out = regrid(tp, target)
    assert out.attrs["regrid_method"] == "conservative"
    w = weights(grid_of(tp), grid_of(target), "conservative")
    total_in = (values.ravel() * w.source_area).sum()
    total_out = np.nansum(out.values.ravel() * w.target_area)
    assert total_out == pytest.approx(total_in, rel=1e-6)
    # the other way round: 0.25 degrees onto a coarser Lambert grid, several sub-cells per source cell
    ll = latlon_field(
        LAT, LON, "tp", fn=lambda la, lo: np.exp(-(((la - 38) / 4) ** 2 + ((lo + 95) / 6) ** 2))
    )
    coarse = hrrr_grid(96.0)
    w2 = weights(grid_of(ll), coarse, "conservative")
    out2 = regrid(ll, coarse)
    assert np.nansum(out2.values.ravel() * w2.target_area) == pytest.approx(
        (ll.values.ravel() * w2.source_area).sum(), rel=1e-6
    )


def test_conservative_and_maximum_on_nested_lambert_grids_match_block_statistics():
    fine, coarse = hrrr_grid(3.0), hrrr_grid(24.0)
    # a window of the 3-km grid is enough: the 24-km cell (i, j) covers 3-km rows 8i-4 .. 8i+3
    iy, ix = slice(400, 480), slice(800, 880)
    sub = fine.coords()
    window = xr.DataArray(
        np.random.default_rng(1).random((80, 80)),
        dims=("y", "x"),
        coords={"y": sub["y"][1][iy], "x": sub["x"][1][ix]},
        name="tp",
    )
    # grid_of needs the window's own origin: it is a Lambert grid of 80 x 80 points at 3 km
    out = regrid(window, coarse)
    area = fine.cell_area()[iy, ix]
    i, j = 55, 105  # 3-km rows 436..443, columns 836..843: inside the window
    block = (slice(8 * i - 4 - 400, 8 * i + 4 - 400), slice(8 * j - 4 - 800, 8 * j + 4 - 800))
    expected = (window.values[block] * area[block]).sum() / area[block].sum()
    assert float(out.isel(y=i, x=j)) == pytest.approx(expected, rel=1e-9)
    refc = regrid(window.rename("refc"), coarse)
    assert refc.attrs["regrid_method"] == "maximum"
    assert float(refc.isel(y=i, x=j)) == window.values[block].max()
    # refining falls back to the cell that holds each target point
    back = regrid(refc, hrrr_grid(8.0), "maximum")
    assert back.attrs["regrid_method"] == "nearest"
    assert float(back.isel(y=3 * i, x=3 * j)) == window.values[block].max()


def test_masks_regrid_as_area_fractions_with_a_threshold():
    fine, coarse = hrrr_grid(3.0), hrrr_grid(24.0)
    iy, ix = slice(400, 480), slice(800, 880)
    sub = fine.coords()
    values = np.zeros((80, 80), dtype=bool)
    i, j = 55, 105
    r0, c0 = 8 * i - 4 - 400, 8 * j - 4 - 800
    values[r0 : r0 + 5, c0 : c0 + 8] = True  # 5/8 of cell (i, j)
    values[r0 + 8 : r0 + 11, c0 : c0 + 8] = True  # 3/8 of cell (i + 1, j)
    mask = xr.DataArray(
        values, dims=("y", "x"), coords={"y": sub["y"][1][iy], "x": sub["x"][1][ix]}, name="mask"
    )
    out, fraction = regrid_mask(mask, coarse)
    assert float(fraction.isel(y=i, x=j)) == pytest.approx(5 / 8, abs=1e-4)
    assert float(fraction.isel(y=i + 1, x=j)) == pytest.approx(3 / 8, abs=1e-4)
    assert bool(out.isel(y=i, x=j)) and not bool(out.isel(y=i + 1, x=j))
    assert out.dtype == bool and int(out.sum()) == 1
    with pytest.raises(GridError, match="threshold"):
        regrid_mask(mask, coarse, threshold=0.0)


def test_weights_are_cached_on_disk_and_lazy_inputs_stay_lazy(tmp_path):
    grid = hrrr_grid(48.0)
    lat = np.arange(15.0, 60.001, 0.5)
    lon = np.arange(-140.0, -55.001, 0.5)
    ll = latlon_field(lat, lon).expand_dims(init_time=2, lead_time=3).chunk({"lead_time": 1})
    out = regrid(ll, grid, "bilinear", cache_dir=tmp_path)
    assert out.chunks is not None and out.dims == ("init_time", "lead_time", "y", "x")
    files = list(tmp_path.glob("bilinear-*.npz"))
    assert len(files) == 1 and not list(tmp_path.glob(".*tmp"))
    expected = out.compute()
    np.testing.assert_allclose(
        expected.isel(init_time=1, lead_time=2).values, smooth(grid.latitude, grid.longitude), rtol=1e-3
    )
    from workbench import regrid as module

    module._MEMORY.clear()
    stamp = files[0].stat().st_mtime_ns
    again = regrid(ll, grid, "bilinear", cache_dir=tmp_path).compute()
    assert files[0].stat().st_mtime_ns == stamp  # read back, not recomputed
    np.testing.assert_array_equal(again.values, expected.values)
    module._MEMORY.clear()
    files[0].write_bytes(b"not a weights file")
    np.testing.assert_array_equal(regrid(ll, grid, "bilinear", cache_dir=tmp_path).values, expected.values)


def test_unknown_method_and_grid_are_refused():
    with pytest.raises(GridError, match="choose one of"):
        regrid(latlon_field(LAT, LON), hrrr_grid(48.0), "cubic")
    with pytest.raises(GridError, match="Cannot tell the grid"):
        regrid(xr.DataArray(np.zeros((3, 3)), dims=("a", "b")), hrrr_grid(48.0))
    with pytest.raises(GridError, match="not evenly spaced"):
        grid_of(latlon_field(np.array([0.0, 1.0, 3.0]), LON))


def test_conservative_between_nested_weatherbench_grids_is_the_area_weighted_block_mean():
    from workbench.grids import latlon_grid

    # WeatherBench grids: latitude cell-centred (a coarse row is 2 fine rows), longitude centred on 0,
    # so a coarse column is one fine column and half of each neighbour
    fine, coarse = latlon_grid(2.8125), latlon_grid(5.625)
    values = np.random.default_rng(2).random(fine.shape)
    src = xr.DataArray(values, dims=("latitude", "longitude"), coords=fine.coords(), name="tp")
    like = xr.DataArray(np.zeros(coarse.shape), dims=("latitude", "longitude"), coords=coarse.coords())
    out = regrid(src, like)
    assert out.attrs["regrid_method"] == "conservative" and not out.isnull().any()
    lat = np.deg2rad(fine.latitude)
    half = np.deg2rad(2.8125 / 2)
    band = np.sin(lat + half) - np.sin(lat - half)  # cell area / (R2 dlon)
    j, i = 7, 40
    block = values[2 * j : 2 * j + 2, 2 * i - 1 : 2 * i + 2]
    weights_ = band[2 * j : 2 * j + 2, None] * np.array([0.5, 1.0, 0.5])[None, :]
    expected = (block * weights_).sum() / weights_.sum()
    assert float(out.isel(latitude=j, longitude=i)) == pytest.approx(expected, rel=1e-12)
    # global: the whole area integral is kept
    w = weights(grid_of(src), grid_of(out), "conservative")
    assert np.sum(out.values.ravel() * w.target_area) == pytest.approx(
        np.sum(values.ravel() * w.source_area), rel=1e-12
    )


def test_weights_kept_in_memory_are_bounded():
    from workbench import regrid as module

    module._MEMORY.clear()
    source = grid_of(latlon_field(LAT, LON))
    for spacing in range(60, 60 + 10 * (module._MEMORY_SIZE + 2), 10):  # two more pairs than kept
        weights(source, hrrr_grid(float(spacing)), "nearest")
    assert len(module._MEMORY) == module._MEMORY_SIZE
