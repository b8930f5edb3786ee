"""Sufficient statistics of the one-pass scorer: which sums are kept, and how metrics follow from them.

For one field (an ``(init_time, lead_time)`` slice of a forecast) and one region :math:`R`, every
metric of :func:`workbench.scoring.decompose` is a ratio of weighted sums over the valid points
:math:`i \\in R` (forecast and truth both non-NaN), with area weights :math:`w_i` and the error of the
ensemble mean :math:`e_i = \\bar{f}_i - o_i`:

============  =========================================================
column        sum
============  =========================================================
``sw``        :math:`\\sum w_i`
``swe``       :math:`\\sum w_i e_i`
``swae``      :math:`\\sum w_i |e_i|`
``swe2``      :math:`\\sum w_i e_i^2`
``n_valid``   number of valid points (unweighted)
``n_nan``     number of points skipped because forecast or truth is NaN
``swfa2``     :math:`\\sum w_i (\\bar{f}_i - c_i)^2` (with a climatology :math:`c`)
``swoa2``     :math:`\\sum w_i (o_i - c_i)^2`
``swfo``      :math:`\\sum w_i (\\bar{f}_i - c_i)(o_i - c_i)`
``swcrps``    :math:`\\sum w_i \\mathrm{CRPS}_{F,i}` (ensembles)
``swvar``     :math:`\\sum w_i \\mathrm{Var}_m[f_{i,m}]` (population variance over all members)
``swalea``    :math:`\\sum w_i \\mathrm{E}_a[\\mathrm{Var}_n f_{i,a,n}]` (two member dimensions)
``swepi``     :math:`\\sum w_i \\mathrm{Var}_a[\\mathrm{E}_n f_{i,a,n}]`
============  =========================================================

The sums add over fields, chunks and workers, which is what makes one pass (and a Dask reduction)
possible; the ratios are taken once at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE_COLUMNS = ("sw", "swe", "swae", "swe2", "n_valid", "n_nan")
ACC_COLUMNS = ("swfa2", "swoa2", "swfo")
ENSEMBLE_COLUMNS = ("swcrps", "swvar")
SPLIT_COLUMNS = ("swalea", "swepi")


@dataclass(frozen=True)
class StatLayout:
    """Which statistics are accumulated, and at which column of the statistics array.

    Parameters
    ----------
    acc : bool
        Accumulate the anomaly products for ACC (a climatology is given).
    n_weight : int
        Size of the epistemic (weight) member dimension; 1 when there is none.
    n_noise : int
        Size of the aleatoric (noise) member dimension, or of the single member dimension; 1 for a
        deterministic forecast.
    linear_mean : bool
        The variable is in decibels (reflectivity, dBZ): the ensemble mean :math:`\\bar f` whose error
        and anomaly are scored is :math:`10\\log_{10}\\mathrm{mean}_m 10^{f_m/10}`
        (:mod:`workbench.scoring.conventions`). Spread, CRPS and the spread split stay in dB around
        the arithmetic member mean: they measure the dispersion of the members in dB, and the law of
        total variance holds for that mean only.
    """

    acc: bool
    n_weight: int = 1
    n_noise: int = 1
    linear_mean: bool = False

    @property
    def n_members(self) -> int:
        return self.n_weight * self.n_noise

    @property
    def ensemble(self) -> bool:
        return self.n_members > 1

    @property
    def split(self) -> bool:
        return self.n_weight > 1

    @property
    def columns(self) -> tuple[str, ...]:
        cols = BASE_COLUMNS
        if self.acc:
            cols += ACC_COLUMNS
        if self.ensemble:
            cols += ENSEMBLE_COLUMNS
        if self.split:
            cols += SPLIT_COLUMNS
        return cols

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    def index(self, name: str) -> int:
        """Column of statistic ``name``, or -1 when it is not accumulated."""
        cols = self.columns
        return cols.index(name) if name in cols else -1
