"""Image data: CIFAR-10 through torchvision, an embedded synthetic set, a device-resident loader.

Both data sets come back as uint8 ``[N, 3, 32, 32]`` images and int64 labels. The loader keeps
the whole training set on the device and draws augmented batches there (random crop with
4-pixel zero padding, horizontal flip) with no per-sample Python and no worker processes.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

if TYPE_CHECKING:
    from qan_env.training.config import TrainingConfig

#: The data sets a config can name.
DATASETS = ("cifar10", "synthetic")
#: Training images of each named data set whose size is fixed (the synthetic set's is set).
TRAIN_SIZES = {"cifar10": 50_000}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CROP_PADDING = 4


class DatasetError(RuntimeError):
    """A data set is missing or corrupt; the message says where and how to get it."""


@dataclass(frozen=True)
class ImageSet:
    """uint8 images ``[N, 3, H, W]`` and int64 labels ``[N]`` of one split."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> ImageSet:
        return ImageSet(self.images.to(device), self.labels.to(device))

    def subset(self, indices: torch.Tensor) -> ImageSet:
        """The images at ``indices`` (a copy, on this set's device)."""
        indices = indices.to(self.labels.device)
        return ImageSet(self.images[indices], self.labels[indices])


def load_cifar10(data_dir: str | os.PathLike, download: bool = False) -> tuple[ImageSet, ImageSet]:
    """CIFAR-10's train and test splits from ``data_dir`` (torchvision's layout and checksums).

    Raises ``DatasetError`` naming the folder it looked in and how to get the data when the
    files are missing, fail their checksums, or the download fails.
    """
    from torchvision.datasets import CIFAR10

    root = Path(data_dir).expanduser()
    folder = root / CIFAR10.base_folder
    how = (
        f"Pass download=True to fetch it with torchvision (about 170 MB), or download "
        f"{CIFAR10_URL} and extract it into {root} so that {folder} holds data_batch_1..5, "
        f"test_batch and batches.meta."
    )
    expected = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list]
    expected.append(CIFAR10.meta["filename"])
    try:
        train = CIFAR10(str(root), train=True, download=download)
        test = CIFAR10(str(root), train=False, download=False)
    except RuntimeError as error:
        missing = [name for name in expected if not (folder / name).is_file()]
        if missing:
            raise DatasetError(
                f"CIFAR-10 was not found in {folder}: missing {', '.join(missing)}. {how}"
            ) from error
        raise DatasetError(
            f"CIFAR-10 in {folder} failed torchvision's checksum (corrupt or partial files). "
            f"Delete {folder} and get a fresh copy. {how}"
        ) from error
    except OSError as error:  # a failed download: no network, a refused connection
        raise DatasetError(
            f"CIFAR-10 could not be downloaded into {root}: {error}. {how}"
        ) from error
    return _from_torchvision(train), _from_torchvision(test)


def load_dataset(config: TrainingConfig) -> tuple[ImageSet, ImageSet]:
    """Train and test splits of ``config.dataset`` on the CPU.

    Cached by the data fields alone, so environments in one process share one read-only
    host copy whatever their other settings.
    """
    return _load(
        config.dataset,
        config.data_dir,
        config.download,
        config.synthetic_train_size,
        config.synthetic_test_size,
        config.synthetic_seed,
    )


@functools.lru_cache(maxsize=4)
def _load(
    dataset: str,
    data_dir: str,
    download: bool,
    synthetic_train_size: int,
    synthetic_test_size: int,
    synthetic_seed: int,
) -> tuple[ImageSet, ImageSet]:
    if dataset == "cifar10":
        return load_cifar10(data_dir, download)
    return synthetic_cifar(synthetic_train_size, synthetic_test_size, synthetic_seed)


def _from_torchvision(dataset) -> ImageSet:
    images = torch.from_numpy(np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2)))
    labels = torch.tensor(dataset.targets, dtype=torch.int64)
    return ImageSet(images, labels)


# The synthetic set: every image is a sum of colour plane waves. A bank of wave components
# is shared by all classes; a class is a few "modes", each a weighted pair of components,
# so telling classes apart needs conjunctions of frequency, orientation and colour. Each
# image also carries a random distractor component, random phases (position carries no
# label) and pixel noise, so a small network learns it well but not perfectly.
SYNTHETIC_CLASSES = 10
_BANK_SIZE = 24
_MODES_PER_CLASS = 3
_COMPONENTS_PER_MODE = 2
_MAX_FREQUENCY = 4
_DISTRACTOR_AMPLITUDE = 1.5
_NOISE_STD = 1.2
_PIXEL_SCALE = 48.0
_CHUNK = 2048


def synthetic_cifar(train_size: int, test_size: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """A CIFAR-shaped (32x32x3, 10 balanced classes) set generated from ``seed``, no download.

    The same arguments always give the same bytes; train and test share the class
    definitions and draw their images independently.
    """
    generator = torch.Generator().manual_seed(seed)
    frequencies = torch.randint(
        -_MAX_FREQUENCY, _MAX_FREQUENCY + 1, (_BANK_SIZE, 2), generator=generator
    ).float()
    frequencies[frequencies.abs().sum(dim=1) == 0] = 1.0  # no constant components
    colours = torch.randn(_BANK_SIZE, 3, generator=generator)
    colours = colours / colours.norm(dim=1, keepdim=True)
    mode_components = torch.stack(
        [
            torch.randperm(_BANK_SIZE, generator=generator)[:_COMPONENTS_PER_MODE]
            for _ in range(SYNTHETIC_CLASSES * _MODES_PER_CLASS)
        ]
    ).view(SYNTHETIC_CLASSES, _MODES_PER_CLASS, _COMPONENTS_PER_MODE)
    mode_weights = 0.7 + 0.6 * torch.rand(
        SYNTHETIC_CLASSES, _MODES_PER_CLASS, _COMPONENTS_PER_MODE, generator=generator
    )
    bank = (frequencies, colours, mode_components, mode_weights)
    return (
        _synthetic_split(train_size, bank, generator),
        _synthetic_split(test_size, bank, generator),
    )


def _synthetic_split(size: int, bank: tuple, generator: torch.Generator) -> ImageSet:
    frequencies, colours, mode_components, mode_weights = bank
    labels = torch.arange(size) % SYNTHETIC_CLASSES
    labels = labels[torch.randperm(size, generator=generator)]
    modes = torch.randint(0, _MODES_PER_CLASS, (size,), generator=generator)
    components = torch.cat(
        [
            mode_components[labels, modes],
            torch.randint(0, _BANK_SIZE, (size, 1), generator=generator),
        ],
        dim=1,
    )  # [size, K]
    amplitudes = torch.cat(
        [
            mode_weights[labels, modes] * (0.6 + 0.8 * torch.rand(size, 1, generator=generator)),
            _DISTRACTOR_AMPLITUDE * torch.rand(size, 1, generator=generator),
        ],
        dim=1,
    )
    phases = 2 * math.pi * torch.rand(components.shape, generator=generator)
    noise = torch.randn(size, 3, 32, 32, generator=generator) * _NOISE_STD
    grid = torch.arange(32, dtype=torch.float32) / 32
    images = torch.empty(size, 3, 32, 32, dtype=torch.uint8)
    for start in range(0, size, _CHUNK):
        part = slice(start, start + _CHUNK)
        freq = frequencies[components[part]]  # [n, K, 2]
        angle = (
            2
            * math.pi
            * (freq[..., 0, None, None] * grid[:, None] + freq[..., 1, None, None] * grid[None, :])
            + phases[part, :, None, None]
        )  # [n, K, 32, 32]
        waves = amplitudes[part, :, None, None] * torch.sin(angle)
        picture = torch.einsum("nkhw,nkc->nchw", waves, colours[components[part]])
        picture = picture + noise[part]
        images[part] = (128 + _PIXEL_SCALE * picture).round().clamp(0, 255).to(torch.uint8)
    return ImageSet(images, labels)


def channel_statistics(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images on the [0, 1] scale, shaped ``[1, 3, 1, 1]``."""
    scaled = images.float().div_(255)
    return (
        scaled.mean(dim=(0, 2, 3)).view(1, -1, 1, 1),
        scaled.std(dim=(0, 2, 3)).view(1, -1, 1, 1),
    )


class Normalizer:
    """uint8 images to normalised float32, per channel, as one fused multiply-add."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.scale = 1.0 / (255.0 * std)
        self.shift = -mean / std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, images.float(), self.scale)


def crop_and_flip(
    images: torch.Tensor, generator: torch.Generator | None, padding: int = CROP_PADDING
) -> torch.Tensor:
    """Random crop after zero padding and random horizontal flip, batched, as one gather.

    Equivalent per image to torchvision's ``RandomCrop(size, padding)`` followed by
    ``RandomHorizontalFlip()``, and on the same device as ``images``.
    """
    batch, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    padded_width = width + 2 * padding
    top = torch.randint(0, 2 * padding + 1, (batch, 1, 1), generator=generator, device=device)
    left = torch.randint(0, 2 * padding + 1, (batch, 1, 1), generator=generator, device=device)
    flip = torch.rand(batch, 1, 1, generator=generator, device=device) < 0.5
    columns = torch.arange(width, device=device)
    columns = left + torch.where(flip, columns.flip(0), columns)  # [batch, 1, width]
    rows = top + torch.arange(height, device=device).view(1, height, 1)  # [batch, height, 1]
    source = (rows * padded_width + columns).view(batch, 1, height * width)
    flat = padded.view(batch, channels, -1)
    return flat.gather(2, source.expand(batch, channels, -1)).view(batch, channels, height, width)


class DeviceLoader:
    """Endless shuffled, augmented, normalised training batches from a device-resident set.

    One epoch is ``len(data) // batch_size`` batches (the incomplete last batch is dropped,
    so every batch has the same shape). The order is drawn on the CPU from
    ``shuffle_generator`` once per epoch; augmentation draws on the device from
    ``augment_generator``.
    """

    def __init__(
        self,
        data: ImageSet,
        batch_size: int,
        normalizer: Normalizer,
        shuffle_generator: torch.Generator,
        augment_generator: torch.Generator | None,
        augment: bool = True,
    ) -> None:
        if batch_size > len(data):
            raise ValueError(
                f"batch_size={batch_size} is larger than the training set ({len(data)} images)"
            )
        self.data = data
        self.batch_size = batch_size
        self.normalizer = normalizer
        self.shuffle_generator = shuffle_generator
        self.augment_generator = augment_generator
        self.augment = augment
        self.iterations_per_epoch = len(data) // batch_size
        self._order = torch.empty(0, dtype=torch.int64)
        self._position = self.iterations_per_epoch

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``(images, labels)``: float32 ``[B, 3, 32, 32]`` and int64 ``[B]``."""
        if self._position == self.iterations_per_epoch:
            order = torch.randperm(len(self.data), generator=self.shuffle_generator)
            self._order = order.to(self.data.labels.device, non_blocking=True)
            self._position = 0
        start = self._position * self.batch_size
        indices = self._order[start : start + self.batch_size]
        self._position += 1
        images = self.data.images[indices]
        if self.augment:
            images = crop_and_flip(images, self.augment_generator)
        return self.normalizer(images), self.data.labels[indices]
