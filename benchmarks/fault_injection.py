"""Kill ``workbench infer`` and ``workbench score`` at random points and check that nothing is lost or mixed.

Each run is a child process that ``SIGKILL`` stops either at a named point inside the writers
(``WORKBENCH_FAULT=<point>:<n>``, e.g. between the two names of a folder exchange, see
:data:`workbench._io.FAULT_POINTS`) or after a random delay sent from outside. After every kill the
output must be:

* the complete old output or the complete new one (a finished forecast store, a scores file), equal to
  an uninterrupted run of the same command, value for value; or
* an unfinished forecast store (only where none was finished before) whose every visible block equals
  the uninterrupted run and which the same command resumes to exactly those values.

The children are forked from a ``forkserver`` that has imported the workbench once, so one kill costs
the run itself rather than the interpreter's start (the package imports take seconds).

Usage::

    python benchmarks/fault_injection.py --kills 100 --seed 1      # 100 kills per command
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PRELOAD = [
    "numpy",
    "pandas",
    "xarray",
    "zarr",
    "dask.array",
    "torch",
    "scipy.linalg",
    "scipy.ndimage",
    "scipy.spatial",
    "tqdm.auto",
    "distributed",  # dask imports it on first compute when installed
    "workbench.cli",
    "workbench._io",
    "workbench.catalog",
    "workbench.sample",
    "workbench.models",
    "workbench.inference",
    "workbench.inference.command",
    "workbench.scoring",
    "workbench.scoring.command",
    "workbench.scoring.decompose",
    "workbench.events",
    "workbench.training",
    "workbench.viz",
]
# infer starts from the sample's analysis, which holds the NWP initial times (00 and 12 UTC)
INITS = {"A": ["2020-06-01T00", "2020-06-02T12", "12h"], "B": ["2020-06-01T12", "2020-06-02T12", "12h"]}
VARIABLES = {"A": ["t2m"], "B": ["t2m", "u10m"]}
# Where each command passes (and how often per run): infer writes one record per block, creates the
# store as a folder and swaps an overwrite in; score writes a netCDF file or swaps a zarr folder.
POINTS = {
    "infer": (("store.block", 4), ("file.written", 5), ("file.replaced", 5), ("dir.written", 1),
              ("dir.swapped", 1)),
    "score": (("file.written", 1), ("file.replaced", 1), ("dir.written", 1), ("dir.swapped", 1)),
}


def _child(argv: list[str], env: dict[str, str]) -> None:
    """Run one CLI command in a forked child (quietly); its exit code is the command's."""
    os.environ.update(env)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    from workbench.cli import main

    os._exit(main(argv))


@dataclass
class Tally:
    """What a campaign did: runs, kills (by where they landed) and the states seen after the kills."""

    runs: int = 0
    kills: int = 0
    by_point: dict[str, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


class Campaign:
    """Kill loops over one forecast store and two scores outputs, in ``workdir``.

    Parameters
    ----------
    workdir
        An empty directory for the stores.
    seed
        Seeds the choice of command, kill point and delay.
    size
        Sample size of the inputs (``tiny`` keeps a kill under a few seconds).
    """

    def __init__(self, workdir: str | os.PathLike, seed: int = 0, size: str = "tiny"):
        self.dir = Path(workdir)
        self.rng = random.Random(seed)
        self.size = size
        ctx = mp.get_context("forkserver")
        here = str(Path(__file__).resolve().parent)
        if here not in sys.path:
            sys.path.insert(0, here)
        ctx.set_forkserver_preload(PRELOAD)
        self.ctx = ctx
        self.refs: dict[str, object] = {}
        self.seconds: dict[str, float] = {}

    # -- commands --------------------------------------------------------------------------------------
    def infer_argv(self, store: Path, cfg: str, overwrite: bool) -> list[str]:
        argv = ["infer", "persistence", "--size", self.size, "--store", str(store), "--init-range", *INITS[cfg],
                "--leads", "0:2:1", "--batch-size", "1", "--no-progress"]
        return argv + (["--overwrite"] if overwrite else [])

    def score_argv(self, out: Path, cfg: str) -> list[str]:
        return ["score", str(self.dir / "ref-A.zarr"), "--truth", "sample_hrrr", "--param", f"size={self.size}",
                "-o", str(out), "--variables", *VARIABLES[cfg], "--quiet", "--overwrite"]

    def run(self, argv: list[str], env: dict[str, str] | None = None, kill_after: float | None = None) -> int:
        """Run ``argv`` in a child; kill it after ``kill_after`` seconds if still running. Its exit code."""
        proc = self.ctx.Process(target=_child, args=(argv, env or {}))
        proc.start()
        proc.join(kill_after)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
        return proc.exitcode

    # -- references ------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Uninterrupted runs of every configuration: the values every kill is checked against."""
        from workbench.inference import open_forecast
        from workbench.scoring import open_scores

        for cfg in INITS:
            t0 = time.perf_counter()
            rc = self.run(self.infer_argv(self.dir / f"ref-{cfg}.zarr", cfg, False))
            self.seconds[f"infer-{cfg}"] = time.perf_counter() - t0
            assert rc == 0, f"reference infer {cfg} failed ({rc})"
            self.refs[f"infer-{cfg}"] = open_forecast(self.dir / f"ref-{cfg}.zarr", require_complete=True).load()
        for cfg in VARIABLES:
            for suffix in (".nc", ".zarr"):
                out = self.dir / f"ref-score-{cfg}{suffix}"
                t0 = time.perf_counter()
                rc = self.run(self.score_argv(out, cfg))
                self.seconds[f"score-{cfg}"] = time.perf_counter() - t0
                assert rc == 0, f"reference score {cfg} failed ({rc})"
                self.refs[f"score-{cfg}{suffix}"] = open_scores(out)

    def _kill_plan(self, command: str, seconds: float) -> tuple[dict[str, str], float | None, str]:
        if self.rng.random() < 0.5:
            point, times = self.rng.choice(POINTS[command])
            nth = self.rng.randint(1, times)
            return {"WORKBENCH_FAULT": f"{point}:{nth}"}, None, point
        delay = self.rng.uniform(0.05, seconds)
        return {}, delay, "random-time"

    # -- forecast store --------------------------------------------------------------------------------
    def _store_state(self, store: Path) -> tuple[str, str | None]:
        """``(state, cfg)`` of the store after checking its values against the references."""
        import numpy as np

        from workbench.inference import open_forecast

        if not store.exists():
            return "absent", None
        fc = open_forecast(store).load()
        cfg = next(c for c in INITS if str(fc.init_time.values[0])[:13] == INITS[c][0])
        ref = self.refs[f"infer-{cfg}"]
        complete = (store / "_progress" / "complete.json").exists()
        for v in ref.data_vars:
            got, want = fc[v].values, ref[v].values
            assert got.shape == want.shape, f"{v}: shape {got.shape} vs {want.shape}"
            for i in range(got.shape[0]):  # each initial time is all unwritten or exactly the reference
                row = got[i]
                if np.isnan(row).all() and not complete:
                    continue
                np.testing.assert_array_equal(row, want[i], err_msg=f"{v} init {i} differs (mixed/half-written)")
        return ("complete" if complete else "partial"), cfg

    def infer_loop(self, kills: int, tally: Tally) -> None:
        store = self.dir / "fc.zarr"
        state, cfg = "absent", None
        seconds = max(self.seconds["infer-A"], self.seconds["infer-B"])
        while tally.kills < kills:
            if state == "partial":
                run_cfg, overwrite = cfg, False  # resume it
            else:
                run_cfg = self.rng.choice(list(INITS))
                overwrite = state == "complete"
            if state == "complete" and self.rng.random() < 0.15:
                shutil.rmtree(store)  # now and then a fresh creation
                state, overwrite = "absent", False
            env, delay, where = self._kill_plan("infer", seconds)
            rc = self.run(self.infer_argv(store, run_cfg, overwrite), env, delay)
            tally.runs += 1
            before = state
            state, cfg = self._store_state(store)
            if rc == -9:
                tally.kills += 1
                tally.count(tally.by_point, where)
                tally.count(tally.states, f"infer {before}->{state}")
            else:
                assert rc == 0, f"infer exited {rc}"
                assert state == "complete" and cfg == run_cfg, (state, cfg, run_cfg)
            if before == "complete":
                assert state == "complete", "a finished store was lost or made partial by a killed overwrite"
            if before == "absent":
                assert state in ("absent", "partial", "complete")
        # One last uninterrupted run: a partial store resumes to exactly the reference, and whatever the
        # killed runs left beside the store (staged copies, stale locks) is swept.
        cfg = cfg or "A"
        assert self.run(self.infer_argv(store, cfg, False)) == 0
        assert self._store_state(store) == ("complete", cfg)
        leftovers = sorted(p.name for p in self.dir.iterdir() if p.name.startswith(".fc.zarr"))
        assert not leftovers, f"leftovers: {leftovers}"

    # -- scores ----------------------------------------------------------------------------------------
    def _score_state(self, out: Path) -> str | None:
        import xarray as xr

        from workbench._io import recover_dir
        from workbench.scoring import open_scores

        recover_dir(out)
        if not out.exists():
            return None
        got = open_scores(out)
        for cfg in VARIABLES:
            try:
                xr.testing.assert_identical(got, self.refs[f"score-{cfg}{out.suffix}"])
                return cfg
            except AssertionError:
                continue
        raise AssertionError(f"{out.name} is neither complete output (variables {sorted(got.data_vars)[:4]})")

    def score_loop(self, kills: int, tally: Tally) -> None:
        outs = [self.dir / "scores.zarr", self.dir / "scores.nc"]
        state: dict[Path, str | None] = dict.fromkeys(outs)
        seconds = max(self.seconds["score-A"], self.seconds["score-B"])
        while tally.kills < kills:
            out = self.rng.choice(outs)
            cfg = self.rng.choice(list(VARIABLES))
            env, delay, where = self._kill_plan("score", seconds)
            rc = self.run(self.score_argv(out, cfg), env, delay)
            tally.runs += 1
            before = state[out]
            state[out] = self._score_state(out)
            if rc == -9:
                tally.kills += 1
                tally.count(tally.by_point, where)
                tally.count(tally.states, f"score {'old' if state[out] == before else 'new'}")
                if before is not None:
                    assert state[out] is not None, f"{out.name}: a killed rerun lost the finished output"
            else:
                assert rc == 0 and state[out] == cfg, (rc, state[out], cfg)
        leftovers = sorted(p.name for p in self.dir.iterdir() if p.name.startswith(".scores."))
        assert all(".tmp-" in p or p.endswith(".lock") for p in leftovers), f"leftovers: {leftovers}"
        for out in outs:  # a finished run sweeps what killed ones left
            assert self.run(self.score_argv(out, state[out] or "A")) == 0
        leftovers = sorted(p.name for p in self.dir.iterdir() if p.name.startswith(".scores."))
        assert not leftovers, f"leftovers: {leftovers}"


def campaign(workdir: str | os.PathLike, kills: int, seed: int = 0, size: str = "tiny") -> dict[str, Tally]:
    """Run both kill loops (``kills`` kills each); raises AssertionError on any lost or mixed output."""
    c = Campaign(workdir, seed=seed, size=size)
    c.prepare()
    out = {}
    for name, loop in (("infer", c.infer_loop), ("score", c.score_loop)):
        tally = Tally()
        t0 = time.perf_counter()
        loop(kills, tally)
        tally.seconds = round(time.perf_counter() - t0, 1)
        out[name] = tally
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="kills per command (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="tiny")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="workbench-faults-") as tmp:
        result = campaign(tmp, args.kills, seed=args.seed, size=args.size)
    for name, tally in result.items():
        print(json.dumps({"command": name, **tally.__dict__}))
    print("no lost, mixed or half-written output")
    return 0


if __name__ == "__main__":
    sys.exit(main())
