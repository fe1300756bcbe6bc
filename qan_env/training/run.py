"""A training run built from its config: the one place where data, network, loader and
trainer are wired together.

``load_device_data(config)`` reads the data set once and puts it on the config's device;
``build_trainer(config, data, rng)`` makes a fresh run on it, drawing every seed of the run
(initial weights, data order, augmentation and dropout) from ``rng``. The env, the fixed
schedules and the benchmarks all build their runs here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qan_env.training.config import TrainingConfig, resolve_device
from qan_env.training.datasets import SOURCES, DatasetError, load_dataset
from qan_env.training.images import ImageSet
from qan_env.training.loader import DeviceLoader, Normalizer, channel_statistics
from qan_env.training.models import build_wide_resnet
from qan_env.training.trainer import Trainer


@dataclass(frozen=True)
class DeviceData:
    """A data set on the device, with the normalisation of its training split."""

    train: ImageSet
    test: ImageSet
    normalizer: Normalizer
    num_classes: int
    flip: bool
    """Whether training mirrors images (the data set's ``DataSource.flip``)."""

    @property
    def device(self) -> torch.device:
        return self.train.images.device


def load_device_data(config: TrainingConfig) -> DeviceData:
    """``config``'s data set on ``config``'s device; refuses one whose size is not the config's.

    The size check keeps ``config.total_iterations`` true: it is known before any data is
    read, and the agent sizes its run from it.
    """
    device = resolve_device(config.device)
    train, test = load_dataset(config.data_fields)
    if len(train) != config.dataset_train_size:
        raise DatasetError(
            f"{config.dataset} has {len(train)} training images where "
            f"{config.dataset_train_size} were expected: the files in {config.data_dir} are "
            f"not the whole data set"
        )
    source = SOURCES[config.dataset]
    train, test = train.to(device), test.to(device)
    normalizer = Normalizer(*channel_statistics(train.images))
    return DeviceData(train, test, normalizer, source.classes, source.flip)


class DeviceDataCache:
    """Data sets on one device, each read once: the runs of one process (envs, instances of
    a set) share their copies."""

    def __init__(self) -> None:
        self._sets: dict[tuple, DeviceData] = {}

    def get(self, config: TrainingConfig) -> DeviceData:
        """``config``'s data set on ``config``'s device (``load_device_data``), read once."""
        key = (config.data_fields, str(resolve_device(config.device)))
        if key not in self._sets:
            self._sets[key] = load_device_data(config)
        return self._sets[key]


def build_trainer(config: TrainingConfig, data: DeviceData, rng: np.random.Generator) -> Trainer:
    """A fresh run of ``config`` on ``data``: new weights, data order and augmentation.

    Three seeds are drawn from ``rng``, a fourth for the held-out split when there is one,
    then the share of noisy labels when it is drawn, and a seed for the noise when there is
    some: each only then, so that runs without it keep their seeds' draws. The initial
    weights, the data order, the split and the noise come from CPU generators, so a seed
    gives the same network, order and split on every device; augmentation and dropout draw
    from a generator on the device.
    """
    init_seed, shuffle_seed, augment_seed = (int(s) for s in rng.integers(0, 2**63 - 1, size=3))
    train, heldout = data.train, None
    if config.heldout_size:
        split_generator = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        order = torch.randperm(len(data.train), generator=split_generator)
        heldout = data.train.subset(order[: config.heldout_size])
        train = data.train.subset(order[config.heldout_size :])
    noise = config.label_noise
    if config.label_noise_max:
        noise = float(rng.uniform(config.label_noise, config.label_noise_max))
    if noise:
        noise_generator = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        train = noisy_labels(train, noise, data.num_classes, noise_generator)
        if heldout is not None:
            heldout = noisy_labels(heldout, noise, data.num_classes, noise_generator)
    init_generator = torch.Generator().manual_seed(init_seed)
    shuffle_generator = torch.Generator().manual_seed(shuffle_seed)
    augment_generator = torch.Generator(device=data.device).manual_seed(augment_seed)
    model = build_wide_resnet(
        config.depth,
        config.widen_factor,
        config.dropout,
        init_generator,
        augment_generator,
        in_channels=data.train.images.shape[1],
        num_classes=data.num_classes,
    ).to(data.device)
    loader = DeviceLoader(
        train,
        config.batch_size,
        data.normalizer,
        shuffle_generator,
        augment_generator,
        flip=data.flip,
    )
    return Trainer(config, model, loader, data.test, heldout, label_noise=noise)


def noisy_labels(
    images: ImageSet, share: float, classes: int, generator: torch.Generator
) -> ImageSet:
    """``images`` with ``share`` of their labels (a random choice) replaced by a class drawn
    uniformly (it may draw the true one, as label-noise benchmarks do)."""
    count = round(share * len(images))
    chosen = torch.randperm(len(images), generator=generator)[:count]
    labels = images.labels.cpu().clone()
    labels[chosen] = torch.randint(0, classes, (count,), generator=generator)
    return ImageSet(images.images, labels.to(images.labels.device))
