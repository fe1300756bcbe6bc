"""The action set: how each discrete action changes the learning rate.

The paper's two actions (sec. 4.3): 0 ``decay`` multiplies the lr by ``1 - decay_rate``
(5%), 1 ``restart`` sets it back to the restart lr. An optional 2 ``keep`` leaves it as is.
A floor, when set, bounds every result from below.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

DECAY, RESTART, KEEP = 0, 1, 2
ACTION_NAMES = ("decay", "restart", "keep")


@dataclass(frozen=True)
class LearningRateActions:
    """Maps an action index and the current lr to the next lr (the env builds it from its
    ``EnvConfig``, which owns these values and their defaults)."""

    decay_rate: float
    restart_lr: float
    keep_action: bool
    lr_floor: float

    @property
    def names(self) -> tuple[str, ...]:
        return ACTION_NAMES[: 3 if self.keep_action else 2]

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

    def apply(self, action: int, lr: float) -> float:
        """The lr after ``action`` (an index from ``index``) is taken at ``lr``."""
        if action == DECAY:
            lr = lr * (1.0 - self.decay_rate)
        elif action == RESTART:
            lr = self.restart_lr
        return max(lr, self.lr_floor)
