"""``workbench sample``: generate (or locate) the embedded sample data set."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sample`` sub-command."""
    parser = subparsers.add_parser(
        "sample",
        help="generate the embedded sample atmosphere (cached; instant once generated)",
        description="Generate the embedded sample data set into the cache directory "
        "($WORKBENCH_CACHE, default ~/.cache/workbench) and print where it lies.",
    )
    parser.add_argument(
        "--size",
        default="default",
        choices=("tiny", "default", "full", "long", "train", "validation"),
        help="sample size (default: default; README.md's table gives each one's grid, period and disk size)",
    )
    parser.add_argument("--cache-dir", default=None, help="cache directory (default: $WORKBENCH_CACHE)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from workbench.sample import ensure_sample

    paths = ensure_sample(args.size, cache_dir=args.cache_dir, progress=True)
    print(sample_summary(paths))
    return 0


def human_size(n_bytes: float) -> str:
    """``1536`` -> ``1.5 kB`` (decimal units, as ``du --si`` and file managers print them)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n_bytes < 1000 or unit == "TB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    raise AssertionError("unreachable")


def disk_size(path) -> int:
    """Bytes of a file, or of every file under a directory."""
    from pathlib import Path

    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def sample_summary(paths) -> str:
    """What ``workbench sample`` prints: the sample's folder, each part's path and size, and the total."""
    parts = [
        ("analysis (HRRR-like)", paths.hrrr),
        ("analysis (ERA5-like)", paths.era5),
        ("NWP forecast", paths.nwp),
        ("storm events", paths.storm_events),
        ("SPC reports", paths.spc_dir),
    ]
    sizes = {label: disk_size(path) for label, path in parts if path.exists()}
    width = max(len(label) for label, _ in parts)
    lines = [f"sample '{paths.size}' in {paths.root} ({human_size(disk_size(paths.root))} on disk)"]
    for label, path in parts:
        shown = human_size(sizes[label]) if label in sizes else "missing"
        lines.append(f"  {label:<{width}}  {shown:>9}  {path}")
    return "\n".join(lines)
