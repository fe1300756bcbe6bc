"""A trained Stable-Baselines3 DQN as an evaluation ``Policy``, loaded without pickle.

``model.zip`` is SB3's archive: its ``policy.pth`` entry holds the Q-network's weights as
tensors (read with ``weights_only=True``); its other entries are pickles and are not read.
An unfinished run's checkpoint holds the same weights in its ``agent.pt``.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env.stacked_observations import StackedObservations
from stable_baselines3.dqn.policies import DQNPolicy

from qan_env.evaluation import TRAINED
from qan_env.sb3.checkpoint import AGENT_FILE, MODEL_FILE, model_folder
from qan_env.sb3.normalization import Normalization, read_normalization
from qan_env.tensors import load_tensors, read_bounded

#: The most bytes a policy's weights may take: a DQN's Q-network is some kilobytes; the
#: bound keeps an untrusted ``model.zip`` (a zip bomb, a tensor whose shape lies about its
#: storage) from taking the machine's memory before anything else is checked.
MAX_POLICY_BYTES = 64 * 2**20


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


class SB3Policy:
    """A trained Stable-Baselines3 DQN, acting greedily (``deterministic=True``).

    It sees what it saw in training: the last ``k`` observations stacked by SB3's
    ``StackedObservations`` (the engine of ``VecFrameStack``; ``k`` is read off the
    network's input size), then normalised by the run's statistics, frozen. Loading reads
    no pickle: the Q-network's weights come out of ``model.zip`` with
    ``weights_only=True`` into SB3's own ``DQNPolicy``, the statistics from
    ``normalization.json``.
    """

    def __init__(
        self,
        policy: DQNPolicy,
        normalization: Normalization | None = None,
        name: str = TRAINED,
        note: str = "",
    ) -> None:
        self.policy = policy
        self.normalization = normalization
        self.name = name
        self.note = note  # said when the model is not the run's finished one
        self.frames = None  # a StackedObservations, made for the first observation
        self.episode_started = False

    @classmethod
    def load(cls, run_dir: str | Path, name: str = TRAINED, trust: bool = False) -> SB3Policy:
        """The policy that ``agents/sb3_dqn.py`` saved in ``run_dir``; of an interrupted
        run, its last checkpoint's (``note`` says so).

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
        return cls(policy, cls._normalization(folder, trust), name, note)

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

    def reset(self, seed: int) -> None:
        self.episode_started = False

    def model_input(self, observation: np.ndarray) -> np.ndarray:
        """Push ``observation`` on the history; the stacked, normalised ``[1, k * n]`` input."""
        batch = observation[None]
        if self.frames is None:
            single = spaces.Box(-np.inf, np.inf, observation.shape, np.float32)
            stack = self.policy.observation_space.shape[0] // observation.shape[0]
            self.frames = StackedObservations(1, stack, single)
        if self.episode_started:
            stacked, _ = self.frames.update(batch, np.array([False]), [{}])
        else:
            stacked = self.frames.reset(batch)
            self.episode_started = True
        stacked = stacked.copy()  # the stack's own buffer changes with the next observation
        if self.normalization is not None:
            stacked = self.normalization(stacked)
        return stacked

    def act(self, observation: np.ndarray, step: int) -> int:
        action, _ = self.policy.predict(self.model_input(observation), deterministic=True)
        return int(action[0])
