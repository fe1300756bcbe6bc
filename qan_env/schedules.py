"""Fixed learning-rate schedules: the lr as a function of the step.

Constant, the Wide ResNet step schedule, cosine annealing, SGDR warm restarts, exponential
decay (the paper's decay action on a clock) and a replayed sequence of lrs. They are the
baselines a learned policy is compared with (run through ``env.unwrapped.step_lr``, so
that a baseline trains exactly the network, data order and augmentation the agent gets
for the same seed, ``qan_env.evaluation``) and the base of the anchored actions
(``qan_env.actions``). This module depends on nothing else of the package.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field


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


#: The lr schedules by name (for the anchored action mode), each made from ``initial_lr``.
SCHEDULES: dict[str, type[LRSchedule]] = {
    "constant": Constant,
    "wrn_step": StepDecay,
    "cosine": Cosine,
    "sgdr": WarmRestarts,
}
