"""Training a Wide ResNet on device-resident data; reusable without any RL."""

from qan_env.training.config import TrainingConfig
from qan_env.training.datasets import load_cifar10, load_dataset
from qan_env.training.images import ImageSet
from qan_env.training.loader import DeviceLoader
from qan_env.training.models import WideResNet, build_wide_resnet
from qan_env.training.run import DeviceData, build_trainer, load_device_data
from qan_env.training.synthetic import synthetic_cifar
from qan_env.training.trainer import Trainer

__all__ = [
    "DeviceData",
    "DeviceLoader",
    "ImageSet",
    "Trainer",
    "TrainingConfig",
    "WideResNet",
    "build_trainer",
    "build_wide_resnet",
    "load_cifar10",
    "load_dataset",
    "load_device_data",
    "synthetic_cifar",
]
