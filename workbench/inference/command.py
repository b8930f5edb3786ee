"""``workbench infer``: run a model of the zoo and write its forecast to a zarr store (resumable)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.cli_inputs import open_path, parse_leads, parse_time_range, parse_times

if TYPE_CHECKING:
    import pandas as pd


def register(subparsers) -> None:
    """Add ``workbench infer`` to the CLI."""
    p = subparsers.add_parser(
        "infer",
        help="forecast with a model (pangu, climax, hrheim, persistence, climatology, nwp) into a zarr store",
        description=(
            "Forecast from the analysis at the given initial times and write (init_time, lead_time[, members], "
            "y, x) to a zarr store, block by block. Rerunning the same command resumes a killed run."
        ),
    )
    p.add_argument("model", help="registry name (see `python -c 'import workbench.models as m; print(m.list_models())'`)")
    p.add_argument("--store", default=None,
                   help="zarr store to write (resumed if it exists); default: the catalog's store for MODEL, "
                   "<cache>/forecasts/MODEL.zarr, which the 'forecasts' catalog entry (model=MODEL) reads")
    p.add_argument("--source", default=None,
                   help="initial data: a zarr/netCDF path or a catalog entry (default: the sample HRRR-like analysis)")
    p.add_argument("--size", default="default", help="sample size when --source is not given (default: default)")
    p.add_argument("--boundary", default=None,
                   help="lateral boundary for networks that take one: a file or catalog entry on the model grid "
                        "(an analysis with 'time' or a driving forecast with 'init_time'); default with the "
                        "sample: its NWP forecast from the same analysis")
    p.add_argument("--init", nargs="+", default=None, metavar="TIME", help="initial times (ISO)")
    p.add_argument("--init-range", nargs=3, default=None, metavar=("START", "END", "EVERY"),
                   help="initial times from START to END every EVERY (e.g. 2020-06-15 2020-06-20 12h)")
    p.add_argument("--leads", nargs="+", default=["1", "6", "24"], metavar="LEAD",
                   help="lead times: hours or timedeltas, or START:STOP:STEP hours inclusive (e.g. 1:24:1)")
    p.add_argument("--checkpoint", action="append", default=None,
                   help="weights to load (a file stem or directory); give several for a deep ensemble")
    p.add_argument("--weight-members", type=int, default=None, help="epistemic members (MC dropout)")
    p.add_argument("--noise-members", type=int, default=None, help="aleatoric members (perturbed initial states)")
    p.add_argument("--members", type=int, default=None, help="plain ensemble of perturbed states on a 'member' dim")
    p.add_argument("--noise-scale", type=float, default=0.05, help="perturbation amplitude in normalisation stds")
    p.add_argument("--length-scale", type=float, default=4.0, help="perturbation correlation length in grid cells")
    p.add_argument("--dropout", type=float, default=None, help="MC dropout rate (default: the layers' own)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the ensemble's dropout and perturbations")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp32", "tf32"],
                   help="precision (default auto: fp32, TF32 off; bf16 only for models shown accurate in it)")
    p.add_argument("--devices", type=int, default=None,
                   help="processes, one per GPU (or on the CPU), each forecasting a share of the initial times "
                   "into the one store (default 1; under torchrun the group torchrun started)")
    p.add_argument("--compile", nargs="?", const=True, default=False, metavar="MODE",
                   help="torch.compile the model steps (optionally with a mode, e.g. max-autotune)")
    p.add_argument("--batch-size", type=int, default=None, help="initial times per block (default 8)")
    p.add_argument("--member-batch", type=int, default=None,
                   help="noise members per block, one weight member each, so that --devices shares out the "
                   "members of an initial time too (default: all members of an initial time in one block)")
    p.add_argument("--single-step", action="store_true",
                   help="roll out with the shortest step only instead of hierarchical temporal aggregation")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store instead of resuming it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs and scripts)")
    p.set_defaults(func=run)


def _open_source(args):

    if args.source is None:
        from workbench.sample import open_sample

        # the sample's analysis (truth + analysis error) at its NWP initial times, as every model starts
        return open_sample("analysis", size=args.size)
    return _open_data(args.source, "--source")


def _open_data(name: str, option: str):
    from workbench.errors import CatalogError
    from workbench.lexicon import check_dataset

    path = Path(name)
    if path.exists():
        source = open_path(path)
    else:
        try:
            from workbench.catalog import open_catalog

            source = open_catalog()[name].read()
        except (KeyError, CatalogError, ImportError) as err:
            raise CatalogError(f"{option} {name!r} is neither an existing file nor a catalog entry ({err})") from err
    check_dataset(source, f"{option} {name!r}")  # a model fed degrees C as K forecasts nonsense
    return source


def _boundary(args, model, inits, leads):
    """The driving boundary of networks that take one: ``--boundary``, else the sample's NWP forecast."""
    from workbench.models.protocol import is_stepped, step_models

    models = model if isinstance(model, list) else [model]
    needs = any(getattr(m, "boundary_variables", ()) for mm in models if is_stepped(mm) for m in step_models(mm).values())
    if args.boundary is not None:
        return _open_data(args.boundary, "--boundary")
    if not needs or args.source is not None:
        return None  # run_forecast names what is missing, if anything
    from workbench.sample import open_sample
    from workbench.workflow.start import driving_boundary

    return driving_boundary(open_sample("nwp", size=args.size), inits, leads)


def _init_times(args) -> pd.DatetimeIndex | None:
    """The initial times asked for (checked before any data is opened), or None when none are given."""
    from workbench.errors import DataError

    if args.init and args.init_range:
        raise DataError("give either --init or --init-range, not both")
    if args.init:
        return parse_times(args.init, "--init")
    if args.init_range:
        return parse_time_range(*args.init_range)
    return None


def _no_init_times(source) -> Exception:
    from workbench.errors import DataError

    return DataError(
        f"no initial times: pass --init TIME ... or --init-range START END EVERY (the data covers "
        f"{str(source.time.values[0])[:16]} to {str(source.time.values[-1])[:16]})"
    )


def _model(args):
    from workbench.errors import DataError
    from workbench.models import load

    if args.checkpoint and len(args.checkpoint) > 1:
        return [load(args.model, checkpoint=c) for c in args.checkpoint]
    kwargs = {}
    if args.model == "nwp" and args.source is None:
        kwargs["size"] = args.size
    try:
        return load(args.model, checkpoint=args.checkpoint[0] if args.checkpoint else None, **kwargs)
    except KeyError as err:
        raise DataError(str(err.args[0]) if err.args else str(err)) from err


def _check_numbers(args: argparse.Namespace) -> None:
    """Counts at least 1, amplitudes finite and non-negative, a dropout rate in [0, 1)."""
    from workbench.errors import DataError

    for flag in ("weight_members", "noise_members", "members", "batch_size", "member_batch", "devices"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise DataError(f"--{flag.replace('_', '-')} must be at least 1, not {value}.")
    if not (math.isfinite(args.noise_scale) and args.noise_scale >= 0):
        raise DataError(f"--noise-scale must be a finite number >= 0, not {args.noise_scale}.")
    if not (math.isfinite(args.length_scale) and args.length_scale > 0):
        raise DataError(f"--length-scale must be a finite number > 0, not {args.length_scale}.")
    if args.dropout is not None and not (0 <= args.dropout < 1):
        raise DataError(f"--dropout must be a rate in [0, 1), not {args.dropout}.")


def _check_store(store: Path) -> None:
    """The store must be a zarr directory (to resume) or a new path in a writable directory."""
    import tempfile

    from workbench.errors import DataError

    if store.exists() and not store.is_dir():
        raise DataError(f"--store {store} is a file, not a zarr store (a directory).")
    parent = store.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:  # os.access says yes to root even on read-only mounts: try the real thing
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise DataError(f"--store {store} cannot be written in {parent} ({exc.strerror}).") from None


def run(args: argparse.Namespace) -> int:
    from workbench.errors import DataError
    from workbench.inference import EnsembleSpec, ZarrSink, run_forecast

    _check_numbers(args)
    leads = parse_leads(args.leads)  # before opening anything: a typo fails at once
    from workbench.models import list_models

    known = list_models(include_external=True)
    if args.model not in known:
        raise DataError(f"Unknown model {args.model!r}; known models: {known}.")
    if args.store:
        sink = ZarrSink(args.store, overwrite=args.overwrite)
    else:
        sink = ZarrSink.catalog(args.model, overwrite=args.overwrite)
    _check_store(sink.path)
    inits = _init_times(args)
    source = _open_source(args)
    if inits is None:
        raise _no_init_times(source)
    model = _model(args)
    members = None
    if args.members is not None:
        if args.weight_members or args.noise_members:
            raise DataError("--members makes a plain ensemble; do not combine it with --weight/--noise-members")
        members = args.members
    elif args.weight_members or args.noise_members:
        members = EnsembleSpec(
            weight_members=args.weight_members,
            noise_members=args.noise_members or 1,
            noise_scale=args.noise_scale,
            length_scale=args.length_scale,
            dropout=args.dropout,
            seed=args.seed,
        )
    fc = run_forecast(
        model,
        source,
        inits,
        leads,
        boundary=_boundary(args, model, inits, leads),
        members=members,
        device=args.device,
        dtype=args.dtype,
        compile=args.compile,
        batch_size=args.batch_size,
        member_batch=args.member_batch,
        sink=sink,
        hta=not args.single_step,
        progress=not args.no_progress,
        devices=args.devices,
    )
    if os.environ.get("RANK", "0") not in ("", "0"):
        return 0  # under torchrun the first process reports for the group
    dims = ", ".join(f"{k}: {v}" for k, v in fc.sizes.items())
    print(f"wrote {sink.path} ({dims}; variables {', '.join(map(str, fc.data_vars))})")
    return 0
