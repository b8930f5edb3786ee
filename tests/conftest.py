"""Shared fixtures: every test session gets its own cache directory and one tiny sample; torch tests run on
one thread; the stand-in models' synthetic analysis."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def workbench_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point the workbench's cache at a fresh directory so tests never touch the user's cache."""
    cache = tmp_path_factory.mktemp("workbench-cache")
    previous = os.environ.get("WORKBENCH_CACHE")
    os.environ["WORKBENCH_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("WORKBENCH_CACHE", None)
    else:
        os.environ["WORKBENCH_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_sample(workbench_cache):
    """The ``tiny`` embedded sample, generated once per test session."""
    from workbench.sample import ensure_sample

    return ensure_sample("tiny", progress=False)


@pytest.fixture(scope="session")
def benchmark_module():
    """A loader of ``benchmarks/<stem>.py`` as a module (once per session): the tests use their helpers."""
    import importlib.util
    import sys
    from pathlib import Path

    def load(stem: str):
        name = f"workbench_{stem}_benchmark"
        if name not in sys.modules:
            path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{stem}.py"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses look their module up while the file executes
            spec.loader.exec_module(module)
        return sys.modules[name]

    return load


@pytest.fixture(scope="session")
def dashboard_benchmark(benchmark_module):
    """``benchmarks/dashboard.py`` as a module: its server launcher and load test serve the browser tests."""
    return benchmark_module("dashboard")


@pytest.fixture(scope="session")
def tiny_hrrr(tiny_sample):
    """The tiny sample's HRRR-like analysis, loaded into memory once per session."""
    from workbench.sample import open_sample

    return open_sample("hrrr", size="tiny").load()


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one intra-op thread for a test module (``pytestmark = pytest.mark.usefixtures("one_thread")``).

    Tiny tensors gain nothing from intra-op threads, and on a busy machine with few cores OpenMP's
    spinning threads make each op many times slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def linear_source():
    """The hourly ``(time, y, x)`` analysis the stand-in linear models of ``inference_standins`` run on."""
    from inference_standins import synthetic_source

    return synthetic_source()
