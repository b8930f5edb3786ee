"""The model contract (models/protocol.py) and the run loop's parts: runners and forecast sinks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from inference_standins import (
    VARIABLES,
    LinearFamily,
    LinearForecaster,
    apply_linear,
    rotation_matrix,
)

from workbench import models
from workbench.errors import DataError
from workbench.inference import ForecastSink, MemorySink, ZarrSink, run_forecast
from workbench.inference.prepare import prepare
from workbench.inference.runner import BaselineRunner, Runner, TorchRunner
from workbench.models.protocol import (
    EnsembleMember,
    Forecaster,
    StepFamily,
    StepForecaster,
    check_model,
    step_models,
    torch_module,
)

H = pd.Timedelta(hours=1)
INITS = pd.DatetimeIndex(["2020-06-01T00", "2020-06-01T01", "2020-06-01T02"])


class _Shapeless:
    """Has a name and variables but neither ``forecast`` nor ``step``: no model at all."""

    name = "shapeless"
    variables = ("t2m",)


def test_each_kind_of_model_meets_its_protocol():
    net, family, persistence = LinearForecaster(rotation_matrix()), LinearFamily(rotation_matrix()), models.Persistence()
    assert isinstance(net, StepForecaster) and isinstance(net, EnsembleMember)
    torch_net = models.build("hrheim")
    assert isinstance(torch_net, StepForecaster) and isinstance(torch_net, StepFamily)
    assert not isinstance(torch_net, Forecaster)  # networks are run by the engine, never by themselves
    assert isinstance(family, StepFamily) and not isinstance(family, StepForecaster)
    assert isinstance(persistence, Forecaster) and not isinstance(persistence, (StepForecaster, StepFamily))
    assert step_models(net) == {H: net}
    assert sorted(step_models(family)) == [H, 6 * H, 24 * H]
    assert torch_module(net) is net.net


def test_a_lead_conditioned_network_is_a_family_sharing_its_weights():
    net = models.build("climax", lead_hours=[1, 6], net={"embed_dim": 16, "depth": 1, "num_heads": 2, "decoder_depth": 1})
    family = step_models(net)
    assert sorted(family) == [H, 6 * H]
    assert all(torch_module(m) is net for m in family.values())
    assert [m.hours for m in family.values()] == [1.0, 6.0]


def test_a_model_that_keeps_no_contract_is_refused_where_it_is_loaded():
    with pytest.raises(DataError, match="'shapeless' .* meets none of the model protocols"):
        check_model(_Shapeless(), "shapeless")
    from workbench.models import registry

    models.register_model("shapeless-test", lambda checkpoint=None, **kw: _Shapeless(), overwrite=True)
    try:
        with pytest.raises(DataError, match="meets none of the model protocols"):
            models.load("shapeless-test")
    finally:  # the registry is global: later tests list the registered models
        registry._REGISTRY.pop("shapeless-test", None)
    with pytest.raises(DataError, match="neither a step forecaster"):
        step_models(models.Persistence())


def test_both_runners_meet_the_runner_protocol(linear_source):
    net = prepare(LinearForecaster(rotation_matrix()), linear_source, INITS, [1], device="cpu", dtype="fp32")
    base = prepare(models.Persistence(), linear_source, INITS, [1])
    assert isinstance(net.runner, TorchRunner) and isinstance(base.runner, BaselineRunner)
    assert isinstance(net.runner, Runner) and isinstance(base.runner, Runner)
    assert net.signature["model"] == ["linear"] and net.layout.n_blocks == 1


class _RecordingSink:
    """A sink of the test's own: the protocol is all the run loop relies on."""

    def __init__(self):
        self.blocks: list[tuple[int, dict]] = []

    def open(self, layout, signature, source):
        self.layout, self.signature = layout, signature
        return {1}  # pretend block 1 is already written: it must not be computed again

    def write(self, block, data):
        self.blocks.append((block, {v: np.array(a) for v, a in data.items()}))

    def close(self):
        return self.blocks

    def abort(self):
        self.aborted = True


def test_the_loop_hands_each_block_to_any_sink(linear_source):
    A = rotation_matrix(5)
    model = LinearForecaster(A)
    sink = _RecordingSink()
    assert isinstance(sink, ForecastSink)
    blocks = run_forecast(model, linear_source, INITS, [1, 2], sink=sink, batch_size=1, device="cpu", dtype="fp32",
                          progress=False)
    assert [k for k, _ in blocks] == [0, 2]
    assert model.calls == 2 * 2  # two blocks of two one-hour steps: block 1 was skipped
    assert blocks[1][1]["t2m"].shape == (1, 2, 6, 8)
    exact = apply_linear(A, linear_source, INITS[2], 2)
    np.testing.assert_allclose(blocks[1][1]["z500"][0, 1], exact[VARIABLES.index("z500")], rtol=1e-5)


def test_memory_and_zarr_sinks_hold_the_same_forecast(linear_source, tmp_path):
    A = rotation_matrix(6)
    kw = dict(batch_size=2, device="cpu", dtype="fp32", progress=False)
    memory = run_forecast(LinearForecaster(A), linear_source, INITS, [1, 3], sink=MemorySink(), **kw)
    stored = run_forecast(LinearForecaster(A), linear_source, INITS, [1, 3], sink=ZarrSink(tmp_path / "l.zarr"), **kw)
    default = run_forecast(LinearForecaster(A), linear_source, INITS, [1, 3], **kw)
    for v in VARIABLES:
        np.testing.assert_array_equal(stored[v].values, memory[v].values)
        np.testing.assert_array_equal(default[v].values, memory[v].values)
    assert memory.attrs["model"] == "linear"
    exact = apply_linear(A, linear_source, INITS[0], 3)
    np.testing.assert_allclose(memory["t2m"].isel(init_time=0, lead_time=1).values, exact[0], rtol=1e-5)


def test_sinks_refuse_bad_use(tmp_path):
    with pytest.raises(DataError, match="needs a store path"):
        ZarrSink(True)
    with pytest.raises(DataError, match="not open"):
        ZarrSink(tmp_path / "x.zarr").close()
    with pytest.raises(DataError, match="not open"):
        MemorySink().write(0, {})
    assert ZarrSink.catalog("pangu").path.name == "pangu.zarr"
