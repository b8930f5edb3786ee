"""The dashboard's data: truth, masks, forecasts and scores of the embedded sample, built once and cached.

On first use for a sample size, :func:`sample_results` runs the workbench's own pipeline

1. the sample (``workbench.sample.ensure_sample``) - analysis, NWP forecast and storm reports;
2. extreme-event masks and the event table (``workbench.events.build_masks``) from the storm reports
   and the default threshold rules, over the verification period;
3. forecasts from the same initial times by persistence, climatology, the sample NWP and every learned
   model whose checkpoint is installed (``workbench.models.load`` + ``workbench.inference.run_forecast``
   on the CPU unless a GPU is present), plus the default ensemble of one learned model (its deep
   ensemble x perturbations at the analysis error, plus its calibrated model error) for the spread maps. Persistence, NWP and the learned
   models all start from the sample's one analysis (:mod:`workbench.workflow.start`), never from the
   verifying truth;
4. scores of all of them (``workbench.scoring.decompose``), with an hour-of-day climatology of the
   period before the first initial time for the ACC;

The learned models whose scores ship with the package for these very checkpoints, sample and code
(:mod:`workbench.workflow.shipped`) are scored from them in step 4 at once, so the first dashboard shows
them; their forecasts (for the maps) are made as before and replace those scores when done.

Each product is written under ``<cache>/dashboard/<size>-v<version>-<checkpoints digest>/``. Later starts
only open those files (lazily). The directory name changes when checkpoints are added or retrained, so
the dashboard never shows scores of weights it no longer has.

To keep the first start short, the dashboard verifies the **last** ``DASHBOARD_INITS`` NWP initial times
whose 48-h forecasts still verify inside the sample (the ``default`` sample is the test period: the
learned models trained on the independent ``train`` period) at the lead times in :data:`DASHBOARD_LEADS`, rather than every initial time
and hourly lead of the sample's NWP.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from workbench._io import atomic_dir, atomic_write, cache_root, write_text
from workbench.errors import CheckpointError, DataError, WorkbenchError
from workbench.workflow.build import build_results, score_forecasts
from workbench.workflow.results import Results

log = logging.getLogger(__name__)

#: Bump when the products or their layout change, so old caches are not read.
PIPELINE_VERSION = 3

#: Lead times (hours) scored and mapped, where the NWP forecast has them.
DASHBOARD_LEADS = (0, 1, 3, 6, 12, 18, 24, 36, 48)

#: Number of initial times verified (the last ones whose longest lead still verifies). The learned
#: models' forecasts cost about a minute of CPU per initial time on the default grid, which bounds this.
DASHBOARD_INITS = {"tiny": 4, "default": 4, "full": 2}

#: Initial times (the last ones) of the spread maps' ensemble.
ENSEMBLE_INITS = 2

#: How the learned models are run: see :func:`sample_results`.
LEARNED_MODES = ("background", "wait", "off")

#: Baselines every dashboard shows.
BASELINES = ("persistence", "climatology", "nwp")

#: Ensemble of the first learned model for the spread maps: its deep ensemble (the shipped members,
#: trained independently) times centred initial-condition perturbations at the analysis error, with the
#: model's calibrated stochastic model error where it has one
#: (:func:`workbench.workflow.start.default_ensemble`).
ENSEMBLE_NOISE_MEMBERS = 3

#: Days of analysis before the first initial time that the climatology is fitted on; loaded in memory,
#: which keeps the fit to a second (the whole default sample would be ~0.7 GB).
CLIMATOLOGY_DAYS = 10

MANIFEST = "manifest.json"


def _cache_root() -> Path:
    return cache_root()


def learned_models() -> list[str]:
    """Registered models that are not baselines (their weights may or may not be installed)."""
    from workbench.models import list_models

    return [m for m in list_models() if m not in BASELINES]


def checkpoint_dir() -> Path:
    """Where the model registry looks for shipped weights (``$WORKBENCH_CHECKPOINTS`` or the package's)."""
    # The same rule as workbench.models.registry.CHECKPOINT_DIR, without importing torch with it: the
    # dashboard's server only opens cached results and should start quickly.
    env = os.environ.get("WORKBENCH_CHECKPOINTS", "").strip()
    return Path(env) if env else Path(__file__).resolve().parent.parent / "checkpoints"


def checkpoint_digest() -> str:
    """A digest of the installed weights files (paths, sizes, modification times), the deep-ensemble
    members under ``members/`` and the ensemble calibration included: the cached ensemble depends on them."""
    h = hashlib.sha256()
    directory = checkpoint_dir()
    if directory.is_dir():
        for p in sorted(directory.rglob("*")):
            if p.suffix in (".safetensors", ".json", ".onnx") and p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(directory).as_posix()}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:10]


def missing_checkpoints(names: list[str]) -> dict[str, str]:
    """Why each of ``names`` has no weights (models with weights are left out)."""
    from workbench.models import find_checkpoints

    missing = {}
    for name in names:
        try:
            find_checkpoints(name)
        except CheckpointError as exc:
            missing[name] = str(exc)
    return missing


def results_dir(size: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the dashboard's products for ``size`` live."""
    from workbench.sample import VERSION

    root = Path(cache_dir) if cache_dir is not None else _cache_root()
    return root / "dashboard" / f"{size}-v{VERSION}.{PIPELINE_VERSION}-{checkpoint_digest()}"


def choose_times(truth: xr.Dataset, nwp: xr.Dataset, size: str) -> tuple[np.ndarray, np.ndarray]:
    """The initial times and lead times the dashboard verifies (see the module docstring)."""
    nwp_leads = set((nwp["lead_time"].values.astype("timedelta64[h]").astype(int)).tolist())
    leads = np.array([h for h in DASHBOARD_LEADS if h in nwp_leads], dtype=int)
    if not len(leads):
        raise DataError(f"The sample NWP has none of the dashboard's lead times {DASHBOARD_LEADS}.")
    last_valid = truth["time"].values.max()
    inits = nwp["init_time"].values
    ok = inits + np.timedelta64(int(leads.max()), "h") <= last_valid
    inits = inits[ok]
    if not len(inits):
        raise DataError("No NWP initial time has its longest lead inside the sample period.")
    n = DASHBOARD_INITS.get(size, 8)
    return inits[-n:], leads


def _atomic_dir(target: Path, write) -> None:
    with atomic_dir(target) as tmp:
        write(tmp)


def _write_zarr(ds: xr.Dataset, target: Path) -> None:
    def write(tmp: Path) -> None:
        ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)

    _atomic_dir(target, write)


def training_period(truth: xr.Dataset, first_init) -> tuple[xr.Dataset, str | None]:
    """The analysis before ``first_init`` (its last :data:`CLIMATOLOGY_DAYS`), loaded, for the climatology.

    The climatology baseline and the ACC's climatology are fitted on it. A sample too short to have a day
    before its first initial time (``tiny``) uses all its times, and the returned note says so: that
    climatology has seen the verification period.
    """
    past = truth.sel(time=truth["time"] < first_init)
    if past.sizes["time"] >= 24:
        return past.isel(time=slice(-CLIMATOLOGY_DAYS * 24, None)).load(), None
    return truth.load(), (
        "climatology: fitted on the whole sample, verification period included (the sample has less than "
        "a day before its first initial time)."
    )


def _run_learned(name, ctx: dict, inits, store: Path, ensemble: bool = False):
    """A learned model's forecast from the analysis (every model starts from it), or its default
    ensemble (deep-ensemble members x perturbations at the analysis error, plus its calibrated model
    error where it has one)."""
    from workbench.inference import ZarrSink
    from workbench.models import load
    from workbench.workflow.start import default_ensemble, run_from_analysis

    model, members = load(name), None
    if ensemble:
        model, members = default_ensemble(name, ctx["analysis"], noise_members=ENSEMBLE_NOISE_MEMBERS)
    return run_from_analysis(
        model,
        ctx["analysis"],
        ctx["nwp"],
        inits,
        ctx["leads"].astype("timedelta64[h]"),
        members=members,
        device="auto",
        dtype="fp32",
        sink=ZarrSink(store),
        progress=False,
    )


def learned_mode(mode: str | None = None) -> str:
    """How the learned models' forecasts are made: ``background`` (default), ``wait`` or ``off``.

    ``$WORKBENCH_DASHBOARD_LEARNED`` sets it; see :func:`sample_results`.
    """
    mode = (mode or os.environ.get("WORKBENCH_DASHBOARD_LEARNED", "") or "background").strip().lower()
    if mode not in LEARNED_MODES:
        raise DataError(f"WORKBENCH_DASHBOARD_LEARNED must be one of {LEARNED_MODES}, not {mode!r}.")
    return mode


def read_manifest(root: Path) -> dict | None:
    """The manifest of a results directory, None before the first stage has finished."""
    path = root / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def _write_manifest(root: Path, manifest: dict) -> None:
    write_text(root / MANIFEST, json.dumps(manifest, indent=1))


def _context(size: str, cache_dir) -> dict:
    from workbench.sample import ensure_sample, open_sample

    root = results_dir(size, cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    ensure_sample(size, progress=False)
    truth = open_sample("hrrr", size)
    nwp = open_sample("nwp", size)
    inits, leads = choose_times(truth, nwp, size)
    from workbench.workflow.start import initial_state

    # the one analysis every forecast starts from (the NWP's lead 0 is exactly it)
    analysis = initial_state(size, inits)
    lead_td = leads.astype("timedelta64[h]").astype("timedelta64[ns]")
    verif = truth.sel(time=slice(inits[0], inits[-1] + lead_td.max()))
    return {
        "root": root,
        "size": size,
        "truth": truth,
        "nwp": nwp,
        "analysis": analysis,
        "inits": inits,
        "leads": leads,
        "lead_td": lead_td,
        "verif": verif,
    }


def _climatology(ctx: dict):
    from workbench.models import load

    past, note = training_period(ctx["truth"], ctx["inits"][0])
    return load("climatology", data=past), note


def _score_all(
    ctx: dict, climatology, models: list[str], ensemble_model: str | None = None, extra: xr.Dataset | None = None
) -> None:
    """Score the finished forecasts (and ensemble) into ``scores.zarr``, replaced atomically.

    ``extra``: scores of more models (the shipped ones, :mod:`workbench.workflow.shipped`) to put after
    them, on the variables and regions both have.
    """
    root = ctx["root"]
    forecasts = {m: xr.open_zarr(root / "forecasts" / f"{m}.zarr") for m in models}
    if ensemble_model is not None:
        forecasts[f"{ensemble_model}-ensemble"] = xr.open_zarr(root / "ensembles" / f"{ensemble_model}.zarr")
    scores = _score(ctx, climatology, forecasts).load()
    if extra is not None:
        # inner join: scoring every model in one call keeps the variables all forecasts have, as here
        scores = xr.concat([scores, extra], dim="model", join="inner", combine_attrs="override")
    _write_zarr(scores, root / "scores.zarr")


def score_learned(ctx: dict, climatology, models: list[str]) -> xr.Dataset:
    """Scores of the finished forecasts of ``models`` alone (what :mod:`workbench.workflow.shipped` ships)."""
    root = ctx["root"]
    return _score(ctx, climatology, {m: xr.open_zarr(root / "forecasts" / f"{m}.zarr") for m in models})


def _score(ctx: dict, climatology, forecasts: dict[str, xr.Dataset]) -> xr.Dataset:
    from workbench.events.sample import climatology_for_sample

    masks = xr.open_zarr(ctx["root"] / "masks.zarr")["mask"].load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        event_clim = climatology_for_sample(
            ctx["size"], (ctx["verif"].time.values[0], ctx["verif"].time.values[-1])
        )
    scores = score_forecasts(
        forecasts,
        ctx["verif"],
        masks,
        climatology=climatology.climatology,
        climatology_name=f"hour-of-day mean of the {CLIMATOLOGY_DAYS} days of analysis before the first init",
        forecast_regions=True,
        event_climatology=event_clim,
    )
    return scores


def build_baselines(
    size: str = "default",
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
    use_shipped: bool = True,
) -> Path:
    """First stage: events and masks, the baselines' forecasts and their scores (a usable dashboard).

    Products already written by an interrupted run are reused. Returns the results directory.
    ``progress(step)`` is called as each step starts (``sample``, ``events``, ``baselines``), for a
    progress view (:mod:`workbench.workflow.firststart`). With ``use_shipped``, the learned models whose
    pre-computed scores ship with the package for these very checkpoints, sample and code
    (:mod:`workbench.workflow.shipped`) are scored from them at once; their maps come with their
    forecasts, which :func:`build_learned` still makes.
    """
    from workbench.events import build_masks
    from workbench.events.sample import climatology_for_sample
    from workbench.models import load

    report = progress or (lambda step: None)
    t0 = time.perf_counter()
    report("sample")
    ctx = _context(size, cache_dir)
    root, truth, inits, lead_td = ctx["root"], ctx["truth"], ctx["inits"], ctx["lead_td"]
    report("events")
    log.info("dashboard %s: %d initial times, leads %s h", size, len(inits), ctx["leads"].tolist())

    # zarr rather than netCDF: one storage library in the server process (netCDF4's HDF5 beside another
    # package's HDF5 has crashed the process)
    masks_path, events_path = root / "masks.zarr", root / "events.csv"
    if not (masks_path.exists() and events_path.exists()):
        from workbench.catalog import open_catalog

        cat = open_catalog()
        reports = cat.sample_reports(size=size, table="storm_events").read()
        spc = cat.sample_reports(size=size, table="spc").read()
        with warnings.catch_warnings():
            # the sample's zone-based reports have no coordinates; its climatology bins are small
            warnings.simplefilter("ignore", UserWarning)
            verif = ctx["verif"].load()
            # percentiles from the sample's longer run outside the verified days (never in sample)
            clim = climatology_for_sample(size, (verif.time.values[0], verif.time.values[-1]), cache_dir)
            events = build_masks(verif, reports=reports, spc=spc, clim=clim, allow_empty=True)
        _write_zarr(events.masks.rename("mask").astype(bool).to_dataset().load(), masks_path)
        atomic_write(events_path, lambda tmp: events.table.to_csv(tmp, index=False))
        log.info("dashboard %s: %d events (%.1f s)", size, len(events.table), time.perf_counter() - t0)

    report("baselines")
    forecasts_dir = root / "forecasts"
    forecasts_dir.mkdir(exist_ok=True)
    climatology, note = _climatology(ctx)
    for name, model in (("persistence", load("persistence")), ("climatology", climatology)):
        target = forecasts_dir / f"{name}.zarr"
        if not target.exists():
            # persistence repeats the analysis, like every other forecast's start (not the truth)
            start = ctx["analysis"] if name == "persistence" else truth
            fc = model.forecast(start, inits, lead_td)
            _write_zarr(fc.drop_encoding() if hasattr(fc, "drop_encoding") else fc, target)
    target = forecasts_dir / "nwp.zarr"
    if not target.exists():
        sub = ctx["nwp"].sel(init_time=inits, lead_time=lead_td).load()
        _write_zarr(sub.drop_encoding() if hasattr(sub, "drop_encoding") else sub, target)
    names = learned_models()
    missing = missing_checkpoints(names)
    notes = [note] if note else []
    notes += [
        f"{n}: not shown, no checkpoint installed (train it with `workbench train {n}`)." for n in missing
    ]
    learned = [n for n in names if n not in missing]
    shipped, shipped_models = None, []
    if use_shipped and learned:
        from workbench.workflow.shipped import shipped_scores

        shipped, why = shipped_scores(size, learned, inits, ctx["leads"], PIPELINE_VERSION)
        if why:
            log.info("dashboard %s: %s; computing them instead", size, why)
        if shipped is not None:
            shipped_models = shipped["model"].values.tolist()
            log.info("dashboard %s: %s scored from the shipped scores", size, ", ".join(shipped_models))
    _score_all(ctx, climatology, list(BASELINES), extra=shipped)
    log.info("dashboard %s: baselines scored (%.1f s)", size, time.perf_counter() - t0)
    _write_manifest(
        root,
        {
            "size": size,
            "pipeline_version": PIPELINE_VERSION,
            "init_times": [str(t) for t in inits],
            "lead_hours": ctx["leads"].tolist(),
            "models": list(BASELINES) + shipped_models,
            # scored from the shipped file, their forecasts (for the maps) not made yet
            "fields_pending": shipped_models,
            "learned_models": learned,
            "learned": "pending" if learned else "none",
            "ensemble_model": None,
            "ensemble_init_times": [],
            "notes": notes,
            "baselines_seconds": round(time.perf_counter() - t0, 1),
        },
    )
    return root


def build_learned(size: str = "default", cache_dir: str | os.PathLike | None = None) -> Path:
    """Second stage: the learned models' forecasts, one model's ensemble, and all scores again.

    Runs :func:`build_baselines` first if needed. A model whose forecast fails is left out with a note.
    Forecast stores resume where an interrupted run stopped (``workbench.inference.run_forecast``).
    """
    t0 = time.perf_counter()
    ctx = _context(size, cache_dir)
    root = ctx["root"]
    manifest = read_manifest(root) or read_manifest(build_baselines(size, cache_dir))
    if manifest["learned"] in ("done", "none"):
        return root
    inits = ctx["inits"]
    notes = list(manifest["notes"])
    # (a resumed run may find the learned models already listed by its first publication below)
    models = [m for m in manifest["models"] if m not in manifest["learned_models"]]
    ensemble_model, ensemble_inits = None, inits[-ENSEMBLE_INITS:]
    learned = []
    for name in manifest["learned_models"]:
        store = root / "forecasts" / f"{name}.zarr"
        try:
            _run_learned(name, ctx, inits, store)
        except WorkbenchError as exc:
            # A model that cannot run is left out (and said so), not allowed to stop the dashboard.
            shutil.rmtree(store, ignore_errors=True)
            notes.append(f"{name}: not shown, its forecast failed: {exc}")
            continue
        learned.append(name)
        log.info("dashboard %s: %s forecast done (%.1f s)", size, name, time.perf_counter() - t0)
    models += learned
    climatology, _ = _climatology(ctx)
    if learned:
        # Publish the deterministic forecasts first: the ensemble costs several times more, and an open
        # page shows the learned models as soon as the manifest changes.
        _score_all(ctx, climatology, models)
        manifest.update(models=models, notes=notes, fields_pending=[])
        _write_manifest(root, manifest)
        log.info("dashboard %s: learned models scored (%.1f s)", size, time.perf_counter() - t0)
        name = learned[0]
        store = root / "ensembles" / f"{name}.zarr"
        try:
            _run_learned(name, ctx, ensemble_inits, store, ensemble=True)
            ensemble_model = name
        except WorkbenchError as exc:
            shutil.rmtree(store, ignore_errors=True)
            notes.append(f"{name}: no ensemble, it failed: {exc}")
        log.info("dashboard %s: %s ensemble done (%.1f s)", size, name, time.perf_counter() - t0)
        _score_all(ctx, climatology, models, ensemble_model)
    manifest.update(
        learned="done",
        models=models,
        fields_pending=[],
        ensemble_model=ensemble_model,
        ensemble_init_times=[str(t) for t in ensemble_inits] if ensemble_model else [],
        notes=notes,
        learned_seconds=round(time.perf_counter() - t0, 1),
    )
    _write_manifest(root, manifest)
    log.info("dashboard %s: learned models and ensemble scored (%.1f s)", size, time.perf_counter() - t0)
    return root


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_learned_background(size: str, cache_dir: str | os.PathLike | None = None) -> int | None:
    """Start :func:`build_learned` in a separate, low-priority process unless one is already running.

    Returns the process id, or None when one was already running. Its log is ``learned.log`` in the
    results directory.
    """
    root = results_dir(size, cache_dir)
    pid_file = root / "learned.pid"
    if pid_file.exists():
        try:
            if _pid_alive(int(pid_file.read_text().strip())):
                return None
        except ValueError:
            pass
    env = dict(os.environ)
    if cache_dir is not None:
        env["WORKBENCH_CACHE"] = str(cache_dir)
    with open(root / "learned.log", "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.workflow.pipeline", "--size", size, "--stage", "learned"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives a restarted server, and a Ctrl-C in its terminal
            preexec_fn=lambda: os.nice(10),  # the server's sessions come first
        )
    write_text(pid_file, str(proc.pid))
    log.info("dashboard %s: learned models forecast in the background (pid %d)", size, proc.pid)
    return proc.pid


def learned_status(root: Path) -> str:
    """``pending``, ``running``, ``done``, ``none`` (no checkpoints) or ``failed``."""
    manifest = read_manifest(root) or {}
    status = manifest.get("learned", "pending")
    if status == "pending":
        pid_file = root / "learned.pid"
        with contextlib.suppress(OSError, ValueError):
            if pid_file.exists() and _pid_alive(int(pid_file.read_text().strip())):
                return "running"
    return status


def open_sample_results(root: Path, size: str, mode: str = "background") -> Results:
    """Open the finished products of a results directory (forecasts lazily; masks and scores in memory)."""
    from workbench.sample import open_sample

    manifest = read_manifest(root)
    truth = open_sample("hrrr", size)
    pending = manifest.get("fields_pending", [])
    # a model scored from the shipped file has scores, and its maps once its forecast is made
    forecasts = {m: xr.open_zarr(root / "forecasts" / f"{m}.zarr") for m in manifest["models"] if m not in pending}
    ensemble = manifest.get("ensemble_model")
    ensembles = {ensemble: xr.open_zarr(root / "ensembles" / f"{ensemble}.zarr")} if ensemble else {}
    masks = xr.open_zarr(root / "masks.zarr")["mask"].load()
    events = pd.read_csv(root / "events.csv", parse_dates=["start", "end"])
    scores = xr.open_zarr(root / "scores.zarr").load()
    scores["lead_time"] = scores["lead_time"].astype("timedelta64[ns]")
    notes = list(manifest.get("notes", []))
    status = learned_status(root)
    waiting = ", ".join(manifest.get("learned_models", []))
    shown_learned = [m for m in manifest.get("learned_models", []) if m in manifest["models"]]
    if pending:
        notes.insert(
            0,
            f"Scores of {', '.join(pending)}: pre-computed for these checkpoints and shipped with the workbench "
            + (
                "; their maps are being forecast in the background and join the open page when done."
                if status in ("pending", "running") and mode != "off"
                else "; no maps (their forecasts are not made: WORKBENCH_DASHBOARD_LEARNED=off)."
            ),
        )
    elif status in ("pending", "running") and mode != "off" and shown_learned:
        notes.insert(0, f"The spread maps' ensemble of {shown_learned[0]} is being made in the background.")
    elif status in ("pending", "running") and mode != "off":
        notes.insert(
            0,
            f"The learned models ({waiting}) are being forecast in the background on this machine "
            f"(log: {root / 'learned.log'}); they join the open page when done.",
        )
    elif status == "pending":
        notes.insert(0, f"Learned models ({waiting}) left out: WORKBENCH_DASHBOARD_LEARNED=off.")
    if ensemble:
        notes.append(
            f"Spread maps: {ensemble} ensemble (deep-ensemble members x {ENSEMBLE_NOISE_MEMBERS} "
            "initial-condition perturbations at the analysis error, plus its calibrated model error where it "
            "has one) from "
            f"{', '.join(t[:16] for t in manifest['ensemble_init_times'])}."
        )
    return build_results(
        truth,
        forecasts,
        scores=scores,
        masks=masks,
        events=events,
        ensembles=ensembles,
        label=f"embedded sample ({size}): {len(manifest['init_times'])} initial times, "
        f"leads {', '.join(str(h) for h in manifest['lead_hours'])} h",
        notes=notes,
    )


def sample_results(
    size: str = "default", cache_dir: str | os.PathLike | None = None, learned: str | None = None
) -> Results:
    """The dashboard's results for the sample of ``size``: built on first use, then read from the cache.

    Parameters
    ----------
    size : str
        ``tiny``, ``default`` or ``full``.
    cache_dir : path, optional
        Cache root (default ``$WORKBENCH_CACHE``).
    learned : {"background", "wait", "off"}, optional
        The learned models take minutes on a CPU: ``background`` (default) starts their forecasts in a
        separate low-priority process and returns the baselines now (a later page load shows the learned
        models too); ``wait`` runs them before returning; ``off`` leaves them out. Default
        ``$WORKBENCH_DASHBOARD_LEARNED``.
    """
    mode = learned_mode(learned)
    root = results_dir(size, cache_dir)
    if read_manifest(root) is None:
        build_baselines(size, cache_dir)
    status = learned_status(root)
    if status == "pending" and mode == "wait":
        build_learned(size, cache_dir)
    elif status == "pending" and mode == "background":
        start_learned_background(size, cache_dir)
    return open_sample_results(root, size, mode)


def results_generation(size: str, cache_dir: str | os.PathLike | None = None) -> int:
    """Changes whenever the cached results for ``size`` change (the manifest's modification time)."""
    path = results_dir(size, cache_dir) / MANIFEST
    return path.stat().st_mtime_ns if path.exists() else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench.workflow.pipeline --size SIZE --stage baselines|learned|all``."""
    import argparse

    parser = argparse.ArgumentParser(description="Build the dashboard's cached results for a sample size.")
    parser.add_argument("--size", default="default", choices=("tiny", "default", "full"))
    parser.add_argument("--stage", default="all", choices=("baselines", "learned", "all"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    root = results_dir(args.size)
    try:
        if args.stage in ("baselines", "all"):
            build_baselines(args.size)
        if args.stage in ("learned", "all"):
            build_learned(args.size)
    except Exception as exc:
        # Recorded so that the server does not start the same failing run again and again.
        manifest = read_manifest(root)
        if manifest is not None and args.stage != "baselines":
            manifest.update(learned="failed", notes=[*manifest["notes"], f"learned models failed: {exc}"])
            _write_manifest(root, manifest)
        raise
    finally:
        with contextlib.suppress(OSError):
            if args.stage != "baselines" and (root / "learned.pid").read_text().strip() == str(os.getpid()):
                (root / "learned.pid").unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
