"""Fixed learning-rate schedules: the baselines a learned policy is compared with.

Two kinds, both run on the env itself so that a baseline trains exactly the network, data
order and augmentation the agent gets for the same seed:

- ``LRSchedule``: the lr as a function of the step (``env.unwrapped.step_lr``): constant,
  the Wide ResNet step schedule, cosine annealing, SGDR warm restarts.
- ``ActionSchedule``: a fixed sequence of the env's own actions (``env.step``): always
  decay, and restart every ``k`` steps (the paper's two actions on a clock).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

from qan_env.actions import DECAY, RESTART


def _cosine(start: float, end: float, progress: float) -> float:
    """Half a cosine from ``start`` (progress 0) to ``end`` (progress 1)."""
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class LRSchedule(abc.ABC):
    """A schedule that sets the lr of step ``step`` (0-based) of ``total`` steps."""

    initial_lr: float

    @property
    @abc.abstractmethod
    def name(self) -> str: ...

    @abc.abstractmethod
    def __call__(self, step: int, total: int) -> float: ...


@dataclass(frozen=True)
class Constant(LRSchedule):
    @property
    def name(self) -> str:
        return f"constant {self.initial_lr:g}"

    def __call__(self, step: int, total: int) -> float:
        return self.initial_lr


@dataclass(frozen=True)
class StepDecay(LRSchedule):
    """The Wide ResNet schedule: times ``factor`` at each of ``milestones`` (fractions of the
    budget); Zagoruyko & Komodakis use 0.2 at epochs 60, 120, 160 of 200."""

    milestones: tuple[float, ...] = (0.3, 0.6, 0.8)
    factor: float = 0.2

    @property
    def name(self) -> str:
        return "WRN step"

    def __call__(self, step: int, total: int) -> float:
        passed = sum(step >= round(fraction * total) for fraction in self.milestones)
        return self.initial_lr * self.factor**passed


@dataclass(frozen=True)
class Cosine(LRSchedule):
    """Cosine annealing from ``initial_lr`` to ``final_lr`` over the whole budget."""

    final_lr: float = 0.0

    @property
    def name(self) -> str:
        return "cosine"

    def __call__(self, step: int, total: int) -> float:
        progress = step / max(total - 1, 1)
        return _cosine(self.initial_lr, self.final_lr, progress)


@dataclass(frozen=True)
class WarmRestarts(LRSchedule):
    """SGDR (Loshchilov & Hutter, 2016): cosine cycles, each ``cycle_growth`` times longer
    than the last, restarting at ``initial_lr``; ``cycles`` of them fill the budget."""

    cycles: int = 3
    cycle_growth: int = 2
    final_lr: float = 0.0

    @property
    def name(self) -> str:
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


def baselines(initial_lr: float, decay_rate: float) -> list[LRSchedule | ActionSchedule]:
    """The fixed schedules a learned policy is compared with."""
    return [
        Constant(initial_lr),
        StepDecay(initial_lr),
        Cosine(initial_lr),
        WarmRestarts(initial_lr),
        ActionSchedule(),
        ActionSchedule(restart_every=restart_period(decay_rate)),
    ]
