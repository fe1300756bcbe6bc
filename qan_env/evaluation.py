"""Run policies and fixed schedules on the env for several seeds, and record what they did.

Every policy here acts greedily: a trained model is evaluated with ``deterministic=True``
(epsilon 0), never with the exploration it was trained with, and it is reported beside a
random policy over the same actions and beside fixed schedules, on the same seeds.
"""

from __future__ import annotations

import math
import pickle
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from gymnasium import spaces

from qan_env.env import LRScheduleEnv
from qan_env.run_folder import (
    MODEL_FILE,
    Normalization,
    model_folder,
    policy_weights,
    read_normalization,
)
from qan_env.schedules import LRSchedule

#: Seeds kept for evaluation: no training episode and no tuning uses them.
HELD_OUT_SEEDS: tuple[int, ...] = tuple(range(1000, 1010))
#: Seeds on which a baseline's settings are tuned (never the held-out ones).
TUNING_SEEDS: tuple[int, ...] = (0, 1, 2)


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
    heldout_losses: list[float] = field(default_factory=list)  # with a held-out set only
    epochs: list[int] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    diverged: bool = False

    @property
    def episode_return(self) -> float:
        return sum(self.rewards)

    def accuracy_at(self, epoch: int) -> float:
        """Test accuracy after ``epoch``; a run that diverged before it keeps its last
        evaluated accuracy (as ``final_accuracy`` does); NaN when that epoch was not
        evaluated."""
        if epoch in self.epochs:
            return self.test_accuracy[self.epochs.index(epoch)]
        if self.diverged and self.epochs and epoch > self.epochs[-1]:
            return self.test_accuracy[-1]
        return math.nan

    @property
    def final_accuracy(self) -> float:
        """The last evaluated test accuracy (NaN when none was); of a run that diverged, the
        last one before it diverged."""
        return self.test_accuracy[-1] if self.test_accuracy else math.nan


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
        policy,
        normalization: Normalization | None = None,
        name: str = "DQN (greedy)",
        note: str = "",
    ) -> None:
        self.policy = policy
        self.normalization = normalization
        self.name = name
        self.note = note  # said when the model is not the run's finished one
        self.frames = None  # a StackedObservations, made for the first observation
        self.episode_started = False

    @classmethod
    def load(
        cls, run_dir: str | Path, name: str = "DQN (greedy)", trust: bool = False
    ) -> SB3Policy:
        """The policy that ``agents/sb3_dqn.py`` saved in ``run_dir``; of an interrupted
        run, its last checkpoint's (``note`` says so).

        A folder of an older version keeps its statistics only in ``vecnormalize.pkl``, a
        pickle, which can run code: it is read only with ``trust``.
        """
        from stable_baselines3.dqn.policies import DQNPolicy

        folder, note = model_folder(run_dir)
        weights = policy_weights(folder / MODEL_FILE)
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
        return Normalization(saved.obs_rms.mean, saved.obs_rms.var, saved.clip_obs, saved.epsilon)

    def reset(self, seed: int) -> None:
        self.episode_started = False

    def model_input(self, observation: np.ndarray) -> np.ndarray:
        """Push ``observation`` on the history; the stacked, normalised ``[1, k * n]`` input."""
        from stable_baselines3.common.vec_env.stacked_observations import StackedObservations

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


def run_episode(env: LRScheduleEnv, policy: Policy | LRSchedule, seed: int) -> EpisodeRecord:
    """One whole episode from ``reset(seed=seed)``; an ``LRSchedule`` sets the lr directly."""
    core: LRScheduleEnv = env.unwrapped
    observation, _ = env.reset(seed=seed)
    record = EpisodeRecord(policy.name, seed)
    if not isinstance(policy, LRSchedule):
        policy.reset(seed)
    total_steps = core.steps_per_episode
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
        if "heldout_loss" in info:
            record.heldout_losses.append(info["heldout_loss"])
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


def best_of(
    env: LRScheduleEnv, schedules: list[LRSchedule], seeds: list[int]
) -> tuple[LRSchedule, list[EpisodeRecord]]:
    """The schedule with the highest mean final test accuracy on ``seeds`` (tuning seeds,
    never the held-out ones), and every episode that chose it."""
    records = evaluate(env, schedules, seeds)
    by_schedule = [records[i * len(seeds) : (i + 1) * len(seeds)] for i in range(len(schedules))]
    means = [statistics.fmean(r.final_accuracy for r in runs) for runs in by_schedule]
    return schedules[means.index(max(means))], records


def mean_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """The mean of independent values (one per seed) and the half-width of its Student-t
    confidence interval; the half-width is NaN for fewer than two values. For a paired
    comparison, pass the per-seed differences."""
    from scipy import stats

    mean = float(np.mean(values))  # NaN, not an error, when a value is NaN
    if len(values) < 2:
        return mean, math.nan
    sem = float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return mean, float(stats.t.ppf((1 + confidence) / 2, len(values) - 1)) * sem
