"""Run policies and fixed schedules on the env for several seeds, and record what they did.

Every policy here acts greedily: a trained model is evaluated with ``deterministic=True``
(epsilon 0), never with the exploration it was trained with, and it is reported beside a
random policy over the same actions and beside fixed schedules, on the same seeds.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from qan_env.env import LRScheduleEnv
from qan_env.schedules import LRSchedule


class Policy(Protocol):
    """Chooses the env's actions. ``reset`` is called with the episode's seed."""

    name: str

    def reset(self, seed: int) -> None: ...

    def act(self, observation: np.ndarray, step: int) -> int: ...


@dataclass
class EpisodeRecord:
    """One evaluated episode: per step, and per evaluated epoch."""

    policy: str
    seed: int
    lrs: list[float] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)  # empty for an lr schedule
    rewards: list[float] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    diverged: bool = False

    @property
    def episode_return(self) -> float:
        return sum(self.rewards)

    def accuracy_at(self, epoch: int) -> float:
        """Test accuracy after ``epoch`` (NaN when that epoch was not evaluated)."""
        return self.test_accuracy[self.epochs.index(epoch)] if epoch in self.epochs else math.nan


class RandomPolicy:
    """Uniform over the env's actions, from its own generator seeded per episode."""

    name = "random"

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions
        self.rng = np.random.default_rng()

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, observation: np.ndarray, step: int) -> int:
        return int(self.rng.integers(self.n_actions))


class SB3Policy:
    """A trained Stable-Baselines3 model, acting greedily (``deterministic=True``).

    It sees what it saw in training: the last ``k`` observations stacked as SB3's
    ``VecFrameStack`` does (oldest first, zeros before the episode's first), then
    normalised with the saved ``VecNormalize`` statistics. ``k`` is read off the model's
    observation space.
    """

    def __init__(self, model, normalizer=None, name: str = "DQN (greedy)") -> None:
        self.model = model
        self.normalizer = normalizer
        self.name = name
        self.frames: np.ndarray | None = None

    @classmethod
    def load(cls, run_dir: str | Path, name: str = "DQN (greedy)") -> SB3Policy:
        """The ``model.zip`` and ``vecnormalize.pkl`` that ``agents/sb3_dqn.py`` wrote."""
        from stable_baselines3 import DQN

        run_dir = Path(run_dir)
        model = DQN.load(run_dir / "model.zip", device="cpu")
        normalizer = None
        if (run_dir / "vecnormalize.pkl").exists():
            with open(run_dir / "vecnormalize.pkl", "rb") as file:
                normalizer = pickle.load(file)  # VecNormalize's own format, without its env
            normalizer.training = False
        return cls(model, normalizer, name)

    def reset(self, seed: int) -> None:
        self.frames = None

    def model_input(self, observation: np.ndarray) -> np.ndarray:
        """Push ``observation`` on the history; the stacked, normalised ``[1, k * n]`` input."""
        if self.frames is None:
            stack = self.model.observation_space.shape[0] // observation.shape[0]
            self.frames = np.zeros((stack, observation.shape[0]), dtype=np.float32)
        self.frames = np.roll(self.frames, -1, axis=0)
        self.frames[-1] = observation
        stacked = self.frames.reshape(1, -1)
        if self.normalizer is not None:
            stacked = self.normalizer.normalize_obs(stacked)
        return stacked

    def act(self, observation: np.ndarray, step: int) -> int:
        action, _ = self.model.predict(self.model_input(observation), deterministic=True)
        return int(action[0])


def run_episode(env: LRScheduleEnv, policy: Policy | LRSchedule, seed: int) -> EpisodeRecord:
    """One whole episode from ``reset(seed=seed)``; an ``LRSchedule`` sets the lr directly."""
    core: LRScheduleEnv = env.unwrapped
    observation, _ = env.reset(seed=seed)
    record = EpisodeRecord(policy.name, seed)
    if not isinstance(policy, LRSchedule):
        policy.reset(seed)
    total_steps = math.ceil(core.total_iterations / core.config.iterations_per_step)
    terminated = truncated = False
    step = 0
    while not (terminated or truncated):
        if isinstance(policy, LRSchedule):
            outcome = core.step_lr(policy(step, total_steps))
        else:
            action = policy.act(observation, step)
            record.actions.append(action)
            outcome = env.step(action)
        observation, reward, terminated, truncated, info = outcome
        record.lrs.append(info["lr"])
        record.rewards.append(reward)
        record.train_losses.append(info["train_loss"])
        if "test_accuracy" in info:
            record.epochs.append(info["epoch"])
            record.test_accuracy.append(info["test_accuracy"])
            record.test_loss.append(info["test_loss"])
        record.diverged = info["diverged"]
        step += 1
    return record


def evaluate(
    env: LRScheduleEnv,
    policies: list[Policy | LRSchedule],
    seeds: list[int],
    progress: Callable[[EpisodeRecord], None] | None = None,
) -> list[EpisodeRecord]:
    """Every policy on every seed, on one env (its data set is loaded once)."""
    records = []
    for policy in policies:
        for seed in seeds:
            records.append(run_episode(env, policy, seed))
            if progress is not None:
                progress(records[-1])
    return records
