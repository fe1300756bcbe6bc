"""``LRScheduleEnv``: one episode is one training run whose learning rate the agent controls."""

from __future__ import annotations

import copy
import math
import os
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from qan_env.actions import make_actions
from qan_env.config import LR_LIMIT, EnvConfig, make_config, with_overrides
from qan_env.features import feature_names, layer_statistics
from qan_env.files import replace_atomically
from qan_env.rewards import default_reward_scale, divergence_penalty, log_loss_decrease
from qan_env.signals import SCHEDULE_NAMES, TrainingSignals, schedule_signals
from qan_env.training.config import resolve_device, worker_device
from qan_env.training.run import DeviceData, build_trainer, load_device_data
from qan_env.training.trainer import Trainer
from qan_env.validation import real_number, refuse


class LRScheduleEnv(gym.Env[np.ndarray, np.int64]):
    """Schedule the learning rate of a Wide ResNet while it trains (QAN, Fu et al. 2016).

    ## Description

    One episode is one whole training run of a Wide ResNet from random weights for
    ``epochs`` epochs (SGD, Nesterov momentum, weight decay). Each step trains
    ``iterations_per_step`` iterations at the learning rate the action chose, then returns
    the weight statistics of the monitored conv layers and the change in log training loss.

    ## Action Space

    ``Discrete(n)``; ``action_names`` names each action. ``action_mode="paper"`` (default):
    ``Discrete(2)``, or ``Discrete(3)`` with ``keep_action=True``:

    | Num | Action  | New learning rate                              |
    |-----|---------|------------------------------------------------|
    | 0   | decay   | ``max(lr * (1 - decay_rate), lr_floor)`` (5%)  |
    | 1   | restart | ``restart_lr`` (default: ``initial_lr``)       |
    | 2   | keep    | ``lr`` (only with ``keep_action=True``)        |

    ``"scale"``: action ``i`` sets ``lr <- clip(lr * scale_factors[i], lr_min, lr_max)``.
    ``"anchored"``: action ``i`` sets the step's lr to ``base(k) * anchor_factors[i]``,
    ``base`` the ``anchor_schedule`` (default cosine from ``initial_lr``) at step ``k`` of
    ``steps_per_episode``. See ``qan_env.actions``.

    ## Observation Space

    ``Box(-inf, inf, (n,), float32)``; ``feature_names`` names every entry.
    ``observation="paper"`` (default): for each of the ``L`` monitored conv layers
    (default: the first conv only, 193 numbers) the 192 weight statistics of paper eq. 5-8
    (``qan_env.features``), then the learning rate used in the last step (at reset:
    ``initial_lr``). ``"training"``: scale-free training signals (``qan_env.signals``):
    progress, log lr ratio, the last action, loss moving averages and noise, gradient
    norm, and the held-out loss when there is a held-out set. ``"paper+training"``: both.

    ## Rewards

    ``r_k = -reward_scale * (log L_k - log L_{k-1})`` where ``L_k`` is the mean training loss
    over step ``k``'s iterations (each measured on its batch before its update, as a
    training loop records it) and ``L_0`` is measured at reset on the first batch with no
    update. An episode's undiscounted return is ``-reward_scale * (log L_K - log L_0)``;
    the default ``reward_scale`` is ``1 / (T - 1)``, ``T`` the episode's iterations, so it is
    the paper's eq. 9. With ``reward="heldout_log_loss"``, ``L_k`` is instead the loss on
    the ``heldout_size`` held-out training images after step ``k`` (eval mode, no
    augmentation), and the return telescopes the same way. A diverged step (loss or
    weights not finite, or loss above ``max_loss``) is rewarded
    ``-reward_scale * (log max_loss - log L_{k-1})``.

    ## Starting State

    A freshly initialised network (He-normal convs) drawn from the reset seed, learning
    rate ``initial_lr``, the data order and augmentation drawn from the same seed.

    ## Episode End

    ``terminated`` when the epoch budget is spent (no bootstrapping from the last state,
    paper eq. 4), after ``steps_per_episode`` steps (known at construction:
    ``ceil(T / iterations_per_step)``, the last step shorter when they do not divide), or
    earlier when training diverges; then ``info["diverged"]`` is True and the observation
    is the last one computed from finite weights. Nothing is truncated unless a wrapper
    such as ``TimeLimit`` says so: the ids are registered without ``max_episode_steps``.

    ## Info

    Plain Python values: ``lr``, ``train_loss`` (the step's mean training loss; ``L_0`` at
    reset), ``epoch`` (completed epochs), ``iteration`` (completed iterations),
    ``diverged``; ``heldout_loss`` when it is measured; and ``test_loss``,
    ``test_accuracy`` after the steps that end an evaluated epoch (every
    ``eval_every_epochs``-th and the last).

    ## Arguments

    ``gym.make("qan_env/LRSchedule-v0", preset="paper", **overrides)``: ``preset`` is
    ``"paper"``, ``"quick"`` or ``"tiny"`` (``qan_env.config.PRESETS``); any field of
    ``qan_env.config.EnvConfig`` can be overridden by keyword. Or ``config=`` a whole
    ``EnvConfig`` (then ``preset`` is ignored), with overrides on top. A bad value is
    refused here, naming the field. Construction reads no data and builds no network; the
    first ``reset`` does. ``worker_index=i`` (one env of many, each in its own process)
    turns ``device="auto"`` into GPU ``i % n_gpus``: workers spread over a machine's GPUs.

    ``gym.make_vec(id, num_envs=N)`` makes ``N`` of these as one ``VectorEnv``
    (``qan_env.vector_env.LRScheduleVectorEnv``), their runs trained together on a GPU.

    ``step_lr(lr)`` is a step at a given learning rate instead of an action's: how fixed
    schedules (``qan_env.schedules``) run on exactly the training the agent gets.
    ``action_names``, ``feature_names``, ``steps_per_episode`` and ``total_iterations``
    describe the MDP before any reset.

    All randomness comes from ``reset(seed=...)``: with the same seed an episode is the
    same bit for bit on the CPU at the same number of torch threads (another count sums
    in another order), and torch's global RNG is never used.

    ## Example

    >>> import gymnasium as gym
    >>> import qan_env
    >>> gym.register_envs(qan_env)
    >>> env = gym.make("qan_env/LRSchedule-v0", preset="tiny")
    >>> env.unwrapped.steps_per_episode, env.unwrapped.action_names
    (16, ('decay', 'restart'))
    >>> observation, info = env.reset(seed=0)
    >>> observation.shape, info["lr"], info["iteration"]
    ((193,), 0.1, 0)
    >>> observation, reward, terminated, truncated, info = env.step(0)  # decay by 5%
    >>> round(info["lr"], 6), info["iteration"], terminated, truncated
    (0.095, 1, False, False)

    ## Version History

    - v0: the paper's MDP (qan_env 0.1). qan_env 0.2 keeps it as the default and adds the
      options ``action_mode``, ``observation``, ``reward`` and ``heldout_size``; the episode
      length is known at construction, and ``config=`` takes overrides on top.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        preset: str = "paper",
        config: EnvConfig | None = None,
        render_mode: str | None = None,
        worker_index: int | None = None,
        **overrides: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r} is not allowed: this env has none")
        if config is None:
            config = make_config(preset, **overrides)
        elif overrides:
            config = with_overrides(config, overrides)
        if worker_index is not None:  # one of many workers: its GPU of the machine's
            config = with_overrides(config, {"device": worker_device(config.device, worker_index)})
        self.config = config
        self.device = resolve_device(config.device)  # refused here, not at the first reset
        self.actions = make_actions(config)
        self.monitored_layers = config.monitored_conv_layers
        self._observes_weights = config.observation in ("paper", "paper+training")
        self._signals = None
        if "training" in config.observation:
            self._signals = TrainingSignals(heldout=config.uses_heldout_loss)
        self.feature_names = []
        if self._observes_weights:
            self.feature_names += [
                name for layer in self.monitored_layers for name in feature_names(layer)
            ] + ["lr"]
        if self._signals is not None:
            self.feature_names += [*SCHEDULE_NAMES, *self.actions.feature_names]
            self.feature_names += self._signals.names
        self.action_space = spaces.Discrete(len(self.actions))
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(len(self.feature_names),), dtype=np.float32
        )
        self._data: DeviceData | None = None
        self._trainer: Trainer | None = None
        self._episode_over = True

    @property
    def total_iterations(self) -> int:
        """``T``: the SGD iterations of one episode (whole batches per epoch times epochs)."""
        return self.config.total_iterations

    @property
    def steps_per_episode(self) -> int:
        """Steps of an episode that does not diverge; known at construction, never changing."""
        return self.config.steps_per_episode

    @property
    def action_names(self) -> tuple[str, ...]:
        """The name of each action, by index."""
        return self.actions.names

    @property
    def reward_scale(self) -> float:
        if self.config.reward_scale is not None:
            return self.config.reward_scale
        return default_reward_scale(self.total_iterations)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if self._data is None:  # only the first reset reads the data
            self._data = load_device_data(self.config)
        self._start_run()
        self._lr = self.config.initial_lr
        self._steps = 0
        # The gradient norm is a training signal: measure one at reset, with no update.
        loss = self._trainer.initial_loss(backward=self._signals is not None)
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
        self._episode_over = False
        return observation, self._info(loss, heldout, diverged=False)

    def _start_run(self) -> None:
        """A fresh training run drawn from ``np_random``, whose state before the draw is
        kept: it is what rebuilds this run's split, weights and generators on load."""
        self._episode_start = copy.deepcopy(self.np_random.bit_generator.state)
        self._trainer = build_trainer(self.config, self._data, self.np_random)
        modules = dict(self._trainer.model.named_modules())
        self._monitored = [modules[name].weight for name in self.monitored_layers]

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._check_running()
        index = self.actions.index(action)
        return self._advance(self._action_lr(index), index)

    def _action_lr(self, index: int) -> float:
        return self.actions.next_lr(index, self._lr, self._steps)

    def step_lr(self, lr: float) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """A step at ``lr`` instead of an action's lr: how fixed schedules (baselines) run on
        exactly the training, observations and rewards the agent gets."""
        self._check_running()
        number = real_number(lr)  # checked before anything changes
        if number is None or not 0 <= number <= LR_LIMIT:
            refuse("lr", lr, f"a finite number >= 0 and <= {LR_LIMIT:g} (numpy scalars too)")
        return self._advance(number, action=None)

    def _advance(
        self, lr: float, action: int | None
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Train one step's iterations at ``lr``, then observe and reward."""
        self._begin_step(lr)
        while self._iterations_left:
            self._record(self._trainer.train(self._next_chunk(), self._lr))
        return self._end_step(action)

    # A step in three parts, so that a vector env can train many runs' chunks together
    # (qan_env.vector_env) and still observe and reward each run exactly as here.

    def _begin_step(self, lr: float) -> None:
        self._lr = lr
        left = self.total_iterations - self._trainer.iteration
        self._iterations_left = min(self.config.iterations_per_step, left)
        self._step_losses: list[torch.Tensor] = []
        self._evaluation: tuple[float, float] | None = None

    def _next_chunk(self) -> int:
        """Iterations to train next: the step's rest, split at the epoch's end, where the
        test set may be evaluated."""
        per_epoch = self.config.iterations_per_epoch
        return min(self._iterations_left, per_epoch - self._trainer.iteration % per_epoch)

    def _record(self, losses: torch.Tensor) -> None:
        """Note a chunk's losses, trained since ``_next_chunk``; evaluate at an epoch's end."""
        trainer, per_epoch = self._trainer, self.config.iterations_per_epoch
        self._step_losses.append(losses)
        self._iterations_left -= len(losses)
        if trainer.iteration % per_epoch == 0 and self._evaluates(trainer.iteration // per_epoch):
            self._evaluation = trainer.evaluate()

    def _end_step(self, action: int | None) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._steps += 1
        losses = torch.cat(self._step_losses)
        observation, loss, heldout = self._observe(losses, action, starting=False)
        rewarded = self._rewarded_loss(loss, heldout)
        diverged = not (
            math.isfinite(loss)
            and loss <= self.config.max_loss
            and math.isfinite(rewarded)
            and rewarded <= self.config.max_loss
            and np.isfinite(observation).all()
        )
        if diverged:
            reward = divergence_penalty(
                self._previous_loss, self.config.max_loss, self.reward_scale
            )
            observation = self._last_observation
        else:
            reward = log_loss_decrease(self._previous_loss, rewarded, self.reward_scale)
            self._previous_loss = rewarded
            self._last_observation = observation
        terminated = diverged or self._trainer.iteration == self.total_iterations
        self._episode_over = terminated
        info = self._info(loss, heldout, diverged)
        if self._evaluation is not None:
            info["test_loss"], info["test_accuracy"] = self._evaluation
        return observation, reward, terminated, False, info

    def _check_running(self) -> None:
        if self._trainer is None or self._episode_over:
            raise RuntimeError("the episode is over or has not started: call reset() first")

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
        trainer = self._trainer
        heldout = trainer.heldout_loss() if self.config.uses_heldout_loss else None
        parts = [losses.mean().view(1)] + ([] if heldout is None else [heldout.view(1)])
        if self._observes_weights:
            parts.append(layer_statistics(self._monitored))
        if self._signals is not None:
            update = self._signals.reset if starting else self._signals.update
            parts.append(update(losses, trainer.gradient_norm(), heldout))
        packed = torch.cat([part.float() for part in parts]).cpu().numpy()
        loss, packed = float(packed[0]), packed[1:]
        heldout_loss = None
        if heldout is not None:
            heldout_loss, packed = float(packed[0]), packed[1:]
        observation = []
        if self._observes_weights:
            statistics = len(packed) - (0 if self._signals is None else len(self._signals.names))
            observation += [packed[:statistics], [self._lr]]
            packed = packed[statistics:]
        if self._signals is not None:
            iteration, initial_lr = trainer.iteration, self.config.initial_lr
            observation += [
                schedule_signals(iteration, self.total_iterations, self._lr, initial_lr),
                self.actions.features(action),
                packed,
            ]
        return np.concatenate(observation, dtype=np.float32), loss, heldout_loss

    def _info(self, loss: float, heldout: float | None, diverged: bool) -> dict[str, Any]:
        iteration = self._trainer.iteration
        info = {
            "lr": self._lr,
            "train_loss": loss,
            "epoch": iteration // self.config.iterations_per_epoch,
            "iteration": iteration,
            "diverged": diverged,
        }
        if heldout is not None:
            info["heldout_loss"] = heldout
        return info

    def state_dict(self) -> dict[str, Any]:
        """The running episode, whole, as tensors and plain values (``torch.save`` writes it
        and ``torch.load(..., weights_only=True)`` reads it, no pickle): the env's random
        state at the episode's start (which rebuilds its held-out split and generators) and
        now, the trainer's state (weights, optimizer, last gradient, loader position and
        generators), the lr, step, last loss and observation, and the training signals.
        ``load_state_dict`` on an env of the same config continues it bit for bit on the
        CPU (at the same thread count): a long episode can be preempted and continued."""
        self._check_running()
        return {
            "config": self.config.to_dict(),
            "episode_start": self._episode_start,
            "np_random": self.np_random.bit_generator.state,
            "trainer": self._trainer.state_dict(),
            "lr": self._lr,
            "steps": self._steps,
            "previous_loss": self._previous_loss,
            "last_observation": torch.from_numpy(self._last_observation),
            "signals": None if self._signals is None else self._signals.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the episode ``state_dict`` saved, on this env of the same config."""
        if state["config"] != self.config.to_dict():
            changed = [k for k, v in self.config.to_dict().items() if state["config"].get(k) != v]
            raise ValueError(
                f"this state is of an env with another config ({', '.join(changed)} differ): "
                f"make the env with the config it was saved from"
            )
        if self._data is None:
            self._data = load_device_data(self.config)
        self.np_random.bit_generator.state = state["episode_start"]  # the same split, seeds
        self._start_run()
        self._trainer.load_state_dict(state["trainer"])
        self.np_random.bit_generator.state = state["np_random"]
        self._lr, self._steps = state["lr"], state["steps"]
        self._previous_loss = state["previous_loss"]
        self._last_observation = state["last_observation"].numpy()
        if self._signals is not None:
            self._signals.load_state_dict(
                {
                    name: None if value is None else value.to(self.device)
                    for name, value in state["signals"].items()
                }
            )
        self._episode_over = False

    def save(self, path: str | os.PathLike) -> None:
        """``state_dict`` to ``path`` with ``torch.save``, written whole or not at all."""
        state = self.state_dict()
        replace_atomically(path, lambda partial: torch.save(state, partial))

    def load(self, path: str | os.PathLike) -> None:
        """Continue the episode saved at ``path``; read with ``weights_only=True``."""
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def close(self) -> None:
        """Free the network and the device copy of the data."""
        self._trainer = None
        self._monitored = []
        self._data = None
        self._episode_over = True
