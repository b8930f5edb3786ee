"""The dashboard's first start as a background job whose progress a page (and the server's log) can show.

:class:`FirstStart` runs the sample pipeline (:mod:`workbench.workflow.pipeline`) in a thread of the
server process, step by step - ``sample``, ``events``, ``baselines``, ``learned models`` - and keeps
each step's state and elapsed time, and what is happening now, so that a page can show them while it
waits (:mod:`workbench.viz.firststart`) instead of hanging on the first request. The learned models run
as before in their own low-priority process (:func:`~workbench.workflow.pipeline.start_learned_background`);
the job follows it through its manifest and log.

One job per sample size and cache directory exists in a process (:func:`first_start`), shared by every
page of a server, so two visitors never build the same products twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["STEPS", "FirstStart", "Snapshot", "StepState", "existing_job", "first_start"]

#: The steps of a first start, in order.
STEPS = ("sample", "events", "baselines", "learned models")

#: Seconds between two looks at the learned models' background process.
POLL_SECONDS = 1.0


@dataclass
class StepState:
    """One step: ``waiting``, ``running``, ``done``, ``skipped`` or ``failed``, with its times."""

    name: str
    state: str = "waiting"
    started: float | None = None
    finished: float | None = None
    detail: str = ""

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds the step ran (so far, while it runs); None before it started."""
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else (now or time.monotonic())
        return max(0.0, end - self.started)


@dataclass
class Snapshot:
    """A consistent copy of a job's state, for a page to draw."""

    steps: list[StepState]
    now: str
    error: str | None
    ready: bool
    learned_finished: bool
    generation: int = 0
    clock: float = field(default_factory=time.monotonic)


def _last_line(path: Path, limit: int = 4096) -> str:
    """The last non-empty line of a log file ('' if there is none), read from its end only."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


class FirstStart:
    """Build the dashboard's results for one sample size in a background thread, recording progress.

    Parameters
    ----------
    size : str
        Sample size (``tiny``, ``default``, ``full``).
    cache_dir : path, optional
        Cache root (default ``$WORKBENCH_CACHE``).
    learned : {"background", "wait", "off"}, optional
        How the learned models are run (see :func:`workbench.workflow.pipeline.sample_results`).
    """

    def __init__(self, size: str, cache_dir: str | os.PathLike | None = None, learned: str | None = None):
        # Nothing heavy here: a page creates the job while its visitor waits. The pipeline (numpy,
        # xarray, torch) is imported by the job's thread.
        self.size = size
        self.cache_dir = cache_dir
        self.learned = learned
        self._lock = threading.Lock()
        self._steps = {name: StepState(name) for name in STEPS}
        self._now = "starting"
        self._error: str | None = None
        self._generation = 0
        self._thread: threading.Thread | None = None

    # -- state, read by pages ------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The steps, what happens now, the error (one line) and whether the dashboard can be shown."""
        with self._lock:
            steps = [StepState(**vars(s)) for s in self._steps.values()]
            now, error, generation = self._now, self._error, self._generation
        # ready once the learned models' step has begun too: opening the results before that could start
        # their background process a second time
        ready = all(s.state in ("done", "skipped") for s in steps[:3]) and steps[3].state != "waiting"
        learned_finished = steps[3].state in ("done", "skipped", "failed")
        return Snapshot(steps, now, error, ready, learned_finished, generation)

    @property
    def done(self) -> bool:
        """True when every step has finished (or one failed) and the thread has ended."""
        return self._thread is not None and not self._thread.is_alive()

    # -- running -------------------------------------------------------------------------------------
    def start(self) -> FirstStart:
        """Start the job's thread (once); returns the job."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"workbench-first-start-{self.size}", daemon=True
                )
                self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        """Wait for the job's thread to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _set(self, name: str, state: str, detail: str = "") -> None:
        t = time.monotonic()
        with self._lock:
            step = self._steps[name]
            if state == "running" and step.started is None:
                step.started = t
            if state in ("done", "skipped", "failed"):
                step.started = t if step.started is None else step.started
                step.finished = t
            # a finished step keeps only what it says of its result, not what it was doing
            step.state, step.detail = state, detail
            if state == "running":
                self._now = f"{name}: {detail}" if detail else name
        elapsed = step.elapsed(t) or 0.0
        log.info("first start %s: %s %s%s (%.1f s)", self.size, name, state, f" - {detail}" if detail else "",
                 elapsed)

    def _begin(self, name: str) -> None:
        """Mark the steps before ``name`` done and ``name`` running (the pipeline's progress hook)."""
        order = list(STEPS)
        for before in order[: order.index(name)]:
            if self._steps[before].state in ("waiting", "running"):
                self._set(before, "done")
        self._set(name, "running", _DOING[name])

    def _refresh_generation(self) -> None:
        from workbench.workflow.pipeline import results_generation

        generation = results_generation(self.size, self.cache_dir)
        with self._lock:
            self._generation = generation

    def _run(self) -> None:
        current = "sample"
        try:
            from workbench.workflow.pipeline import build_baselines, learned_mode, read_manifest, results_dir

            self.mode = learned_mode(self.learned)
            root = results_dir(self.size, self.cache_dir)
            if read_manifest(root) is None:
                def hook(step: str) -> None:
                    nonlocal current
                    current = step
                    self._begin(step)

                build_baselines(self.size, self.cache_dir, progress=hook)
            for name in STEPS[:3]:
                state = self._steps[name].state
                if state != "done":
                    # a step that ran is done; one that never started was read from the cache
                    self._set(name, "done", "" if state == "running" else "cached")
            self._refresh_generation()
            current = "learned models"
            self._learned(root)
        except Exception as exc:  # shown on the page as one line; the server's log keeps the traceback
            message = " ".join(str(exc).split()) or type(exc).__name__
            log.exception("first start %s: %s failed", self.size, current)
            with self._lock:
                self._error = f"{current} failed: {message}"
                self._now = "stopped"
            self._set(current, "failed", message)
        finally:
            with contextlib.suppress(Exception):
                self._refresh_generation()

    def _learned(self, root: Path) -> None:
        from workbench.workflow.pipeline import (
            build_learned,
            learned_status,
            read_manifest,
            start_learned_background,
        )

        name = "learned models"
        status = learned_status(root)
        if status == "none":
            self._set(name, "skipped", "no checkpoints installed")
            return
        if status == "done":
            self._set(name, "done", "cached")
            return
        if status == "failed":
            notes = (read_manifest(root) or {}).get("notes", [])
            raise RuntimeError(notes[-1] if notes else "the learned models' run failed")
        if self.mode == "off":
            self._set(name, "skipped", "left out (WORKBENCH_DASHBOARD_LEARNED=off)")
            return
        shown = (read_manifest(root) or {}).get("fields_pending", [])
        # with the shipped scores the models are on the page already; what runs is their maps' forecast
        self._set(name, "running", f"{', '.join(shown)} scored (shipped scores); forecasting their maps"
                  if shown else _DOING[name])
        if self.mode == "wait":
            build_learned(self.size, self.cache_dir)
        else:
            if status == "pending":
                start_learned_background(self.size, self.cache_dir)
            log_path = root / "learned.log"
            seen = ""
            while (status := learned_status(root)) in ("pending", "running"):
                self._refresh_generation()  # the learned models are published before their ensemble
                line = _last_line(log_path)
                if line and line != seen:
                    seen = line
                    with self._lock:
                        self._now = f"{name}: {line.split(' ', 2)[-1][:200]}"
                time.sleep(POLL_SECONDS)
                if status == "pending" and learned_status(root) == "pending":
                    # the background process ended without writing its result (killed): say so
                    time.sleep(POLL_SECONDS)
                    if learned_status(root) == "pending":
                        raise RuntimeError(f"the background process stopped; see {log_path.name}")
            if status == "failed":
                notes = (read_manifest(root) or {}).get("notes", [])
                raise RuntimeError(notes[-1] if notes else "the learned models' run failed")
        self._refresh_generation()
        models = (read_manifest(root) or {}).get("learned_models", [])
        self._set(name, "done", ", ".join(models))
        with self._lock:
            self._now = "done"


#: What each step does, as the page says it while the step runs.
_DOING = {
    "sample": "generating the embedded sample atmosphere (analysis, NWP forecast, storm reports)",
    "events": "building extreme-event masks from storm reports and thresholds",
    "baselines": "forecasting and scoring persistence, climatology and NWP",
    "learned models": "forecasting the learned models in a background process",
}

_JOBS: dict[tuple, FirstStart] = {}
_JOBS_LOCK = threading.Lock()


def _key(size: str, cache_dir, learned: str | None) -> tuple[tuple, Path]:
    from workbench._io import cache_root

    root = Path(cache_dir) if cache_dir is not None else cache_root()
    mode = learned or os.environ.get("WORKBENCH_DASHBOARD_LEARNED", "")
    return (size, str(root), mode, os.environ.get("WORKBENCH_CHECKPOINTS", "")), root


def existing_job(
    size: str, cache_dir: str | os.PathLike | None = None, learned: str | None = None
) -> FirstStart | None:
    """The first-start job of this process for ``size`` (see :func:`first_start`), without starting one."""
    key, _ = _key(size, cache_dir, learned)
    with _JOBS_LOCK:
        return _JOBS.get(key)


def first_start(
    size: str, cache_dir: str | os.PathLike | None = None, learned: str | None = None
) -> FirstStart:
    """The (started) first-start job of this process for ``size``, the cache directory and the mode.

    A job that has ended is replaced by a new one when its results are gone (a cleared cache); a failed
    job is kept, so that its error stays on the page instead of the same failure starting again.
    """
    key, root = _key(size, cache_dir, learned)
    with _JOBS_LOCK:
        job = _JOBS.get(key)
        if job is not None and job.done:
            snap = job.snapshot()
            if snap.error is None and not _has_manifest(root, size):
                job = None
        if job is None:
            job = _JOBS[key] = FirstStart(size, cache_dir, learned)
        return job.start()


def _has_manifest(root: Path, size: str) -> bool:
    """Whether any results directory of ``size`` under the cache root has its manifest (a cheap look)."""
    return any((root / "dashboard").glob(f"{size}-v*/manifest.json"))
