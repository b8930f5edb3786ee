"""Training data: the sample analysis as one array, split in time, with statistics of the training part.

The first ``train_fraction`` of the hours trains; the rest is held out for evaluation. Normalisation
statistics come from the training hours only, so nothing of the held-out period leaks into the model.
Training pairs never reach across the split: an input and all of its rollout targets lie in the training
hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError
from workbench.models.normalization import Normalization

#: The state variables of the sample that the shipped models forecast.
SAMPLE_VARIABLES = ("t2m", "u10m", "v10m", "msl", "tp", "refc", "gust", "z500", "t850", "u850", "v850")


@dataclass
class TrainingData:
    """The analysis as ``(time, variable, y, x)`` float32, its times and its train/held-out split.

    Attributes
    ----------
    array
        Physical units, channels in ``variables`` order.
    times
        Analysis times of the first axis: equally spaced runs, the training ones first and the held-out
        hours last (more than one training run when further analyses were added; see
        :func:`load_training_data`).
    variables
        Channel names.
    heldout
        Boolean per time: held out (``True``) or training (``False``).
    normalization
        Statistics over the training hours.
    source
        The analysis whose held-out hours evaluate the models.
    origin
        Where the hours came from (sample sizes), recorded in the checkpoints.
    boundary
        ``(time, len(boundary_variables), y, x)`` float32: the global analysis on the grid at each time
        (lateral boundary conditioning), or None.
    boundary_variables
        Its channels.
    """

    array: np.ndarray
    times: pd.DatetimeIndex
    variables: tuple[str, ...]
    heldout: np.ndarray
    normalization: Normalization
    source: xr.Dataset
    origin: dict = field(default_factory=dict)
    boundary: np.ndarray | None = None
    boundary_variables: tuple[str, ...] = ()

    @property
    def train_period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        train = self.times[~self.heldout]
        return train.min(), train.max()

    @property
    def heldout_period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        held = self.times[self.heldout]
        return held.min(), held.max()

    @property
    def train_periods(self) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """First and last time of each unbroken stretch of training hours."""
        return [(self.times[run[0]], self.times[run[-1]]) for run in self._runs(~self.heldout)]

    def _runs(self, in_part: np.ndarray) -> list[np.ndarray]:
        step = np.diff(self.times.values) == np.timedelta64(int(self.hours_per_index * 3600), "s")
        breaks = np.flatnonzero(~step | (in_part[1:] != in_part[:-1])) + 1
        return [run for run in np.split(np.arange(len(self.times)), breaks) if in_part[run[0]]]

    @property
    def train_hours(self) -> int:
        """Number of training analyses."""
        return int((~self.heldout).sum())

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.array.shape[-2:])  # type: ignore[return-value]

    def pair_starts(self, offset_hours: float, part: str = "train") -> np.ndarray:
        """Indices ``t`` such that ``t`` and every analysis up to ``offset_hours`` later lie, unbroken,
        in the part (``train`` or ``heldout``)."""
        k = int(round(offset_hours / self.hours_per_index))
        in_part = self.heldout if part == "heldout" else ~self.heldout
        # pairs never leave their run: a stretch of consecutive analyses of one part
        starts = np.concatenate([run[: max(len(run) - k, 0)] for run in self._runs(in_part)] or [np.zeros(0, int)])
        if len(starts) == 0:
            raise DataError(
                f"the {part} period ({int(in_part.sum())} hours) is too short for pairs {offset_hours} h apart; "
                "use a larger sample or a shorter time step / rollout"
            )
        return starts

    @property
    def hours_per_index(self) -> float:
        return float((self.times[1] - self.times[0]) / pd.Timedelta(hours=1))


def _check_variables(source: xr.Dataset, variables: Sequence[str], what: str) -> None:
    missing = [v for v in variables if v not in source.data_vars]
    if missing:
        raise DataError(f"{what} lacks {missing}; it has {sorted(map(str, source.data_vars))}")


def _channels(source: xr.Dataset, variables: Sequence[str], what: str) -> np.ndarray:
    _check_variables(source, variables, what)
    array = np.stack([np.asarray(source[v].transpose("time", ...).values, dtype=np.float32) for v in variables],
                     axis=1)
    if not np.isfinite(array).all():
        raise DataError(f"{what} holds NaN or infinite values")
    return array


def load_training_data(
    source: xr.Dataset | None = None,
    *,
    size: str = "default",
    variables: Sequence[str] = SAMPLE_VARIABLES,
    train_fraction: float = 2.0 / 3.0,
    extra: xr.Dataset | Sequence[xr.Dataset] | None = None,
    extra_size: str | None = None,
    gap_hours: float = 48.0,
    boundary_variables: Sequence[str] = (),
    global_analysis: xr.Dataset | Sequence[xr.Dataset] | None = None,
    heldout: xr.Dataset | None = None,
    heldout_size: str | None = None,
) -> TrainingData:
    """Load the sample (or ``source``) for training.

    Parameters
    ----------
    source
        An hourly analysis ``(time, y, x)``; by default the sample HRRR-like analysis of ``size``.
    size
        Sample size when ``source`` is None.
    variables
        Channels to load, in order.
    train_fraction
        Share of ``source``'s hours used for training (the rest is held out).
    extra
        Further analyses on the same grid that only train (more independent weather than one short
        period holds). Their hours within ``gap_hours`` of ``source``'s period are left out, so nothing
        of the held-out hours, nor of the weather just after them, is trained on.
    extra_size
        A sample size whose analysis is added as ``extra`` (``"long"``: the same run continued for
        eight weeks).
    gap_hours
        Hours kept clear around ``source``'s period in the ``extra`` analyses.
    heldout, heldout_size
        An independent analysis (or the sample size of one, e.g. ``validation``) that is held out
        whole; then every hour of ``source`` trains and ``train_fraction`` is not used.
    boundary_variables
        Variables of the lateral boundary conditioning (none: no boundary data).
    global_analysis
        The global analyses the boundary comes from, one per analysis (``source`` first, then each
        extra; one data set covering them all also does). By default the sample's ERA5-like analysis
        of ``size`` (and of ``extra_size``). Regridded onto the grid and interpolated to each hour with
        :mod:`workbench.models.inputs`, as at inference.

    Returns
    -------
    TrainingData
    """
    origin = {"size": size if source is None else None, "extra_size": extra_size, "heldout_size": heldout_size}
    if source is None:
        from workbench.sample import open_sample

        source = open_sample("hrrr", size=size)
    if heldout_size is not None:
        from workbench.sample import open_sample

        heldout = open_sample("hrrr", size=heldout_size)
    if heldout is not None:
        # an independent period evaluates: all of source trains, all of heldout is held out
        train_part = source
        source = heldout
        extra = [train_part] + ([] if extra is None else [extra] if isinstance(extra, xr.Dataset) else list(extra))
    if not 0 < train_fraction < 1:
        raise DataError(f"train_fraction must be between 0 and 1, got {train_fraction}")
    times = pd.DatetimeIndex(source.time.values)
    if len(times) < 3:
        raise DataError("training needs at least three analysis times")
    steps = np.unique(np.diff(times.values))
    if len(steps) != 1:
        raise DataError("training needs equally spaced analysis times (hourly in the sample)")
    array = _channels(source, variables, "the training data")
    split = 0 if heldout is not None else int(round(len(times) * train_fraction))
    extras = [] if extra is None else [extra] if isinstance(extra, xr.Dataset) else list(extra)
    if extra_size is not None:
        from workbench.sample import open_sample

        extras.append(open_sample("hrrr", size=extra_size))
    boundary = bool(boundary_variables)
    # the sample's global analyses in the order of the pieces (the held-out analysis first when given)
    sizes = ([heldout_size] if heldout_size else []) + [size] + ([extra_size] if extra_size else [])
    if boundary and global_analysis is None and (origin["size"] is None or (heldout is not None and not heldout_size)):
        raise DataError("boundary conditioning of your own analysis needs global_analysis= (on any grid)")
    globals_ = list(global_analysis) if isinstance(global_analysis, (list, tuple)) else (
        [global_analysis] if global_analysis is not None else [lambda s=s: _open_global(s) for s in sizes])
    # training blocks first, the held-out hours last: the statistics then read one block already in memory
    arrays, all_times = [array[:split]], [times[:split]]
    bnds = [_boundary(source, globals_, 0, boundary_variables, times)] if boundary else []
    gap = pd.Timedelta(hours=gap_hours)
    for i, more in enumerate(extras):
        what = f"extra training analysis {i + 1}"
        _check_variables(more, variables, what)
        if any(more.sizes.get(d) != source.sizes.get(d) for d in ("y", "x")):
            raise DataError(
                f"{what} is on a {more.sizes.get('y')} x {more.sizes.get('x')} grid, the training data on "
                f"{source.sizes.get('y')} x {source.sizes.get('x')}; regrid it first or leave it out"
            )
        more_times = pd.DatetimeIndex(more.time.values)
        if len(more_times) > 1 and np.unique(np.diff(more_times.values)).tolist() != steps.tolist():
            raise DataError(f"{what} is not spaced like the training data ({steps[0]})")
        keep = (more_times < times[0] - gap) | (more_times > times[-1] + gap)
        if not keep.any():
            raise DataError(
                f"{what} has no hours more than {gap_hours:g} h away from {times[0]} .. {times[-1]}; it would "
                "add nothing that is not already in (or next to) the held-out period"
            )
        arrays.append(_channels(more[list(variables)].isel(time=np.flatnonzero(keep)), variables, what))
        all_times.append(more_times[keep])
        if boundary:
            bnds.append(_boundary(more, globals_, i + 1, boundary_variables, more_times[keep]))
    origin["extra_analyses"] = len(extras)
    n_train = sum(len(t) for t in all_times)
    full = np.concatenate([*arrays, array[split:]]) if extras else array
    train = xr.Dataset({v: (("time", "y", "x"), full[:n_train, i]) for i, v in enumerate(variables)})
    bfull = None
    if boundary:  # same order as the state: the training runs, then the held-out hours
        bfull = np.concatenate([bnds[0][:split], *bnds[1:], bnds[0][split:]])
    return TrainingData(
        full,
        pd.DatetimeIndex(np.concatenate([t.values for t in [*all_times, times[split:]]])),
        tuple(variables),
        np.arange(len(full)) >= n_train,
        Normalization.from_dataset(train, list(variables)),
        source,
        origin,
        bfull,
        tuple(boundary_variables),
    )


def _open_global(size: str) -> xr.Dataset:
    from workbench.sample import open_sample

    return open_sample("era5", size=size)


def _boundary(piece: xr.Dataset, globals_: list, index: int, variables: Sequence[str], times) -> np.ndarray:
    """The global analysis on ``piece``'s grid at ``times``: regridded, then linear in time."""
    from workbench.models.inputs import BoundarySource, boundary_from_global

    glob = globals_[min(index, len(globals_) - 1)]
    glob = glob() if callable(glob) else glob
    gtimes = pd.DatetimeIndex(glob.time.values)
    pad = pd.Timedelta(hours=24)
    glob = glob.isel(time=np.flatnonzero((gtimes >= times[0] - pad) & (gtimes <= times[-1] + pad)))
    on_grid = boundary_from_global(glob, piece, variables)
    return BoundarySource(on_grid).fields(list(times.values), list(times.values), variables)
