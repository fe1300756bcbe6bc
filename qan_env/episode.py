"""``Episode``: one training run under the MDP, the core that both envs step.

An episode is a fresh training run (``build_trainer``) with the MDP around it: the lr the
actions set, the observation (``ObservationLayout``), the reward (``qan_env.rewards``),
divergence and the end of the budget. It knows nothing of Gymnasium: ``LRScheduleEnv``
wraps one and adds seeding and spaces; ``LRScheduleVectorEnv`` steps several and trains
their iterations together. A step comes in parts, so that a vector env can train many
runs' iterations at once and still observe and reward each run as the single env does:

- ``begin(lr, action)``: the step's lr and action;
- while ``iterations_left``: ``next_chunk()`` iterations are trained (by
  ``trainer.train(n, episode.lr)``, or many runs' at once), then ``record(losses)``;
- ``finish()``: observe and reward, a ``Step``.

``step(lr, action)`` does all four for one run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from qan_env.actions import (
    ActionSet,
    AnchoredActions,
    PaperActions,
    RelativeActions,
    ScaleActions,
)
from qan_env.config import EnvConfig
from qan_env.observation import RunObserver
from qan_env.rewards import divergence_penalty, log_loss_decrease
from qan_env.schedules import SCHEDULES
from qan_env.training.run import DeviceData, build_trainer
from qan_env.validation import refuse


def snapshot(value: Any) -> Any:
    """``value`` with every tensor and array in it copied: a state that no later training
    step changes, and that several runs can load without sharing a buffer."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {key: snapshot(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(snapshot(item) for item in value)
    return value


def make_actions(config: EnvConfig, steps: int | None = None) -> ActionSet:
    """The action set ``config.action_mode`` names, with the config's values, for a run of
    ``steps`` decisions (None: the config's own ``steps_per_episode``)."""
    steps = config.steps_per_episode if steps is None else steps
    base = SCHEDULES[config.anchor_schedule](config.base_lr)
    if config.action_mode == "scale":
        return ScaleActions(config.scale_factors, config.lr_min, config.lr_max)
    if config.action_mode == "anchored":
        return AnchoredActions(config.anchor_factors, base, steps)
    if config.action_mode == "relative":
        low, high = min(config.anchor_factors), max(config.anchor_factors)
        return RelativeActions(config.scale_factors, base, steps, low, high)
    return PaperActions(
        config.decay_rate, config.effective_restart_lr, config.keep_action, config.lr_floor
    )


@dataclass(frozen=True)
class Step:
    """What one env step hands back (Gymnasium's ``truncated`` is the env's business)."""

    observation: np.ndarray
    reward: float
    terminated: bool
    info: dict[str, Any]


class Episode:
    """One training run of ``config`` on ``data``, every seed drawn from ``rng``; ``instance``
    names the run when it is one of an instance set.

    Made by a reset; ``start()`` measures the first state. Then ``step`` (or its four
    parts) until ``over``.
    """

    def __init__(
        self,
        config: EnvConfig,
        data: DeviceData,
        rng: np.random.Generator,
        instance: str | None = None,
    ) -> None:
        self.config = config
        self.instance = instance
        """The name of the instance this run is (``info["instance"]``); None: not of a set."""
        self.actions = make_actions(config)
        self.trainer = build_trainer(config, data, rng)
        modules = dict(self.trainer.model.named_modules())
        self.observer = RunObserver(
            config,
            self.actions,
            list(self.trainer.model.parameters()),
            [modules[name].weight for name in config.monitored_conv_layers],
            config.total_iterations,
        )
        self.lr = config.initial_lr
        self.steps = 0
        self.over = True  # until start()
        self.iterations_left = 0
        self._action: int | None = None
        self._step_losses: list[torch.Tensor] = []
        self._evaluation: tuple[float, float] | None = None

    def start(self) -> tuple[np.ndarray, dict[str, Any]]:
        """The first observation and info: ``L_0`` measured on the first batch, no update."""
        # The gradient norm is a training signal: measure one at reset, with no update.
        loss = self.trainer.initial_loss(backward=self.observer.needs_gradient)
        observation, loss, heldout = self._observe(loss.view(1), action=None, starting=True)
        rewarded = self._rewarded_loss(loss, heldout)
        if not (math.isfinite(rewarded) and np.isfinite(observation).all()):
            raise RuntimeError(f"the freshly initialised network gives a non-finite loss {loss}")
        if max(loss, rewarded) >= self.config.max_loss:  # every step would "diverge"
            refuse(
                "max_loss",
                self.config.max_loss,
                f"above the loss of the fresh network, {max(loss, rewarded):.4g}: a step whose "
                f"loss exceeds max_loss ends the episode as diverged",
            )
        self._previous_loss = rewarded
        self._last_observation = observation
        self.over = False
        return observation, self._info(loss, heldout, diverged=False)

    def check_running(self) -> None:
        """A RuntimeError unless the episode has started and not ended."""
        if self.over:
            raise RuntimeError("the episode is over or has not started: call reset() first")

    def action_lr(self, action: int) -> float:
        """The lr that ``action`` (an index of ``actions``) sets for the next step."""
        return self.actions.next_lr(action, self.lr, self.steps)

    def step(self, lr: float, action: int | None) -> Step:
        """Train one step's iterations at ``lr``, then observe and reward. ``action``: the
        action that chose ``lr`` (None: the lr was set directly, as a schedule does)."""
        self.begin(lr, action)
        while self.iterations_left:
            self.record(self.trainer.train(self.next_chunk(), self.lr))
        return self.finish()

    def begin(self, lr: float, action: int | None) -> None:
        self.check_running()
        self.lr, self._action = lr, action
        left = self.config.total_iterations - self.trainer.iteration
        self.iterations_left = min(self.config.iterations_per_step, left)
        self._step_losses = []
        self._evaluation = None
        self.observer.mark()

    def next_chunk(self) -> int:
        """Iterations to train next: the step's rest, split at the epoch's end, where the
        test set may be evaluated."""
        per_epoch = self.config.iterations_per_epoch
        return min(self.iterations_left, per_epoch - self.trainer.iteration % per_epoch)

    def record(self, losses: torch.Tensor) -> None:
        """Note a chunk's losses, trained since ``next_chunk``; evaluate at an epoch's end."""
        trainer, per_epoch = self.trainer, self.config.iterations_per_epoch
        self._step_losses.append(losses)
        self.iterations_left -= len(losses)
        if trainer.iteration % per_epoch == 0 and self._evaluates(trainer.iteration // per_epoch):
            self._evaluation = trainer.evaluate()

    def finish(self) -> Step:
        """Observe and reward the step; it ends the episode when the budget is spent or the
        run diverged (then the observation is the last one of finite weights).

        Divergence is the training's: its loss not finite or above ``max_loss``, or weights
        that are not. A held-out loss above the bound is not: early in a run, a large step
        leaves batch norm's running statistics behind the weights, so that the eval-mode
        loss spikes far above the training loss and recovers (on digits, a cosine from 0.8
        reaches a held-out loss of 388 at its first step with a training loss of 2.2, and
        ends at 0.98 test accuracy). It is rewarded as ``max_loss``, so that the return
        still telescopes."""
        self.steps += 1
        losses = torch.cat(self._step_losses)
        observation, loss, heldout = self._observe(losses, self._action, starting=False)
        max_loss = self.config.max_loss
        rewarded = min(self._rewarded_loss(loss, heldout), max_loss)
        diverged = not (
            math.isfinite(loss)
            and loss <= max_loss
            and math.isfinite(rewarded)
            and np.isfinite(observation).all()
        )
        scale = self.config.effective_reward_scale
        if diverged:
            reward = divergence_penalty(self._previous_loss, max_loss, scale)
            observation = self._last_observation
        else:
            reward = log_loss_decrease(self._previous_loss, rewarded, scale)
            self._previous_loss = rewarded
            self._last_observation = observation
        self.over = diverged or self.trainer.iteration == self.config.total_iterations
        info = self._info(loss, heldout, diverged)
        if self._evaluation is not None:
            info["test_loss"], info["test_accuracy"] = self._evaluation
        return Step(observation, reward, self.over, info)

    def _evaluates(self, epoch: int) -> bool:
        every = self.config.eval_every_epochs
        return every > 0 and (epoch % every == 0 or epoch == self.config.epochs)

    def _rewarded_loss(self, loss: float, heldout: float | None) -> float:
        return heldout if self.config.reward == "heldout_log_loss" else loss

    def _observe(
        self, losses: torch.Tensor, action: int | None, starting: bool
    ) -> tuple[np.ndarray, float, float | None]:
        """The observation, the step's mean training loss and its held-out loss (None
        without one), measured on the device and brought to the host in one copy.

        ``losses`` are the step's per-iteration losses (at reset: ``L_0`` alone).
        """
        trainer = self.trainer
        heldout = trainer.heldout_loss() if self.config.uses_heldout_loss else None
        return self.observer.observe(
            losses, trainer.gradient_norm, heldout, trainer.iteration, self.lr, action, starting
        )

    def _info(self, loss: float, heldout: float | None, diverged: bool) -> dict[str, Any]:
        iteration = self.trainer.iteration
        info = {
            "lr": self.lr,
            "train_loss": loss,
            "epoch": iteration // self.config.iterations_per_epoch,
            "iteration": iteration,
            "diverged": diverged,
        }
        if heldout is not None:
            info["heldout_loss"] = heldout
        if self.instance is not None:
            info["instance"] = self.instance
        if self.config.label_noise_max:
            info["label_noise"] = self.trainer.label_noise
        return info

    def state_dict(self) -> dict[str, Any]:
        """The running episode as tensors and plain values: the trainer's state (weights,
        optimizer, last gradient, loader position and generators), the lr, step, last loss
        and observation, and the training signals: a snapshot, sharing no tensor with the
        running episode."""
        self.check_running()
        return snapshot(
            {
                "trainer": self.trainer.state_dict(),
                "lr": self.lr,
                "steps": self.steps,
                "previous_loss": self._previous_loss,
                "last_observation": torch.from_numpy(self._last_observation),
                **self.observer.state_dict(),
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the episode ``state_dict`` saved, on this freshly made episode of the
        same config and run (the same seeds drawn). It takes copies: the state stays the
        caller's, and can be loaded into other episodes too."""
        state = snapshot(state)
        self.trainer.load_state_dict(state["trainer"])
        self.lr, self.steps = state["lr"], state["steps"]
        self._previous_loss = state["previous_loss"]
        self._last_observation = state["last_observation"].numpy()
        self.observer.load_state_dict(state, self.trainer.device)
        self.over = False
