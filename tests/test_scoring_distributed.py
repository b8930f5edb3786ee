"""Scoring from zarr stores, in this process and on a dask.distributed cluster, equals scoring in memory."""

import numpy as np
import pytest
import xarray as xr
from test_scoring_decompose import make_case

from workbench.cli import main
from workbench.scoring import decompose
from workbench.scoring.chunks import StoreChunks

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A case of 12 initial times on disk: forecast chunked (1 init, 2 leads), truth 2 times and masks
    3 times per chunk, so blocks, chunk offsets and the tree of merges all have work to do."""
    fc, truth, masks, weights = make_case(n_init=12, n_lead=4, ny=6, nx=7, seed=3)
    root = tmp_path_factory.mktemp("stores")
    fc.chunk({"init_time": 1, "lead_time": 2}).to_zarr(root / "fc.zarr", zarr_format=2)
    truth.chunk({"time": 2}).to_zarr(root / "truth.zarr", zarr_format=2)
    masks.to_dataset().chunk({"time": 3}).to_zarr(root / "masks.zarr", zarr_format=2)
    return root, (fc, truth, masks, weights)


def _opened(root):
    return (
        xr.open_zarr(root / "fc.zarr"),
        xr.open_zarr(root / "truth.zarr"),
        xr.open_zarr(root / "masks.zarr")["mask"],
    )


def _assert_same(got: xr.Dataset, ref: xr.Dataset) -> None:
    assert set(got.data_vars) == set(ref.data_vars)
    for name in ref.data_vars:
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=1e-10, atol=1e-12, err_msg=name)


def test_store_chunks_are_the_stores_own(stores):
    root, _ = stores
    fz, tz, _ = _opened(root)
    chunks = StoreChunks(fz["t2m"], n_lead=2)
    assert chunks.block((slice(3, 4), slice(2, 4))).shape == (1, 2, 6, 7)
    assert chunks.block((slice(3, 5), slice(0, 4))) is None  # not one chunk: read another way
    truth = StoreChunks(tz["t2m"])
    assert [truth.chunk_of(p) for p in (0, 1, 2, 5)] == [0, 0, 1, 2]
    (chunk,) = truth.read([truth.chunk_of(5)])
    np.testing.assert_array_equal(chunk, tz["t2m"].values[4:6])


def test_zarr_stores_score_as_in_memory(stores):
    root, (fc, truth, masks, weights) = stores
    ref = decompose(fc, truth, masks, weights=weights, confidence=0.9, n_resamples=50)
    got = decompose(*_opened(root), weights=weights, confidence=0.9, n_resamples=50)
    _assert_same(got, ref)


def test_local_cluster_of_two_workers_gives_the_in_memory_numbers(stores):
    root, (fc, truth, masks, weights) = stores
    clim = truth.mean("time").assign_attrs(climatology_name="case mean")
    ref = decompose(fc, truth, masks, weights=weights, climatology=clim)
    with distributed.Client(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as client:
        got = decompose(*_opened(root), weights=weights, climatology=clim, client=client)
        # 24 blocks (12 inits x 2 lead chunks) per variable: one task each, merged in a tree of 8
        assert len(client.cluster.workers) == 2
    _assert_same(got, ref)


@pytest.mark.filterwarnings("ignore:No weights given")
def test_cli_scheduler_local_scores_the_stores(stores, tmp_path, capsys):
    root, (fc, truth, masks, _) = stores
    out = tmp_path / "s.nc"
    argv = ["score", str(root / "fc.zarr"), "--truth", str(root / "truth.zarr"), "--masks",
            str(root / "masks.zarr"), "--scheduler", "local", "-o", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    got = xr.open_dataset(out).load()
    ref = decompose(fc, truth, masks)
    for name in ("rmse", "bias", "error_share"):
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=1e-10, err_msg=name)
