"""Per-variable normalisation statistics (mean and standard deviation) of a model's channels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import xarray as xr

from workbench.errors import CheckpointError, DataError

__all__ = ["Normalization"]


@dataclass(frozen=True)
class Normalization:
    """Mean and standard deviation per variable; ``(x - mean) / std`` maps a field to order one.

    Attributes
    ----------
    mean, std : dict of str to float
        Statistics per canonical variable name.
    """

    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.mean) != set(self.std):
            raise DataError(
                f"Normalisation mean and std name different variables: {sorted(set(self.mean) ^ set(self.std))}."
            )
        bad = [k for k, v in self.std.items() if not np.isfinite(v) or v <= 0]
        if bad:
            raise DataError(f"Normalisation std must be finite and positive; not so for {bad}.")

    @classmethod
    def identity(cls, variables: Sequence[str]) -> Normalization:
        """Mean 0 and std 1 for every variable (an untrained model's placeholder)."""
        return cls({v: 0.0 for v in variables}, {v: 1.0 for v in variables})

    @classmethod
    def from_dataset(cls, data: xr.Dataset, variables: Sequence[str], min_std: float = 1e-6) -> Normalization:
        """Statistics over all dims of ``data`` for ``variables`` (one pass per variable, dask-friendly).

        A field that never varies (std below ``min_std``) gets std 1 so it cannot blow up.
        """
        missing = [v for v in variables if v not in data.data_vars]
        if missing:
            raise DataError(f"Cannot compute normalisation: variables {missing} are not in the data.")
        mean, std = {}, {}
        for name in variables:
            da = data[name].astype("float64")
            m = float(da.mean(skipna=True))
            s = float(da.std(skipna=True))
            if not np.isfinite(m) or not np.isfinite(s):
                raise DataError(f"Variable {name!r} has no finite values to normalise with.")
            mean[name], std[name] = m, (s if s > min_std else 1.0)
        return cls(mean, std)

    @classmethod
    def from_json(cls, obj: dict, source: str = "config") -> Normalization:
        """Read ``{"mean": {...}, "std": {...}}``; a malformed object raises CheckpointError."""
        try:
            return cls(
                {k: float(v) for k, v in obj["mean"].items()}, {k: float(v) for k, v in obj["std"].items()}
            )
        except (KeyError, TypeError, ValueError, AttributeError, DataError) as exc:
            raise CheckpointError(f"{source}: malformed normalisation statistics ({exc}).") from exc

    def to_json(self) -> dict:
        """The statistics as a JSON-ready dict."""
        return {"mean": dict(self.mean), "std": dict(self.std)}

    def arrays(self, variables: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std as float32 arrays in the order of ``variables``."""
        missing = [v for v in variables if v not in self.mean]
        if missing:
            raise DataError(f"No normalisation statistics for {missing}; known: {sorted(self.mean)}.")
        return (
            np.array([self.mean[v] for v in variables], dtype=np.float32),
            np.array([self.std[v] for v in variables], dtype=np.float32),
        )

    def tensors(self, variables: Sequence[str], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std shaped ``(1, C, 1, 1)`` for broadcasting over ``(batch, C, ny, nx)``."""
        mean, std = self.arrays(variables)
        return (
            torch.as_tensor(mean, device=device).view(1, -1, 1, 1),
            torch.as_tensor(std, device=device).view(1, -1, 1, 1),
        )
