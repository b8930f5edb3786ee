"""Rollout plans: which model steps to run, in what order, to reach every requested lead time.

A plan is computed once on the host and then replayed on the device for every batch, so the device
loop has no decisions (and no host round-trips) in it. States are identified by the path of steps that
produced them (a tuple of step sizes); a state that is a prefix of several paths is computed once and
kept only while a later lead still needs it.

Two schedules:

* **hierarchical temporal aggregation** (Pangu-Weather): each lead time is reached with the fewest steps,
  largest step first (e.g. 31 h with 24/6/1-hour models is 24 + 6 + 1; :func:`schedule`); errors
  accumulate over fewer steps;
* **single step**: every lead is reached by repeating one step size (the smallest by default), the way
  most autoregressive models are run; kept for comparison.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.errors import DataError
from workbench.models.hta import fewest_steps


def schedule(lead: Any, steps: Sequence[Any]) -> list[pd.Timedelta]:
    """:func:`hta_schedule` on timedeltas: the fewest steps, longest first, that add up to ``lead``.

    ``lead`` and ``steps`` are timedelta-likes (or numbers of hours); the steps need not be whole hours
    (they are counted in units of their greatest common divisor).

    Raises
    ------
    DataError
        If ``lead`` is negative or not a sum of the steps.
    """

    def seconds(value: Any) -> int:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = pd.Timedelta(hours=value)
        return int(round(pd.Timedelta(value).total_seconds()))

    step_s = sorted({seconds(v) for v in steps}, reverse=True)
    if not step_s or step_s[-1] <= 0:
        raise DataError(f"Steps must be positive; got {list(steps)}.")
    lead_s = seconds(lead)
    if lead_s < 0:
        raise DataError(f"Lead time must not be negative; got {pd.Timedelta(seconds=lead_s)}.")
    unit = functools.reduce(math.gcd, step_s)
    if lead_s % unit:
        raise DataError(
            f"A lead time of {pd.Timedelta(seconds=lead_s)} cannot be reached with steps "
            f"{[str(pd.Timedelta(seconds=s)) for s in step_s]}."
        )
    try:
        units = fewest_steps(lead_s // unit, tuple(s // unit for s in step_s))
    except DataError as exc:
        raise DataError(
            f"A lead time of {pd.Timedelta(seconds=lead_s)} cannot be reached with steps "
            f"{[str(pd.Timedelta(seconds=s)) for s in step_s]}."
        ) from exc
    return [pd.Timedelta(seconds=u * unit) for u in units]



@dataclass(frozen=True)
class Op:
    """One instruction of a plan.

    ``kind`` is ``"step"`` (run the model of step ``dt`` on state ``src`` to make state ``dst``),
    ``"emit"`` (output state ``src`` as lead number ``lead``) or ``"free"`` (drop state ``src``).
    """

    kind: str
    src: tuple
    dst: tuple = ()
    dt: pd.Timedelta | None = None
    lead: int = -1


def greedy_path(lead: pd.Timedelta, steps: Sequence[pd.Timedelta]) -> list[pd.Timedelta]:
    """Fewest steps, largest first, that add up to ``lead`` (the HTA schedule, :func:`schedule`)."""
    path = schedule(lead, list(steps))
    if path is None or sum(path, pd.Timedelta(0)) != pd.Timedelta(lead):
        raise DataError(
            f"lead time {pd.Timedelta(lead)} cannot be reached with model steps "
            f"{[str(pd.Timedelta(s)) for s in steps]}; use lead times that are multiples of the smallest step"
        )
    return path


def single_step_path(lead: pd.Timedelta, step: pd.Timedelta) -> list[pd.Timedelta]:
    """``lead / step`` repetitions of ``step``."""
    lead, step = pd.Timedelta(lead), pd.Timedelta(step)
    n, rest = divmod(lead, step)
    if rest != pd.Timedelta(0):
        raise DataError(f"lead time {lead} is not a multiple of the model step {step}")
    return [step] * int(n)


def make_plan(
    lead_times: Sequence[pd.Timedelta],
    steps: Sequence[pd.Timedelta],
    *,
    hta: bool = True,
    single_step: pd.Timedelta | None = None,
) -> list[Op]:
    """The plan that produces every lead of ``lead_times`` (in order) from the initial state ``()``.

    Parameters
    ----------
    lead_times
        Requested leads (any order; ``emit`` ops carry their index in this sequence).
    steps
        Step sizes of the available models.
    hta
        Hierarchical temporal aggregation (True) or repeating one step (False).
    single_step
        The step to repeat when ``hta`` is False (default: the smallest).
    """
    steps = sorted({pd.Timedelta(s) for s in steps})
    if not steps:
        raise DataError("the model has no time step to roll out with")
    one = pd.Timedelta(single_step) if single_step is not None else steps[0]
    if not hta and one not in steps:
        raise DataError(f"single step {one} is not one of the model's steps {[str(s) for s in steps]}")
    paths = [
        tuple(greedy_path(lt, steps) if hta else single_step_path(lt, one)) for lt in map(pd.Timedelta, lead_times)
    ]
    order = sorted(range(len(paths)), key=lambda i: (sum(paths[i], pd.Timedelta(0)), paths[i]))
    ops: list[Op] = []
    alive: set[tuple] = {()}
    for pos, i in enumerate(order):
        path = paths[i]
        # Longest prefix already computed.
        k = max(j for j in range(len(path) + 1) if path[:j] in alive)
        for j in range(k, len(path)):
            ops.append(Op("step", src=path[:j], dst=path[: j + 1], dt=path[j]))
            alive.add(path[: j + 1])
        ops.append(Op("emit", src=path, lead=i))
        needed = {p[:j] for p in (paths[o] for o in order[pos + 1 :]) for j in range(len(p) + 1)}
        for state in sorted(alive - needed, key=len):
            ops.append(Op("free", src=state))
        alive &= needed
    return ops


def count_steps(ops: Sequence[Op]) -> dict[pd.Timedelta, int]:
    """Model calls per step size in a plan."""
    out: dict[pd.Timedelta, int] = {}
    for op in ops:
        if op.kind == "step":
            out[op.dt] = out.get(op.dt, 0) + 1
    return out
