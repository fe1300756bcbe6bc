"""A trained Stable-Baselines3 DQN, or an ensemble of them, as an evaluation ``Policy``,
loaded without pickle.

``model.zip`` is SB3's archive: its ``policy.pth`` entry holds the Q-network's weights as
tensors (read with ``weights_only=True``); its other entries are pickles and are not read.
An unfinished run's checkpoint holds the same weights in its ``agent.pt``.

An ensemble folder (``write_ensemble``) holds finished runs of one command, seeds apart, as
subfolders, named in its ``ensemble.json``, and a ``config.json`` of their shared env: it
acts on the mean of their Q-values, which averages out the part of each run's values that
is its own training noise (Averaged-DQN, Anschel et al. 2017, averages a run's own past
networks for the same reason).
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env.stacked_observations import StackedObservations
from stable_baselines3.dqn.policies import DQNPolicy

from qan_env.evaluation import TRAINED
from qan_env.files import write_atomically
from qan_env.run_folder import CONFIG_FILE, read_run_config, write_run_config
from qan_env.sb3.checkpoint import AGENT_FILE, MODEL_FILE, model_folder
from qan_env.sb3.normalization import NORMALIZATION_FILE, Normalization, read_normalization
from qan_env.tensors import load_tensors, read_bounded

#: The most bytes a policy's weights may take: a DQN's Q-network is some kilobytes; the
#: bound keeps an untrusted ``model.zip`` (a zip bomb, a tensor whose shape lies about its
#: storage) from taking the machine's memory before anything else is checked.
MAX_POLICY_BYTES = 64 * 2**20
#: An ensemble folder's list of its members, and the bounds it is read within (it is data
#: from wherever the folder came from: names only, each a subfolder of its own).
ENSEMBLE_FILE = "ensemble.json"
MAX_MEMBERS = 16
MEMBER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: What a member keeps of its run folder: the policy, its statistics, what it ran, how it went.
MEMBER_FILES = (CONFIG_FILE, MODEL_FILE, NORMALIZATION_FILE, "summary.json")


def policy_weights(model_zip: Path) -> dict[str, torch.Tensor]:
    """The policy's weights inside SB3's ``model.zip``, read with ``weights_only=True``:
    tensors only, no pickle (the archive's other entries, which are, are not read); at
    most ``MAX_POLICY_BYTES`` read, and every tensor dense over storage of its own size."""
    with zipfile.ZipFile(model_zip) as archive:
        try:
            entry = archive.getinfo("policy.pth")
        except KeyError:
            raise ValueError(f"{model_zip} has no policy.pth: not an SB3 model") from None
        if entry.file_size > MAX_POLICY_BYTES:
            raise ValueError(
                f"{model_zip}: policy.pth holds {entry.file_size:,} bytes, more than a "
                f"policy's weights take (at most {MAX_POLICY_BYTES:,})"
            )
        with archive.open(entry) as file:  # the size it states is not trusted either
            data = read_bounded(file, MAX_POLICY_BYTES, f"{model_zip}: policy.pth")
    return _weights(load_tensors(data, f"{model_zip}: policy.pth"), f"{model_zip}: policy.pth")


def checkpoint_policy_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The policy's weights in a checkpoint's ``agent.pt``, read as ``policy_weights``
    reads them (the file also holds the optimizer's state: twice the weights more)."""
    path = Path(checkpoint) / AGENT_FILE
    with open(path, "rb") as file:
        data = read_bounded(file, 3 * MAX_POLICY_BYTES, str(path))
    agent = load_tensors(data, str(path))
    if not isinstance(agent, dict) or "policy" not in agent:
        raise ValueError(f"{path} has no 'policy' entry: not a checkpoint's agent")
    return _weights(agent["policy"], str(path))


def _weights(weights: object, source: str) -> dict[str, torch.Tensor]:
    if not isinstance(weights, dict) or not all(
        isinstance(t, torch.Tensor) for t in weights.values()
    ):
        raise ValueError(f"{source} is not a dict of tensors")
    return weights


@dataclass(frozen=True)
class QNetwork:
    """One trained DQN's Q-network and the statistics its inputs were normalised by."""

    policy: DQNPolicy
    normalization: Normalization | None = None

    def q_values(self, stacked: np.ndarray) -> np.ndarray:
        """The Q-values of a ``[batch, k * n]`` stack of raw observations."""
        inputs = stacked if self.normalization is None else self.normalization(stacked)
        with torch.no_grad():
            return self.policy.q_net(torch.as_tensor(inputs, dtype=torch.float32)).numpy()

    @classmethod
    def load(cls, run_dir: Path, trust: bool = False) -> tuple[QNetwork, str]:
        """The network that ``agents/sb3_dqn.py`` saved in ``run_dir`` (of an interrupted
        run, its last checkpoint's, and a note that says so).

        A folder of an older version keeps its statistics only in ``vecnormalize.pkl``, a
        pickle, which can run code: it is read only with ``trust``.
        """
        folder, note = model_folder(run_dir)
        if (folder / MODEL_FILE).is_file():
            weights = policy_weights(folder / MODEL_FILE)
        else:  # an unfinished run's checkpoint
            weights = checkpoint_policy_weights(folder)
        layers = sorted(
            (int(key.split(".")[2]), tensor)
            for key, tensor in weights.items()
            if key.startswith("q_net.q_net.") and key.endswith(".weight")
        )
        inputs, actions = layers[0][1].shape[1], layers[-1][1].shape[0]
        policy = DQNPolicy(
            spaces.Box(-np.inf, np.inf, (inputs,), np.float32),
            spaces.Discrete(actions),
            lr_schedule=lambda _: 0.0,  # never trained here
            net_arch=[tensor.shape[0] for _, tensor in layers[:-1]],
        )
        policy.load_state_dict(weights)
        policy.set_training_mode(False)
        return cls(policy, cls._normalization(folder, trust)), note

    @staticmethod
    def _normalization(folder: Path, trust: bool) -> Normalization | None:
        normalization = read_normalization(folder)
        pickled = Path(folder) / "vecnormalize.pkl"
        if normalization is not None or not pickled.exists():
            return normalization
        if not trust:
            raise ValueError(
                f"{folder} keeps its normalisation statistics only in vecnormalize.pkl (a run "
                f"folder of an older version): a pickle, which can run code. Pass --trust if "
                f"the folder comes from a source you trust"
            )
        with open(pickled, "rb") as file:
            saved = pickle.load(file)  # a VecNormalize without its env; trusted above
        return Normalization.of(saved)


class SB3Policy:
    """A trained Stable-Baselines3 DQN, or an ensemble of them, acting greedily.

    It sees what it saw in training: the last ``k`` observations stacked by SB3's
    ``StackedObservations`` (the engine of ``VecFrameStack``; ``k`` is read off the
    network's input size), then normalised by the run's statistics, frozen; the action is
    the one of the highest Q-value, of the mean Q-value over an ensemble's networks (each
    normalising by its own run's statistics). Loading reads no pickle: the Q-network's
    weights come out of ``model.zip`` with ``weights_only=True`` into SB3's own
    ``DQNPolicy``, the statistics from ``normalization.json``.
    """

    def __init__(self, networks: Sequence[QNetwork], name: str = TRAINED, note: str = "") -> None:
        shapes = {(n.policy.observation_space.shape, n.policy.action_space.n) for n in networks}
        if len(shapes) != 1:
            raise ValueError(
                f"an SB3Policy takes one or more Q-networks of one input size and action "
                f"count; these have (input shape, actions) {sorted(shapes)}"
            )
        self.networks = list(networks)
        self.inputs = self.networks[0].policy.observation_space.shape[0]
        self.name = name
        self.note = note  # said when the model is not the run's finished one
        self.frames = None  # a StackedObservations, made for the first observation
        self.episode_started = False

    @classmethod
    def load(cls, run_dir: str | Path, name: str = TRAINED, trust: bool = False) -> SB3Policy:
        """The policy that ``agents/sb3_dqn.py`` saved in ``run_dir``, a run folder or an
        ensemble folder (``write_ensemble``); of an interrupted run, its last checkpoint's
        (``note`` says so)."""
        folder = Path(run_dir)
        members = ensemble_members(folder)
        if members is None:
            network, note = QNetwork.load(folder, trust)
            return cls([network], name, note)
        env = read_run_config(folder).env
        networks = []
        for member in members:
            if read_run_config(folder / member).env != env:
                raise ValueError(
                    f"{folder / member} ran on another env than its ensemble's "
                    f"{folder / CONFIG_FILE}: an ensemble's members share one env"
                )
            network, note = QNetwork.load(folder / member, trust)
            if note:
                raise ValueError(f"{folder / member} is not a finished run: {note}")
            networks.append(network)
        return cls(networks, name)

    def reset(self, seed: int) -> None:
        self.episode_started = False

    def stack(self, observation: np.ndarray) -> np.ndarray:
        """Push ``observation`` on the history; the stacked, raw ``[1, k * n]`` input."""
        batch = observation[None]
        if self.frames is None:
            single = spaces.Box(-np.inf, np.inf, observation.shape, np.float32)
            self.frames = StackedObservations(1, self.inputs // observation.shape[0], single)
        if self.episode_started:
            stacked, _ = self.frames.update(batch, np.array([False]), [{}])
        else:
            stacked = self.frames.reset(batch)
            self.episode_started = True
        return stacked.copy()  # the stack's own buffer changes with the next observation

    def q_values(self, stacked: np.ndarray) -> np.ndarray:
        """The Q-values the action is chosen by: of the one network, or the ensemble's mean."""
        return np.mean([network.q_values(stacked) for network in self.networks], axis=0)

    def act(self, observation: np.ndarray, step: int) -> int:
        return int(self.q_values(self.stack(observation)).argmax(axis=1)[0])


def ensemble_members(folder: Path) -> list[str] | None:
    """The member subfolders an ensemble folder's ``ensemble.json`` names; None for a
    folder without one (a run folder). Read as data: at most ``MAX_MEMBERS`` plain names,
    each a real subfolder (no path, no link)."""
    path = Path(folder) / ENSEMBLE_FILE
    if not path.is_file():
        return None
    with open(path, "rb") as file:
        text = read_bounded(file, 2**16, str(path))
    try:
        members = json.loads(text)["members"]
    except (ValueError, KeyError, TypeError):  # JSON errors are ValueErrors too
        members = None
    if (
        not isinstance(members, list)
        or not 1 <= len(members) <= MAX_MEMBERS
        or not all(isinstance(m, str) and MEMBER_NAME.fullmatch(m) for m in members)
        or len(set(members)) != len(members)
    ):
        raise ValueError(
            f"{path} is not an ensemble's list: an object whose 'members' lists 1 to "
            f"{MAX_MEMBERS} distinct subfolder names of letters, digits, '_' and '-'"
        )
    for member in members:
        if (folder / member).is_symlink() or not (folder / member).is_dir():
            raise ValueError(f"{path} names {member!r}, which is not a subfolder of {folder}")
    return members


def write_ensemble(output: Path, members: dict[str, Path], agent: dict[str, Any]) -> Path:
    """An ensemble folder at ``output`` (new or empty) of finished run folders, under the
    names given: each member's ``MEMBER_FILES`` copied into its subfolder, ``ensemble.json``
    naming them, and a ``config.json`` of their shared env with the ``agent`` settings.
    Refused, before anything is written, for an unfinished member or members of two envs."""
    envs = {}
    for name, folder in members.items():
        if not MEMBER_NAME.fullmatch(name):
            raise ValueError(f"member name {name!r}: letters, digits, '_' and '-' only")
        if not (Path(folder) / MODEL_FILE).is_file():
            raise ValueError(f"{folder} has no {MODEL_FILE}: only finished runs join an ensemble")
        envs[name] = read_run_config(folder).env
    first = next(iter(envs.values()))
    for name, env in envs.items():
        if env != first:
            raise ValueError(
                f"{members[name]} ran on another env than {next(iter(members.values()))}: "
                f"an ensemble's members are runs of one command, seeds apart"
            )
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise ValueError(f"{output} is not empty: an ensemble is written into a new folder")
    for name, folder in members.items():
        (output / name).mkdir(parents=True)
        for file in MEMBER_FILES:
            if (Path(folder) / file).is_file():
                shutil.copyfile(Path(folder) / file, output / name / file)
    write_run_config(output, first, agent, runs_here=False)  # its members ran
    listing = json.dumps({"members": list(members)}, indent=2) + "\n"
    return write_atomically(output / ENSEMBLE_FILE, listing)
