"""``workbench score``: score a forecast against the truth, overall and on extreme events, into a file.

Examples::

    workbench score sample_nwp --truth sample_hrrr --param size=tiny --masks thresholds -o scores.nc
    workbench score forecasts --param model=pangu --truth sample_hrrr --masks masks.nc -o pangu.zarr
    workbench score /data/run.zarr --truth /data/analysis.zarr --scheduler tcp://host:8786 -o s.nc
    workbench score /data/run.zarr --truth /data/analysis.zarr --scheduler local -o s.nc
    workbench score /data/graphcast_latlon.zarr --truth hrrr --masks masks.nc --regrid -o graphcast.nc
    workbench score /data/hrrr_fc.zarr --truth hrrr --masks latlon_masks.nc --regrid --mask-threshold 0.3 -o s.nc
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from workbench.cli_inputs import check_output, connect_scheduler, open_path, open_source, parse_params
from workbench.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``score`` sub-command."""
    parser = subparsers.add_parser(
        "score",
        help="score a forecast overall and on extreme-event regions (writes netCDF or zarr)",
        description="Score a forecast against the truth for every variable, lead time and region (all, "
        "extreme, non_extreme, each event type) in one pass, and write the scores data set atomically.",
    )
    parser.add_argument(
        "forecast", help="forecast store (zarr or netCDF path) or catalog entry (sample_nwp, forecasts)"
    )
    parser.add_argument(
        "--truth", required=True, help="truth catalog entry (sample_hrrr, hrrr, era5) or path"
    )
    parser.add_argument(
        "--masks",
        default=None,
        help="event masks: a netCDF/zarr file with the bool variable 'mask' (event_type, time, y, x), or "
        "'thresholds' to build threshold-event masks from the truth (workbench.events); default: none",
    )
    parser.add_argument(
        "--regrid",
        nargs="?",
        const="auto",
        default=None,
        choices=["auto", "bilinear", "conservative", "maximum", "nearest"],
        help="regrid the forecast onto the truth's grid first (e.g. a lat-lon model onto HRRR); without a "
        "method, per variable: conservative for tp, maximum for refc, bilinear otherwise",
    )
    parser.add_argument(
        "--mask-threshold",
        type=float,
        default=None,
        metavar="FRACTION",
        help="with --regrid, masks on another grid than the truth's are regridded as area fractions and a "
        "truth cell is in the event when at least this fraction of its area is (default 0.5)",
    )
    parser.add_argument("--climatology", default=None, help="netCDF/zarr climatological mean, for ACC")
    parser.add_argument(
        "--variables", nargs="+", default=None, help="variables to score (default: all shared)"
    )
    parser.add_argument("-o", "--output", required=True, help="output file, *.nc or *.zarr")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a catalog parameter (e.g. size=tiny, model=pangu), given to every entry that declares it",
    )
    parser.add_argument("--catalog", default=None, help="catalog YAML instead of the built-in one")
    parser.add_argument("--model", default=None, help="name for a 'model' coordinate in the output")
    parser.add_argument("--chunk-init", type=int, default=None, help="initial times per block")
    parser.add_argument("--device", default=None, help="torch device for the statistics (e.g. cuda)")
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS|local",
        help="score on a dask.distributed cluster: a scheduler address (tcp://host:8786), or 'local' for "
        "a LocalCluster on this machine; the blocks follow the forecast store's chunks",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        default=None,
        metavar="LEVEL",
        help="add <score>_low/_high bounds at this confidence (e.g. 0.9) from a block bootstrap over the "
        "initial times (needs at least 2); the summary prints the intervals; default: no intervals",
    )
    parser.add_argument(
        "--resamples",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap resamples for --confidence (default 1000)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed of the bootstrap resamples (default 0)"
    )
    parser.add_argument(
        "--rmse-average",
        default="per_init",
        metavar="{per_init,pooled}",
        help="per_init: RMSE of each initial time, then their mean (WeatherBench 2, the default); "
        "pooled: one RMSE over all initial times' cells together",
    )
    parser.add_argument(
        "--interior",
        nargs="?",
        const="default",
        default=None,
        metavar="KM",
        help="score the interior only: leave out the cells within KM km of the domain edge (default "
        "width 200 km, about 6 h of advection inwards at 10 m/s; workbench.scoring.interior); needs a "
        "projected x/y grid",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=_run)


def _masks(spec: str | None, truth, fc):
    if spec is None:
        return None
    if spec == "thresholds":
        from workbench.events import build_masks

        times = fc["valid_time"].values
        window = truth.sel(time=slice(times.min(), times.max()))
        return build_masks(window, thresholds="default", allow_empty=True).masks
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(
            f"No masks file at {spec!r}; give a netCDF/zarr file with a 'mask' variable or 'thresholds'."
        )
    return open_path(path)


def _masks_on_truth_grid(masks, truth, threshold: float | None):
    """Masks on another grid (the forecast's, or a third) as area fractions on the truth's, thresholded.

    Masks already on the truth's grid, or on no grid that can be told, are returned as they are (the
    scoring checks them and says what is wrong).
    """
    import numpy as np
    import xarray as xr

    from workbench.errors import GridError
    from workbench.regrid import MASK_THRESHOLD, grid_of, regrid_mask
    from workbench.sources.remote import cache_root

    da = masks["mask"] if isinstance(masks, xr.Dataset) and "mask" in masks.data_vars else masks
    if not isinstance(da, xr.DataArray):
        return masks
    try:
        source, target = grid_of(da), grid_of(truth)
    except GridError:
        return masks
    if source == target:
        return masks
    if da.dtype != bool and not (da.dtype.kind in "iu" and bool(np.isin(da.values, (0, 1)).all())):
        raise DataError(f"Masks to regrid must be bool (or 0/1 integers); these are {da.dtype}.")
    threshold = MASK_THRESHOLD if threshold is None else threshold
    out, _ = regrid_mask(da.astype(bool), truth, threshold=threshold, cache_dir=cache_root() / "regrid")
    return out.rename("mask")


def _bootstrap_options(args: argparse.Namespace) -> dict:
    """The RMSE convention and bootstrap arguments, checked before any data are read."""
    if args.rmse_average not in ("per_init", "pooled"):
        raise DataError(f"--rmse-average must be 'per_init' or 'pooled', not {args.rmse_average!r}.")
    if args.confidence is None:
        return {}
    if not 0 < args.confidence < 1:
        raise DataError(f"--confidence must be between 0 and 1 (e.g. 0.9), not {args.confidence:g}.")
    if args.resamples < 10:
        # fewer resamples cannot place a 5% or 95% percentile at all
        raise DataError(f"--resamples must be at least 10 (1000 is usual), not {args.resamples}.")
    return {"confidence": args.confidence, "n_resamples": args.resamples, "seed": args.seed}


def _edge_km(spec: str | None) -> float | None:
    """The --interior width in km (None: the whole domain), checked before any data are read."""
    if spec is None:
        return None
    from workbench.scoring.interior import DEFAULT_EDGE_KM, check_edge_km

    if spec == "default":
        return DEFAULT_EDGE_KM
    try:
        value = float(spec)
    except ValueError:
        raise DataError(f"--interior takes a width in km (e.g. 200), not {spec!r}.") from None
    try:
        return check_edge_km(value)
    except DataError:
        raise DataError(f"--interior must be a finite width of at least 0 km, not {spec!r}.") from None


def _run(args: argparse.Namespace) -> int:
    from workbench.scoring.decompose import decompose
    from workbench.scoring.io import SUFFIXES, write_scores

    output = check_output(args.output, args.overwrite, SUFFIXES)  # before the work, not after it
    if args.chunk_init is not None and args.chunk_init < 1:
        raise DataError(f"--chunk-init must be at least 1, not {args.chunk_init}.")
    bootstrap = _bootstrap_options(args)
    edge_km = _edge_km(args.interior)
    params = parse_params(args.param)
    forecast = open_source(args.forecast, params, args.catalog)
    truth = open_source(args.truth, params, args.catalog)
    from workbench.scoring.inputs import prepare_forecast

    forecast = prepare_forecast(forecast)
    if args.regrid is not None:
        from workbench.regrid import regrid
        from workbench.sources.remote import cache_root

        forecast = regrid(forecast, truth, args.regrid, cache_dir=cache_root() / "regrid")
    masks = _masks(args.masks, truth, forecast)
    if args.mask_threshold is not None and args.regrid is None:
        raise DataError("--mask-threshold applies to masks regridded with --regrid; add --regrid.")
    if args.regrid is not None and masks is not None:
        masks = _masks_on_truth_grid(masks, truth, args.mask_threshold)
    climatology = None if args.climatology is None else open_path(Path(args.climatology))
    client = None
    if args.scheduler:
        client = connect_scheduler(args.scheduler)
    try:
        scores = decompose(
            forecast if args.model is None else {args.model: forecast},
            truth,
            masks,
            climatology=climatology,
            chunk=None if args.chunk_init is None else {"init_time": args.chunk_init},
            client=client,
            device=args.device,
            variables=args.variables,
            progress=not args.quiet,
            rmse_average=args.rmse_average,
            edge_km=edge_km,
            **bootstrap,
        )
    finally:
        if client is not None:
            client.close()
    scores.attrs["forecast"] = args.forecast
    scores.attrs["truth"] = args.truth
    scores.attrs["masks"] = args.masks or "none"
    write_scores(scores, output, overwrite=args.overwrite)
    if not args.quiet:
        if edge_km is not None:
            print(f"interior only: cells at least {edge_km:g} km from the domain edge")
        units = _units(forecast, scores)
        _print_summary(scores, units)
        _print_intervals(scores, units)
        print(f"wrote {os.fspath(output)}")
    return 0


def _print_summary(scores, units: dict[str, str]) -> None:
    """Per variable, one row per region (all, extreme, non-extreme): the mean over lead times of the RMSE,
    in the variable's units, and the region's shares of the area and of the squared error."""
    if "extreme" not in scores["region"].values:
        return
    sel = scores.isel(model=0) if "model" in scores.dims else scores
    regions = [r for r in ("all", "extreme", "non_extreme") if r in sel["region"].values]
    print(
        "mean over lead times, per region (RMSE in the variable's units; shares of the area and of the error):"
    )
    print(f"{'variable':10s} {'region':12s} {'rmse':>10s} {'units':<8s} {'area %':>8s} {'error %':>8s}")
    for var in sel["variable"].values:
        row = sel.sel(variable=var).mean("lead_time", skipna=True)
        for region in regions:
            print(
                f"{var!s:10s} {region:12s} {float(row['rmse'].sel(region=region)):10.4g} "
                f"{units.get(str(var), '') or '?':<8s} "
                f"{100 * float(row['area_fraction'].sel(region=region)):8.2f} "
                f"{100 * float(row['error_share'].sel(region=region)):8.2f}"
            )


def _units(forecast, scores) -> dict[str, str]:
    """Units of each scored variable: the forecast's attribute, else the lexicon's ("" when neither)."""
    from workbench.lexicon import VARIABLES

    out = {}
    for v in scores["variable"].values:
        unit = str(forecast[str(v)].attrs.get("units", "")) if str(v) in forecast else ""
        info = VARIABLES.get(str(v))
        out[str(v)] = unit or (info.units if info is not None else "")
    return out


def _print_intervals(scores, units: dict[str, str]) -> None:
    """With bootstrap bounds: RMSE of each region (all, extreme, non-extreme) per variable and lead time,
    with intervals.

    Per lead time, not averaged over them: the mean of per-lead bounds is not an interval of the mean.
    """
    if "rmse_low" not in scores:
        return
    sel = scores.isel(model=0) if "model" in scores.dims else scores
    level = f"({100 * float(scores.attrs['confidence']):g}%)"
    names = [r for r in ("all", "extreme", "non_extreme") if r in sel["region"].values]
    print(f"rmse with {level[1:-1]} bootstrap intervals over initial times:")
    for var in sel["variable"].values:
        unit = units.get(str(var), "")
        for lead in sel["lead_time"].values:
            row = sel.sel(variable=var, lead_time=lead)
            cells = []
            for region in names:
                value, low, high = (
                    float(row[k].sel(region=region)) for k in ("rmse", "rmse_low", "rmse_high")
                )
                cells.append(
                    f"{region} {value:.4g} {unit} [{low:.4g}, {high:.4g}] {level}".replace("  ", " ")
                )
            print(f"{var!s:10s} {_lead_label(lead):>6s}  rmse " + "; ".join(cells))


def _lead_label(lead) -> str:
    import numpy as np

    hours = lead / np.timedelta64(1, "h") if isinstance(lead, np.timedelta64) else float(lead)
    return f"+{hours:g}h"
