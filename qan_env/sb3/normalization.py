"""Observation statistics as JSON: what a trained agent's inputs were normalised by.

SB3's ``VecNormalize`` keeps its statistics in a pickle (``vecnormalize.pkl``), which can
run code when it is read. The same statistics go to ``normalization.json`` beside it, and
everything that only evaluates a policy reads that file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stable_baselines3.common.vec_env import VecNormalize

from qan_env.files import write_atomically

NORMALIZATION_FILE = "normalization.json"


@dataclass(frozen=True)
class Normalization:
    """Observation statistics, frozen, applied as SB3's ``VecNormalize`` applies them:
    ``clip((x - mean) / sqrt(var + epsilon), -clip, clip)``."""

    mean: np.ndarray
    var: np.ndarray
    clip: float
    epsilon: float

    @classmethod
    def of(cls, venv: VecNormalize) -> Normalization:
        """A ``VecNormalize``'s statistics as they are now."""
        return cls(venv.obs_rms.mean, venv.obs_rms.var, venv.clip_obs, venv.epsilon)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        scaled = (observations - self.mean) / np.sqrt(self.var + self.epsilon)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)


def write_normalization(folder: Path, normalization: Normalization) -> Path:
    values = {
        "mean": normalization.mean.tolist(),
        "var": normalization.var.tolist(),
        "clip": normalization.clip,
        "epsilon": normalization.epsilon,
    }
    return write_atomically(Path(folder) / NORMALIZATION_FILE, json.dumps(values) + "\n")


def read_normalization(folder: Path) -> Normalization | None:
    """The folder's statistics, or None when it has no ``normalization.json``."""
    path = Path(folder) / NORMALIZATION_FILE
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text())
        mean, var = (np.asarray(values[key], dtype=np.float64) for key in ("mean", "var"))
        clip, epsilon = float(values["clip"]), float(values["epsilon"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a run's normalisation statistics: {error!r}") from None
    finite = np.isfinite(mean).all() and np.isfinite(var).all()
    if mean.shape != var.shape or mean.ndim != 1 or not finite or not (var >= 0).all():
        raise ValueError(
            f"{path} is not a run's normalisation statistics: mean and var must be lists of "
            f"the same length, finite, var >= 0"
        )
    if not (np.isfinite(clip) and clip > 0 and np.isfinite(epsilon) and epsilon > 0):
        raise ValueError(
            f"{path} is not a run's normalisation statistics: clip={clip} and "
            f"epsilon={epsilon} must be finite numbers > 0"
        )
    return Normalization(mean, var, clip, epsilon)
