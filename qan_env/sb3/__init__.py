"""Everything of qan_env that knows Stable-Baselines3 (needs the ``agents`` extra).

- ``vec_env``: the native vector env as an SB3 ``VecEnv`` (``SB3VectorEnv``);
- ``policy``: a trained DQN from a run folder as an evaluation policy, read without pickle
  (``SB3Policy``);
- ``normalization``: the observation statistics as JSON (``normalization.json``);
- ``checkpoint``: a DQN run's checkpoints and its exact resume;
- ``callbacks``: the run's logs (progress bar, ``steps.csv``, TensorBoard scalars, the
  episode log).

Nothing else in the package imports SB3: the env, the evaluation and the run folders work
without it.
"""

from qan_env.sb3.normalization import Normalization
from qan_env.sb3.policy import SB3Policy
from qan_env.sb3.vec_env import SB3VectorEnv

__all__ = ["Normalization", "SB3Policy", "SB3VectorEnv"]
