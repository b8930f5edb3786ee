"""``workbench models``: the model zoo - names, kinds, installed checkpoints, variables and time steps."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

#: What each registry kind means, for the listing.
KINDS = {
    "baseline": "baseline",
    "torch": "learned",
    "external": "external weights",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` sub-command."""
    parser = subparsers.add_parser(
        "models",
        help="list the model zoo (kind, installed checkpoints, variables, time steps)",
        description="List every model `workbench infer` can run: its kind (baseline, learned, or external "
        "weights you supply), the checkpoints installed for it ($WORKBENCH_CHECKPOINTS or the package's "
        "checkpoints/ folder), the variables it forecasts and its time steps.",
    )
    parser.add_argument(
        "--checkpoints",
        default=None,
        metavar="DIR",
        help="checkpoint folder to look in (default: $WORKBENCH_CHECKPOINTS or the shipped checkpoints)",
    )
    parser.set_defaults(func=_run)


def checkpoint_summary(name: str, directory: Path) -> tuple[list[str], list[str], list[str]]:
    """The checkpoint files, variables and time steps of a learned model's installed weights.

    Read from the checkpoints' JSON headers only, so listing the zoo loads no weights (nor torch).
    """
    from workbench.errors import CheckpointError
    from workbench.models.registry import find_checkpoints

    try:
        stems = find_checkpoints(name, directory)
    except CheckpointError:
        return [], [], []
    files, variables, steps = [], [], []
    for stem in stems:
        header = stem.with_suffix(".json")
        files.append(stem.name)
        try:
            config = json.loads(header.read_text()).get("config", {})
        except (OSError, ValueError):
            continue
        for v in config.get("variables", []):
            if v not in variables:
                variables.append(v)
        if "time_step_hours" in config:
            steps.append(float(config["time_step_hours"]))
    return files, variables, [f"{h:g} h" for h in sorted(steps)]


def _run(args: argparse.Namespace) -> int:
    from workbench.models.registry import CHECKPOINT_DIR, describe_models, model_entry

    directory = Path(args.checkpoints or os.environ.get("WORKBENCH_CHECKPOINTS") or CHECKPOINT_DIR)
    rows = []
    for name, description in describe_models(include_external=True).items():
        kind = model_entry(name).kind
        if kind == "torch":
            files, variables, steps = checkpoint_summary(name, directory)
            checkpoints = ", ".join(files) if files else f"none (train: workbench train {name})"
        elif kind == "external":
            files, variables, steps = [], [], []
            checkpoints = "supplied by you (see notebooks/05_real_data.ipynb)"
        else:
            files, variables, steps = [], [], []
            checkpoints = "-"
        rows.append((name, KINDS.get(kind, kind), checkpoints, variables, steps, description))
    width = max(len(r[0]) for r in rows)
    print(f"checkpoints folder: {directory}")
    for name, kind, checkpoints, variables, steps, description in rows:
        print(f"\n{name:<{width}}  {kind}: {description}")
        if kind != "baseline":
            print(f"{'':<{width}}  checkpoints: {checkpoints}")
        if variables:
            print(f"{'':<{width}}  variables:   {' '.join(variables)}")
        if steps:
            print(f"{'':<{width}}  time steps:  {', '.join(steps)}")
    return 0
