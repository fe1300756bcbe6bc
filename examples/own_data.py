"""The env on your own images: any arrays, any size, channels and class count.

    python examples/own_data.py            # 2,000 grey 16x16 images, 3 classes
    python examples/own_data.py --small    # a few seconds

Named data sets need no code: ``dataset="cifar100"``, ``"svhn"``, ``"mnist"``,
``"fashion_mnist"`` (torchvision, from ``data_dir``, ``download=True`` to fetch them),
``"digits"`` (scikit-learn's, no download) or ``"synthetic"``. For arrays of your own, wrap
them in ``ImageSet``s (uint8 ``[N, C, H, W]`` images, int64 labels from 0) and give them a
name with ``qan_env.register_dataset``; the network's input channels and classes follow
the data.
"""

import argparse

import gymnasium as gym
import numpy as np
import torch

import qan_env
from qan_env.evaluation import run_episode
from qan_env.schedules import Cosine

gym.register_envs(qan_env)

parser = argparse.ArgumentParser()
parser.add_argument("--small", action="store_true", help="fewer images, one epoch")
args = parser.parse_args()


def stripes(count: int, rng: np.random.Generator) -> qan_env.ImageSet:
    """Noisy grey 16x16 images of horizontal, vertical or diagonal stripes (3 classes)."""
    labels = rng.integers(0, 3, count)
    rows, columns = np.mgrid[0:16, 0:16]
    patterns = np.stack([rows, columns, rows + columns]) % 4 < 2  # [3, 16, 16]
    images = 160 * patterns[labels] + rng.normal(0, 150, (count, 16, 16))
    images = np.clip(images + 40, 0, 255).astype(np.uint8)[:, None]  # [N, 1, 16, 16]
    return qan_env.ImageSet(torch.from_numpy(images), torch.from_numpy(labels))


rng = np.random.default_rng(0)
size = 256 if args.small else 2000
qan_env.register_dataset("stripes", stripes(size, rng), stripes(size // 4, rng), flip=True)

env = gym.make(
    "qan_env/LRSchedule-v0",
    preset="tiny",
    dataset="stripes",
    epochs=1 if args.small else 3,
    **qan_env.learning_mdp(qan_env.make_config("tiny", dataset="stripes")),
)
print(
    f"{env.unwrapped.config.dataset_train_size} training images, "
    f"{env.unwrapped.steps_per_episode} steps per episode"
)
record = run_episode(env, Cosine(0.1), seed=0)
print(f"cosine from 0.1: final test accuracy {record.final_accuracy:.3f}")
