"""The torch architectures: shapes on odd grids, ClimaX variable subsets, Pangu's bias, HTA, FLOPs."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from workbench import models
from workbench.errors import DataError
from workbench.lexicon import SAMPLE_VARIABLES
from workbench.models.pangu import earth_position_index

TIMES = np.array(["2020-06-01T00", "2020-06-01T06"], dtype="datetime64[ns]")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", ["pangu", "climax", "hrheim"])
@pytest.mark.parametrize("shape", [(13, 17), (34, 57), (21, 30)])
def test_forward_keeps_any_grid_shape(name, shape):
    model = models.build(name).eval()
    x = torch.randn(2, len(SAMPLE_VARIABLES), *shape)
    with torch.no_grad():
        y = model.step(x, valid_time=TIMES)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", ["pangu", "climax", "hrheim"])
def test_default_configs_are_small_and_train(name):
    model = models.build(name)
    n = models.count_parameters(model)
    assert 3e5 < n < 5e6, n
    x = torch.randn(1, len(SAMPLE_VARIABLES), 19, 23)
    loss = model.step(x, valid_time=TIMES[:1]).square().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)


def test_step_needs_the_valid_time_for_forcings():
    model = models.build("hrheim")
    assert model.needs_valid_time
    with pytest.raises(DataError, match="valid_time"):
        model.step(torch.zeros(1, len(SAMPLE_VARIABLES), 8, 8))
    plain = models.build("hrheim", forcings=[])
    assert plain.step(torch.zeros(1, len(SAMPLE_VARIABLES), 8, 8)).shape == (1, 11, 8, 8)


def test_forcing_channels_follow_the_hour_of_day():
    from workbench.models.layers import forcing_fields

    f = forcing_fields(("hour_sin", "hour_cos"), TIMES, 2, (2, 3))
    np.testing.assert_allclose(f[:, :, 0, 0].numpy(), [[0.0, 1.0], [1.0, 0.0]], atol=1e-6)
    # the engine's convention: a tensor of hours since 1970 gives the same channels
    hours = torch.tensor(pd.DatetimeIndex(TIMES).asi8 / 3.6e12, dtype=torch.float64)
    torch.testing.assert_close(forcing_fields(("hour_sin", "hour_cos"), hours, 2, (2, 3)), f)


def test_normalize_denormalize_round_trip():
    norm = models.Normalization(
        {v: float(i) for i, v in enumerate(SAMPLE_VARIABLES)},
        {v: 2.0 + i for i, v in enumerate(SAMPLE_VARIABLES)},
    )
    model = models.build("hrheim", normalization=norm)
    x = torch.randn(2, 11, 5, 6) * 10
    torch.testing.assert_close(model.denormalize(model.normalize(x)), x)
    # t2m is channel 0: mean 0, std 2
    torch.testing.assert_close(model.normalize(x)[:, 0], x[:, 0] / 2.0)
    assert model.config["normalization"]["std"]["u10m"] == 3.0


def test_climax_accepts_a_subset_of_its_variables():
    model = models.build("climax").eval()
    names = list(SAMPLE_VARIABLES)
    x = torch.randn(1, len(names), 20, 24)
    subset = ["t2m", "msl", "z500"]
    idx = [names.index(v) for v in subset]
    with torch.no_grad():
        full = model.step(x, valid_time=TIMES[:1])
        part = model.step(x[:, idx], valid_time=TIMES[:1], variables=subset)
    assert part.shape == full.shape  # every state variable is forecast from the subset
    assert not torch.allclose(part, full)
    # a variable absent from the input starts from its mean (zero); present ones from their value
    with pytest.raises(DataError, match="does not know"):
        model.step(x[:, :1], valid_time=TIMES[:1], variables=["sst"])


def test_climax_tokenization_does_not_depend_on_channel_order():
    model = models.build("climax").eval()
    names = list(SAMPLE_VARIABLES)
    x = torch.randn(1, len(names), 16, 16)
    perm = [3, 0, 10, 7, 1, 2, 4, 9, 5, 6, 8]
    with torch.no_grad():
        a = model.step(x, valid_time=TIMES[:1])
        b = model.step(x[:, perm], valid_time=TIMES[:1], variables=[names[i] for i in perm])
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_climax_aggregation_in_slices_matches_one_call(monkeypatch):
    # the variable aggregation goes in slices (GPU grid limit); slicing must not change the result
    import workbench.models.climax as climax

    model = models.build("climax").eval()
    x = torch.randn(2, 11, 16, 16)
    with torch.no_grad():
        whole = model.step(x, valid_time=TIMES, lead_hours=6.0)
        monkeypatch.setattr(climax, "_AGG_SEQUENCES_PER_CALL", 3 * model.net.var_agg.num_heads)
        sliced = model.step(x, valid_time=TIMES, lead_hours=6.0)
    torch.testing.assert_close(sliced, whole, rtol=1e-5, atol=1e-6)


def test_climax_uses_the_lead_time():
    model = models.build("climax").eval()
    x = torch.randn(1, 11, 16, 16)
    with torch.no_grad():
        a = model.step(x, valid_time=TIMES[:1], lead_hours=1.0)
        b = model.step(x, valid_time=TIMES[:1], lead_hours=24.0)
    assert not torch.allclose(a, b)


def test_pangu_earth_specific_index_covers_the_table():
    wz, wh, ww = 2, 4, 8
    index = earth_position_index((wz, wh, ww))
    n = wz * wh * ww
    assert index.shape == (n * n,)
    # one parameter per (query level, key level, query row, key row, longitude offset)
    assert index.min() == 0 and index.max() == (2 * ww - 1) * wh * wh * wz * wz - 1
    assert len(torch.unique(index)) == (2 * ww - 1) * wh * wh * wz * wz
    grid = index.view(n, n)
    # translation in longitude alone keeps the index: tokens (0,0,0)->(0,0,1) and (0,0,3)->(0,0,4)
    assert grid[0, 1] == grid[3, 4]
    # but not a shift in latitude: absolute rows matter
    assert grid[0, ww] != grid[ww, 2 * ww]


def test_pangu_upper_air_cube_holds_the_pressure_level_fields():
    net = models.build("pangu").net
    names = list(SAMPLE_VARIABLES)
    upper = {names[i] for i in net.upper_chan.tolist()}
    assert upper == {"z500", "t850", "u850", "v850"}
    assert {names[i] for i in net.surface_chan.tolist()} == {
        "t2m",
        "u10m",
        "v10m",
        "msl",
        "tp",
        "refc",
        "gust",
    }


def test_pangu_bias_tables_scale_with_the_training_grid():
    small = models.build("pangu", {"grid": {"kind": "hrrr", "shape": [34, 57]}}).net
    large = models.build("pangu").net
    n_small = small.layer1.blocks[0].attn.earth_specific_bias.shape[1]
    n_large = large.layer1.blocks[0].attn.earth_specific_bias.shape[1]
    # level windows (3 token levels -> 2 windows of 2) x latitude window rows (ceil(ceil(ny / 4) / 4))
    assert n_small == 2 * 3 and n_large == 2 * 9


def test_hta_schedule_examples():
    assert models.hta_schedule(31) == [24, 6, 1]
    assert models.hta_schedule(48) == [24, 24]
    assert models.hta_schedule(9) == [6, 3]
    assert models.hta_schedule(pd.Timedelta(hours=7)) == [6, 1]
    assert models.hta_schedule(0) == []
    with pytest.raises(DataError, match="cannot be reached"):
        models.hta_schedule(5, steps=(24, 6))
    with pytest.raises(DataError, match="whole hours"):
        models.hta_schedule(1.5)


def _fewest(lead: int, steps: tuple[int, ...]) -> int:
    # brute force over multiplicities
    best = None
    ranges = [range(lead // s + 1) for s in steps]
    for counts in itertools.product(*ranges):
        if sum(c * s for c, s in zip(counts, steps, strict=True)) == lead:
            best = sum(counts) if best is None else min(best, sum(counts))
    return best


@pytest.mark.parametrize("steps", [(24, 6, 3, 1), (4, 3, 1), (5, 2)])
def test_hta_schedule_uses_the_fewest_steps(steps):
    for lead in range(0, 50):
        expected = _fewest(lead, steps)
        if expected is None:
            with pytest.raises(DataError):
                models.hta_schedule(lead, steps)
            continue
        path = models.hta_schedule(lead, steps)
        assert sum(path) == lead and len(path) == expected
        assert path == sorted(path, reverse=True)


def test_hierarchical_model_dispatches_by_step():
    nets = [models.build("hrheim", time_step_hours=h, forcings=[]) for h in (1, 6, 24)]
    family = models.HierarchicalModel(nets)
    assert family.steps == (24, 6, 1)
    assert family.time_step == pd.Timedelta(hours=1)
    assert family.schedule(31) == [24, 6, 1]
    x = torch.randn(1, 11, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(family.step(x, 6), nets[1].step(x))
    with pytest.raises(DataError, match="No network with a 3 h step"):
        family.step(x, 3)


def test_count_flops_matches_hand_count():
    conv = nn.Conv2d(2, 3, kernel_size=1)
    # 2 FLOPs per multiply-add: 2 * (in 2) * (out 3) * (4 * 5 pixels)
    assert models.count_flops(conv, (1, 2, 4, 5)) == 240
    lin = nn.Sequential(nn.Flatten(), nn.Linear(20, 7))
    assert models.count_flops(lin, (3, 1, 4, 5)) == 2 * 3 * 20 * 7


@pytest.mark.parametrize("name", ["pangu", "climax", "hrheim"])
def test_count_flops_of_the_architectures(name):
    model = models.build(name)
    one = models.count_flops(model, (1, 11, 64, 96))
    two = models.count_flops(model, (2, 11, 64, 96))
    assert one > 1e8
    # linear in the batch, up to batch-independent work (HR-Heim's position-bias MLP)
    assert abs(two - 2 * one) < 0.01 * one
