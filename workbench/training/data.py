"""Training data: the sample analysis as one array, split in time, with statistics of the training part.

The first ``train_fraction`` of the hours trains; the rest is held out for evaluation. Normalisation
statistics come from the training hours only, so nothing of the held-out period leaks into the model.
Training pairs never reach across the split: an input and all of its rollout targets lie in the training
hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
        Hourly times of the first axis.
    split
        Index of the first held-out time.
    normalization
        Statistics over the training hours.
    grid
        Spatial coordinates (for building forecasts and checking model grids).
    """

    array: np.ndarray
    times: pd.DatetimeIndex
    variables: tuple[str, ...]
    split: int
    normalization: Normalization
    source: xr.Dataset

    @property
    def train_period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.times[0], self.times[self.split - 1]

    @property
    def heldout_period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.times[self.split], self.times[-1]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.array.shape[-2:])  # type: ignore[return-value]

    def pair_starts(self, offset_hours: float, part: str = "train") -> np.ndarray:
        """Indices ``t`` with ``t`` and ``t + offset`` both inside the part (``train`` or ``heldout``)."""
        k = int(round(offset_hours / self.hours_per_index))
        lo, hi = (0, self.split) if part == "train" else (self.split, len(self.times))
        starts = np.arange(lo, hi - k)
        if len(starts) == 0:
            raise DataError(
                f"the {part} period ({hi - lo} hours) is too short for pairs {offset_hours} h apart; use a "
                "larger sample or a shorter time step / rollout"
            )
        return starts

    @property
    def hours_per_index(self) -> float:
        return float((self.times[1] - self.times[0]) / pd.Timedelta(hours=1))


def load_training_data(
    source: xr.Dataset | None = None,
    *,
    size: str = "default",
    variables: Sequence[str] = SAMPLE_VARIABLES,
    train_fraction: float = 2.0 / 3.0,
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
        Share of the hours used for training (the rest is held out).
    """
    if source is None:
        from workbench.sample import open_sample

        source = open_sample("hrrr", size=size)
    missing = [v for v in variables if v not in source.data_vars]
    if missing:
        raise DataError(f"the training data lacks {missing}; it has {sorted(map(str, source.data_vars))}")
    if not 0 < train_fraction < 1:
        raise DataError(f"train_fraction must be between 0 and 1, got {train_fraction}")
    times = pd.DatetimeIndex(source.time.values)
    if len(times) < 3:
        raise DataError("training needs at least three analysis times")
    steps = np.unique(np.diff(times.values))
    if len(steps) != 1:
        raise DataError("training needs equally spaced analysis times (hourly in the sample)")
    array = np.stack([np.asarray(source[v].transpose("time", ...).values, dtype=np.float32) for v in variables],
                     axis=1)
    if not np.isfinite(array).all():
        raise DataError("the training data holds NaN or infinite values")
    split = int(round(len(times) * train_fraction))
    train = source[list(variables)].isel(time=slice(0, split))
    normalization = Normalization.from_dataset(train, list(variables))
    return TrainingData(array, times, tuple(variables), split, normalization, source)
