"""``LRScheduleEnv``: one episode is one training run whose learning rate the agent controls.

The Gymnasium glue (spaces, seeding, the five values of a step) around the per-run core,
``qan_env.episode.Episode``, which owns the MDP.
"""

from __future__ import annotations

import copy
import os
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from qan_env.config import (
    LR_LIMIT,
    EnvConfig,
    config_from_dict,
    constructor_config,
    with_overrides,
)
from qan_env.episode import Episode, Step, make_actions
from qan_env.files import replace_atomically
from qan_env.instances import Instance, InstanceSet
from qan_env.instances import parse as parse_instances
from qan_env.observation import ObservationLayout
from qan_env.training.config import resolve_device, worker_device
from qan_env.training.datasets import dataset_fingerprint
from qan_env.training.run import DeviceDataCache
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
    ``base`` the ``anchor_schedule`` (default cosine from ``anchor_lr``, by default
    ``initial_lr``) at step ``k`` of ``steps_per_episode``. ``"relative"``: action ``i``
    moves a multiplier ``M`` (1 at reset),
    ``M <- clip(M * scale_factors[i], min(anchor_factors), max(anchor_factors))``, and the
    step's lr is ``base(k) * M``. See ``qan_env.actions``.

    ## Observation Space

    ``Box(-inf, inf, (n,), float32)``; ``feature_names`` names every entry.
    ``observation="paper"`` (default): for each of the ``L`` monitored conv layers
    (default: the first conv only, 193 numbers) the 192 weight statistics of paper eq. 5-8
    (``qan_env.features``), then the learning rate used in the last step (at reset:
    ``initial_lr``). ``"training"``: scale-free training signals (``qan_env.signals``):
    progress, log lr ratio, the last action, loss moving averages and noise, gradient
    norm, and the held-out loss when there is a held-out set. ``"paper+training"``: both.
    With the training signals, ``observe_update`` adds how far the step moved the weights
    relative to their size, and ``observe_optimizer`` the log of the lr and of SGD's
    effective step ``lr / (1 - momentum)``.

    ## Rewards

    ``r_k = -reward_scale * (log L_k - log L_{k-1})`` where ``L_k`` is the mean training loss
    over step ``k``'s iterations (each measured on its batch before its update, as a
    training loop records it) and ``L_0`` is measured at reset on the first batch with no
    update. An episode's undiscounted return is ``-reward_scale * (log L_K - log L_0)``;
    the default ``reward_scale`` is ``1 / (T - 1)``, ``T`` the episode's iterations, so it is
    the paper's eq. 9. With ``reward="heldout_log_loss"``, ``L_k`` is instead the loss on
    the ``heldout_size`` held-out training images after step ``k`` (eval mode, no
    augmentation), and the return telescopes the same way. A diverged step (training
    loss or weights not finite, or training loss above ``max_loss``) is rewarded
    ``-reward_scale * (log max_loss - log L_{k-1})``. A held-out loss above ``max_loss``
    (eval-mode batch norm behind a large early step) is not divergence: it is rewarded as
    ``max_loss`` and the run goes on.

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
    ``diverged``; ``heldout_loss`` when it is measured; ``label_noise`` (the share of noisy
    labels the run drew) when ``label_noise_max`` draws one; and ``test_loss``,
    ``test_accuracy`` after the steps that end an evaluated epoch (every
    ``eval_every_epochs``-th and the last).

    ## Arguments

    ``gym.make("qan_env/LRSchedule-v0", preset="paper", **overrides)``: ``preset`` is
    ``"paper"`` (the default), ``"quick"`` or ``"tiny"`` (``qan_env.config.PRESETS``); any field of
    ``qan_env.config.EnvConfig`` can be overridden by keyword. Or ``config=`` a whole
    ``EnvConfig`` (then ``preset`` is ignored), with overrides on top. A bad value is
    refused here, naming the field. Construction reads no data and builds no network; the
    first ``reset`` does. ``worker_index=i`` (one env of many, each in its own process)
    turns ``device="auto"`` into GPU ``i % n_gpus``: workers spread over a machine's GPUs.

    ``instances="NAME:SPLIT"`` (``qan_env.instances``) makes every reset draw a run of an
    instance set's split from its seed, its overrides on top of this config (or take one:
    ``reset(options={"instance": name_or_overrides})``); ``info["instance"]`` names it.
    Given by keyword without ``config=``, it also brings the set's preset (unless ``preset``
    names another) and the MDP its runs share: ``qan_env.instance_config``.

    ``gym.make_vec(id, num_envs=N)`` makes ``N`` of these as one ``VectorEnv``
    (``qan_env.vector_env.LRScheduleVectorEnv``), their runs trained together on a GPU.

    ``step_lr(lr)`` is a step at a given learning rate instead of an action's: how fixed
    schedules (``qan_env.schedules``) run on exactly the training the agent gets. The MDP
    itself is ``qan_env.episode.Episode`` (``episode``: the one of the last reset); this
    class adds Gymnasium's spaces, seeding and return values. ``share_data(data)`` trains
    on a device copy of the data set that other envs of the process share.
    ``action_names``, ``feature_names``, ``steps_per_episode`` and ``total_iterations``
    describe the MDP before any reset.

    All randomness comes from ``reset(seed=...)``: with the same seed an episode is the
    same bit for bit on the CPU at the same number of torch threads and on the same CPU
    kernels (another thread count sums in another order; another instruction set, which
    MKL, oneDNN and ATen each pick for the machine's CPU, rounds otherwise), and torch's
    global RNG is never used.

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
        preset: str | None = None,
        config: EnvConfig | None = None,
        render_mode: str | None = None,
        worker_index: int | None = None,
        **overrides: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r} is not allowed: this env has none")
        config = constructor_config(preset, config, overrides)
        if worker_index is not None:  # one of many workers: its GPU of the machine's
            config = with_overrides(config, {"device": worker_device(config.device, worker_index)})
        self.config = config
        self.device = resolve_device(config.device)  # refused here, not at the first reset
        self.actions = make_actions(config)
        self.feature_names = list(ObservationLayout(config, self.actions).names)
        self.action_space = spaces.Discrete(len(self.actions))
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(len(self.feature_names),), dtype=np.float32
        )
        self.instance_set: InstanceSet | None = None
        self.instances: tuple[Instance, ...] = ()
        """The runs a reset draws from (``config.instances``); empty: the config's own."""
        if config.instances is not None:
            self.instance_set, split = parse_instances(config.instances)
            self.instances = self.instance_set.split(split)
            for instance in self.instances:  # each a valid run with these same spaces
                self.config_of(instance)
        self.data: DeviceDataCache | None = None
        """The data sets on the device: read at the first reset that needs each, or shared
        with other envs (``share_data``)."""
        self.episode: Episode | None = None
        """The episode of the last reset (``qan_env.episode.Episode``); None before one."""
        self._episode_start: dict | None = None  # the random state the episode began from
        self._instance: Instance | None = None

    @property
    def total_iterations(self) -> int:
        """``T``: the SGD iterations of one episode (whole batches per epoch times epochs)."""
        return self.config.total_iterations

    @property
    def steps_per_episode(self) -> int:
        """Steps of an episode that does not diverge; known at construction, never changing.
        With ``instances``, the base config's: a run's own is
        ``episode.config.steps_per_episode`` (at most ``decisions``)."""
        return self.config.steps_per_episode

    @property
    def action_names(self) -> tuple[str, ...]:
        """The name of each action, by index."""
        return self.actions.names

    @property
    def monitored_layers(self) -> tuple[str, ...]:
        """The module names of the conv layers whose weights are observed."""
        return self.config.monitored_conv_layers

    @property
    def reward_scale(self) -> float:
        return self.config.effective_reward_scale

    def share_data(self, data: DeviceDataCache) -> None:
        """Train on the device copies of ``data`` instead of reading its own: envs in one
        process can share one copy of each data set."""
        self.data = data

    def config_of(self, instance: Instance | str) -> EnvConfig:
        """The run of ``instance`` (or of the set's instance of that name): this config with
        its overrides; refused naming the field when they are bad or change the spaces."""
        if isinstance(instance, str):
            instance = self.instance_set.find(instance)
        try:
            config = with_overrides(self.config, {**instance.overrides, "instances": None})
        except ValueError as error:
            raise ValueError(f"instance {instance.name}: {error}") from None
        actions = make_actions(config)
        names = ObservationLayout(config, actions).names
        if len(actions) != self.action_space.n or list(names) != self.feature_names:
            refuse(
                "instances",
                instance.name,
                "runs whose actions and observations are this env's (the same action set, "
                "observation and monitored layers)",
            )
        return config

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        instance = (options or {}).get("instance")
        if instance is not None and not self.instances:
            refuse("options['instance']", instance, "only for an env with config.instances")
        self._start_episode(instance)
        return self.episode.start()

    def _start_episode(self, chosen: str | dict | None = None) -> None:
        """A fresh run drawn from ``np_random``, whose state before the draw is kept: it
        is what rebuilds this run's instance, split, weights and generators on load. With
        instances, one is drawn first (always, so that a chosen one, by name or as
        overrides, leaves the rest of the draw the same)."""
        if self.data is None:
            self.data = DeviceDataCache()
        self._episode_start = copy.deepcopy(self.np_random.bit_generator.state)
        config, name = self.config, None
        if self.instances:
            instance = self.instances[int(self.np_random.integers(len(self.instances)))]
            if isinstance(chosen, str):
                instance = self.instance_set.find(chosen)
            elif isinstance(chosen, dict):
                instance = Instance("custom", dict(chosen))
            elif chosen is not None:
                refuse("options['instance']", chosen, "an instance's name or a dict of overrides")
            self._instance = instance
            config, name = self.config_of(instance), instance.name
        self.episode = Episode(config, self.data.get(config), self.np_random, instance=name)

    def running_episode(self) -> Episode:
        """The episode in progress; a RuntimeError when it is over or none has started."""
        if self.episode is None:
            raise RuntimeError("the episode is over or has not started: call reset() first")
        self.episode.check_running()
        return self.episode

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        episode = self.running_episode()
        index = self.actions.index(action)
        return self._returned(episode.step(episode.action_lr(index), index))

    def step_lr(self, lr: float) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """A step at ``lr`` instead of an action's lr: how fixed schedules (baselines) run on
        exactly the training, observations and rewards the agent gets."""
        episode = self.running_episode()
        number = real_number(lr)  # checked before anything changes
        if number is None or not 0 <= number <= LR_LIMIT:
            refuse("lr", lr, f"a finite number >= 0 and <= {LR_LIMIT:g} (numpy scalars too)")
        return self._returned(episode.step(number, action=None))

    @staticmethod
    def _returned(step: Step) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """A step as Gymnasium's five values: never truncated here (a wrapper may)."""
        return step.observation, step.reward, step.terminated, False, step.info

    def state_dict(self) -> dict[str, Any]:
        """The running episode, whole, as tensors and plain values (``torch.save`` writes it
        and ``torch.load(..., weights_only=True)`` reads it, no pickle): the config, the
        env's random state at the episode's start (which rebuilds its held-out split and
        generators) and now, and the episode's own state (``Episode.state_dict``: weights,
        optimizer, loader position, lr, last loss and observation, training signals).
        ``load_state_dict`` on an env of the same config continues it bit for bit on the
        CPU (at the same thread count): a long episode can be preempted and continued."""
        episode = self.running_episode()
        chosen = None
        if self.instances:
            chosen = {"name": self._instance.name, "overrides": self._instance.overrides}
        return {
            "config": self.config.to_dict(),
            "data": dataset_fingerprint(episode.config.dataset),
            "episode_start": self._episode_start,
            "np_random": self.np_random.bit_generator.state,
            "instance": chosen,
            **episode.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the episode ``state_dict`` saved, on this env of the same config."""
        mine = self.config.to_dict()
        try:  # a field added since the state was saved reads as its default
            saved = config_from_dict(state["config"]).to_dict()
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"this state's config is not an env config: {error}") from None
        if saved != mine:
            changed = [k for k, v in mine.items() if saved.get(k) != v]
            raise ValueError(
                f"this state is of an env with another config ({', '.join(changed)} differ): "
                f"make the env with the config it was saved from"
            )
        # A state that fails to load (a wrong shape, a missing entry) leaves the env as it
        # was: the episode is rebuilt aside and taken on only once the whole state is in.
        kept = (self.episode, self._episode_start, self._instance)
        random_state = self.np_random.bit_generator.state
        try:
            self.np_random.bit_generator.state = state["episode_start"]  # the same split
            chosen = state.get("instance")
            if chosen is not None:
                chosen = chosen["name"] if chosen["name"] != "custom" else chosen["overrides"]
            self._start_episode(chosen)
            dataset = self.episode.config.dataset
            if state.get("data") != dataset_fingerprint(dataset):
                raise ValueError(
                    f"this state is of an episode on other data than this env's {dataset!r} "
                    f"(its images or labels differ): register the data the state was saved "
                    f"on under that name"
                )
            self.episode.load_state_dict(state)
            self.np_random.bit_generator.state = state["np_random"]
        except Exception:
            self.episode, self._episode_start, self._instance = kept
            self.np_random.bit_generator.state = random_state
            raise

    def save(self, path: str | os.PathLike) -> None:
        """``state_dict`` to ``path`` with ``torch.save``, written whole or not at all."""
        state = self.state_dict()
        replace_atomically(path, lambda partial: torch.save(state, partial))

    def load(self, path: str | os.PathLike) -> None:
        """Continue the episode saved at ``path``; read with ``weights_only=True``."""
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def close(self) -> None:
        """Free the network and the device copies of the data."""
        self.episode = None
        self.data = None
