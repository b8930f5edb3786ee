"""The dashboard's data: truth, masks, forecasts and scores of the embedded sample, built once and cached.

On first use for a sample size, :func:`sample_results` runs the workbench's own pipeline

1. the sample (``workbench.sample.ensure_sample``) - analysis, NWP forecast and storm reports;
2. extreme-event masks and the event table (``workbench.events.build_masks``) from the storm reports
   and the default threshold rules, over the verification period;
3. forecasts from the same initial times by persistence, climatology, the sample NWP and every learned
   model whose checkpoint is installed (``workbench.models.load`` + ``workbench.inference.run_forecast``
   on the CPU unless a GPU is present), plus a weight x noise ensemble of one learned model for the
   spread maps;
4. scores of all of them (``workbench.scoring.decompose``), with an hour-of-day climatology of the
   period before the first initial time for the ACC;

and writes each product under ``<cache>/dashboard/<size>-v<version>-<checkpoints digest>/``. Later starts
only open those files (lazily). The directory name changes when checkpoints are added or retrained, so
the dashboard never shows scores of weights it no longer has.

To keep the first start short, the dashboard verifies the **last** ``DASHBOARD_INITS`` NWP initial times
whose 48-h forecasts still verify inside the sample (the end of the sample period, after the part the
learned models trained on) at the lead times in :data:`DASHBOARD_LEADS`, rather than every initial time
and hourly lead of the sample's NWP.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import CheckpointError, DataError
from workbench.viz.results import Results

log = logging.getLogger(__name__)

#: Bump when the products or their layout change, so old caches are not read.
PIPELINE_VERSION = 1

#: Lead times (hours) scored and mapped, where the NWP forecast has them.
DASHBOARD_LEADS = (0, 1, 3, 6, 12, 18, 24, 36, 48)

#: Number of initial times verified (the last ones whose longest lead still verifies).
DASHBOARD_INITS = {"tiny": 4, "default": 8, "full": 2}

#: Baselines every dashboard shows.
BASELINES = ("persistence", "climatology", "nwp")

#: Ensemble of the first learned model: (weight members, noise members).
ENSEMBLE_MEMBERS = (3, 3)

MANIFEST = "manifest.json"


def _cache_root() -> Path:
    env = os.environ.get("WORKBENCH_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "workbench"


def learned_models() -> list[str]:
    """Registered models that are not baselines (their weights may or may not be installed)."""
    from workbench.models import list_models

    return [m for m in list_models() if m not in BASELINES]


def _checkpoint_digest(names: list[str]) -> tuple[str, dict[str, str]]:
    """A digest of the installed checkpoints (names, sizes, modification times) and why others are missing."""
    from workbench.models import find_checkpoints

    h = hashlib.sha256()
    missing = {}
    for name in names:
        try:
            stems = find_checkpoints(name)
        except CheckpointError as exc:
            missing[name] = str(exc)
            continue
        for stem in stems:
            for suffix in (".safetensors", ".json", ".onnx"):
                p = stem.with_suffix(suffix)
                if p.exists():
                    st = p.stat()
                    h.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:10], missing


def results_dir(size: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the dashboard's products for ``size`` live."""
    from workbench.sample import VERSION

    digest, _ = _checkpoint_digest(learned_models())
    root = Path(cache_dir) if cache_dir is not None else _cache_root()
    return root / "dashboard" / f"{size}-v{VERSION}.{PIPELINE_VERSION}-{digest}"


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
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _write_zarr(ds: xr.Dataset, target: Path) -> None:
    def write(tmp: Path) -> None:
        ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)

    _atomic_dir(target, write)


def _write_nc(ds: xr.Dataset | xr.DataArray, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        ds.to_netcdf(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def training_period(truth: xr.Dataset, first_init) -> tuple[xr.Dataset, str | None]:
    """The analysis before ``first_init``, for the climatology baseline and the ACC's climatology.

    A sample too short to have a day before its first initial time (``tiny``) uses all its times, and
    the returned note says so: that climatology has seen the verification period.
    """
    past = truth.sel(time=truth["time"] < first_init)
    if past.sizes["time"] >= 24:
        return past, None
    return truth, (
        "climatology: fitted on the whole sample, verification period included (the sample has less than "
        "a day before its first initial time)."
    )


def _run_learned(name, truth, inits, leads, store: Path, members=None):
    from workbench.inference import run_forecast
    from workbench.models import load

    model = load(name)
    return run_forecast(
        model,
        truth,
        inits,
        leads.astype("timedelta64[h]"),
        members=members,
        device="auto",
        dtype="fp32",
        store=store,
        progress=False,
    )


def build_sample_results(size: str = "default", cache_dir: str | os.PathLike | None = None) -> Path:
    """Run the pipeline for the sample of ``size`` and write its products; returns their directory.

    Products already written (by an earlier, interrupted run) are reused.
    """
    from workbench.events import build_masks
    from workbench.models import load
    from workbench.sample import ensure_sample, open_sample
    from workbench.scoring import decompose

    root = results_dir(size, cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ensure_sample(size, progress=False)
    truth = open_sample("hrrr", size)
    nwp = open_sample("nwp", size)
    inits, leads = choose_times(truth, nwp, size)
    lead_td = leads.astype("timedelta64[h]").astype("timedelta64[ns]")
    period = slice(inits[0], inits[-1] + lead_td.max())
    verif = truth.sel(time=period)
    log.info("dashboard %s: %d initial times, leads %s h", size, len(inits), leads.tolist())

    # Events over the verification period; thresholds against the climatology of the whole sample.
    masks_path, events_path = root / "masks.nc", root / "events.csv"
    if not (masks_path.exists() and events_path.exists()):
        from workbench.catalog import open_catalog

        cat = open_catalog()
        reports = cat.sample_reports(size=size, table="storm_events").read()
        spc = cat.sample_reports(size=size, table="spc").read()
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", UserWarning
            )  # sample reports without coordinates, small climatologies
            events = build_masks(verif.load(), reports=reports, spc=spc, allow_empty=True)
        _write_nc(events.masks.rename("mask").astype(bool).to_dataset(), masks_path)
        events.table.to_csv(events_path, index=False)
        log.info("dashboard %s: %d events (%.1f s)", size, len(events.table), time.perf_counter() - t0)

    forecasts_dir = root / "forecasts"
    forecasts_dir.mkdir(exist_ok=True)
    notes = []
    past, note = training_period(truth, inits[0])
    if note:
        notes.append(note)
    climatology = load("climatology", data=past)
    for name, model in (("persistence", load("persistence")), ("climatology", climatology)):
        target = forecasts_dir / f"{name}.zarr"
        if not target.exists():
            fc = model.forecast(truth, inits, lead_td)
            _write_zarr(fc.drop_encoding() if hasattr(fc, "drop_encoding") else fc, target)
    target = forecasts_dir / "nwp.zarr"
    if not target.exists():
        sub = nwp.sel(init_time=inits, lead_time=lead_td).load()
        _write_zarr(sub.drop_encoding() if hasattr(sub, "drop_encoding") else sub, target)

    _, missing = _checkpoint_digest(learned_models())
    ensemble_model = None
    for name in learned_models():
        if name in missing:
            notes.append(
                f"{name}: not shown, no checkpoint installed (train it with `workbench train {name}`)."
            )
            continue
        try:
            _run_learned(name, truth, inits, leads, forecasts_dir / f"{name}.zarr")
        except (CheckpointError, DataError) as exc:
            notes.append(f"{name}: not shown, its forecast failed: {exc}")
            continue
        if ensemble_model is None:
            ensemble_model = name
            try:
                _run_learned(
                    name, truth, inits, leads, root / "ensembles" / f"{name}.zarr", members=ENSEMBLE_MEMBERS
                )
            except (CheckpointError, DataError) as exc:
                notes.append(f"{name}: no ensemble, it failed: {exc}")
                ensemble_model = None
        log.info("dashboard %s: %s forecast done (%.1f s)", size, name, time.perf_counter() - t0)

    scores_path = root / "scores.nc"
    if not scores_path.exists():
        masks = xr.open_dataset(masks_path)["mask"].load()
        forecasts = {p.stem: xr.open_zarr(p) for p in sorted(forecasts_dir.glob("*.zarr"))}
        ens_dir = root / "ensembles"
        for p in sorted(ens_dir.glob("*.zarr")) if ens_dir.exists() else []:
            forecasts[f"{p.stem}-ensemble"] = xr.open_zarr(p)
        clim = climatology.climatology
        order = [m for m in (*BASELINES, *learned_models()) if m in forecasts]
        order += [m for m in forecasts if m not in order]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            scores = decompose(
                {m: forecasts[m] for m in order},
                verif,
                masks,
                climatology=clim,
                variables=[v for v in truth.data_vars if all(v in f for f in forecasts.values())],
            )
        _write_nc(scores, scores_path)
        log.info("dashboard %s: scored (%.1f s)", size, time.perf_counter() - t0)

    manifest = {
        "size": size,
        "pipeline_version": PIPELINE_VERSION,
        "init_times": [str(t) for t in inits],
        "lead_hours": leads.tolist(),
        "ensemble_model": ensemble_model,
        "notes": notes,
        "built_seconds": round(time.perf_counter() - t0, 1),
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return root


def open_sample_results(root: Path, size: str) -> Results:
    """Open the products written by :func:`build_sample_results` (lazily, except masks and scores)."""
    from workbench.sample import open_sample

    manifest = json.loads((root / MANIFEST).read_text())
    truth = open_sample("hrrr", size)
    forecasts = {p.stem: xr.open_zarr(p) for p in sorted((root / "forecasts").glob("*.zarr"))}
    ens_dir = root / "ensembles"
    ensembles = {p.stem: xr.open_zarr(p) for p in sorted(ens_dir.glob("*.zarr"))} if ens_dir.exists() else {}
    masks = xr.open_dataset(root / "masks.nc")["mask"].load()
    events = pd.read_csv(root / "events.csv", parse_dates=["start", "end"])
    scores = xr.open_dataset(root / "scores.nc").load()
    for name in ("lead_time",):
        scores[name] = scores[name].astype("timedelta64[ns]")
    return Results(
        truth=truth,
        forecasts=forecasts,
        scores=scores,
        masks=masks,
        events=events,
        ensembles=ensembles,
        label=f"embedded sample ({size}): {len(manifest['init_times'])} initial times, "
        f"leads {', '.join(str(h) for h in manifest['lead_hours'])} h",
        notes=list(manifest.get("notes", [])),
    )


def sample_results(size: str = "default", cache_dir: str | os.PathLike | None = None) -> Results:
    """The dashboard's results for the sample of ``size``: built on first use, then read from the cache."""
    root = results_dir(size, cache_dir)
    if not (root / MANIFEST).exists():
        build_sample_results(size, cache_dir)
    return open_sample_results(root, size)
