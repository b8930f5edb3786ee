"""Strict scoring inputs: units present and plausible, bool masks on every path, consistent valid times.

Each refused case here was scored before without a word: t2m in degrees C labelled K gave an RMSE of
273 K, a lazily opened float mask counted its NaN cells as inside the event, and a valid_time one day
off paired every forecast with the wrong truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench import lexicon
from workbench.errors import DataError, UnitsError
from workbench.scoring import decompose as _decompose
from workbench.scoring import rmse


def decompose(fc, truth, masks=None, **kwargs):
    """The scorer with equal weights (the synthetic grid has no latitudes to derive area weights from)."""
    weights = xr.DataArray(np.ones((truth.sizes["y"], truth.sizes["x"])), dims=("y", "x"))
    return _decompose(fc, truth, masks, weights=weights, **kwargs)


def make_case(n_init=2, n_lead=3, ny=4, nx=5, seed=0):
    """t2m (K) and msl (Pa) forecast and truth with known errors: forecast = truth + 1 everywhere."""
    rng = np.random.default_rng(seed)
    y, x = np.arange(ny) * 3000.0, np.arange(nx) * 3000.0
    inits = pd.date_range("2020-06-01", periods=n_init, freq="6h")
    leads = pd.to_timedelta(np.arange(n_lead), "h").values
    times = pd.date_range(inits[0], inits[-1] + pd.Timedelta(hours=n_lead - 1), freq="h")
    truth = xr.Dataset(coords={"time": times, "y": y, "x": x})
    truth["t2m"] = (("time", "y", "x"), 290 + rng.normal(size=(len(times), ny, nx)), {"units": "K"})
    truth["msl"] = (
        ("time", "y", "x"),
        101_000 + 100 * rng.normal(size=(len(times), ny, nx)),
        {"units": "Pa"},
    )
    fc = xr.Dataset(coords={"init_time": inits, "lead_time": leads, "y": y, "x": x})
    vt = fc["init_time"] + fc["lead_time"]
    for name in ("t2m", "msl"):
        values = truth[name].sel(time=vt).transpose("init_time", "lead_time", "y", "x").values + 1.0
        fc[name] = (("init_time", "lead_time", "y", "x"), values, dict(truth[name].attrs))
    masks = xr.DataArray(
        rng.random((1, len(times), ny, nx)) < 0.3,
        dims=("event_type", "time", "y", "x"),
        coords={"event_type": ["hail"], "time": times, "y": y, "x": x},
        name="mask",
    )
    return fc, truth, masks


def test_consistent_inputs_score_to_the_hand_value():
    fc, truth, masks = make_case()
    out = decompose(fc, truth, masks)
    np.testing.assert_allclose(out["rmse"].sel(variable="t2m", region="all").values, 1.0, rtol=1e-12)
    np.testing.assert_allclose(out["rmse"].sel(variable="msl", region="hail").values, 1.0, rtol=1e-12)


def test_plausible_ranges_come_from_the_lexicon():
    assert lexicon.plausible_range("t2m") == (150.0, 350.0)
    assert lexicon.plausible_range("t850") == (150.0, 350.0)
    lo, hi = lexicon.plausible_range("z500")
    assert lo < 9.80665 * 5574 < hi and lo > 5574  # geopotential in m2 s-2, not gpm
    assert lexicon.plausible_range("msl")[0] > 1100  # hPa values fall below it
    for name in lexicon.VARIABLES:  # every canonical variable has one
        assert lexicon.plausible_range(name) is not None, name


@pytest.mark.parametrize("lazy", [False, True])
def test_t2m_in_degrees_c_labelled_k_is_refused(lazy):
    fc, truth, _ = make_case()
    truth["t2m"] = truth["t2m"] - 273.15  # still labelled K
    # what scoring it would give: the offset itself
    raw = rmse(fc["t2m"], truth["t2m"].sel(time=fc["init_time"] + fc["lead_time"]))
    assert float(raw) == pytest.approx(274.15, abs=0.01)
    if lazy:
        truth = truth.chunk({"time": 1})
    with pytest.raises(
        UnitsError, match=r"'t2m' in the truth has values .* outside the plausible range 150 to 350 K"
    ):
        decompose(fc, truth)
    with pytest.raises(DataError, match="degrees C labelled K"):  # UnitsError is a DataError
        decompose(fc, truth)


def test_a_lazy_check_reads_only_a_sample():
    _, truth, _ = make_case()
    data = truth["t2m"].chunk({"time": 1})
    assert lexicon.sample_values(data).shape == (3, 4, 5)  # first, middle and last field only
    # a bad value in a field the sample reads is found
    bad = truth["t2m"].copy()
    bad[-1, 0, 0] = 20.0
    with pytest.raises(UnitsError, match="20 to"):
        lexicon.check_plausible(bad.chunk({"time": 1}), "t2m")


def test_pressure_in_hpa_labelled_pa_and_gpm_labelled_geopotential_are_refused():
    fc, truth, _ = make_case()
    fc["msl"] = fc["msl"] / 100.0
    with pytest.raises(UnitsError, match=r"'msl' in the forecast .* hPa labelled Pa"):
        decompose(fc, truth, variables=["msl"])
    z = xr.DataArray(np.full((2, 3), 5600.0), dims=("y", "x"), attrs={"units": "m2 s-2"})
    with pytest.raises(UnitsError, match="geopotential height"):
        lexicon.check_plausible(z, "z500")
    lexicon.check_plausible(z * 9.80665, "z500")


@pytest.mark.parametrize("side", ["forecast", "truth"])
def test_missing_units_are_refused_for_every_scored_variable(side):
    fc, truth, _ = make_case()
    target = fc if side == "forecast" else truth
    del target["t2m"].attrs["units"]
    with pytest.raises(UnitsError, match=f"'t2m' in the {side} has no 'units' attribute; expected 'K'"):
        decompose(fc, truth)
    # a variable the lexicon does not know needs units too
    fc, truth, _ = make_case()
    fc["custom"] = fc["t2m"].copy()
    truth["custom"] = truth["t2m"].copy()
    del truth["custom"].attrs["units"]
    with pytest.raises(UnitsError, match="'custom' in the truth has no 'units'"):
        decompose(fc, truth, variables=["custom"])


@pytest.mark.parametrize("lazy", [False, True])
def test_float_masks_are_refused_in_memory_and_lazy(lazy):
    fc, truth, masks = make_case()
    floats = masks.astype(float)
    floats[0, 0, 0, 0] = np.nan
    if lazy:
        floats = floats.chunk({"time": 1})
    with pytest.raises(DataError, match="float64, which may hide NaN"):
        decompose(fc, truth, floats)
    whole = masks.astype(float)  # even without NaN: whether a lazy one holds NaN is unknowable cheaply
    with pytest.raises(DataError, match="may hide NaN"):
        decompose(fc, truth, whole.chunk({"time": 1}) if lazy else whole)


def test_lazy_nan_mask_used_to_count_as_inside_the_event():
    """What the refusal prevents: astype(bool) turns NaN into True."""
    mask = xr.DataArray([np.nan, 0.0, 1.0]).chunk()
    assert mask.astype(bool).values.tolist() == [True, False, True]


def test_integer_masks_must_be_zero_or_one():
    fc, truth, masks = make_case()
    ints = masks.astype("int8")
    np.testing.assert_allclose(
        decompose(fc, truth, ints)["rmse"].values, decompose(fc, truth, masks)["rmse"].values, rtol=0
    )
    ints[0, 1, 0, 0] = 2
    with pytest.raises(DataError, match=r"values \[0, 1, 2\]"):
        decompose(fc, truth, ints)


def test_valid_time_must_be_init_plus_lead():
    fc, truth, _ = make_case()
    good = fc.assign_coords(valid_time=fc["init_time"] + fc["lead_time"])
    decompose(good, truth)
    shifted = good.assign_coords(valid_time=good["valid_time"] + pd.Timedelta(days=1))
    with pytest.raises(DataError, match=r"valid_time is not init_time \+ lead_time at 6 of 6"):
        decompose(shifted, truth)
    one_off = good["valid_time"].copy()
    one_off[1, 2] = one_off[1, 2] + pd.Timedelta(hours=1)
    with pytest.raises(DataError, match="at 1 of 6 .*init 2020-06-01T06:00 \\+ lead 0 days 02:00:00"):
        decompose(good.assign_coords(valid_time=one_off), truth)
    missing = good["valid_time"].copy()
    missing[0, 0] = np.datetime64("NaT", "ns")
    with pytest.raises(DataError, match="at 1 of 6"):
        decompose(good.assign_coords(valid_time=missing), truth)
