"""qan_env: learning-rate scheduling of a Wide ResNet as a Gymnasium environment.

``import qan_env`` registers the environments below (``gym.register_envs(qan_env)`` says
so to linters); ``gym.make("qan_env/LRSchedule-v0")`` is the paper's setup, and any preset
or field can be chosen by keyword.
"""

import gymnasium as gym

from qan_env.config import PRESETS, EnvConfig, instance_config, learning_mdp, make_config
from qan_env.env import LRScheduleEnv
from qan_env.episode import Episode
from qan_env.features import weight_statistics
from qan_env.training.datasets import DatasetError, register_dataset
from qan_env.training.images import ImageSet
from qan_env.vector_env import LRScheduleVectorEnv
from qan_env.version import __version__


def __getattr__(name: str):
    """``qan_env.PolicyLR``, imported on first use: it runs an SB3 policy, and
    ``import qan_env`` does not import Stable-Baselines3."""
    if name == "PolicyLR":
        from qan_env.sb3.scheduler import PolicyLR

        return PolicyLR
    raise AttributeError(f"module 'qan_env' has no attribute {name!r}")


ENTRY_POINT = "qan_env.env:LRScheduleEnv"
VECTOR_ENTRY_POINT = "qan_env.vector_env:LRScheduleVectorEnv"

#: Every registered id and the keyword arguments it stands for (none: the paper's preset,
#: or with ``instances=`` the set's own).
ENV_IDS: dict[str, dict[str, str]] = {
    "qan_env/LRSchedule-v0": {},
    "qan_env/LRSchedule-quick-v0": {"preset": "quick"},
    "qan_env/LRSchedule-tiny-v0": {"preset": "tiny"},
}


def register_envs() -> None:
    """Register every id in ``ENV_IDS``; calling it again (say in a worker process) is a no-op.

    No id has a ``max_episode_steps``: the env ends its own episodes (``terminated`` when
    the budget is spent, paper eq. 4), and their length follows the keyword arguments of
    ``gym.make``, so one fixed number per id would be wrong after an override. The length
    is ``env.unwrapped.steps_per_episode``.
    """
    for env_id, kwargs in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=ENTRY_POINT,
                vector_entry_point=VECTOR_ENTRY_POINT,
                kwargs=kwargs,
            )


register_envs()

__all__ = [
    "ENV_IDS",
    "PRESETS",
    "DatasetError",
    "EnvConfig",
    "Episode",
    "ImageSet",
    "LRScheduleEnv",
    "LRScheduleVectorEnv",
    "PolicyLR",
    "__version__",
    "instance_config",
    "learning_mdp",
    "make_config",
    "register_dataset",
    "register_envs",
    "weight_statistics",
]
