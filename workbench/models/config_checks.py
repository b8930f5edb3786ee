"""Validation of a checkpoint's ``config``: names, variables, time step and network sizes.

A config that parses as JSON can still describe nothing buildable (a negative width, a zero time
step, a variable the lexicon does not know). :func:`validate_config` refuses such a config with one
line naming the key, the value and what is expected, before any network is built from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from workbench.errors import CheckpointError, DataError


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_config(config: Any, source: str) -> None:
    """Check the ``config`` of a checkpoint document.

    Parameters
    ----------
    config : Any
        The document's ``config`` value (a mapping when valid).
    source : str
        The config file, named in the error.

    Raises
    ------
    CheckpointError
        For a config that is not a mapping; a ``name`` or ``architecture`` that is not a non-empty
        string; ``variables`` that are not a non-empty list of distinct canonical names; forcings that
        are not strings; a ``time_step_hours`` that is not a finite number above zero; a ``net`` that
        is not a mapping, or holds an integer below 1 (a size), a number that is not finite or is
        negative, or a dropout rate outside [0, 1); a ``grid`` whose ``shape`` is not two positive
        integers.
    """
    from workbench import lexicon

    if not isinstance(config, Mapping):
        raise CheckpointError(f"{source}: the config must be a JSON object, not {type(config).__name__}.")
    for key in ("name", "architecture"):
        if not isinstance(config.get(key), str) or not config[key].strip():
            raise CheckpointError(
                f"{source}: config {key!r} must be a non-empty string, not {config.get(key)!r}."
            )
    variables = config.get("variables")
    if not isinstance(variables, list) or not variables or not all(isinstance(v, str) for v in variables):
        raise CheckpointError(
            f"{source}: config 'variables' must be a non-empty list of names, not {variables!r}."
        )
    if len(set(variables)) != len(variables):
        raise CheckpointError(f"{source}: config 'variables' repeats names: {variables}.")
    for name in variables:
        try:
            lexicon.info(name)
        except DataError:
            raise CheckpointError(
                f"{source}: config variable {name!r} is not a canonical name (such as t2m or z500)."
            ) from None
    forcings = config.get("forcings", [])
    if not isinstance(forcings, list) or not all(isinstance(f, str) for f in forcings):
        raise CheckpointError(f"{source}: config 'forcings' must be a list of names, not {forcings!r}.")
    from workbench.models.torch_model import FORCING_TIMES, input_channels

    if config.get("forcing_time", "input") not in FORCING_TIMES:
        raise CheckpointError(f"{source}: config 'forcing_time' must be one of {FORCING_TIMES}, not "
                              f"{config.get('forcing_time')!r}.")

    try:  # static inputs and the boundary block: names, width, variables
        input_channels(dict(config))
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    step = config.get("time_step_hours")
    if not _is_number(step) or not math.isfinite(step) or step <= 0:
        raise CheckpointError(f"{source}: config 'time_step_hours' must be a number above 0, not {step!r}.")
    net = config.get("net")
    if not isinstance(net, Mapping):
        raise CheckpointError(f"{source}: config 'net' must be a JSON object, not {type(net).__name__}.")
    for key, value in net.items():
        _check_net_value(f"net.{key}", value, source, rate="drop" in str(key))
    grid = config.get("grid")
    if grid is not None:
        shape = grid.get("shape") if isinstance(grid, Mapping) else None
        if not isinstance(grid, Mapping) or (
            shape is not None
            and not (
                isinstance(shape, list)
                and len(shape) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
            )
        ):
            raise CheckpointError(
                f"{source}: config 'grid.shape' must be two positive integers, not {shape!r}."
            )


def _check_net_value(key: str, value: Any, source: str, rate: bool) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_net_value(f"{key}[{i}]", item, source, rate)
        return
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, Mapping):
        for sub, item in value.items():
            _check_net_value(f"{key}.{sub}", item, source, rate)
        return
    if not _is_number(value):
        raise CheckpointError(f"{source}: config {key} must be a number, not {value!r}.")
    if isinstance(value, int) and value < 1 and not rate:
        raise CheckpointError(f"{source}: config {key} is a size and must be at least 1, not {value}.")
    if not math.isfinite(value) or value < 0:
        raise CheckpointError(f"{source}: config {key} must be a finite number >= 0, not {value!r}.")
    if rate and not value < 1:
        raise CheckpointError(
            f"{source}: config {key} is a dropout rate and must be in [0, 1), not {value!r}."
        )
