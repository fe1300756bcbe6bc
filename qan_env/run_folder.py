"""A run folder's own files: ``config.json`` (what a run ran, so that it can be evaluated on
exactly that), ``normalization.json`` (the observation statistics) and ``checksums.json``
(of the files that only SB3's pickle-based loaders read), all read without pickle.

It holds the full resolved ``EnvConfig`` (every field, not a preset's name: presets change),
the agent's settings and the package version. Written to a temporary name and renamed, so
a reader never sees half a file (``write_atomically``); read back through the same checks as
the env's arguments.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qan_env import __version__
from qan_env.config import EnvConfig, config_from_dict, with_overrides
from qan_env.files import replace_atomically

CONFIG_FILE = "config.json"
MODEL_FILE = "model.zip"
NORMALIZATION_FILE = "normalization.json"
CHECKSUM_FILE = "checksums.json"
CHECKPOINT_FOLDER = "checkpoint"


@dataclass(frozen=True)
class RunConfig:
    env: EnvConfig
    agent: dict[str, Any]
    version: str


def write_atomically(path: Path, text: str) -> Path:
    """``text`` into ``path`` whole or not at all (``replace_atomically``)."""
    return replace_atomically(path, lambda partial: partial.write_text(text))


def write_run_config(folder: Path, env: EnvConfig, agent: dict[str, Any]) -> Path:
    text = json.dumps({"version": __version__, "env": env.to_dict(), "agent": agent}, indent=2)
    return write_atomically(Path(folder) / CONFIG_FILE, text + "\n")


def read_run_config(folder: Path) -> RunConfig:
    """The run's config; a clear error for a folder without one (an older or foreign run)."""
    path = Path(folder) / CONFIG_FILE
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: {folder} is not a run folder of this version of qan_env "
            f"(a run folder records its whole env config there; older ones recorded only a "
            f"preset name, which can change). Train the run again to evaluate it."
        )
    values = json.loads(path.read_text())
    return RunConfig(config_from_dict(values["env"]), values["agent"], values["version"])


def saved_env(folder: Path, overrides: dict[str, Any]) -> EnvConfig:
    """The env a run folder recorded, with ``overrides`` on top, to evaluate on: it never
    downloads anything unless the overrides say ``download=True`` (a folder from elsewhere
    does not choose what this machine fetches)."""
    return with_overrides(read_run_config(folder).env, {"download": False, **overrides})


def model_folder(folder: Path) -> tuple[Path, str]:
    """Where a run's trained model lies, and a note when it is not the finished one: the
    run folder once training ended, else its last checkpoint (an interrupted run)."""
    folder = Path(folder)
    if (folder / MODEL_FILE).is_file():
        return folder, ""
    checkpoint = folder / CHECKPOINT_FOLDER
    if (checkpoint / MODEL_FILE).is_file():
        state = json.loads((checkpoint / "state.json").read_text())
        return checkpoint, (
            f"note: {folder} is unfinished (no {MODEL_FILE}): evaluating its last checkpoint, "
            f"after {len(state['episodes'])} episodes ({state['steps']} steps); "
            f"--resume the run to finish it"
        )
    raise FileNotFoundError(
        f"{folder} is unfinished and has no checkpoint yet (no {MODEL_FILE}, no "
        f"{CHECKPOINT_FOLDER}/{MODEL_FILE}): --resume the run, or wait for its first checkpoint"
    )


@dataclass(frozen=True)
class Normalization:
    """Observation statistics, frozen, applied as SB3's ``VecNormalize`` applies them:
    ``clip((x - mean) / sqrt(var + epsilon), -clip, clip)``."""

    mean: np.ndarray
    var: np.ndarray
    clip: float
    epsilon: float

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
    values = json.loads(path.read_text())
    mean, var = (np.asarray(values[key], dtype=np.float64) for key in ("mean", "var"))
    if mean.shape != var.shape or mean.ndim != 1 or not (var >= 0).all():
        raise ValueError(f"{path} is not a run's normalisation statistics")
    return Normalization(mean, var, float(values["clip"]), float(values["epsilon"]))


def policy_weights(model_zip: Path) -> dict[str, torch.Tensor]:
    """The policy's weights inside SB3's ``model.zip``, read with ``weights_only=True``:
    tensors only, no pickle (the archive's other entries, which are, are not read)."""
    with zipfile.ZipFile(model_zip) as archive:
        data = archive.read("policy.pth")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_checksums(folder: Path, names: list[str]) -> Path:
    """The sha256 of each named file of ``folder``, recorded when they are written."""
    sums = {name: file_digest(Path(folder) / name) for name in names}
    return write_atomically(Path(folder) / CHECKSUM_FILE, json.dumps(sums, indent=2) + "\n")


def changed_files(folder: Path) -> list[str]:
    """The files whose content is not what ``checksums.json`` recorded (all of them when
    there is no record)."""
    path = Path(folder) / CHECKSUM_FILE
    if not path.is_file():
        return ["(no checksums.json)"]
    sums = json.loads(path.read_text())
    return [
        name
        for name, digest in sums.items()
        if not (Path(folder) / name).is_file() or file_digest(Path(folder) / name) != digest
    ]
