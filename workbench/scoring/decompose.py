"""The error decomposition: every region, every lead time, in one pass over forecast and truth.

:func:`decompose` walks the forecast block by block (``init_time`` x ``lead_time``), reads each field
once, and adds its sufficient statistics (:mod:`workbench.scoring.stats`) for all regions at once to
per-lead-time accumulators. Within a block the fields that share a valid time are scored together, so
the truth, the climatology and the event cells of that time are read once for all of them (a forecast
already in memory is one block: every valid time is visited once). Memory holds one block, the truth
fields of a few valid times (plus, for lazily read data, a bounded cache of recent ones) and a small
cache of the event runs per valid time. With a ``dask.distributed.Client`` the blocks become tasks whose
small results are summed; with ``device="cuda"`` the statistics are computed by torch on the GPU.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import xarray as xr

from workbench.errors import DataError
from workbench.scoring import kernels, regions
from workbench.scoring.conventions import is_logarithmic
from workbench.scoring.inputs import (
    ScoringWarning,
    as_model_dict,
    check_grid,
    check_units,
    climatology_positions,
    prepare_masks,
    prepare_truth,
    resolve_members,
    resolve_variables,
    resolve_weights,
    select_variable,
    spatial_dims,
    time_positions,
)
from workbench.scoring.kernels import RegionIndex
from workbench.scoring.stats import StatLayout
from workbench.scoring.summary import summarise

__all__ = ["decompose"]

ENGINES = ("auto", "numba", "numpy", "torch")


def decompose(
    forecast: xr.Dataset | xr.DataArray | Mapping[Hashable, xr.Dataset],
    truth: xr.Dataset | xr.DataArray,
    masks: xr.DataArray | xr.Dataset | None = None,
    weights: xr.DataArray | None = None,
    climatology: xr.Dataset | xr.DataArray | None = None,
    member_dims: str | Sequence[str] | None = None,
    chunk: int | Mapping[str, int] | None = None,
    client=None,
    device: str | None = None,
    *,
    variables: Sequence[str] | None = None,
    engine: str = "auto",
    num_threads: int | None = None,
    progress: bool = False,
    forecast_masks: xr.DataArray | Mapping[Hashable, xr.DataArray] | None = None,
    rmse_average: str = "per_init",
    spread_estimator: str = "anova",
    confidence: float | None = None,
    n_resamples: int = 1000,
    block_length: int | str | None = "auto",
    seed: int = 0,
    climatology_name: str | None = None,
    edge_km: float | None = None,
) -> xr.Dataset:
    """Score a forecast overall and inside extreme-event regions, with the error budget, in one pass.

    For every variable, lead time and region :math:`R`, with area weights :math:`w_i`, the error of the
    (ensemble-mean) forecast :math:`e_i = \\bar{f}_i - o_i` and the sums running over the valid
    cell-times :math:`i \\in R` of all initial times:

    - ``rmse``: by default (``rmse_average="per_init"``, WeatherBench 2's convention) the RMSE of each
      initial time, :math:`\\sqrt{\\sum w e^2 / \\sum w}` over its cell-times, then the mean over the
      initial times whose region is not empty; ``rmse_average="pooled"`` takes the sums over all
      initial times together. ``mae`` :math:`= \\sum w|e| / \\sum w`,
      ``bias`` :math:`= \\sum w e / \\sum w`;
    - ``area_fraction`` :math:`= \\sum_R w / \\sum_{all} w` (the region's share of weighted cell-times),
      ``error_share`` :math:`= \\sum_R w e^2 / \\sum_{all} w e^2` (its share of the squared error),
      ``error_ratio`` = error_share / area_fraction = MSE(R) / MSE(all). ``extreme`` and ``non_extreme``
      partition the domain, so their ``area_fraction`` and ``error_share`` each sum to 1;
    - ``acc`` (with a climatology :math:`c`): :math:`\\sum w f'o' / \\sqrt{\\sum w f'^2 \\sum w o'^2}`
      with :math:`f' = \\bar f - c`, :math:`o' = o - c`;
    - ensembles of :math:`M` members: ``crps`` (fair estimator, see
      :func:`workbench.scoring.metrics.crps_ensemble`), ``spread`` (unbiased ensemble standard
      deviation, :math:`\\sqrt{\\frac{M}{M-1}\\sum w\\,\\mathrm{Var}_{pop} / \\sum w}`) and
      ``spread_skill_ratio`` :math:`= \\sqrt{(M+1)/M}\\,` spread / rmse;
    - two member dimensions (``weight_member`` epistemic, W members; ``noise_member`` aleatoric, N):
      ``spread_total``, ``spread_aleatoric``, ``spread_epistemic`` are **variances** (units squared).
      By default (``spread_estimator="anova"``) the unbiased one-way ANOVA components,
      :math:`\\hat\\sigma_a^2 = \\frac{N}{N-1}\\mathrm{E}_a[\\mathrm{Var}_n]`,
      :math:`\\hat\\sigma_e^2 = \\frac{W}{W-1}\\mathrm{Var}_a[\\mathrm{E}_n] - \\hat\\sigma_a^2/N`
      (population variances inside), total = their sum; ``spread_skill_epistemic``
      :math:`= \\sqrt{\\frac{W+1}{W}\\hat\\sigma_e^2}/\\mathrm{rmse}`, ``spread_skill_aleatoric``
      :math:`= \\sqrt{\\frac{M+1}{M}\\hat\\sigma_a^2}/\\mathrm{rmse}` and the total's squares add up
      (1 for a perfect ensemble). ``spread_estimator="population"`` keeps the law of total variance
      with population variances and the total's :math:`(M+1)/(M-1)` on every part. Ratios use the
      pooled RMSE;
    - reflectivity (units ``dBZ`` or ``dB``) ensembles: the ensemble mean :math:`\\bar f` whose error
      (``rmse``, ``mae``, ``bias``) and anomaly (``acc``) are scored is taken in linear units,
      :math:`10\\log_{10}\\mathrm{mean}_m 10^{f_m/10}` (the convention of
      :mod:`workbench.scoring.conventions`, the same as :func:`~workbench.scoring.conventions.ensemble_mean`),
      inside the kernels of every engine; ``crps``, ``spread`` and the spread split stay in dB around
      the arithmetic member mean (they measure how far apart the members are in dB);
    - ``n_valid`` and ``n_nan``: cell-times scored, and skipped because forecast or truth is NaN.
      NaNs are never averaged as zeros; a warning gives their number.

    Parameters
    ----------
    forecast : xarray.Dataset, DataArray, or dict of them
        Dims ``(init_time, lead_time[, member dims], *grid)`` with coordinate ``valid_time``
        (``init_time + lead_time`` when absent). A dict ``{model: forecast}``, or a Dataset with a
        ``model`` dimension, adds a ``model`` dimension to the result.
    truth : xarray.Dataset or DataArray
        Dims ``(time, *grid)``, with the forecast's variables. Forecast fields whose valid time is not
        in the truth are left out, with a warning.
    masks : xarray.DataArray (bool) or Dataset with ``mask``, optional
        Dims ``(event_type, time, *grid)``, True inside an event; they must cover every scored valid
        time. Without masks only the ``all`` region is scored. Masks that differ per forecast field,
        dims ``(event_type, init_time, lead_time, *grid)``, are accepted too (each field is scored
        with its own mask).
    weights : xarray.DataArray, optional
        Non-negative weights over (some of) the grid dims; default
        :func:`workbench.grids.area_weights` of the truth.
    climatology : xarray.Dataset or DataArray, optional
        Climatological mean for ACC: per variable, dims ``(time, *grid)``, ``(dayofyear, hour, *grid)``,
        ``(hour, *grid)``, ``(month, *grid)`` or the grid alone.
    member_dims : str or sequence of str, optional
        Member dimension(s); by default every forecast dim that is neither ``init_time``, ``lead_time``
        nor the grid. With two, the first is epistemic and the second aleatoric; ``weight_member`` and
        ``noise_member`` are recognised by name.
    chunk : int or dict, optional
        Block size: the number of initial times, or ``{"init_time": n, "lead_time": m}``. Default: the
        forecast's Dask chunks, else one initial time with all its lead times.
    client : dask.distributed.Client, optional
        Run the blocks as tasks on this cluster and sum their statistics.
    device : str, optional
        A torch device (``"cuda"``, ``"cpu"``): compute the statistics with torch there. When CUDA is
        asked for but torch sees no GPU, the CPU is used, with a warning.
    variables : sequence of str, optional
        Score only these variables (default: every forecast variable; each must be in the truth).
    engine : {"auto", "numba", "numpy", "torch"}
        Kernel implementation; "auto" is torch when ``device`` is given, else numba when installed,
        else NumPy. All give the same numbers.
    num_threads : int, optional
        Threads scoring the fields of a block in parallel (default: the CPUs).
    progress : bool
        Show a progress bar over the blocks.
    forecast_masks : xarray.DataArray or dict of them, optional
        The model's own event masks ``(event_type, init_time, lead_time, *grid)`` (the same rules applied
        to its forecast, e.g. ``workbench.events.forecast_event_masks``), one per model for a dict of
        forecasts. Adds the regions of :mod:`workbench.scoring.regions`: ``extreme_forecast``,
        ``extreme_either``, ``hit``, ``miss``, ``false_alarm`` and, per event type ``t``,
        ``t|forecast``, ``t|either``, ``t|hit``, ``t|miss``, ``t|false_alarm``. Needs ``masks``.
    rmse_average : {"per_init", "pooled"}
        RMSE convention (above).
    spread_estimator : {"anova", "population"}
        Estimator of the epistemic/aleatoric split (above).
    confidence : float, optional
        Add ``<metric>_low`` / ``<metric>_high`` bounds at this confidence (e.g. 0.9) from a block
        bootstrap over initial times (:mod:`workbench.scoring.bootstrap`). The statistics are kept per
        initial time during the pass, so resampling costs no second pass over the data.
    climatology_name : str, optional
        What the climatology is (e.g. "ERA5 1990-2019, day of year x hour"), recorded on ``acc``; by
        default the climatology's ``climatology_name`` or ``description`` attribute. Without either, a
        ScoringWarning says the ACC's climatology is unnamed (:mod:`workbench.scoring.conventions`).
    n_resamples, block_length, seed
        Bootstrap resamples, block length of consecutive inits (``"auto"``: from the autocorrelation
        of the per-init MSE) and random seed.
    edge_km : float, optional
        Score the interior only: leave out every cell within ``edge_km`` km of the domain edge (all
        regions, masks and weights alike; :mod:`workbench.scoring.interior`, whose
        ``DEFAULT_EDGE_KM`` = 200 km is the documented default of ``workbench score --interior``).
        Needs a projected grid (``x``/``y`` in metres). The output records it as ``attrs["edge_km"]``.

    Returns
    -------
    xarray.Dataset
        Data variables above over dims ``(variable, lead_time, region[, model])``; ``region`` holds
        ``all``, ``extreme``, ``non_extreme`` and each event type.

    Raises
    ------
    GridError
        Forecast, truth, masks, weights or climatology on different grids.
    UnitsError
        Forecast and truth in different (or non-canonical) units.
    DataError
        Missing variables, masks or climatology not covering the scored valid times, bad layouts.
    """
    if engine not in ENGINES:
        raise DataError(f"engine must be one of {ENGINES}, not {engine!r}.")
    if edge_km is not None:
        from workbench.scoring import interior

        edge_km = interior.check_edge_km(edge_km)
        truth = prepare_truth(truth)
        cut = interior.interior_slices(truth, spatial_dims(truth), edge_km)
        forecast, truth, masks, weights, climatology, forecast_masks = (
            interior.crop(x, cut) for x in (forecast, truth, masks, weights, climatology, forecast_masks)
        )
        options = dict(
            masks=masks, weights=weights, climatology=climatology, member_dims=member_dims, chunk=chunk,
            client=client, device=device, variables=variables, engine=engine, num_threads=num_threads,
            progress=progress, forecast_masks=forecast_masks, rmse_average=rmse_average,
            spread_estimator=spread_estimator, confidence=confidence, n_resamples=n_resamples,
            block_length=block_length, seed=seed, climatology_name=climatology_name,
        )  # fmt: skip
        out = decompose(forecast, truth, **options)
        out.attrs["edge_km"] = edge_km
        out.attrs["regions"] = f"interior only (cells at least {edge_km:g} km from the domain edge); " + str(
            out.attrs.get("regions", "")
        )
        return out
    if forecast_masks is not None:
        options = dict(
            weights=weights, climatology=climatology, member_dims=member_dims, chunk=chunk, client=client,
            device=device, variables=variables, engine=engine, num_threads=num_threads, progress=progress,
            rmse_average=rmse_average, spread_estimator=spread_estimator, confidence=confidence,
            n_resamples=n_resamples, block_length=block_length, seed=seed, climatology_name=climatology_name,
        )  # fmt: skip
        return _with_forecast_regions(forecast, truth, masks, forecast_masks, options)
    truth = prepare_truth(truth)
    spatial = spatial_dims(truth)
    models = as_model_dict(forecast)
    if regions.is_field_masks(masks):
        check_grid("masks", masks, truth, spatial)
        masks = regions.field_masks(masks, spatial)
    else:
        masks = prepare_masks(masks, truth, spatial)
    w, weights_how = resolve_weights(weights, truth, spatial)
    engine, device = _resolve_engine(engine, device)
    if confidence is not None and not 0 < confidence < 1:
        raise DataError(f"confidence must be between 0 and 1, not {confidence}.")
    if rmse_average not in ("per_init", "pooled"):
        raise DataError(f"rmse_average must be 'per_init' or 'pooled', not {rmse_average!r}.")
    if spread_estimator not in ("anova", "population"):
        raise DataError(f"spread_estimator must be 'anova' or 'population', not {spread_estimator!r}.")
    summary_options = {
        "rmse_average": rmse_average,
        "spread_estimator": spread_estimator,
        "bootstrap": None
        if confidence is None
        else {
            "confidence": confidence,
            "n_resamples": n_resamples,
            "block_length": block_length,
            "seed": seed,
        },
    }
    clim_label = None
    if climatology is not None:
        from workbench.scoring.conventions import climatology_label

        clim_label = climatology_label(climatology, climatology_name)
        if clim_label is None:
            warnings.warn(
                "ACC is computed against an unnamed climatology; say which (climatology_name=...): ACC "
                "depends on it, and a climatology of a few days before the forecasts rewards little.",
                ScoringWarning,
                stacklevel=2,
            )
            clim_label = "unnamed"
    runner = _Runner(
        truth=truth,
        masks=masks,
        weights=w,
        spatial=spatial,
        engine=engine,
        device=device,
        client=client,
        num_threads=num_threads or os.cpu_count() or 1,
        progress=progress,
        summary_options=summary_options,
    )
    results = [
        runner.score(fc, climatology, member_dims, chunk, variables, model=name)
        for name, fc in models.items()
    ]
    if list(models) == [None]:
        out = results[0]
    else:
        out = _concat_filled(results, "model", [str(name) for name in models])
    order = [d for d in ("variable", "lead_time", "region", "model") if d in out.dims]
    out = out.transpose(*order)
    out.attrs.update(
        {
            "title": "Error decomposition: overall versus extreme-event regions",
            "weights": weights_how,
            "engine": engine,
            "regions": "all; extreme = union of the event masks; non_extreme = all minus extreme; each type",
            "rmse_average": rmse_average,
            "spread_estimator": spread_estimator,
        }
    )
    if clim_label is not None and "acc" in out:
        out["acc"].attrs["climatology"] = clim_label
        out.attrs["climatology"] = clim_label
    if confidence is not None:
        out.attrs.update(
            {
                "confidence": confidence,
                "n_resamples": n_resamples,
                "bootstrap_seed": seed,
                "bootstrap": "block bootstrap over initial times (workbench.scoring.bootstrap)",
            }
        )
    return out


def _resolve_engine(engine: str, device: str | None) -> tuple[str, str | None]:
    if device is not None and engine in ("auto", "torch"):
        import torch

        dev = str(device)
        if dev.startswith("cuda") and not torch.cuda.is_available():
            warnings.warn(
                f"device={dev!r} was asked for but torch sees no GPU; scoring on the CPU with torch.",
                ScoringWarning,
                stacklevel=3,
            )
            dev = "cpu"
        return "torch", dev
    if engine == "torch":
        return "torch", "cpu"
    if engine == "auto":
        return ("numba" if kernels.HAVE_NUMBA else "numpy"), None
    if engine == "numba" and not kernels.HAVE_NUMBA:
        raise DataError("engine='numba' needs the numba package; install it or use engine='numpy'.")
    return engine, None


# ---------------------------------------------------------------------------------------------------
# reading fields


def _in_memory(da: xr.DataArray) -> bool:
    # xarray keeps loaded data as a plain ndarray; lazily read files and Dask arrays are wrapped
    return isinstance(da.variable._data, np.ndarray)


class _LRU:
    """A small thread-safe least-recently-used cache bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: int):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: int, value, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes:
                _, (_, old) = self._items.popitem(last=False)
                self._bytes -= old


class _FieldReader:
    """Fields along the first dimension of ``da``; no copy when the data are in memory.

    Lazily read data (files, Dask) keep the last fields in a cache of ``cache_bytes``: consecutive blocks
    of initial times share most valid times, so their truth is read once, not once per block.
    """

    def __init__(self, da: xr.DataArray, cache_bytes: int = 0):
        self.da = da
        self.dim = da.dims[0]
        self.values = da.values if _in_memory(da) else None
        self.cache = _LRU(cache_bytes)

    @property
    def in_memory(self) -> bool:
        return self.values is not None

    def read(self, positions) -> dict[int, np.ndarray]:
        positions = sorted({int(p) for p in positions})
        if self.values is not None:
            return {p: self.values[p] for p in positions}
        out = {}
        for p in positions:
            field = self.cache.get(p)
            if field is not None:
                out[p] = field
        missing = [p for p in positions if p not in out]
        if missing:
            block = self.da.isel({self.dim: missing}).values
            for k, p in enumerate(missing):
                out[p] = block[k]
                self.cache.put(p, block[k], block[k].nbytes)
        return out


class _MaskSource:
    """Event masks per mask time, and what each engine derives from them, kept in a small LRU cache:
    the event runs (compiled kernels) or the event cells (:class:`RegionIndex`, NumPy)."""

    def __init__(self, masks: xr.DataArray, engine: str, max_bytes: int = 64 * 2**20):
        self.reader = _FieldReader(masks.transpose("time", ...))
        self.n_events = masks.sizes["event_type"]
        self.engine = engine
        self._loaded: dict[int, np.ndarray] = {}
        self._derived = _LRU(max_bytes)

    def prefetch(self, positions) -> None:
        """Read, in one go, the masks of the coming batch that are needed (none when in memory)."""
        if self.reader.in_memory:
            return
        cached = self.engine != "torch"
        missing = [p for p in positions if not (cached and self._derived.get(int(p)) is not None)]
        self._loaded = self.reader.read(missing)

    def field(self, pos: int) -> np.ndarray:
        """Bool ``(n_events, P)`` masks at mask time ``pos``."""
        if self.reader.in_memory:
            return self.reader.values[pos].reshape(self.n_events, -1)
        if pos not in self._loaded:
            self._loaded.update(self.reader.read([pos]))
        return np.reshape(self._loaded[pos], (self.n_events, -1))

    def _derive(self, pos: int, build):
        value = self._derived.get(pos)
        if value is None:
            value = build(self.field(pos))
            nbytes = value.nbytes if hasattr(value, "nbytes") else sum(a.nbytes for a in value)
            self._derived.put(pos, value, nbytes)
        return value

    def runs(self, pos: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Runs of cells sharing an event code at mask time ``pos`` (:func:`kernels.event_runs`)."""
        return self._derive(pos, kernels.event_runs)

    def region(self, pos: int) -> RegionIndex:
        """The event cells at mask time ``pos``."""
        return self._derive(pos, RegionIndex.from_masks)


# ---------------------------------------------------------------------------------------------------
# blocks and groups


@dataclass
class _VariablePlan:
    name: str
    forecast: xr.DataArray  # (init_time, lead_time, *members, *grid)
    truth: xr.DataArray  # (time, *grid)
    clim: xr.DataArray | None  # (_key, *grid)
    clim_pos: np.ndarray | None  # (n_init, n_lead)
    layout: StatLayout
    members: tuple[str, ...]


@dataclass
class _Group:
    """The fields of one block valid at the same time: they share truth, climatology and event cells."""

    ii: np.ndarray  # init index of each field within the block
    jj: np.ndarray  # lead index of each field within the block
    tpos: int  # truth position
    mpos: int  # mask position, -1 without masks
    cpos: int  # climatology position, -1 without climatology


def _make_groups(tpos: np.ndarray, mpos: np.ndarray | None, cpos: np.ndarray | None) -> list[_Group]:
    """Group the fields of a block (positions ``(n_init, n_lead)``, -1 = no truth) by valid time."""
    ii, jj = np.nonzero(tpos >= 0)
    if not ii.size:
        return []
    t = tpos[ii, jj].astype(np.int64)
    # fields share a group when they share the truth and the mask: with valid-time masks the mask
    # follows from the valid time, with per-field masks (forecast-conditioned regions) it does not
    key = t if mpos is None else t * (int(mpos.max()) + 2) + (mpos[ii, jj].astype(np.int64) + 1)
    order = np.argsort(key, kind="stable")
    ii, jj, t, key = ii[order], jj[order], t[order], key[order]
    bounds = [0, *(np.flatnonzero(np.diff(key)) + 1).tolist(), len(t)]
    groups = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        i0, j0 = ii[a], jj[a]
        groups.append(
            _Group(
                ii=ii[a:b].astype(np.int64),
                jj=jj[a:b].astype(np.int64),
                tpos=int(t[a]),
                mpos=-1 if mpos is None else int(mpos[i0, j0]),
                cpos=-1 if cpos is None else int(cpos[i0, j0]),
            )
        )
    return groups


def _as_fields(values: np.ndarray, n_members: int, n_points: int, allow_copy: bool) -> np.ndarray | None:
    """``(n_init, n_lead, *members, *grid)`` as ``(n_init, n_lead, M, P)``, without copying unless allowed."""
    shape = (values.shape[0], values.shape[1], n_members, n_points)
    try:
        return values.reshape(shape, copy=False)
    except ValueError:
        return np.ascontiguousarray(values).reshape(shape) if allow_copy else None


def _load_block(fda: xr.DataArray, bi: slice, bl: slice, n_members: int, n_points: int) -> np.ndarray:
    if _in_memory(fda):
        return _as_fields(fda.values[bi, bl], n_members, n_points, allow_copy=True)  # a view when possible
    return _as_fields(fda.isel(init_time=bi, lead_time=bl).values, n_members, n_points, allow_copy=True)


class _Runner:
    def __init__(
        self,
        *,
        truth,
        masks,
        weights,
        spatial,
        engine,
        device,
        client,
        num_threads,
        progress,
        summary_options=None,
    ):
        self.summary_options = summary_options or {}
        self.truth = truth
        self.masks = masks
        self.weights = weights
        self.spatial = spatial
        self.engine = engine
        self.device = device
        self.client = client
        self.num_threads = max(1, int(num_threads))
        self.progress = progress
        self.n_points = int(weights.size)
        self.mask_source = _MaskSource(masks, engine) if masks is not None else None
        self._weights_by_dtype: dict[np.dtype, np.ndarray] = {}
        # valid times scored together: enough to keep every thread busy, few enough to bound memory
        self.group_batch = 4 * self.num_threads

    def weights_for(self, dtype: np.dtype) -> np.ndarray:
        # the kernels read the weights once per group: match the data's precision to halve the bytes
        dtype = np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float64)
        if dtype not in self._weights_by_dtype:
            self._weights_by_dtype[dtype] = self.weights.astype(dtype)
        return self._weights_by_dtype[dtype]

    # -- planning ------------------------------------------------------------------------------------

    def _plan(self, fc, climatology, member_dims, variables, vt):
        names = resolve_variables(fc, self.truth, variables)
        plans = []
        for name in names:
            da = fc[name]
            check_grid(f"forecast variable {name!r}", da, self.truth, self.spatial)
            check_units(name, da, self.truth[name])
            members = resolve_members(da, member_dims, self.spatial)
            if len(members) == 2:
                layout_members = (da.sizes[members[0]], da.sizes[members[1]])
            elif len(members) == 1:
                layout_members = (1, da.sizes[members[0]])
            else:
                layout_members = (1, 1)
            clim = clim_pos = None
            if climatology is not None:
                cda = select_variable(climatology, name, "climatology")
                check_grid("climatology", cda, self.truth, self.spatial)
                clim, clim_pos = climatology_positions(cda, vt, self.spatial)
            plans.append(
                _VariablePlan(
                    name=name,
                    forecast=da.transpose("init_time", "lead_time", *members, *self.spatial),
                    truth=self.truth[name].transpose("time", *self.spatial),
                    clim=clim,
                    clim_pos=clim_pos,
                    layout=StatLayout(
                        climatology is not None, *layout_members, linear_mean=is_logarithmic(da)
                    ),
                    members=members,
                )
            )
        return plans

    def _positions(self, fc: xr.Dataset, model):
        vt = fc["valid_time"].values
        tpos = time_positions(self.truth.indexes["time"], vt)
        label = "" if model is None else f" of model {model!r}"
        n_missing = int((tpos < 0).sum())
        if n_missing == tpos.size:
            t = self.truth["time"].values
            raise DataError(
                f"None of the forecast{label}'s valid times ({vt.min()} .. {vt.max()}) is in the truth "
                f"({t.min()} .. {t.max()})."
            )
        if n_missing:
            warnings.warn(
                f"{n_missing} of {tpos.size} forecast fields{label} have valid times outside the truth; "
                "they are not scored.",
                ScoringWarning,
                stacklevel=4,
            )
        mpos = None
        if self.masks is not None and "field_init" in self.masks.coords:
            mpos = regions.field_positions(self.masks, fc)  # one mask per forecast field
        elif self.masks is not None:
            mpos = time_positions(self.masks.indexes["time"], vt)
            uncovered = (tpos >= 0) & (mpos < 0)
            if uncovered.any():
                times = np.unique(vt[uncovered])
                raise DataError(
                    f"The masks do not cover {times.size} forecast valid time(s){label} (first: {times[0]}, "
                    f"last: {times[-1]}); build the masks over the whole forecast period "
                    f"(masks cover {self.masks['time'].values.min()} .. {self.masks['time'].values.max()})."
                )
        return vt, tpos, mpos, n_missing

    def _blocks(self, plans: list[_VariablePlan], chunk) -> list[tuple[slice, slice]]:
        fda = plans[0].forecast
        n_init, n_lead = fda.sizes["init_time"], fda.sizes["lead_time"]
        if chunk is None:
            if fda.chunks is not None:
                init_sizes, lead_sizes = fda.chunks[0], fda.chunks[1]
            elif all(self._whole_in_memory(p) for p in plans):
                # nothing to load: one block, so fields sharing a valid time are scored together
                init_sizes, lead_sizes = (n_init,), (n_lead,)
            else:
                init_sizes, lead_sizes = (1,) * n_init, (n_lead,)
        else:
            spec = {"init_time": chunk} if isinstance(chunk, int) else dict(chunk)
            unknown = set(spec) - {"init_time", "lead_time"}
            if unknown:
                raise DataError(f"chunk keys must be 'init_time' and/or 'lead_time', not {sorted(unknown)}.")
            bi = int(spec.get("init_time") or n_init)
            bl = int(spec.get("lead_time") or n_lead)
            if bi < 1 or bl < 1:
                raise DataError("chunk sizes must be positive.")
            init_sizes = [min(bi, n_init - i) for i in range(0, n_init, bi)]
            lead_sizes = [min(bl, n_lead - i) for i in range(0, n_lead, bl)]
        blocks = []
        i0 = 0
        for ni in init_sizes:
            l0 = 0
            for nl in lead_sizes:
                blocks.append((slice(i0, i0 + ni), slice(l0, l0 + nl)))
                l0 += nl
            i0 += ni
        return blocks

    def _whole_in_memory(self, plan: _VariablePlan) -> bool:
        if not _in_memory(plan.forecast):
            return False
        return (
            _as_fields(plan.forecast.values, plan.layout.n_members, self.n_points, allow_copy=False)
            is not None
        )

    # -- scoring -------------------------------------------------------------------------------------

    def score(self, fc, climatology, member_dims, chunk, variables, model) -> xr.Dataset:
        vt, tpos, mpos, n_missing = self._positions(fc, model)
        plans = self._plan(fc, climatology, member_dims, variables, vt)
        n_lead = fc.sizes["lead_time"]
        n_events = None if self.masks is None else self.masks.sizes["event_type"]
        rows = kernels.n_region_rows(n_events)
        n_init = fc.sizes["init_time"]
        # kept per initial time: the bootstrap and the per-init RMSE need no second pass
        sums = {p.name: np.zeros((n_init, n_lead, rows, p.layout.n_columns)) for p in plans}
        blocks = self._blocks(plans, chunk)
        if self.client is not None:
            self._run_distributed(plans, blocks, tpos, mpos, sums)
        else:
            self._run_local(plans, blocks, tpos, mpos, sums, n_fields=int((tpos >= 0).sum()) * len(plans))
        event_types = None if self.masks is None else [str(t) for t in self.masks["event_type"].values]
        per_var = []
        for plan in plans:
            ds = summarise(
                sums[plan.name],
                plan.layout,
                fc["lead_time"].values,
                event_types,
                rmse_average=self.summary_options.get("rmse_average", "per_init"),
                spread_estimator=self.summary_options.get("spread_estimator", "anova"),
                bootstrap=_bootstrap_spec(
                    sums[plan.name], plan.layout, self.summary_options.get("bootstrap")
                ),
            )
            n_nan = int(ds["n_nan"].sel(region="all").sum())
            if n_nan:
                warnings.warn(
                    f"{n_nan} cell-times of {plan.name!r} have NaN in the forecast or the truth; they were "
                    "skipped (not counted as zero error) and are counted in 'n_nan'.",
                    ScoringWarning,
                    stacklevel=4,
                )
            per_var.append(ds)
        out = _concat_filled(per_var, "variable", [p.name for p in plans])
        out.attrs["fields_without_truth"] = n_missing
        return out

    def _run_local(self, plans, blocks, tpos, mpos, sums, n_fields):
        pool = (
            ThreadPoolExecutor(self.num_threads) if self.num_threads > 1 and self.engine != "torch" else None
        )
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_fields, desc="scoring", unit="field")
        n_lead = plans[0].forecast.sizes["lead_time"]
        field_bytes = self.n_points * 8
        cache = min(2 * n_lead * field_bytes, 256 * 2**20)  # about two blocks' valid times
        setup = KernelSetup(
            engine=self.engine,
            device=self.device,
            weights_for=self.weights_for,
            n_points=self.n_points,
            mask_source=self.mask_source,
            pool=pool,
        )
        readers = {
            p.name: (_FieldReader(p.truth, cache), None if p.clim is None else _FieldReader(p.clim, cache))
            for p in plans
        }
        try:
            for bi, bl in blocks:
                for plan in plans:
                    cpos = None if plan.clim_pos is None else plan.clim_pos[bi, bl]
                    groups = _make_groups(tpos[bi, bl], None if mpos is None else mpos[bi, bl], cpos)
                    if not groups:
                        continue
                    fields = _load_block(plan.forecast, bi, bl, plan.layout.n_members, self.n_points)
                    truth_reader, clim_reader = readers[plan.name]
                    for start in range(0, len(groups), self.group_batch):
                        batch = groups[start : start + self.group_batch]
                        truth = truth_reader.read(g.tpos for g in batch)
                        clim = {} if clim_reader is None else clim_reader.read(g.cpos for g in batch)
                        if self.mask_source is not None:
                            self.mask_source.prefetch(g.mpos for g in batch)
                        results = compute_groups(
                            fields, batch, truth=truth, clim=clim, layout=plan.layout, setup=setup
                        )
                        for group, value in zip(batch, results, strict=True):
                            sums[plan.name][bi.start + group.ii, bl.start + group.jj] += value
                        if bar is not None:
                            bar.update(sum(len(g.ii) for g in batch))
                    del fields
        finally:
            if pool is not None:
                pool.shutdown()
            if bar is not None:
                bar.close()

    def _run_distributed(self, plans, blocks, tpos, mpos, sums):
        import dask

        weights = self.client.scatter(self.weights, broadcast=True)
        masks = self.masks
        tasks, targets = [], []
        for plan in plans:
            fda = plan.forecast
            if fda.chunks is None:
                spec = {"init_time": blocks[0][0].stop - blocks[0][0].start}
                spec["lead_time"] = blocks[0][1].stop - blocks[0][1].start
                fda = fda.chunk(spec)
            for bi, bl in blocks:
                t_blk = tpos[bi, bl]
                ok = t_blk >= 0
                if not ok.any():
                    continue
                local = {}
                t_unique, local["truth"] = _local_positions(t_blk)
                m_data = c_data = None
                if masks is not None:
                    m_unique, local["masks"] = _local_positions(np.where(ok, mpos[bi, bl], -1))
                    m_data = masks.isel(time=m_unique).data
                if plan.clim is not None:
                    c_unique, local["clim"] = _local_positions(np.where(ok, plan.clim_pos[bi, bl], -1))
                    c_data = plan.clim.isel(_key=c_unique).data
                task = dask.delayed(_block_task, pure=True)(
                    fda.isel(init_time=bi, lead_time=bl).data,
                    plan.truth.isel(time=t_unique).data,
                    m_data,
                    c_data,
                    weights,
                    local,
                    plan.layout,
                    self.engine,
                    self.device,
                )
                tasks.append(task)
                targets.append((plan.name, bi, bl))
        futures = self.client.compute(tasks)
        for (name, bi, bl), result in zip(targets, self.client.gather(futures), strict=True):
            sums[name][bi, bl] += result


def _bootstrap_spec(sums: np.ndarray, layout: StatLayout, options: dict | None) -> dict | None:
    """Resample counts and percentile levels for :func:`summarise`, from per-init sums ``(I, L, R, K)``."""
    if options is None:
        return None
    from workbench.scoring.bootstrap import auto_block_length, block_counts, interval_levels

    n_init = sums.shape[0]
    length = options["block_length"]
    if length == "auto":
        sw, swe2 = sums[:, :, 0, layout.index("sw")], sums[:, :, 0, layout.index("swe2")]
        with np.errstate(invalid="ignore", divide="ignore"):
            length = auto_block_length(np.where(sw > 0, swe2 / np.where(sw > 0, sw, 1.0), np.nan))
    counts = block_counts(n_init, options["n_resamples"], length, options["seed"])
    return {
        "counts": counts,
        "levels": interval_levels(n_init, _resolved_length(length, n_init), options["confidence"]),
    }


def _resolved_length(length: int | None, n_init: int) -> int:
    from workbench.scoring.bootstrap import default_block_length

    return default_block_length(n_init) if length is None else int(length)


def _local_positions(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique valid positions and, per entry, the index into them (-1 stays -1)."""
    ok = pos >= 0
    unique, inverse = np.unique(pos[ok], return_inverse=True)
    local = np.full(pos.shape, -1, dtype=np.int64)
    local[ok] = inverse
    return unique, local


def _block_task(f, truth, masks, clim, weights, local, layout, engine, device) -> np.ndarray:
    """Statistics of one block on a Dask worker, per initial time: ``(n_init, n_lead, R, K)``."""
    weights = np.asarray(weights)
    n_points = weights.size
    f = np.asarray(f)
    fields = _as_fields(f, layout.n_members, n_points, allow_copy=True)
    truth = np.asarray(truth).reshape(-1, n_points)
    groups = _make_groups(local["truth"], local.get("masks"), local.get("clim"))
    mask_source = None
    if masks is not None:
        masks = np.asarray(masks)
        mask_source = _LoadedMasks(masks.reshape(masks.shape[0], masks.shape[1], n_points))
    clim_fields = {} if clim is None else dict(enumerate(np.asarray(clim).reshape(-1, n_points)))
    by_dtype: dict = {}

    def weights_for(dtype):
        dtype = np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float64)
        if dtype not in by_dtype:
            by_dtype[dtype] = weights.astype(dtype)
        return by_dtype[dtype]

    setup = KernelSetup(
        engine=engine, device=device, weights_for=weights_for, n_points=n_points, mask_source=mask_source
    )
    results = compute_groups(
        fields, groups, truth=dict(enumerate(truth)), clim=clim_fields, layout=layout, setup=setup
    )
    n_rows = kernels.n_region_rows(None if masks is None else masks.shape[0])
    out = np.zeros((f.shape[0], f.shape[1], n_rows, layout.n_columns))
    for group, value in zip(groups, results, strict=True):
        out[group.ii, group.jj] += value
    return out


class _LoadedMasks:
    """Masks already read, ``(n_events, n_times, P)``: the mask source of a Dask task."""

    def __init__(self, masks: np.ndarray):
        self.masks = masks
        self.n_events = masks.shape[0]
        self._regions: dict[int, RegionIndex] = {}

    def field(self, pos: int) -> np.ndarray:
        return self.masks[:, pos]

    def region(self, pos: int) -> RegionIndex:
        if pos not in self._regions:
            self._regions[pos] = RegionIndex.from_masks(self.masks[:, pos])
        return self._regions[pos]

    def runs(self, pos: int):
        return kernels.event_runs(self.masks[:, pos])


@dataclass(frozen=True)
class KernelSetup:
    """How :func:`compute_groups` computes: what stays the same for every block of one scoring run.

    Attributes
    ----------
    engine : {"numpy", "numba", "torch"}
        The kernels that compute the statistics.
    device : str or torch.device or None
        The torch device (``engine="torch"`` only).
    weights_for : callable
        The ``(P,)`` area weights in a field dtype (cached per dtype, so each dtype is cast once).
    n_points : int
        Grid points of one field, ``P``.
    mask_source : _MaskSource or _LoadedMasks, optional
        The masks of a mask position (``field``), its event runs (``runs``) or its event cells
        (``region``); None without masks.
    pool : ThreadPoolExecutor, optional
        Threads that compute groups side by side (NumPy and numba engines); None computes them in turn.
    """

    engine: str
    device: object
    weights_for: Callable[[np.dtype], np.ndarray]
    n_points: int
    mask_source: _MaskSource | _LoadedMasks | None = None
    pool: ThreadPoolExecutor | None = None


def compute_groups(
    fields: np.ndarray,
    groups: Sequence[_Group],
    *,
    truth: Mapping[int, np.ndarray],
    clim: Mapping[int, np.ndarray],
    layout: StatLayout,
    setup: KernelSetup,
) -> list[np.ndarray]:
    """Kernel statistics ``(k, R, K)`` of each group of same-valid-time fields, with the chosen engine.

    Parameters
    ----------
    fields : numpy.ndarray
        One block's forecasts, ``(n_init, n_lead, M, P)``.
    groups : sequence of _Group
        The block's fields grouped by valid time (:func:`_make_groups`).
    truth, clim : mapping of int to numpy.ndarray
        The truth and climatology fields by position (``clim`` empty without a climatology).
    layout : StatLayout
        The statistics' columns.
    setup : KernelSetup
        The engine, weights, masks and threads of the run.

    Returns
    -------
    list of numpy.ndarray
        One ``(k, R, K)`` array per group, ``k`` its fields.
    """
    if not groups:
        return []
    if setup.engine == "torch":
        return _torch_groups(fields, groups, truth=truth, clim=clim, layout=layout, setup=setup)
    engine, mask_source, n_points = setup.engine, setup.mask_source, setup.n_points

    def one(group: _Group) -> np.ndarray:
        o = np.ascontiguousarray(truth[group.tpos]).reshape(n_points)
        c = None if group.cpos < 0 else np.ascontiguousarray(clim[group.cpos]).reshape(n_points)
        w = setup.weights_for(fields.dtype)
        if engine == "numba":
            runs = None if mask_source is None else mask_source.runs(group.mpos)
            n_events = None if mask_source is None else mask_source.n_events
            return kernels.numba_group_stats(
                fields, group.ii, group.jj, o, w, c, layout, runs=runs, n_events=n_events
            )
        region = None if mask_source is None else mask_source.region(group.mpos)
        f = fields[group.ii, group.jj]
        regions = None if region is None else [region] * len(group.ii)
        return kernels.vector_field_stats(
            f, o[None], w, None if c is None else c[None], layout, regions, kernels.NUMPY_OPS
        )

    if setup.pool is None:
        return [one(g) for g in groups]
    return list(setup.pool.map(one, groups))


def _torch_groups(
    fields: np.ndarray,
    groups: Sequence[_Group],
    *,
    truth: Mapping[int, np.ndarray],
    clim: Mapping[int, np.ndarray],
    layout: StatLayout,
    setup: KernelSetup,
) -> list[np.ndarray]:
    """Each group on the torch device: its fields, and its truth, climatology and event bits once."""
    import torch

    device, mask_source, n_points = setup.device, setup.mask_source, setup.n_points

    ops = kernels.torch_ops()
    dtype = np.result_type(fields.dtype, next(iter(truth.values())).dtype)
    dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
    tdtype = getattr(torch, dtype.name)
    w = torch.as_tensor(setup.weights_for(dtype), device=device)

    def upload(array):
        return torch.from_numpy(np.ascontiguousarray(array)).to(device, non_blocking=True)

    out = []
    for g in groups:
        f = torch.stack([upload(fields[i, j]) for i, j in zip(g.ii, g.jj, strict=True)]).to(tdtype)
        o = upload(np.reshape(truth[g.tpos], (1, n_points))).to(tdtype)
        c = upload(np.reshape(clim[g.cpos], (1, n_points))).to(tdtype) if layout.acc else None
        codes = n_events = None
        if mask_source is not None:
            masks = mask_source.field(g.mpos)
            n_events = masks.shape[0]
            codes = upload(kernels.event_codes(masks)).long()
        out.append(kernels.vector_field_stats(f, o, w, c, layout, None, ops, codes=codes, n_events=n_events))
    return out


def _concat_filled(datasets: list[xr.Dataset], dim: str, labels: list[str]) -> xr.Dataset:
    """Stack results on a new dimension; metrics that one of them lacks (e.g. CRPS) are NaN there."""
    all_vars: list[str] = []
    for ds in datasets:
        all_vars += [v for v in ds.data_vars if v not in all_vars]
    filled = []
    for ds in datasets:
        ds = ds.copy()
        for v in all_vars:
            if v not in ds:
                template = next(d[v] for d in datasets if v in d)
                ds[v] = xr.full_like(ds["rmse"], np.nan).assign_attrs(template.attrs)
        filled.append(ds[all_vars])
    return xr.concat(
        filled, dim=xr.DataArray(labels, dims=dim, name=dim), join="outer", combine_attrs="override"
    )


def _with_forecast_regions(forecast, truth, masks, forecast_masks, options: dict) -> xr.Dataset:
    """:func:`decompose` with the forecast-conditioned regions of :mod:`workbench.scoring.regions` added.

    The observed regions come from one pass with ``masks``; each model's conditioned regions from a pass
    with its per-field region masks, whose own ``all`` row is the same and whose ``extreme`` and
    ``non_extreme`` rows (the union of the derived layers) are dropped.
    """
    if masks is None:
        raise DataError("forecast_masks need the observed masks too (masks=...).")
    observed = masks["mask"] if isinstance(masks, xr.Dataset) and "mask" in masks else masks
    if regions.is_field_masks(observed):
        raise DataError("masks must be the observed masks on valid times (event_type, time, *grid).")
    models = as_model_dict(forecast)
    if isinstance(forecast_masks, Mapping):
        fms = {name: forecast_masks.get(name) for name in models}
        if list(models) == [None] and len(forecast_masks) == 1:
            fms = {None: next(iter(forecast_masks.values()))}
    else:
        # one mask array serves a single model only: each model's forecast has its own events
        fms = {name: forecast_masks for name in models} if len(models) == 1 else {}
    lacking = [str(name) for name in models if fms.get(name) is None]
    if lacking:
        raise DataError(f"forecast_masks lack the model(s) {lacking}; give a dict {{model: masks}}.")
    out = []
    for name, fc in models.items():
        base = decompose(fc, truth, observed, **options)
        derived = regions.conditioned_regions(
            observed, fms[name].sel(init_time=fc["init_time"], lead_time=fc["lead_time"])
        )
        cond = decompose(fc, truth, derived, **options)
        cond = cond.sel(
            region=[r for r in cond["region"].values if r not in ("all", "extreme", "non_extreme")]
        )
        out.append(xr.concat([base, cond], dim="region", join="outer", combine_attrs="override"))
    result = out[0] if list(models) == [None] else _concat_filled(out, "model", [str(n) for n in models])
    order = [d for d in ("variable", "lead_time", "region", "model") if d in result.dims]
    result = result.transpose(*order)
    result.attrs["regions"] = (
        "all; extreme = union of the observed masks; non_extreme; each type; extreme_forecast, "
        "extreme_either, hit, miss, false_alarm and per type t|forecast ... t|false_alarm "
        "(workbench.scoring.regions)"
    )
    return result
