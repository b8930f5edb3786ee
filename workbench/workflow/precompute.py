"""Make the shipped scores (:mod:`workbench.workflow.shipped`): the learned models' forecasts of the
dashboard's sample, made and scored exactly as the dashboard's pipeline does.

``python -m workbench.workflow.precompute --size tiny default [--out DIR]`` rewrites
``workbench/data/shipped-<size>.npz`` and ``.json``: about 5 minutes of CPU for ``tiny``; for ``default``
about 20 minutes on two cores, or a minute when the dashboard's cache already holds the learned models'
forecasts of the same checkpoints (they are resumed, not redone).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from workbench.errors import DataError
from workbench.workflow import pipeline
from workbench.workflow.shipped import SHIPPED_DIR, checkpoint_checksums, write_shipped

log = logging.getLogger(__name__)

__all__ = ["precompute"]


def _git_commit() -> str:
    """The commit of the checkout the package runs from ('' outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def precompute(
    size: str = "default",
    cache_dir: str | os.PathLike | None = None,
    directory: str | os.PathLike | None = None,
    models: Sequence[str] | None = None,
) -> tuple[Path, Path]:
    """Compute the learned models' scores of the dashboard's ``size`` sample and write the shipped files.

    Parameters
    ----------
    size : str
        Sample size.
    cache_dir : path, optional
        Cache root of the dashboard's products (default ``$WORKBENCH_CACHE``); forecasts found there are
        resumed.
    directory : path, optional
        Where to write (default the package's :data:`~workbench.workflow.shipped.SHIPPED_DIR`).
    models : sequence of str, optional
        Learned models (default: every registered one; each needs its checkpoint).

    Returns
    -------
    (Path, Path)
        The ``.npz`` and ``.json`` written.
    """
    import torch

    t0 = time.perf_counter()
    ctx = pipeline._context(size, cache_dir)
    root = ctx["root"]
    if pipeline.read_manifest(root) is None:
        # the masks the scores need; scored without any shipped scores, which are what is being made
        pipeline.build_baselines(size, cache_dir, use_shipped=False)
    names = list(models) if models is not None else pipeline.learned_models()
    missing = pipeline.missing_checkpoints(names)
    if missing:
        raise DataError(f"no checkpoint for {sorted(missing)}: {'; '.join(missing.values())}")
    checksums = {name: checkpoint_checksums(name) for name in names}
    for name in names:
        pipeline._run_learned(name, ctx, ctx["inits"], root / "forecasts" / f"{name}.zarr")
        log.info("shipped %s: %s forecast ready (%.1f s)", size, name, time.perf_counter() - t0)
    climatology, _ = pipeline._climatology(ctx)
    # a model's scores do not depend on the other models': scored alone, they equal the pipeline's
    scores = pipeline.score_learned(ctx, climatology, names).load()
    made_by = {
        "command": f"python -m workbench.workflow.precompute --size {size}",
        "git_commit": _git_commit(),
        "torch": torch.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "seconds": round(time.perf_counter() - t0, 1),
    }
    written = write_shipped(
        scores, size, ctx["inits"], ctx["leads"].tolist(), pipeline.PIPELINE_VERSION, checksums, made_by, directory
    )
    log.info("shipped %s: wrote %s (%d bytes)", size, written[0], written[0].stat().st_size)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench.workflow.precompute --size tiny default [--out DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Pre-compute the shipped checkpoints' scores on the embedded sample (package data)."
    )
    parser.add_argument("--size", nargs="+", default=["tiny", "default"], choices=("tiny", "default", "full"),
                        help="sample sizes to pre-compute (default: tiny default)")
    parser.add_argument("--out", default=None, help=f"folder to write to (default: {SHIPPED_DIR})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for size in args.size:
        for path in precompute(size, directory=args.out):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
