"""``workbench train``: train a model of the zoo on the sample and (optionally) report its skill."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    """Add ``workbench train`` to the CLI."""
    p = subparsers.add_parser(
        "train",
        help="train pangu / climax / hrheim (or all) on the embedded sample",
        description=(
            "Train a torch model on the first two thirds of the sample's hours (the rest is held out), plus "
            "the further hours of --extra-size, and save safetensors + JSON checkpoints. A rerun resumes an "
            "interrupted training."
        ),
    )
    p.add_argument("model", choices=["pangu", "climax", "hrheim", "all"], help="model to train")
    p.add_argument("--out", default=None, help="checkpoint directory (default: $WORKBENCH_CACHE/checkpoints)")
    p.add_argument("--size", default="default", help="sample size to train on (default: default)")
    p.add_argument("--extra-size", default="auto",
                   help="sample whose hours away from --size's period also train: auto (long for default, as "
                        "the shipped checkpoints), none, or a size")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="wall-clock budget shared by the networks (steps are fitted to it)")
    p.add_argument("--steps", type=int, default=None, help="maximum optimiser steps per network")
    p.add_argument("--batch-size", type=int, default=None, help="samples per step (default: the recipe's)")
    p.add_argument("--rollout-steps", type=int, default=None, help="steps of the multi-step loss")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"], help="autocast precision")
    p.add_argument("--evaluate", nargs="?", const="-", default=None, metavar="MARKDOWN",
                   help="after training, score the held-out hours (print, and write to MARKDOWN if given)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def _default_out() -> Path:
    from workbench._io import cache_root

    return cache_root() / "checkpoints"


def run(args: argparse.Namespace) -> int:
    from workbench.training import default_training_data, train
    from workbench.training.evaluate import evaluate_checkpoints

    out = Path(args.out) if args.out else _default_out()
    options = {k: v for k, v in {"batch_size": args.batch_size, "rollout_steps": args.rollout_steps,
                                 "lr": args.lr}.items() if v is not None}
    # the independent train/validation periods of the sample where it has them (see training.recipes)
    data = default_training_data(args.size, args.extra_size)
    results = train(args.model, out, data=data, time_budget_s=args.time_budget, steps=args.steps,
                    device=args.device, dtype=args.dtype, progress=not args.no_progress, **options)
    for r in results:
        print(f"{Path(r.checkpoint).name}: {r.steps} steps in {r.seconds:.0f} s, {r.parameters:,} parameters, "
              f"train loss {r.train_loss:.4f}, held-out loss {r.heldout_loss:.4f}"
              + (f" (resumed at step {r.resumed_from})" if r.resumed_from else ""))
    print(f"checkpoints in {out}")
    if args.evaluate is not None:
        models = ("pangu", "climax", "hrheim") if args.model == "all" else (args.model,)
        _, markdown = evaluate_checkpoints(str(out), data, size=args.size, device=args.device, models=models)
        print(markdown)
        if args.evaluate != "-":
            Path(args.evaluate).parent.mkdir(parents=True, exist_ok=True)
            from workbench._io import write_text

            write_text(args.evaluate, markdown)
    return 0
