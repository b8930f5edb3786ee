"""``workbench score``: score a forecast against the truth, overall and on extreme events, into a file.

Examples::

    workbench score sample_nwp --truth sample_hrrr --param size=tiny --masks thresholds -o scores.nc
    workbench score forecasts --param model=pangu --truth sample_hrrr --masks masks.nc -o pangu.zarr
    workbench score /data/run.zarr --truth /data/analysis.zarr --scheduler tcp://host:8786 -o s.nc
    workbench score /data/graphcast_latlon.zarr --truth hrrr --masks masks.nc --regrid -o graphcast.nc
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
    parser.add_argument("--scheduler", default=None, help="address of a dask.distributed scheduler")
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


def _run(args: argparse.Namespace) -> int:
    from workbench.scoring.decompose import decompose
    from workbench.scoring.io import SUFFIXES, write_scores

    output = check_output(args.output, args.overwrite, SUFFIXES)  # before the work, not after it
    if args.chunk_init is not None and args.chunk_init < 1:
        raise DataError(f"--chunk-init must be at least 1, not {args.chunk_init}.")
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
        )
    finally:
        if client is not None:
            client.close()
    scores.attrs["forecast"] = args.forecast
    scores.attrs["truth"] = args.truth
    scores.attrs["masks"] = args.masks or "none"
    write_scores(scores, output, overwrite=args.overwrite)
    if not args.quiet:
        _print_summary(scores)
        print(f"wrote {os.fspath(output)}")
    return 0


def _print_summary(scores) -> None:
    """Per variable, the mean over lead times of RMSE overall and in extremes, and the error budget."""
    if "extreme" not in scores["region"].values:
        return
    from workbench.lexicon import VARIABLES

    sel = scores.isel(model=0) if "model" in scores.dims else scores
    print("mean over lead times (RMSE in each variable's units; area and error shares of the extreme region):")
    print(f"{'variable':10s} {'units':>7s} {'rmse all':>10s} {'rmse extreme':>13s} {'area %':>8s} {'error %':>8s}")
    for var in sel["variable"].values:
        row = sel.sel(variable=var).mean("lead_time", skipna=True)
        info = VARIABLES.get(str(var))
        units = info.units if info is not None else "?"
        print(
            f"{var!s:10s} {units:>7s} {float(row['rmse'].sel(region='all')):10.4g} "
            f"{float(row['rmse'].sel(region='extreme')):13.4g} "
            f"{100 * float(row['area_fraction'].sel(region='extreme')):8.2f} "
            f"{100 * float(row['error_share'].sel(region='extreme')):8.2f}"
        )
