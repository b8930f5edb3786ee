"""``workbench events``: build extreme-event masks and the event table, and write them to files.

Examples::

    workbench events sample_hrrr --reports sample_reports --param size=tiny -o events.nc
    workbench events /data/hrrr_2020.zarr --reports StormEvents_details-2020.csv --spc spc/ -o ev.zarr
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench._io import atomic_write
from workbench.cli_inputs import check_output, open_source, parse_params, parse_time
from workbench.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``events`` sub-command."""
    parser = subparsers.add_parser(
        "events",
        help="build extreme-event masks from storm reports and thresholds (writes netCDF or zarr + CSV)",
        description="Build HR-Extreme-style cases from storm reports and threshold events against the "
        "truth, on the truth's grid and times; write the bool masks (event_type, time, y, x) and, beside "
        "them, the event table (<output>.events.csv) and HR-Extreme's index CSV (<output>.index.csv).",
    )
    parser.add_argument("truth", help="truth catalog entry (sample_hrrr, hrrr, era5) or zarr/netCDF path")
    parser.add_argument(
        "--reports",
        default=None,
        help="NCEI Storm Events details: catalog entry (sample_reports, storm_events) or CSV path",
    )
    parser.add_argument(
        "--spc", default=None, help="SPC local storm reports: directory or CSV file (or 'sample' for the sample's)"
    )
    parser.add_argument(
        "--thresholds",
        default="default",
        choices=("default", "percentile", "none"),
        help="threshold events: fixed physical thresholds, climatological percentiles, or none",
    )
    parser.add_argument(
        "--method",
        default="workbench",
        choices=("workbench", "hr-extreme"),
        help="case-building method: the workbench's (UTC times, out-of-sample thresholds) or HR-Extreme's "
        "exact steps 1-3 (its 17 types; the index CSV in its layout)",
    )
    parser.add_argument("--start", default=None, help="first time to use (ISO date), default: all")
    parser.add_argument("--end", default=None, help="last time to use (ISO date), default: all")
    parser.add_argument("-o", "--output", required=True, help="masks file, *.nc or *.zarr")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="catalog parameter")
    parser.add_argument("--catalog", default=None, help="catalog YAML instead of the built-in one")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.set_defaults(func=_run)


def _reports(spec: str | None, params: dict, catalog: str | None, table: str):
    if spec is None:
        return None
    path = Path(spec).expanduser()
    if path.exists():
        return path
    return open_source(spec, {**params, "table": table}, catalog)


def _run(args: argparse.Namespace) -> int:
    from workbench.events import build_masks
    from workbench.scoring.io import SUFFIXES, write_scores

    output = check_output(args.output, args.overwrite, SUFFIXES)  # before the work, not after it
    start = None if args.start is None else parse_time(args.start, "--start")
    end = None if args.end is None else parse_time(args.end, "--end")
    params = parse_params(args.param)
    truth = open_source(args.truth, params, args.catalog)
    if start is not None or end is not None:
        truth = truth.sel(time=slice(start, end))
    if truth.sizes.get("time", 0) == 0:
        raise DataError(f"No truth times between {args.start} and {args.end}; check --start/--end.")
    reports = _reports(args.reports, params, args.catalog, "storm_events")
    spc_spec = args.reports if args.spc == "sample" else args.spc
    spc = _reports(spc_spec, params, args.catalog, "spc") if spc_spec else None
    thresholds = None if args.thresholds == "none" else args.thresholds
    events = build_masks(
        truth, reports=reports, spc=spc, thresholds=thresholds, allow_empty=True, method=args.method
    )
    masks = events.masks.load()
    write_scores(masks.to_dataset(name="mask"), output, overwrite=args.overwrite)
    table_path = output.with_name(output.name + ".events.csv")
    atomic_write(table_path, lambda tmp: events.table.to_csv(tmp, index=False))
    if args.method == "hr-extreme":
        from workbench.events.hrextreme import write_hr_extreme_index

        write_hr_extreme_index(events.table, output.with_name(output.name + ".index.csv"))
    else:
        events.write_index_csv(output.with_name(output.name + ".index.csv"))
    counts = events.table["event_type"].value_counts()
    print(f"{len(events.table)} events on {masks.sizes['time']} times:")
    for name, count in counts.items():
        print(f"  {name:24s} {count}")
    print(f"wrote {output}, {table_path.name}, {output.name}.index.csv")
    return 0
