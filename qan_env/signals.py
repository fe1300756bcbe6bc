"""Training signals: a scale-free account of how the run is going, for the observation.

Every signal is a log, a difference of logs, a ratio or a fraction, so that it means the
same on another network, data set or budget:

- ``progress``: iterations done / the run's iterations; ``log_lr_ratio``: log(lr / lr0) of
  the last step, lr0 the config's ``base_lr`` (floored at log 1e-6, for an lr of 0);
- the last action (the action set's own features: one-hot, or log of the factor);
- ``log_loss_ema_short`` / ``_long``: log of exponential moving averages of the
  per-iteration training loss, time constants 10 and 100 iterations; ``loss_ema_gap``:
  their difference (below 0 while the loss falls);
- ``loss_window_cv``: std / mean of the last 20 iterations' losses (the noise);
- ``log_grad_norm``: log of the gradient norm of the step's last iteration, and
  ``grad_norm_change``, its change since the last step;
- with a held-out set: ``log_heldout_loss`` and ``heldout_loss_change``;
- with ``observe_update``: ``log_update_ratio``, how far the step moved the weights
  relative to their size, and ``update_ratio_change`` (``UpdateRatio``);
- with ``observe_optimizer``: ``log_lr``, the step's lr on its own scale, and
  ``log_effective_lr``, ``log(lr / (1 - momentum))``, the step size SGD's momentum
  amounts to in steady state (what the user set, not a measurement: these two are not
  scale-free, they say where on the absolute scale a run is).

The loss, gradient and held-out parts are computed on the device from the step's losses;
the env brings them to the host in the step's one copy.
"""

from __future__ import annotations

import math

import torch

EMA_SHORT_ITERATIONS = 10
EMA_LONG_ITERATIONS = 100
LOSS_WINDOW = 20
MIN_LR_RATIO = 1e-6
_TINY = 1e-12  # a loss or gradient norm of exactly 0 is logged as log(1e-12), not -inf

SCHEDULE_NAMES = ("progress", "log_lr_ratio")
RUN_NAMES = (
    "log_loss_ema_short",
    "log_loss_ema_long",
    "loss_ema_gap",
    "loss_window_cv",
    "log_grad_norm",
    "grad_norm_change",
)
HELDOUT_NAMES = ("log_heldout_loss", "heldout_loss_change")


def signal_names(heldout: bool) -> tuple[str, ...]:
    """The names of ``TrainingSignals``' values, in order, with or without a held-out set."""
    return RUN_NAMES + (HELDOUT_NAMES if heldout else ())


def schedule_signals(iteration: int, total_iterations: int, lr: float, reference_lr: float) -> list:
    """``progress`` and ``log_lr_ratio``, from numbers the host already has."""
    return [iteration / total_iterations, math.log(max(lr / reference_lr, MIN_LR_RATIO))]


OPTIMIZER_NAMES = ("log_lr", "log_effective_lr")


def optimizer_signals(lr: float, momentum: float) -> list:
    """``log_lr`` and ``log_effective_lr``: the lr and ``lr / (1 - momentum)``, logged (an
    lr of 0 as 1e-6, and ``1 - momentum`` floored at 1e-6, so that both stay finite)."""
    log_lr = math.log(max(lr, MIN_LR_RATIO))
    return [log_lr, log_lr - math.log(max(1.0 - momentum, MIN_LR_RATIO))]


class TrainingSignals:
    """The device-side signals of one run; ``reset`` at the start, ``update`` every step."""

    def __init__(self, heldout: bool) -> None:
        self.heldout = heldout
        self._weights: dict[tuple[int, float], torch.Tensor] = {}

    STATE = ("ema_short", "ema_long", "window", "log_grad_norm", "log_heldout")

    def state_dict(self) -> dict:
        """The running averages and the history the next step's signals continue from."""
        return {name: getattr(self, name, None) for name in self.STATE}

    def load_state_dict(self, state: dict) -> None:
        for name in self.STATE:
            setattr(self, name, state[name])

    @property
    def names(self) -> tuple[str, ...]:
        return signal_names(self.heldout)

    def reset(
        self, loss: torch.Tensor, grad_norm: torch.Tensor, heldout: torch.Tensor | None
    ) -> torch.Tensor:
        """Start from the loss (and gradient norm, held-out loss) measured at reset."""
        self.ema_short = self.ema_long = loss.reshape(())
        self.window = loss.reshape(1)
        self.log_grad_norm = _log(grad_norm)
        self.log_heldout = None if heldout is None else _log(heldout)
        zero = torch.zeros((), device=loss.device)
        return self._signals(zero, zero)

    def update(
        self, losses: torch.Tensor, grad_norm: torch.Tensor, heldout: torch.Tensor | None
    ) -> torch.Tensor:
        """Take in a step's per-iteration losses, its last gradient norm and held-out loss."""
        self.ema_short = self._average(self.ema_short, losses, EMA_SHORT_ITERATIONS)
        self.ema_long = self._average(self.ema_long, losses, EMA_LONG_ITERATIONS)
        self.window = torch.cat([self.window, losses])[-LOSS_WINDOW:]
        log_grad_norm = _log(grad_norm)
        grad_change, self.log_grad_norm = log_grad_norm - self.log_grad_norm, log_grad_norm
        heldout_change = torch.zeros((), device=losses.device)
        if self.heldout:
            log_heldout = _log(heldout)
            heldout_change, self.log_heldout = log_heldout - self.log_heldout, log_heldout
        return self._signals(grad_change, heldout_change)

    def _average(self, average: torch.Tensor, losses: torch.Tensor, time_constant: int):
        """The moving average after each of ``losses`` in turn, in one weighted sum."""
        count = len(losses)
        key = (count, time_constant)
        if key not in self._weights:  # (1 - a)^(n-1-i) a for loss i, and (1 - a)^n
            keep = math.exp(-1.0 / time_constant)
            powers = keep ** torch.arange(count, -1, -1, dtype=torch.float64)
            powers[1:] *= 1 - keep
            self._weights[key] = powers.float().to(losses.device)
        weights = self._weights[key]
        return average * weights[0] + (weights[1:] * losses).sum()

    def _signals(self, grad_change: torch.Tensor, heldout_change: torch.Tensor) -> torch.Tensor:
        std, mean = torch.std_mean(self.window, correction=0)
        log_short, log_long = _log(self.ema_short), _log(self.ema_long)
        values = [
            log_short,
            log_long,
            log_short - log_long,
            std / mean.clamp_min(_TINY),
            self.log_grad_norm,
            grad_change,
        ]
        if self.heldout:
            values += [self.log_heldout, heldout_change]
        return torch.stack(values)


UPDATE_NAMES = ("log_update_ratio", "update_ratio_change")


class UpdateRatio:
    """How far a step moved the weights, relative to their size: ``log(|w_k - w_{k-1}| /
    |w_k|)`` over every parameter, and its change since the last step (both 0 at reset,
    before any step). It reads the lr's real effect, whatever the momentum or the lr's
    scale: one signal that means the same on runs that want very different lrs."""

    def __init__(self, parameters: list[torch.Tensor]) -> None:
        self.parameters = parameters
        self.last = torch.zeros(())

    def _flat(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.parameters])

    def mark(self) -> None:
        """Note the weights before a step's iterations."""
        self.before = self._flat()

    def reset(self) -> torch.Tensor:
        self.last = torch.zeros((), device=self.parameters[0].device)
        return torch.zeros(2, device=self.last.device)

    def update(self) -> torch.Tensor:
        """The signals of the step since ``mark``."""
        now = self._flat()
        ratio = torch.linalg.vector_norm(now - self.before) / torch.linalg.vector_norm(now)
        log_ratio = _log(ratio)
        change, self.last = log_ratio - self.last, log_ratio
        return torch.stack([log_ratio, change])

    def state_dict(self) -> dict:
        return {"last": self.last}

    def load_state_dict(self, state: dict) -> None:
        self.last = state["last"].to(self.parameters[0].device)


def _log(value: torch.Tensor) -> torch.Tensor:
    return torch.log(value.float().clamp_min(_TINY)).reshape(())
