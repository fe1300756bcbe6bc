"""Fixed learning-rate schedules: the baselines a learned policy is compared with.

Two kinds, both run on the env itself so that a baseline trains exactly the network, data
order and augmentation the agent gets for the same seed:

- ``LRSchedule``: the lr as a function of the step (``env.unwrapped.step_lr``): constant,
  the Wide ResNet step schedule, cosine annealing, SGDR warm restarts, exponential decay
  (the decay action on a clock), and a replayed sequence of lrs.
- ``ActionSchedule``: a fixed sequence of the env's own actions (``env.step``): always
  decay, and restart every ``k`` steps (the paper's two actions on a clock).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field

from qan_env.actions import DECAY, RESTART


def _cosine(start: float, end: float, progress: float) -> float:
    """Half a cosine from ``start`` (progress 0) to ``end`` (progress 1)."""
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class LRSchedule(abc.ABC):
    """A schedule that sets the lr of step ``step`` (0-based) of ``total`` steps."""

    label: str = field(default="", kw_only=True)
    """The name in tables and figures; empty: the schedule's own."""

    @property
    def name(self) -> str:
        return self.label or self.default_name

    @property
    @abc.abstractmethod
    def default_name(self) -> str: ...

    @abc.abstractmethod
    def __call__(self, step: int, total: int) -> float: ...


@dataclass(frozen=True)
class Constant(LRSchedule):
    initial_lr: float

    @property
    def default_name(self) -> str:
        return f"constant {self.initial_lr:g}"

    def __call__(self, step: int, total: int) -> float:
        return self.initial_lr


@dataclass(frozen=True)
class StepDecay(LRSchedule):
    """The Wide ResNet schedule: times ``factor`` at each of ``milestones`` (fractions of the
    budget); Zagoruyko & Komodakis use 0.2 at epochs 60, 120, 160 of 200."""

    initial_lr: float
    milestones: tuple[float, ...] = (0.3, 0.6, 0.8)
    factor: float = 0.2

    @property
    def default_name(self) -> str:
        return "WRN step"

    def __call__(self, step: int, total: int) -> float:
        passed = sum(step >= round(fraction * total) for fraction in self.milestones)
        return self.initial_lr * self.factor**passed


@dataclass(frozen=True)
class Cosine(LRSchedule):
    """Cosine annealing from ``initial_lr`` to ``final_lr`` over the whole budget."""

    initial_lr: float
    final_lr: float = 0.0

    @property
    def default_name(self) -> str:
        return "cosine"

    def __call__(self, step: int, total: int) -> float:
        progress = step / max(total - 1, 1)
        return _cosine(self.initial_lr, self.final_lr, progress)


@dataclass(frozen=True)
class WarmRestarts(LRSchedule):
    """SGDR (Loshchilov & Hutter, 2016): cosine cycles, each ``cycle_growth`` times longer
    than the last, restarting at ``initial_lr``; ``cycles`` of them fill the budget."""

    initial_lr: float
    cycles: int = 3
    cycle_growth: int = 2
    final_lr: float = 0.0

    @property
    def default_name(self) -> str:
        return "SGDR"

    def __call__(self, step: int, total: int) -> float:
        lengths = [self.cycle_growth**cycle for cycle in range(self.cycles)]
        start = 0
        for cycle in range(self.cycles):  # whole-step cycles, so each restart is exact
            end = round(total * sum(lengths[: cycle + 1]) / sum(lengths))
            if step < end or cycle == self.cycles - 1:
                break
            start = end
        progress = min((step - start) / max(end - start, 1), 1.0)
        return _cosine(self.initial_lr, self.final_lr, progress)


@dataclass(frozen=True)
class Exponential(LRSchedule):
    """``initial_lr * (1 - rate) ** (step + 1)``: the paper's decay action at every step."""

    initial_lr: float
    rate: float

    @property
    def default_name(self) -> str:
        return "always decay"

    def __call__(self, step: int, total: int) -> float:
        return self.initial_lr * (1.0 - self.rate) ** (step + 1)


@dataclass(frozen=True)
class Replayed(LRSchedule):
    """A given lr for each step, whatever happens: an open-loop replay of ``lrs``."""

    lrs: tuple[float, ...]

    @property
    def default_name(self) -> str:
        return "replayed lrs"

    def __call__(self, step: int, total: int) -> float:
        if total != len(self.lrs):
            raise ValueError(f"{len(self.lrs)} lrs to replay for an episode of {total} steps")
        return self.lrs[step]


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


#: The lr schedules by name (for the anchored action mode), each made from ``initial_lr``.
SCHEDULES: dict[str, type[LRSchedule]] = {
    "constant": Constant,
    "wrn_step": StepDecay,
    "cosine": Cosine,
    "sgdr": WarmRestarts,
}


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
