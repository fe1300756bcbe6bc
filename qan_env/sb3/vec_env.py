"""The native vector env as a Stable-Baselines3 ``VecEnv`` (needs the ``agents`` extra).

SB3's ``VecEnv`` API predates Gymnasium's vector API: ``reset()`` returns observations
only, ``step`` returns ``dones`` and a list of info dicts, and an ending sub-env resets in
the same step with its last observation in ``info["terminal_observation"]``. This adapter
runs ``LRScheduleVectorEnv`` in same-step autoreset mode and translates; each sub-env
still trains in the vector env's batched computation. SB3 has no adapter of its own.

    >>> from qan_env.sb3 import SB3VectorEnv
    >>> venv = SB3VectorEnv(num_envs=2, preset="tiny")  # then DQN("MlpPolicy", venv)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from qan_env.vector_env import LRScheduleVectorEnv


class SB3VectorEnv(VecEnv):
    """``LRScheduleVectorEnv(num_envs, autoreset_mode=SAME_STEP, **kwargs)`` for SB3."""

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        self.vector_env = LRScheduleVectorEnv(
            num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs
        )
        env = self.vector_env
        super().__init__(num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seeds = None if all(seed is None for seed in self._seeds) else list(self._seeds)
        observations, infos = self.vector_env.reset(seed=seeds)
        self.reset_infos = _unbatch(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, terminated, truncated, infos = self.vector_env.step(self._actions)
        dones = terminated | truncated
        step_infos = _unbatch(infos, self.num_envs)
        if dones.any():  # the ending step's own info, not the next episode's first
            finals = _unbatch(infos["final_info"], self.num_envs)
            for i in np.flatnonzero(dones):
                self.reset_infos[i] = step_infos[i]
                step_infos[i] = finals[i]
                step_infos[i]["terminal_observation"] = infos["final_obs"][i]
        for i in range(self.num_envs):
            step_infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return observations, rewards.astype(np.float32), dones, step_infos

    def close(self) -> None:
        self.vector_env.close()

    def _targets(self, indices: VecEnvIndices) -> list[gym.Env]:
        return [self.vector_env.envs[i] for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(env, attr_name) for env in self._targets(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for env in self._targets(indices):
            setattr(env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        return [
            getattr(env, method_name)(*method_args, **method_kwargs)
            for env in self._targets(indices)
        ]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._targets(indices)]  # the sub-envs are bare envs


def _unbatch(infos: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Gymnasium's dict of arrays (with ``_key`` masks) as one plain dict per sub-env."""
    unbatched: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, values in infos.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        mask: Sequence[bool] = infos[f"_{key}"]
        for i in np.flatnonzero(mask):
            value = values[i]
            unbatched[i][key] = value.item() if isinstance(value, np.generic) else value
    return unbatched
