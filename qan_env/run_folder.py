"""A run folder's ``config.json``: what a run ran, so that it can be evaluated on exactly that.

It holds the full resolved ``EnvConfig`` (every field, not a preset's name: presets change),
the agent's settings and the package version. Written to a temporary name and renamed, so
a reader never sees half a file (``write_atomically``); read back through the same checks as
the env's arguments.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qan_env import __version__
from qan_env.config import EnvConfig, config_from_dict

CONFIG_FILE = "config.json"
MODEL_FILE = "model.zip"
CHECKPOINT_FOLDER = "checkpoint"


@dataclass(frozen=True)
class RunConfig:
    env: EnvConfig
    agent: dict[str, Any]
    version: str


def write_atomically(path: Path, text: str) -> Path:
    """``text`` into ``path`` whole or not at all: written to a temporary name, flushed to
    the disk, then renamed over ``path`` (a kill at any point leaves the old file or the
    new one, never a part)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)
    return path


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
