"""The ``workbench`` command line: ``workbench sample / events / train / infer / score / serve``.

Each sub-command lives beside the code it drives (``workbench/<part>/command.py`` with a
``register(subparsers)`` function); this module only assembles them, so that importing the CLI stays
cheap and heavy libraries load only for the command that needs them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from workbench import __version__
from workbench.errors import WorkbenchError

_COMMAND_MODULES = (
    "workbench.sample.command",
    "workbench.events.command",
    "workbench.training.command",
    "workbench.inference.command",
    "workbench.scoring.command",
    "workbench.viz.command",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Extreme Weather Workbench: find where AI weather models fail, on extreme events.",
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    catalog = subparsers.add_parser("catalog", help="list the entries of the data catalog")
    catalog.add_argument("--path", help="catalog YAML to open instead of the built-in one")
    catalog.set_defaults(func=_list_catalog)
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _list_catalog(args: argparse.Namespace) -> int:
    from workbench.catalog import open_catalog

    cat = open_catalog(args.path)
    for name in cat:
        description = getattr(cat[name], "description", "") or ""
        print(f"{name:16s} {description.strip().splitlines()[0] if description.strip() else ''}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    0 on success, 2 for a usage or input error (one line on stderr, no traceback), 130 when
    interrupted; a bug propagates with its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        # An expected failure (bad input, missing file): one line and exit code 2, as argparse does for
        # bad arguments. Anything else is a bug and keeps its traceback.
        message = " ".join(str(exc).split())
        print(f"workbench {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"workbench {args.command}: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
