"""How each shipped model is trained: its networks, time steps and optimisation settings.

* ``pangu``: three Pangu-like networks with 1, 6 and 24 h steps, combined at inference by hierarchical
  temporal aggregation (Pangu-Weather also trains 3 h; the sample's short record makes the 1/6/24 set
  enough to reach every hourly lead with at most 1 + 3 + 5 calls).
* ``climax``: one ClimaX-like network conditioned on the lead time and trained on random leads of 1, 6
  and 24 h (as ClimaX trains on random leads); it runs as an HTA family over those leads. Its dropout
  (``drop_rate``) stays in the network so MC dropout can draw weight members from it.
* ``hrheim``: one HR-Heim-like network with the 1 h step of HRRR analyses, trained with a two-step
  rollout loss so that its own output is a fair input.

The ``budget`` is each network's share of the wall-clock time given to ``workbench train``.

Inputs (:data:`INPUTS`, see :mod:`workbench.models.inputs`): every network takes, besides its state, the
uniform time of day, the top-of-atmosphere insolation at each point, the static fields (orography,
land-sea mask, sine and cosine of latitude and longitude) and, being limited-area networks on the
HRRR-like grid, the lateral boundary: the coarse global state of :data:`BOUNDARY_VARIABLES` at the valid
time of the output in a strip of :data:`BOUNDARY_WIDTH_KM` along the edge.

Uncertainty: every network trains with dropout (:data:`DROP_RATE`), so MC dropout draws from a network
that learnt with it, and :data:`MEMBERS` independently initialised and shuffled copies (seeds 0, 1, ...)
make the deep ensemble that is the default epistemic ensemble. Members beyond the first are stored in
fp16 (:data:`MEMBER_STORAGE`, checksummed as written) under ``members/<k>/`` of the checkpoint directory, so
the shipped weights stay small.

Training data (:data:`TRAINING_PERIODS`): the ``train`` sample (eight weeks of another June, from its
own seed) trains, the ``validation`` sample (two weeks of a third June) is held out, and the ``default``
sample, the test period, is never seen. With samples older than version 3, which have no independent
periods, :data:`EXTRA_TRAINING` applies: the first two weeks of ``default`` plus the ``long`` sample's
hours from two days after the held-out week on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.errors import DataError
from workbench.models.inputs import STATIC
from workbench.models.registry import member_dir

__all__ = ["BOUNDARY_VARIABLES", "INPUTS", "MEMBERS", "RECIPES", "TRAINING_PERIODS", "Recipe", "member_dir", "recipes_for"]

#: Variables of the lateral boundary conditioning: those a coarse global model resolves (not rain,
#: reflectivity or gusts).
BOUNDARY_VARIABLES = ("t2m", "u10m", "v10m", "msl", "z500", "t850", "u850", "v850")
#: Width of the boundary strip; about two ERA5-like cells at the sample's latitudes, ten default cells.
BOUNDARY_WIDTH_KM = 240.0
#: Inputs every learned network takes (config keys of :func:`workbench.models.build`).
INPUTS: dict = {
    "forcings": ["hour_sin", "hour_cos", "toa_insolation"],
    "static": list(STATIC),
    "boundary": {"variables": list(BOUNDARY_VARIABLES), "width_km": BOUNDARY_WIDTH_KM},
}
#: Dropout rate of every network (attention/MLP dropout), so MC dropout samples a trained distribution.
DROP_RATE = 0.1
#: Members of the deep ensemble (independent seeds); the first is the deterministic model.
MEMBERS = 3
#: Storage of the shipped weights: fp16 halves them; loading casts back to float32.
MEMBER_STORAGE = "fp16"


@dataclass(frozen=True)
class Recipe:
    """One network to train.

    Attributes
    ----------
    model
        Registry name (architecture).
    stem
        Checkpoint file stem (``pangu_6h`` ...).
    overrides
        Top-level config overrides passed to :func:`workbench.models.build` (``time_step_hours``,
        ``lead_hours``, ``net``).
    train
        :class:`~workbench.training.loop.TrainConfig` fields.
    budget
        Relative share of the time budget.
    """

    model: str
    stem: str
    overrides: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    budget: float = 1.0


#: Sample size -> the sample whose further hours also train (see :func:`load_training_data`'s ``extra``);
#: used only with samples older than version 3, which have no independent training period.
EXTRA_TRAINING: dict[str, str] = {"default": "long"}
#: Sample size evaluated on -> (training size, validation size): independent periods with their own
#: seeds (sample version 3), so no weather of the test period is trained on.
TRAINING_PERIODS: dict[str, tuple[str, str]] = {"default": ("train", "validation")}

RECIPES: dict[str, list[Recipe]] = {
    "pangu": [
        Recipe("pangu", "pangu_1h", {"time_step_hours": 1.0, "net": {"drop_rate": DROP_RATE}},
               {"lr": 2e-3, "batch_size": 16}, 1.2),
        Recipe("pangu", "pangu_6h", {"time_step_hours": 6.0, "net": {"drop_rate": DROP_RATE}},
               {"lr": 2e-3, "batch_size": 16}, 1.0),
        Recipe("pangu", "pangu_24h", {"time_step_hours": 24.0, "net": {"drop_rate": DROP_RATE}},
               {"lr": 2e-3, "batch_size": 16}, 1.0),
    ],
    "climax": [
        Recipe(
            "climax",
            "climax",
            {"time_step_hours": 1.0, "lead_hours": [1.0, 6.0, 24.0], "net": {"drop_rate": DROP_RATE}},
            # on the two weeks alone 2000 steps left it behind persistence at 6 h and 12000 over-fitted
            {"lr": 1e-3, "batch_size": 16, "lead_hours": [1.0, 6.0, 24.0], "steps": 6000},
            2.5,
        )
    ],
    "hrheim": [
        Recipe("hrheim", "hrheim", {"time_step_hours": 1.0, "net": {"drop_rate": DROP_RATE}},
               {"lr": 2e-3, "batch_size": 8, "rollout_steps": 2}, 1.5)
    ],
}


def recipes_for(name: str) -> list[Recipe]:
    """The recipes of one model name, or of all for ``"all"``."""
    if name == "all":
        return [r for rs in RECIPES.values() for r in rs]
    if name not in RECIPES:
        raise DataError(f"no training recipe for {name!r}; choose one of {sorted(RECIPES)} or 'all'")
    return list(RECIPES[name])

