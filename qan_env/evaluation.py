"""Run policies and fixed schedules on the env for several seeds, and record what they did.

Every policy here acts greedily: a trained model is evaluated with ``deterministic=True``
(epsilon 0, ``qan_env.sb3.SB3Policy``), never with the exploration it was trained with, and
it is reported beside a random policy over the same actions and beside the fixed schedules
of ``baselines`` (``qan_env.schedules``, and the paper's actions on a clock), on the same
seeds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from qan_env.actions import DECAY, RESTART
from qan_env.env import LRScheduleEnv
from qan_env.schedules import (
    Constant,
    Cosine,
    Exponential,
    LRSchedule,
    StepDecay,
    WarmRestarts,
)
from qan_env.training.config import computed_on

#: Seeds kept for evaluation: no training episode and no tuning uses them.
HELD_OUT_SEEDS: tuple[int, ...] = tuple(range(1000, 1010))
#: Seeds on which a baseline's settings are tuned (never the held-out ones).
TUNING_SEEDS: tuple[int, ...] = (0, 1, 2)

#: The names a comparison gives the trained policy, the cosine tuned on the tuning seeds,
#: and the trained policy's mean lr curve replayed open loop.
TRAINED = "DQN (greedy)"
TUNED = "cosine (tuned)"
REPLAY = "DQN mean lr, open loop"


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
    instance: str | None = None  # of an instance set; None: the env's own run
    label_noise: float | None = None  # the share of noisy labels the run drew, if it drew one
    lrs: list[float] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)  # empty for an lr schedule
    rewards: list[float] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    heldout_losses: list[float] = field(default_factory=list)  # with a held-out set only
    epochs: list[int] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    diverged: bool = False
    # torch, the device's kernels and the thread count that computed it (``computed_on``);
    # None in results written before it was recorded
    computed_on: str | None = None

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
        """The last evaluated test accuracy; of a run that diverged, the last one before it
        diverged, and 0 when it diverged before any (a failure counts, it is not dropped);
        NaN when none was evaluated otherwise."""
        if self.test_accuracy:
            return self.test_accuracy[-1]
        return 0.0 if self.diverged else math.nan


class LRController(Protocol):
    """Sets each step's lr from what the run has reported (a feedback baseline that sets
    the lr directly, through ``env.unwrapped.step_lr``). ``reset`` gets the episode's seed
    and the run's initial lr; ``lr`` the last info (the reset's before the first step)."""

    name: str

    def reset(self, seed: int, initial_lr: float) -> None: ...

    def lr(self, info: dict, step: int) -> float: ...


@dataclass
class Plateau:
    """torch's ``ReduceLROnPlateau`` on the held-out loss, from the run's initial lr: after
    each decision it is told the held-out loss, and cuts the lr by ``factor`` when that has
    not improved for ``patience`` decisions (torch's defaults are per epoch, 0.1 and 10;
    an episode here has a handful of decisions)."""

    factor: float = 0.5
    patience: int = 2
    name: str = "ReduceLROnPlateau"

    def reset(self, seed: int, initial_lr: float) -> None:
        self._optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=initial_lr)
        self._scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self._optimizer, mode="min", factor=self.factor, patience=self.patience
        )

    def lr(self, info: dict, step: int) -> float:
        if step > 0:  # the reset's loss is the start, not a decision's outcome
            self._scheduler.step(info["heldout_loss"])
        return self._optimizer.param_groups[0]["lr"]


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


@dataclass(frozen=True)
class ActionSchedule:
    """Take ``decay`` every step, and ``restart`` every ``restart_every`` steps (0: never).

    A policy (``qan_env.evaluation.Policy``) that ignores what it observes.
    """

    restart_every: int = 0

    @property
    def name(self) -> str:
        return f"restart every {self.restart_every}" if self.restart_every else "always decay"

    def reset(self, seed: int) -> None:
        """Nothing to reset: the actions depend on the step alone."""

    def act(self, observation: object, step: int) -> int:
        if self.restart_every and (step + 1) % self.restart_every == 0:
            return RESTART
        return DECAY


def restart_period(decay_rate: float, remaining: float = 0.01) -> int:
    """Decay steps that take the lr down to ``remaining`` of its restart value (90 at 5%)."""
    return math.ceil(math.log(remaining) / math.log(1.0 - decay_rate))


def baselines(
    initial_lr: float, decay_rate: float, action_mode: str, steps_per_episode: int
) -> list[LRSchedule | ActionSchedule]:
    """The fixed schedules a learned policy is compared with. With the paper's actions,
    "always decay" and "restart every k" take the env's own actions, k being the steps
    that decay the lr to 1%, or half the episode if that is shorter (so that it restarts
    at least once); with other action sets, "always decay" is the same lrs as a schedule
    (restarting on a clock is the paper's action set only)."""
    fixed: list[LRSchedule | ActionSchedule] = [
        Constant(initial_lr),
        StepDecay(initial_lr),
        Cosine(initial_lr),
        WarmRestarts(initial_lr),
    ]
    if action_mode != "paper":
        return [*fixed, Exponential(initial_lr, decay_rate)]
    every = max(1, min(restart_period(decay_rate), steps_per_episode // 2))
    return [*fixed, ActionSchedule(), ActionSchedule(restart_every=every)]


def run_episode(
    env: LRScheduleEnv,
    policy: Policy | LRSchedule | LRController,
    seed: int,
    instance: str | None = None,
) -> EpisodeRecord:
    """One whole episode from ``reset(seed=seed)`` (of ``instance``, by name, in an env of an
    instance set); an ``LRSchedule`` or an ``LRController`` sets the lr directly."""
    core: LRScheduleEnv = env.unwrapped
    options = None if instance is None else {"instance": instance}
    observation, info = env.reset(seed=seed, options=options)
    record = EpisodeRecord(policy.name, seed, info.get("instance"), info.get("label_noise"))
    record.computed_on = computed_on(core.device)
    total_steps = core.episode.config.steps_per_episode  # of this instance
    sets_lr = hasattr(policy, "lr")  # an LRController
    if sets_lr:
        policy.reset(seed, core.episode.config.initial_lr)
    elif not isinstance(policy, LRSchedule):
        policy.reset(seed)
    terminated = truncated = False
    step = 0
    while not (terminated or truncated):
        if isinstance(policy, LRSchedule):
            outcome = core.step_lr(policy(step, total_steps))
        elif sets_lr:
            outcome = core.step_lr(policy.lr(info, step))
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


def final_accuracies(records: list[EpisodeRecord], policy: str) -> list[float]:
    return [r.final_accuracy for r in records if r.policy == policy]


def interval(values: list[float]) -> str:
    """Mean ± the half-width of its 95% confidence interval."""
    mean, half = mean_ci(values)
    return f"{mean:.3f} ± {half:.3f}"


def paired(records: list[EpisodeRecord], policy: str, reference: str) -> str:
    """``policy - reference`` per seed: mean ± 95% CI, and on how many seeds it won."""
    ours = {r.seed: r.final_accuracy for r in records if r.policy == policy}
    theirs = {r.seed: r.final_accuracy for r in records if r.policy == reference}
    if not theirs:
        return "n/a"
    differences = [ours[seed] - theirs[seed] for seed in ours]
    mean, half = mean_ci(differences)
    wins = sum(d > 0 for d in differences)
    return f"{mean:+.3f} ± {half:.3f} ({wins}/{len(differences)})"


def feedback_share(records: list[EpisodeRecord]) -> float:
    """The share of steps at which the trained policy's action was not the same on every
    seed (of the episodes that ran to the end)."""
    runs = [r.actions for r in records if r.policy == TRAINED]
    steps = max(len(actions) for actions in runs)
    whole = [actions for actions in runs if len(actions) == steps]  # none that diverged
    return statistics.fmean(len({actions[k] for actions in whole}) > 1 for k in range(steps))


def comparison_table(records: list[EpisodeRecord], final_epoch: int) -> str:
    """A markdown row per policy: the final test accuracy over seeds, and the paired
    differences to the cosine, to the tuned cosine and of the trained policy to it; the
    test accuracy at the evaluated epoch nearest 40% of the run too, when that is an
    earlier epoch than the last."""
    evaluated = max((record.epochs for record in records), key=len) or [final_epoch]
    early_epoch = min(evaluated, key=lambda epoch: abs(epoch - 0.4 * final_epoch))
    early = early_epoch < final_epoch
    names = list(dict.fromkeys(record.policy for record in records))
    lines = [
        f"| policy | final test accuracy (epoch {final_epoch}) | paired difference to cosine "
        f"(seeds won) | to the tuned cosine | the trained policy's to it |"
        + (f" test accuracy after epoch {early_epoch} |" if early else ""),
        "| --- | --- | --- | --- | --- |" + (" --- |" if early else ""),
    ]
    for name in names:
        runs = [record for record in records if record.policy == name]
        lines.append(
            f"| {name} | {interval(final_accuracies(records, name))} "
            f"| {paired(records, name, 'cosine')} | {paired(records, name, TUNED)} "
            f"| {paired(records, TRAINED, name) if name != TRAINED else 'n/a'} |"
            + (f" {interval([run.accuracy_at(early_epoch) for run in runs])} |" if early else "")
        )
    return "\n".join(lines) + "\n"
