"""What every agent script's command line shares, in one place.

The env a run trains on (a preset, the MDP options of ``--mdp``, then ``--env FIELD=VALUE``
overrides), the guard that keeps training off the held-out seeds, the default run folder,
and the check that ``--resume`` continues the run it was started as. Each refuses with
``SystemExit`` and a message that names the flag, before anything is written.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from qan_env.config import EnvConfig, instance_config, learning_mdp, make_config
from qan_env.evaluation import HELD_OUT_SEEDS
from qan_env.instances import InstanceSet
from qan_env.instances import parse as parse_instances
from qan_env.run_folder import read_run_config
from qan_env.training.config import resolve_device


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """Command-line ``FIELD=VALUE`` pairs as overrides: ``["epochs=5", "device=cpu"]`` ->
    ``{"epochs": 5, "device": "cpu"}``. Values are Python literals, or else plain strings."""
    overrides: dict[str, object] = {}
    for pair in pairs:
        field, separator, text = pair.partition("=")
        if not separator or not field:
            raise ValueError(f"{pair!r} is not FIELD=VALUE, such as epochs=5")
        try:
            overrides[field] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[field] = text  # a bare word such as cpu or cifar10
    return overrides


def agent_env(
    preset: str, mdp: str, overrides: list[str], instances: str | None = None
) -> EnvConfig:
    """The env an agent script trains on: ``preset`` with the options of ``mdp``
    (``"learning"``: ``learning_mdp``; ``"paper"``: none), then the command line's
    ``FIELD=VALUE`` overrides on top; with ``instances`` (a set's name), the set's train
    split with its own preset and MDP instead, the overrides on top. A bad one exits
    naming ``--env`` (or ``--instances``)."""
    if instances is not None:
        try:
            return instance_config(f"{instances}:train", **parse_overrides(overrides))
        except ValueError as error:
            flag = "--instances" if "instances=" in str(error) else "--env"
            raise SystemExit(f"{flag}: {error}") from error
    try:
        options = learning_mdp(make_config(preset)) if mdp == "learning" else {}
        return make_config(preset, **{**options, **parse_overrides(overrides)})
    except ValueError as error:
        raise SystemExit(f"--env: {error}") from error


def instance_set(name: str) -> InstanceSet:
    """The instance set called ``name``; an unknown one exits naming ``--instances``."""
    try:
        return parse_instances(f"{name}:train")[0]
    except ValueError as error:
        raise SystemExit(f"--instances: {error}") from error


def device_here(config: EnvConfig) -> torch.device:
    """The device ``config`` trains on, on this machine; a GPU it lacks exits naming ``--env``."""
    try:
        return resolve_device(config.device)
    except ValueError as error:
        raise SystemExit(f"--env: {error}") from error


def check_training_seeds(seeds: Iterable[int], how: str) -> None:
    """Exit when a training env would be seeded with a held-out evaluation seed; ``how``
    says how the flags make the seeds (for the message)."""
    if set(seeds) & set(HELD_OUT_SEEDS):
        raise SystemExit(
            f"{how} is a held-out evaluation seed ({HELD_OUT_SEEDS[0]}-{HELD_OUT_SEEDS[-1]}): "
            f"training on it would leak into the evaluation"
        )


def default_output(agent: str, name: str, seed: int) -> Path:
    """``runs/<agent>/<name>-seed<seed>`` (the preset's or instance set's name): where a run
    goes unless ``--output`` says."""
    return Path("runs") / agent / f"{name}-seed{seed}"


def check_resume(folder: Path, config: EnvConfig, settings: dict[str, Any]) -> None:
    """Exit unless the run in ``folder`` trained on ``config`` with these agent
    ``settings`` (its ``--flags``, by field name): ``--resume`` continues a run with the
    arguments it was started with."""
    try:
        saved = read_run_config(folder)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"--resume: {error}") from error
    changed = ["env config"] if saved.env != config else []
    changed += [
        f"--{name.replace('_', '-')}"
        for name, value in settings.items()
        if saved.agent.get(name) != value
    ]
    if changed:
        raise SystemExit(
            f"--resume: {folder} ran with another {' and '.join(changed)} (its config.json): "
            f"resume it with the arguments it was started with"
        )
