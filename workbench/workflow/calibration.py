"""The calibrated settings of the default ensemble, kept in one file with the numbers they came from.

``workbench/checkpoints/ensemble_calibration.json`` holds, per learned model, the stochastic model-error
amplitudes (physical units, per step size and variable), their correlation length and time, and the
validation statistics they were derived from; and which model the default ensemble is built on. It is
written by ``python benchmarks/model_skill.py --calibrate`` (on the ``validation`` sample, never the test
period) and read by :func:`workbench.workflow.start.default_ensemble`. A user recalibrating for their own
model writes their own file and points ``$WORKBENCH_ENSEMBLE_CALIBRATION`` at it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from workbench._io import write_text
from workbench.errors import DataError

__all__ = ["CALIBRATION_FILE", "calibration_path", "load_calibration", "model_calibration", "save_calibration"]

#: The shipped calibration of the shipped checkpoints.
CALIBRATION_FILE = Path(__file__).resolve().parents[1] / "checkpoints" / "ensemble_calibration.json"


def calibration_path() -> Path:
    """The calibration file in use: ``$WORKBENCH_ENSEMBLE_CALIBRATION`` or the shipped one."""
    env = os.environ.get("WORKBENCH_ENSEMBLE_CALIBRATION", "").strip()
    return Path(env) if env else CALIBRATION_FILE


def load_calibration(path: Path | None = None) -> dict:
    """The calibration document (``{}`` when the file does not exist).

    Raises
    ------
    DataError
        When the file exists but is not a calibration document.
    """
    path = calibration_path() if path is None else Path(path)
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"ensemble calibration {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models", {}), dict):
        raise DataError(f"ensemble calibration {path} has no 'models' mapping")
    return doc


def model_calibration(name: str, path: Path | None = None) -> Mapping | None:
    """The calibrated settings of model ``name``, or None when it has none."""
    return load_calibration(path).get("models", {}).get(name)


def save_calibration(name: str, entry: Mapping, default_model: str | None = None, path: Path | None = None) -> Path:
    """Store ``entry`` as the calibration of model ``name`` (other models' entries are kept)."""
    path = calibration_path() if path is None else Path(path)
    doc = load_calibration(path)
    doc.setdefault("models", {})[name] = dict(entry)
    if default_model is not None:
        doc["default_model"] = default_model
    write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return path
