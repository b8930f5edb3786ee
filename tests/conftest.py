"""Shared fixtures: every test session gets its own cache directory and one tiny sample."""

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
