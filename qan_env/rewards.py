"""The reward: the paper's log-loss decrease (eq. 9) spread over the steps.

``r_k = -c * (log L_k - log L_{k-1})``: the sum over an episode telescopes to
``-c * (log L_K - log L_0)``, eq. 9 when ``c = 1 / (T - 1)`` with ``T`` the episode's
iterations. A diverged step is scored as if its loss had reached the divergence bound, so
diverging always returns less than any run that stays below the bound.
"""

from __future__ import annotations

import math


def default_reward_scale(total_iterations: int) -> float:
    """The paper's ``1 / (T - 1)``; 1 for a one-iteration episode, where it is undefined."""
    return 1.0 / (total_iterations - 1) if total_iterations > 1 else 1.0


def log_loss_decrease(previous_loss: float, loss: float, scale: float) -> float:
    """``-scale * (log loss - log previous_loss)``: positive when the loss went down."""
    return -scale * (math.log(loss) - math.log(previous_loss))


def divergence_penalty(previous_loss: float, max_loss: float, scale: float) -> float:
    """The reward of a diverged step: the decrease as if the loss had become ``max_loss``."""
    return log_loss_decrease(previous_loss, max_loss, scale)
