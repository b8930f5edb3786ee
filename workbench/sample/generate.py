"""Run the sample atmosphere and write every product of one size into a directory.

One truth run carries the large-scale flow on both grids: the HRRR-like Lambert grid (hourly, with
explicit storms) and the global ERA5-like grid (6-hourly, parameterised convection). Both share the
flow's random forcing, so their z500 and msl patterns agree; their tracers are their own. The truth's
state at every NWP initial time, with the modelled analysis error added (:mod:`analysis`), is the
stored analysis; the NWP forecasts are run from exactly those states, in two worker processes where
the platform allows. Each size runs from its own seed and start (:class:`SizeSpec`), so the training,
validation and test periods are independent.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from workbench.grids import hrrr_grid, latlon_grid
from workbench.sample import geography as geo
from workbench.sample.analysis import make_analysis
from workbench.sample.atmosphere import Atmosphere, Surface
from workbench.sample.flow import initial_flow
from workbench.sample.nwp import OUTPUT_VARIABLES, run_forecast
from workbench.sample.params import NWP_PARAMS, SEED, TRUTH_PARAMS, VERSION, SizeSpec
from workbench.sample.reports import ReportCollector, build_storm_events, write_spc
from workbench.sample.tracers import ModelGrid
from workbench.sample.zarrio import StoreWriter

#: Time step of the global run (hours): its cells are ~600 km wide, so 6-hour semi-Lagrangian steps
#: move air by about a cell; its output is 6-hourly.
GLOBAL_STEP_H = 6

#: Grids finer than this spin up on a grid of this spacing (km).
SPINUP_SPACING_KM = 12.0

#: Hours the truth runs before the first analysis time, so tracers and storms are in balance.
SPINUP_H = 48

def _attrs(spec: SizeSpec) -> dict:
    return {
        "source": "workbench sample atmosphere (synthetic)",
        "generator_version": VERSION,
        "seed": spec.seed,
        "period": spec.period,
    }


def stream(name: str, *keys: int, seed: int = SEED) -> np.random.Generator:
    """An independent random stream named ``name`` (plus integer keys), derived from a run's seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode()), *keys]))


def _hrrr_coords(grid, times: np.ndarray, spec: SizeSpec) -> xr.Dataset:
    ds = xr.Dataset(coords={"time": ("time", times), **grid.coords()})
    ds.attrs.update(_attrs(spec), kind="hrrr-like analysis", size=spec.name, grid_mapping=str(grid.attrs()))
    return ds


def _analysis_coords(grid, inits: np.ndarray, spec: SizeSpec) -> xr.Dataset:
    ds = xr.Dataset(coords={"time": ("time", inits), **grid.coords()})
    ds.attrs.update(
        _attrs(spec),
        kind="analysis",
        size=spec.name,
        grid_mapping=str(grid.attrs()),
        description="the analysis every forecast starts from: the truth (hrrr) at each NWP initial time "
        "plus the modelled analysis error (workbench.sample.analysis); the NWP's lead 0 is exactly this",
    )
    return ds


def _era5_coords(grid, times: np.ndarray, spec: SizeSpec) -> xr.Dataset:
    ds = xr.Dataset(coords={"time": ("time", times), **grid.coords()})
    ds.attrs.update(_attrs(spec), kind="era5-like analysis", size=spec.name)
    return ds


def _nwp_coords(grid, inits: np.ndarray, leads: np.ndarray, spec: SizeSpec) -> xr.Dataset:
    valid = inits[:, None] + leads[None, :]
    ds = xr.Dataset(
        coords={
            "init_time": ("init_time", inits),
            "lead_time": ("lead_time", leads),
            "valid_time": (("init_time", "lead_time"), valid),
            **grid.coords(),
        }
    )
    ds.attrs.update(
        _attrs(spec),
        kind="nwp forecast",
        size=spec.name,
        description="imperfect NWP forecast of the sample atmosphere (NWP_PARAMS) from the stored analysis",
        tp_note="tp is accumulated over the hour before valid_time, as in the analysis",
    )
    return ds


_WORKER: dict = {}


def _init_worker(mg: ModelGrid, surface: Surface, leads: tuple[int, ...], seed: int) -> None:
    _WORKER.update(mg=mg, surface=surface, leads=leads, seed=seed)


def _forecast_job(k: int, snapshot: dict) -> tuple[int, dict[str, np.ndarray]]:
    seed = _WORKER["seed"]
    rngs = (stream("nwp-flow", k, seed=seed), stream("nwp-storms", k, seed=seed))
    return k, run_forecast(_WORKER["mg"], _WORKER["surface"], snapshot, _WORKER["leads"], NWP_PARAMS, rngs)


class _Forecasts:
    """Runs the NWP forecasts as their analyses appear: in worker processes, or here when small.

    Workers overlap the forecasts with the truth run (the truth is sequential; each forecast is
    independent and deterministic given its initial-time index, so the order they finish in does not
    matter). The workers are forked at once, before any store is opened, so they start without the
    I/O threads of the zarr writers (fork, unlike spawn, also works from scripts without a
    ``__main__`` guard).
    """

    def __init__(self, mg: ModelGrid, surface: Surface, spec: SizeSpec, bar) -> None:
        self.writer: StoreWriter | None = None
        self.bar = bar
        self.lead0 = 0 in spec.nwp_leads and spec.nwp_leads[0] == 0
        self.analyses: dict[int, dict[str, np.ndarray]] = {}
        work = spec.nwp_inits * mg.lat.size * len(spec.nwp_leads)
        n = _workers()
        self.pool = None
        if n > 1 and spec.nwp_inits > 4 and work > 2e6 and mg.lat.size < 5e5:
            self.pool = ProcessPoolExecutor(
                n,
                mp_context=get_context("fork"),
                initializer=_init_worker,
                initargs=(mg, surface, spec.nwp_leads, spec.seed),
            )
            self.pool.submit(int).result()  # forks every worker now
        else:
            _init_worker(mg, surface, spec.nwp_leads, spec.seed)
        self.pending: list = []

    def submit(self, k: int, snapshot: dict, analysis: dict[str, np.ndarray]) -> None:
        """Run forecast ``k`` from the analysis state ``snapshot`` whose fields are ``analysis``."""
        if self.lead0:
            self.analyses[k] = analysis
        if self.pool is None:
            self._write(*_forecast_job(k, snapshot))
        else:
            self.pending.append(self.pool.submit(_forecast_job, k, snapshot))

    def _write(self, k: int, fields: dict[str, np.ndarray]) -> None:
        if self.lead0:
            # lead 0 is the analysis the model starts from, as stored (the model's own diagnostics of
            # that state differ by its biases, which show from the first step on)
            analysis = self.analyses.pop(k)
            for v in OUTPUT_VARIABLES:
                fields[v][0] = analysis[v]
        self.writer.write((k,), fields)
        self.bar.update(1)

    def drain(self, wait: bool = False) -> None:
        """Write the forecasts that have finished (all of them, with ``wait``)."""
        still = []
        for fut in self.pending:
            if wait or fut.done():
                self._write(*fut.result())
            else:
                still.append(fut)
        self.pending = still
        if wait and self.pool is not None:
            self.pool.shutdown()

    def abort(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def _workers() -> int:
    """Processes for the NWP forecasts: ``$WORKBENCH_SAMPLE_WORKERS``, else up to 2 of the usable CPUs."""
    env = os.environ.get("WORKBENCH_SAMPLE_WORKERS")
    if env:
        return max(1, int(env))
    try:
        return max(1, min(2, len(os.sched_getaffinity(0))))
    except AttributeError:  # pragma: no cover - not on Linux
        return 1


def generate(spec: SizeSpec, out: Path, progress: bool = True) -> dict[str, float]:
    """Generate all products of ``spec`` into directory ``out`` (which must exist and be empty).

    Returns
    -------
    dict
        Counts for the record: number of storm systems, reports and so on.
    """
    hours = spec.hours
    init_hours = [k * spec.nwp_init_every_h for k in range(spec.nwp_inits)]

    geo.use_cache_dir(out.parent)
    grid = hrrr_grid(spec.spacing_km)
    ggrid = latlon_grid(spec.era5_resolution)
    mg, mgg = ModelGrid(grid), ModelGrid(ggrid)
    surf, surfg = Surface(mg), Surface(mgg)
    seed = spec.seed
    flow0 = initial_flow(stream("flow-init", seed=seed), TRUTH_PARAMS)
    flow0.time_h = -float(SPINUP_H)
    # fine grids spin up on a coarse copy of the domain (storms and flow are grid-free; tracers are
    # interpolated at the switch), which saves most of the spin-up's cost
    fine = spec.spacing_km < SPINUP_SPACING_KM
    spin_mg = ModelGrid(hrrr_grid(SPINUP_SPACING_KM)) if fine else mg
    spin_surf = Surface(spin_mg) if fine else surf
    atm = Atmosphere(
        spin_mg, TRUTH_PARAMS, flow0.copy(), spin_surf, True, stream("flow", seed=seed), stream("storms", seed=seed)
    )

    def switch(spin: Atmosphere) -> Atmosphere:
        full = Atmosphere(mg, TRUTH_PARAMS, spin.flow, surf, True, spin.rng_flow, spin.rng_storms)
        full.adopt(spin)
        return full

    # the global run shares the flow object: the HRRR-like run advances it, the global run follows
    atmg = Atmosphere(mgg, TRUTH_PARAMS, atm.flow, surfg, False, None, stream("storms-global", seed=seed))
    forecasts = _Forecasts(mg, surf, spec, None)
    total = SPINUP_H + hours + len(init_hours) + 2
    bar = tqdm(total=total, desc=f"sample {spec.name}", unit="step", disable=not progress, leave=False)
    forecasts.bar = bar

    times = spec.start + np.arange(hours) * np.timedelta64(1, "h")
    gtimes = times[::6]
    hrrr = StoreWriter(
        out / "hrrr.zarr", _hrrr_coords(grid, times, spec), ("time", "y", "x"), OUTPUT_VARIABLES,
        (spec.time_chunk,) + mg.shape,
    )  # fmt: skip
    era5 = StoreWriter(
        out / "era5.zarr", _era5_coords(ggrid, gtimes, spec), ("time", "latitude", "longitude"),
        OUTPUT_VARIABLES, (len(gtimes),) + mgg.shape,
        extra_attrs={"tp": {"long_name": "total precipitation accumulated over the preceding 6 hours"}},
    )  # fmt: skip
    leads = np.array(spec.nwp_leads, dtype="timedelta64[h]").astype("timedelta64[ns]")
    inits = (spec.start + np.array(init_hours, dtype="timedelta64[h]")).astype("datetime64[ns]")
    analysis = StoreWriter(
        out / "analysis.zarr", _analysis_coords(grid, inits, spec), ("time", "y", "x"), OUTPUT_VARIABLES,
        (1,) + mg.shape,
    )  # fmt: skip
    nwp = StoreWriter(
        out / "nwp.zarr", _nwp_coords(grid, inits.astype("datetime64[ns]"), leads, spec),
        ("init_time", "lead_time", "y", "x"), OUTPUT_VARIABLES, (1, len(spec.nwp_leads)) + mg.shape,
    )  # fmt: skip
    forecasts.writer = nwp
    try:
        counts = _truth_run(
            spec, out, atm, atmg, hrrr, era5, analysis, forecasts, init_hours, times, bar,
            switch if fine else None,
        )  # fmt: skip
        forecasts.drain(wait=True)
    except BaseException:
        forecasts.abort()
        raise
    nwp.close()
    bar.update(1)
    bar.close()
    return counts


def _truth_run(
    spec, out, atm, atmg, hrrr, era5, analysis, forecasts, init_hours, times, bar, switch=None
) -> dict[str, float]:
    """The hourly truth loop, the stores it fills, and the reports it leads to.

    ``switch``, if given, replaces the (spin-up) atmosphere one hour before the first analysis time.
    """
    hours = spec.hours
    mgg = atmg.mg
    buf_shape = (spec.time_chunk,) + tuple(hrrr.arrays["t2m"].shape[1:])
    gtimes = times[::6]
    g_old = atmg.flow_fields()
    g_last = atm.time_h
    collector = None
    buf = {v: np.empty(buf_shape, np.float32) for v in OUTPUT_VARIABLES}
    sq_err = dict.fromkeys(OUTPUT_VARIABLES, 0.0)  # analysis minus truth, summed over inits and points
    gbuf = {v: np.empty((len(gtimes),) + mgg.shape, np.float32) for v in OUTPUT_VARIABLES}
    while atm.time_h < hours - 1:
        atm.step(1.0)
        t = int(round(atm.time_h))
        if t % GLOBAL_STEP_H == 0:
            atmg.step(atm.time_h - g_last, old_flow=g_old)
            g_old, g_last = atmg.flow_fields(), atm.time_h
        bar.update(1)
        if t == -1 and switch is not None:
            atm = switch(atm)
        if t < 0:
            continue
        if collector is None:
            collector = ReportCollector(atm.mg)
        fields = atm.diagnose()
        k = t % spec.time_chunk
        for v in OUTPUT_VARIABLES:
            buf[v][k] = fields[v]
        if k == spec.time_chunk - 1 or t == hours - 1:
            a = t - k
            hrrr.write((slice(a, t + 1),), {v: buf[v][: k + 1] for v in OUTPUT_VARIABLES})
        collector.observe(t, fields, atm.storms, atm._rendered)
        if t in init_hours:
            i = init_hours.index(t)
            state, afields = make_analysis(atm, NWP_PARAMS, stream("analysis-error", i, seed=spec.seed))
            analysis.write((slice(i, i + 1),), {v: afields[v][None] for v in OUTPUT_VARIABLES})
            for v in OUTPUT_VARIABLES:
                sq_err[v] += float(np.mean((afields[v] - fields[v]) ** 2))
            forecasts.submit(i, state, afields)
        forecasts.drain()
        if t % 6 == 0:
            gf = atmg.diagnose()
            for v in OUTPUT_VARIABLES:
                gbuf[v][t // 6] = gf[v]
    era5.write((slice(None),), gbuf)
    hrrr.close()
    era5.close()
    # the analysis error, measured: RMS over initial times and grid points, per variable
    rms = {v: round(float(np.sqrt(sq_err[v] / max(len(init_hours), 1))), 4) for v in OUTPUT_VARIABLES}
    analysis.root.attrs["analysis_error_rms"] = rms
    analysis.close()

    # reports
    events, spc = build_storm_events(collector, stream("reports", seed=spec.seed), spec.start)
    rep = out / "reports"
    rep.mkdir()
    events.to_csv(rep / "storm_events.csv", index=False)
    first_day = (pd.Timestamp(spec.start) - pd.Timedelta(hours=12)).floor("D")
    last_day = (pd.Timestamp(times[-1]) - pd.Timedelta(hours=12)).floor("D")
    write_spc(spc, rep / "spc", first_day, last_day)
    bar.update(1)

    return {
        "storm_systems": int(atm.storms.next_system_id - 1),
        "storm_events": len(events),
        "spc_reports": len(spc),
        "analysis_error_rms": rms,
    }
