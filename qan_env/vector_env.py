"""``LRScheduleVectorEnv``: ``N`` episodes of ``LRScheduleEnv`` side by side, their training
runs trained together as one batched computation where that is faster."""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from qan_env.config import EnvConfig, constructor_config
from qan_env.env import LRScheduleEnv
from qan_env.episode import Episode
from qan_env.training.batched import batchable, train_together
from qan_env.training.run import DeviceDataCache
from qan_env.validation import refuse

BATCHED_CHOICES = ("auto", True, False)


class LRScheduleVectorEnv(VectorEnv):
    """``num_envs`` copies of ``LRScheduleEnv`` (one config) as a Gymnasium ``VectorEnv``.

    ``gym.make_vec("qan_env/LRSchedule-v0", num_envs=N)`` returns it (the ids' vector entry
    point). Sub-env ``i`` is the single env: the same MDP, spaces, rewards and infos, and
    with the same reset seed the same episode (the same initial weights, data order and lr
    sequence); ``env.envs[i]`` is that env.

    What it adds is how the runs train: with ``batched=True`` each chunk of iterations of
    every stepping run is one batched computation (``qan_env.training.batched``: the
    networks stacked under ``torch.func.vmap``, SGD with an lr per run), which on a GPU
    costs about what one small run costs; its results equal the single env's up to float
    rounding (training amplifies rounding, so long runs drift apart as runs on two GPUs
    would). With ``batched=False`` the runs train one after the other, bit for bit as the
    single env. ``"auto"`` (default) batches on CUDA and not on the CPU, where grouped
    convolutions are slower than separate ones. Runs with dropout always train one after
    the other (their masks come from each run's generator). All runs share one copy of
    the data set on the device.

    ## Vector API (Gymnasium 1.x)

    ``reset(seed=...)``: ``None``, an int (sub-env ``i`` gets ``seed + i``) or a list;
    ``options={"reset_mask": mask}`` resets only the masked sub-envs. ``step(actions)``:
    an array of ``N`` actions; observations ``(N, n)`` float32, rewards float64,
    ``terminated``/``truncated`` bool, ``infos`` a dict of arrays with ``_key`` masks.
    ``autoreset_mode``: ``AutoresetMode.NEXT_STEP`` (default, as ``SyncVectorEnv``: the
    step after an episode's end resets that sub-env, with reward 0) or ``SAME_STEP``
    (the ending step resets at once; ``infos["final_obs"]``, ``infos["final_info"]``).

    ## Arguments

    ``num_envs``, then what ``gym.make`` takes (``preset``, ``config``, field overrides),
    ``batched`` (``"auto"``, True or False) and ``autoreset_mode``.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        preset: str | None = None,
        config: EnvConfig | None = None,
        batched: bool | str = "auto",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            refuse("num_envs", num_envs, "a whole number >= 1")
        if not any(batched is choice or batched == choice for choice in BATCHED_CHOICES):
            refuse("batched", batched, f"one of {BATCHED_CHOICES}")
        try:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            refuse("autoreset_mode", autoreset_mode, "next_step or same_step")
        if self.autoreset_mode == AutoresetMode.DISABLED:
            refuse("autoreset_mode", autoreset_mode, "next_step or same_step")
        config = constructor_config(preset, config, overrides)
        self.envs = [LRScheduleEnv(config=config, render_mode=render_mode) for _ in range(num_envs)]
        self.config = config
        self.num_envs = num_envs
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        first = self.envs[0]
        self.device = first.device
        self.batched = batched if batched != "auto" else self.device.type == "cuda"
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._data: DeviceDataCache | None = None
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._observations = np.zeros(self.observation_space.shape, dtype=np.float32)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        allowed = f"None, an int >= 0 or a list of {self.num_envs} ints >= 0 or None"
        if seed is None or _seed_like(seed):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        elif isinstance(seed, (list, tuple, np.ndarray)) and len(seed) == self.num_envs:
            seeds = [int(s) if _seed_like(s) else s for s in seed]  # numpy ints as ints
        else:
            refuse("seed", seed, allowed)
        # every seed checked before any sub-env restarts
        if not all(s is None or (_seed_like(s) and s >= 0) for s in seeds):
            refuse("seed", seed, allowed)
        options = dict(options or {})
        mask = options.pop("reset_mask", np.ones(self.num_envs, dtype=bool))
        shape = (self.num_envs,)
        if not (isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == shape):
            refuse("reset_mask", mask, f"a numpy bool array of shape ({self.num_envs},)")
        self._share_data()
        infos: dict[str, Any] = {}
        for i in np.flatnonzero(mask):
            self._observations[i], info = self.envs[i].reset(seed=seeds[i], options=options)
            infos = self._add_info(infos, info, i)
        self._needs_reset[mask] = False
        return self._observations.copy(), infos

    def _share_data(self) -> None:
        """One copy of the data set on the device for every sub-env (each would read its own)."""
        if self._data is None:
            self._data = DeviceDataCache()
            for env in self.envs:
                env.share_data(self._data)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            refuse("actions", actions, f"an array of {self.num_envs} actions, one per sub-env")
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        stepping = [i for i in range(self.num_envs) if not self._needs_reset[i]]
        episodes: dict[int, Episode] = {}
        indices = {}
        for i in stepping:  # every action checked before any run trains
            env = self.envs[i]
            episodes[i] = env.running_episode()
            try:
                indices[i] = env.actions.index(actions[i])
            except ValueError as error:
                raise ValueError(f"actions[{i}]: {error}") from None
        for i, episode in episodes.items():
            episode.begin(episode.action_lr(indices[i]), indices[i])
        self._train(list(episodes.values()))
        for i in range(self.num_envs):
            env = self.envs[i]
            if i in episodes:
                step = episodes[i].finish()
                observation, info = step.observation, step.info
                rewards[i], terminated[i] = step.reward, step.terminated
                if terminated[i] and self.autoreset_mode == AutoresetMode.SAME_STEP:
                    final = {"final_obs": observation, "final_info": info}
                    infos = self._add_info(infos, final, i)
                    observation, info = env.reset()
            else:  # NEXT_STEP: the step after an episode's end starts the next one
                observation, info = env.reset()
            self._observations[i] = observation
            infos = self._add_info(infos, info, i)
        self._needs_reset = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            self._needs_reset[:] = False
        return self._observations.copy(), rewards, terminated, truncated, infos

    def _train(self, episodes: list[Episode]) -> None:
        """Train each episode's step, in chunks that end where some run's epoch ends."""
        batched = self.batched and batchable([e.trainer for e in episodes]) is None
        while active := [episode for episode in episodes if episode.iterations_left]:
            count = min(episode.next_chunk() for episode in active)
            trainers = [episode.trainer for episode in active]
            lrs = [episode.lr for episode in active]
            if batched and len(active) > 1:
                losses = train_together(trainers, count, lrs)
            else:
                losses = torch.stack(
                    [trainer.train(count, lr) for trainer, lr in zip(trainers, lrs, strict=True)]
                )
            for episode, run_losses in zip(active, losses, strict=True):
                episode.record(run_losses)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Each sub-env's method ``name`` called with these arguments (an attribute that is
        not callable: its value), as ``SyncVectorEnv.call``."""
        values = [getattr(env, name) for env in self.envs]
        return tuple(value(*args, **kwargs) if callable(value) else value for value in values)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return tuple(getattr(env, name) for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()
        self._data = None


def _seed_like(value: object) -> bool:
    """An integer (Python's or numpy's), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
