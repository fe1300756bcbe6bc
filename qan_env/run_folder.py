"""A run folder's ``config.json``: what a run ran, so that it can be evaluated on exactly that.

It holds the full resolved ``EnvConfig`` (every field, not a preset's name: presets change),
the agent's settings, the package version and what computed it (torch's version, the
device's kernels and the thread count, ``computed_on``: a rerun repeats the run bit for bit
only with the same, since float sums regroup with the thread count and round differently
with the kernels), as JSON.
Written to a side name and renamed, so a reader never sees half a file (``qan_env.files``);
read back through the same checks as the env's arguments. An agent's own files (an SB3
model, its checkpoints) are the agent's business (``qan_env.sb3``).
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from qan_env.config import EnvConfig, config_from_dict, with_overrides
from qan_env.files import write_atomically
from qan_env.training.config import computed_on, resolve_device
from qan_env.version import __version__

CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class RunConfig:
    env: EnvConfig
    agent: dict[str, Any]
    version: str


def write_run_config(
    folder: Path, env: EnvConfig, agent: dict[str, Any], runs_here: bool = True
) -> Path:
    """``runs_here``: the run computes on this machine, whose torch, kernels and thread count
    are recorded; False for a folder that computes nothing itself (an ensemble of runs, each
    recording its own), which records null."""
    values = {
        "version": __version__,
        "computed_on": computed_on(resolve_device(env.device)) if runs_here else None,
        "env": env.to_dict(),
        "agent": agent,
    }
    text = json.dumps(values, indent=2)
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
    try:
        values = json.loads(path.read_text())
        env, agent, version = values["env"], values["agent"], values["version"]
        if not (isinstance(env, dict) and isinstance(agent, dict)):
            raise TypeError("its env and agent entries are not objects")
        return RunConfig(config_from_dict(env), agent, str(version))
    except (ValueError, KeyError, TypeError) as error:  # JSON errors are ValueErrors too
        raise ValueError(f"{path} is not a run's config.json: {error}") from None


def saved_env(folder: Path, overrides: dict[str, Any]) -> EnvConfig:
    """The env a run folder recorded, with ``overrides`` on top, to evaluate on: it never
    downloads anything unless the overrides say ``download=True`` (a folder from elsewhere
    does not choose what this machine fetches)."""
    return with_overrides(read_run_config(folder).env, {"download": False, **overrides})


def lock_run_folder(folder: Path) -> IO:
    """Hold ``folder`` for this process (``fcntl.flock`` on its ``.lock``) until the
    returned file is closed or the process ends; a RuntimeError when another holds it:
    two runs writing into one folder would interleave its files."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    handle = open(Path(folder) / LOCK_FILE, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RuntimeError(
            f"{folder} is in use by another process (a run training into it): wait for it "
            f"to end, or give another --output"
        ) from None
    return handle
