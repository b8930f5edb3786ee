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
        "--size", default="default", choices=("tiny", "default", "full", "long", "train", "validation")
    )
    parser.add_argument("--cache-dir", default=None, help="cache directory (default: $WORKBENCH_CACHE)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from workbench.sample import ensure_sample

    paths = ensure_sample(args.size, cache_dir=args.cache_dir, progress=True)
    print(paths)
    return 0
