"""The ``workbench`` command line: ``workbench sample / events / train / infer / score / serve / models``.

Each sub-command lives beside the code it drives (``workbench/<part>/command.py`` with a
``register(subparsers)`` function); this module only assembles them, so that importing the CLI stays
cheap and heavy libraries load only for the command that needs them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from pathlib import Path

from workbench import __version__
from workbench.errors import WorkbenchError

_COMMAND_MODULES = (
    "workbench.sample.command",
    "workbench.events.command",
    "workbench.training.command",
    "workbench.inference.command",
    "workbench.models.command",
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
    completion = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash; zsh through bashcompinit)",
        description="Print a completion script for the workbench's commands and options. Enable it with "
        "`eval \"$(workbench completion bash)\"` (in ~/.bashrc to keep it).",
    )
    completion.add_argument("shell", choices=("bash",), help="the shell to complete in")
    completion.set_defaults(func=_completion)
    for sub in subparsers.choices.values():
        if any(action.dest in OUTPUT_DESTS for action in sub._actions):
            sub.add_argument(
                "--out-dir",
                default=None,
                metavar="DIR",
                help=f"folder for relative output paths (default: ${OUT_DIR_ENV} or {DEFAULT_OUT_DIR}/)",
            )
    return parser


#: Options that name a file a command writes: relative paths go under the output folder.
OUTPUT_DESTS = ("output", "evaluate")

#: Options that name a file an earlier command wrote: a relative path missing from the current folder is
#: looked up in the output folder (`score --masks events.nc` after `events -o events.nc`).
INPUT_DESTS = ("masks",)

#: Where relative output paths go unless --out-dir or $WORKBENCH_OUT_DIR says otherwise.
DEFAULT_OUT_DIR = "workbench-output"
OUT_DIR_ENV = "WORKBENCH_OUT_DIR"


def _place_outputs(args: argparse.Namespace) -> None:
    """Put relative output paths under the output folder (made if needed); absolute ones stay.

    A relative input path that only exists in the output folder (:data:`INPUT_DESTS`) is taken from there.
    """
    out_dir = Path(
        getattr(args, "out_dir", None) or os.environ.get(OUT_DIR_ENV) or DEFAULT_OUT_DIR
    ).expanduser()
    for dest in OUTPUT_DESTS:
        value = getattr(args, dest, None)
        if not isinstance(value, str) or value in ("", "-") or Path(value).expanduser().is_absolute():
            continue
        target = out_dir / value
        target.parent.mkdir(parents=True, exist_ok=True)
        setattr(args, dest, str(target))
    for dest in INPUT_DESTS:
        value = getattr(args, dest, None)
        relative = isinstance(value, str) and value and not Path(value).expanduser().is_absolute()
        if relative and not Path(value).exists() and (out_dir / value).exists():
            setattr(args, dest, str(out_dir / value))


def _completion(args: argparse.Namespace) -> int:
    print(bash_completion(build_parser()))
    return 0


def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A bash completion script for ``parser``: sub-commands, their options, and options' choices.

    A static script rather than argcomplete: no extra dependency, no Python start on every Tab, and
    nothing to register globally; it is regenerated from the parser, so it follows the options.
    """

    def options(p: argparse.ArgumentParser) -> list[str]:
        return [o for a in p._actions for o in a.option_strings if o.startswith("--") or len(o) == 2]

    def choice_cases(p: argparse.ArgumentParser) -> list[str]:
        cases = []
        for a in p._actions:
            if a.choices and a.option_strings and not isinstance(a.choices, dict):
                words = " ".join(str(c) for c in a.choices)
                cases.append(f'        {"|".join(a.option_strings)}) COMPREPLY=($(compgen -W "{words}" -- "$cur")); return;;')
        return cases

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    lines = [
        "# bash completion for `workbench` (generated by `workbench completion bash`)",
        "_workbench() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" i opts',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        case "${COMP_WORDS[i]}" in -*) ;; *) cmd="${COMP_WORDS[i]}"; break;; esac',
        "    done",
        '    case "$cmd" in',
        f'    "") opts="{" ".join(options(parser) + list(sub.choices))}";;',
    ]
    for name, p in sub.choices.items():
        lines.append(f"    {name})")
        cases = choice_cases(p)
        if cases:
            lines += ['        case "$prev" in', *[c.replace("        ", "        ", 1) for c in cases], "        esac"]
        positional = [a for a in p._actions if not a.option_strings and a.choices]
        words = options(p) + [str(c) for a in positional for c in a.choices]
        lines.append(f'        opts="{" ".join(words)}";;')
    lines += [
        "    esac",
        '    if [[ "$cur" == -* || -z "$cmd" ]]; then',
        '        COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
        "    else",
        '        COMPREPLY=($(compgen -W "$opts" -- "$cur") $(compgen -f -- "$cur"))',
        "    fi",
        "}",
        "complete -o default -F _workbench workbench",
    ]
    return "\n".join(lines)


def _one_line_warnings(command: str):
    """A ``warnings.showwarning`` that prints ``workbench CMD: warning: text`` and no source line.

    A :class:`~workbench.errors.DataNote` (reports skipped, cases outside the period) prints as ``note:``.
    """

    from workbench.errors import DataNote

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        # what the workbench did with the data, for information: not something to act on
        kind = "note" if issubclass(category, DataNote) else "warning"
        print(f"workbench {command}: {kind}: {text}", file=file or sys.stderr)

    return show


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
    # A Python warning is one line for the user (what happened, without the library's source line); the
    # process's own handler is restored afterwards (main() also runs inside tests and notebooks).
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(args.command)
        try:
            _place_outputs(args)
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
