"""Train the shipped checkpoints and score them on the held-out sample hours (run on a GPU).

This is the recipe behind ``workbench/checkpoints/`` (the skill notes, ``benchmarks/results/model_skill.md``, come
from ``benchmarks/model_skill.py``):

    python benchmarks/train_checkpoints.py --out artifacts/checkpoints --time-budget 400 --deadline 555

It generates the samples it needs (the independent ``train`` and ``validation`` periods, see
:data:`workbench.training.recipes.TRAINING_PERIODS`), trains every network of
:mod:`workbench.training.recipes` within the time budget (bf16 autocast on the GPU), every deep-ensemble
member (``--member-ids``: the members this process trains; several processes share one GPU), then writes
the RMSE table of the trained models against persistence and the NWP forecast. ``--deadline`` bounds the
whole run: the training budget shrinks to what is left after the sample is made, so the run always ends
with checkpoints and a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="checkpoint directory")
    p.add_argument("--size", default="default")
    p.add_argument("--extra-size", default="auto", help="further training sample (auto: the recipes' choice)")
    p.add_argument("--time-budget", type=float, default=400.0, help="training seconds for all networks")
    p.add_argument("--deadline", type=float, default=None, help="seconds for the whole run")
    p.add_argument("--reserve", type=float, default=75.0, help="seconds kept for evaluation when --deadline")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--net", default=None, help="JSON of network overrides per model (for smoke runs)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--options", default=None, help="JSON of further TrainConfig fields for every network")
    p.add_argument("--skill", default=None, help="write the RMSE table (markdown) here")
    p.add_argument("--pack", default=None, help="also pack the checkpoints into tar files in this directory")
    p.add_argument("--models", default="all")
    p.add_argument("--member-ids", default=None, help="comma-separated deep-ensemble members to train (default all)")
    p.add_argument("--no-evaluate", action="store_true", help="train only (score later, all models together)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()

    import torch

    from workbench.sample import ensure_sample
    from workbench.training import default_training_data, resolve_extra_size, train
    from workbench.training.evaluate import evaluate_checkpoints
    from workbench.training.recipes import MEMBERS, TRAINING_PERIODS

    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}", flush=True)
    from workbench.sample.params import SIZES

    periods = [p for p in TRAINING_PERIODS.get(args.size, ()) if p in SIZES]
    extra = None if periods else resolve_extra_size(args.size, args.extra_size)
    for size in periods or [args.size] + ([extra] if extra else []):
        ensure_sample(size, progress=False)
    t_sample = time.perf_counter() - t0
    data = default_training_data(args.size, args.extra_size)
    print(f"sample {args.size} (+ {extra}) ready in {t_sample:.0f} s; data {data.array.shape}; "
          f"{data.train_hours} training hours {data.train_period}, held out {data.heldout_period}", flush=True)
    budget = args.time_budget
    if args.deadline is not None:
        left = args.deadline - (time.perf_counter() - t0) - args.reserve
        budget = max(30.0, min(budget, left))
    print(f"training budget {budget:.0f} s", flush=True)
    nets = json.loads(args.net) if args.net else {}
    names = ["pangu", "climax", "hrheim"] if args.models == "all" else args.models.split(",")
    total_share = {"pangu": 3.2, "climax": 2.5, "hrheim": 1.5}
    share_sum = sum(total_share[n] for n in names)
    options = {"batch_size": args.batch_size} if args.batch_size else {}
    ids = [int(k) for k in args.member_ids.split(",")] if args.member_ids else list(range(MEMBERS))
    options["member_ids"] = ids
    options.update(json.loads(args.options) if args.options else {})
    results = []
    for name in names:
        # train() shares a model's budget among its networks and the members it trains one after another
        rs = train(name, args.out, data=data, time_budget_s=budget * total_share[name] / share_sum,
                   steps=args.steps, device=args.device, dtype=args.dtype, net=nets.get(name), progress=False,
                   **options)
        for r in rs:
            print(f"{Path(r.checkpoint).parent.name}/{Path(r.checkpoint).name}: {r.steps} steps in {r.seconds:.0f} s, {r.parameters:,} parameters, "
                  f"train loss {r.train_loss:.4f}, held-out loss {r.heldout_loss:.4f}", flush=True)
        results += rs
    if args.pack:  # the checkpoints first: they come back even if the evaluation fails
        pack = Path(args.pack)
        pack.mkdir(parents=True, exist_ok=True)
        for name in names:
            with tarfile.open(pack / f"{name}.tar", "w") as tar:
                for f in sorted(Path(args.out).rglob(f"{name}*.*")):
                    if f.suffix in (".json", ".safetensors"):
                        tar.add(f, arcname=str(f.relative_to(args.out)))
    if args.no_evaluate:
        print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)
        return 0
    try:
        table, markdown = evaluate_checkpoints(args.out, data, size=args.size, device=args.device, models=names)
    except Exception:  # report, then score on the CPU instead so the table still comes out
        traceback.print_exc()
        table, markdown = evaluate_checkpoints(args.out, data, size=args.size, device="cpu", models=names)
    print(markdown, flush=True)
    if args.skill:
        Path(args.skill).parent.mkdir(parents=True, exist_ok=True)
        Path(args.skill).write_text(markdown)
        table.to_csv(Path(args.skill).with_suffix(".csv"))
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
