"""The action sets: how each discrete action sets the learning rate of the next step.

- ``paper`` (sec. 4.3): 0 ``decay`` multiplies the lr by ``1 - decay_rate`` (5%), 1
  ``restart`` sets it back to the restart lr, an optional 2 ``keep`` leaves it; a floor,
  when set, bounds every result from below.
- ``scale``: ``lr <- clip(lr * m, lr_min, lr_max)`` for a factor ``m`` of a small set
  around 1 (bounded multiplicative control, as in Xu et al. 2019).
- ``anchored``: ``lr = base(t) * m``, a fixed schedule (cosine by default) times the
  chosen factor; ``m = 1`` at every step is the base schedule itself (as in SOLAR).
- ``relative``: ``lr = base(t) * M``, the multiplier ``M`` (1 at the start) moved by the
  chosen factor and bounded, ``M <- clip(M * m, M_min, M_max)``: the factor ``1`` holds
  the schedule's level, so that a constant multiplier is one repeated choice and a change
  of level lasts until it is undone.

Each set names its actions and describes the last action for the training observation:
the paper set as a one-hot vector, the factor sets as ``log m``.
"""

from __future__ import annotations

import abc
import math
import numbers
from dataclasses import dataclass

import numpy as np

from qan_env.schedules import LRSchedule

DECAY, RESTART, KEEP = 0, 1, 2
ACTION_MODES = ("paper", "scale", "anchored", "relative")


class ActionSet(abc.ABC):
    """Maps an action index, the last step's lr and the step's index to the step's lr."""

    @property
    @abc.abstractmethod
    def names(self) -> tuple[str, ...]: ...

    @property
    @abc.abstractmethod
    def feature_names(self) -> tuple[str, ...]:
        """Names of ``features``: the last action, as the training observation shows it."""

    @abc.abstractmethod
    def next_lr(self, action: int, lr: float, step: int) -> float:
        """The lr of step ``step`` (0-based) when ``action`` is taken after a step at ``lr``."""

    @abc.abstractmethod
    def features(self, action: int | None) -> list[float]:
        """The last action as numbers; None: no action yet (reset) or an lr set directly."""

    def __len__(self) -> int:
        return len(self.names)

    def index(self, action: object) -> int:
        """``action`` as a plain int, or a ValueError that lists the actions that exist."""
        value = action.item() if isinstance(action, np.ndarray) and action.size == 1 else action
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or not 0 <= value < len(self)
        ):
            allowed = ", ".join(f"{index} ({name})" for index, name in enumerate(self.names))
            raise ValueError(f"action {action!r} is not valid: allowed are {allowed}")
        return int(value)


@dataclass(frozen=True)
class PaperActions(ActionSet):
    """Decay by ``decay_rate``, restart to ``restart_lr``, and (optionally) keep."""

    decay_rate: float
    restart_lr: float
    keep_action: bool
    lr_floor: float

    @property
    def names(self) -> tuple[str, ...]:
        return ("decay", "restart", "keep")[: 3 if self.keep_action else 2]

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"last_action/{name}" for name in self.names)

    def next_lr(self, action: int, lr: float, step: int) -> float:
        if action == DECAY:
            lr = lr * (1.0 - self.decay_rate)
        elif action == RESTART:
            lr = self.restart_lr
        return max(lr, self.lr_floor)

    def features(self, action: int | None) -> list[float]:
        return [float(action == index) for index in range(len(self))]


class _FactorActions(ActionSet):
    """Actions that are factors ``m``; the last one is shown as ``log m`` (0: none)."""

    factors: tuple[float, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"x{factor:g}" for factor in self.factors)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return ("log_multiplier",)

    def features(self, action: int | None) -> list[float]:
        return [0.0 if action is None else math.log(self.factors[action])]


@dataclass(frozen=True)
class ScaleActions(_FactorActions):
    """``lr <- clip(lr * m, lr_min, lr_max)``."""

    factors: tuple[float, ...]
    lr_min: float
    lr_max: float

    def next_lr(self, action: int, lr: float, step: int) -> float:
        return min(max(lr * self.factors[action], self.lr_min), self.lr_max)


@dataclass(frozen=True)
class AnchoredActions(_FactorActions):
    """``lr = base(step, total_steps) * m``: the factor holds for this step only."""

    factors: tuple[float, ...]
    base: LRSchedule
    total_steps: int

    def next_lr(self, action: int, lr: float, step: int) -> float:
        return self.base(step, self.total_steps) * self.factors[action]


@dataclass(frozen=True)
class RelativeActions(_FactorActions):
    """``lr = base(step, total_steps) * M``, ``M <- clip(M * m, low, high)`` from ``M = 1``.

    ``M`` is read back from the last lr (``lr / base(step - 1)``), so the set keeps no state
    and an episode restored from its lr goes on with the same multiplier."""

    factors: tuple[float, ...]
    base: LRSchedule
    total_steps: int
    low: float
    high: float

    def multiplier(self, lr: float, step: int) -> float:
        """The multiplier the lr of step ``step - 1`` had (1 before the first step)."""
        return 1.0 if step == 0 else lr / self.base(step - 1, self.total_steps)

    def next_lr(self, action: int, lr: float, step: int) -> float:
        level = self.multiplier(lr, step) * self.factors[action]
        return self.base(step, self.total_steps) * min(max(level, self.low), self.high)
