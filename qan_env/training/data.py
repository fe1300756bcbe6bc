"""Image data: torchvision's data sets, scikit-learn's digits, an embedded synthetic set,
in-memory sets, and a device-resident loader.

Every data set comes back as uint8 ``[N, C, H, W]`` images and int64 labels; the network's
input channels and classes follow the data. ``SOURCES`` names them all, with what is known
before reading them (the training size, whether mirrored images keep their labels). The
loader keeps the whole training set on the device and draws augmented batches there
(random crop with 4-pixel zero padding, and a horizontal flip where the set allows one)
with no per-sample Python and no worker processes.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F

from qan_env.validation import refuse

if TYPE_CHECKING:
    from qan_env.training.config import TrainingConfig

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CROP_PADDING = 4
#: The UCI digits (scikit-learn's copy): the images kept for testing, the rest train.
DIGITS_TEST_SIZE = 360


class DatasetError(RuntimeError):
    """A data set is missing or corrupt; the message says where and how to get it."""


@dataclass(frozen=True)
class ImageSet:
    """uint8 images ``[N, C, H, W]`` and int64 labels ``[N]`` (0 to classes - 1) of one split."""

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


@dataclass(frozen=True)
class DataSource:
    """A data set a config can name: how to read its two splits, and what is known about it
    before any file is read."""

    read: Callable[[DataFields], tuple[ImageSet, ImageSet]]
    train_size: int | None
    """Training images; None: the config sets it (the synthetic set)."""
    classes: int
    """Classes: the network's outputs."""
    flip: bool
    """Whether a mirrored image keeps its label (clothes, objects: yes; digits: no), so
    whether training draws random horizontal flips."""


def _torchvision_reader(
    class_name: str, folder: str, split: Callable[[bool], dict[str, Any]]
) -> Callable[[DataFields], tuple[ImageSet, ImageSet]]:
    """Read a torchvision data set's train and test splits from ``config.data_dir``.

    ``split(train)`` gives the class's keyword for a split; ``folder`` is where its files
    go under ``data_dir``, for the message when they are missing.
    """

    def read(config: DataFields) -> tuple[ImageSet, ImageSet]:
        import torchvision.datasets

        dataset_class = getattr(torchvision.datasets, class_name)
        root = Path(config.data_dir).expanduser()
        how = (
            f"Pass download=True to fetch it with torchvision, or put torchvision's files for "
            f"{class_name} in {root / folder}."
        )

        def read_splits() -> tuple:
            return tuple(
                dataset_class(str(root), download=config.download, **split(train))
                for train in (True, False)
            )

        def missing(error: RuntimeError) -> str:
            return (
                f"{class_name} was not found in {root / folder}, or its files are incomplete "
                f"or corrupt ({error})."
            )

        return _read_torchvision(read_splits, class_name, root, how, missing)

    return read


def _read_torchvision(
    read_splits: Callable[[], tuple],
    name: str,
    root: Path,
    how: str,
    missing: Callable[[RuntimeError], str],
) -> tuple[ImageSet, ImageSet]:
    """Both splits from torchvision, with its errors as ``DatasetError``s that say what is
    wrong (``missing``: torchvision found no whole set) and ``how`` to get the data."""
    try:
        train, test = read_splits()
    except RuntimeError as error:
        raise DatasetError(f"{missing(error)} {how}") from error
    except OSError as error:  # a failed download: no network, a refused connection
        raise DatasetError(f"{name} could not be downloaded into {root}: {error}. {how}") from error
    return _from_torchvision(train), _from_torchvision(test)


def _from_torchvision(dataset) -> ImageSet:
    """A torchvision data set's arrays as an ``ImageSet``: CIFAR's ``[N, H, W, C]`` arrays,
    SVHN's ``[N, C, H, W]`` ones and MNIST's ``[N, H, W]`` tensors."""
    images = torch.as_tensor(np.asarray(dataset.data))
    if images.ndim == 3:
        images = images.unsqueeze(1)
    elif images.shape[-1] in (1, 3):
        images = images.permute(0, 3, 1, 2)
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = dataset.labels
    return ImageSet(images.contiguous(), torch.as_tensor(np.asarray(labels), dtype=torch.int64))


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

    def read_splits() -> tuple:
        train = CIFAR10(str(root), train=True, download=download)
        return train, CIFAR10(str(root), train=False, download=False)

    def missing(error: RuntimeError) -> str:
        absent = [name for name in expected if not (folder / name).is_file()]
        if absent:
            return f"CIFAR-10 was not found in {folder}: missing {', '.join(absent)}."
        return (
            f"CIFAR-10 in {folder} failed torchvision's checksum (corrupt or partial files). "
            f"Delete {folder} and get a fresh copy."
        )

    return _read_torchvision(read_splits, "CIFAR-10", root, how, missing)


def load_digits() -> tuple[ImageSet, ImageSet]:
    """The UCI handwritten digits that scikit-learn ships (1,797 8x8 images, 10 classes, no
    download), upsampled to 32x32 grey images; a fixed draw of 360 is the test split.

    Real images on any machine: a check that a policy learned on the synthetic set is not
    tied to it. Needs scikit-learn (``pip install 'qan_env[digits]'``).
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as error:
        raise DatasetError(
            "dataset='digits' reads scikit-learn's copy of the UCI digits: install it with "
            "pip install 'qan_env[digits]' (or pip install scikit-learn)"
        ) from error
    digits = sklearn_digits()
    pixels = torch.from_numpy(digits.images).float().unsqueeze(1)  # [N, 1, 8, 8], 0 to 16
    upsampled = F.interpolate(pixels, size=32, mode="bilinear", align_corners=False)
    images = (upsampled * (255 / 16)).round().clamp(0, 255).to(torch.uint8)
    labels = torch.from_numpy(digits.target).to(torch.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    test, train = order[:DIGITS_TEST_SIZE], order[DIGITS_TEST_SIZE:]
    return ImageSet(images[train], labels[train]), ImageSet(images[test], labels[test])


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


#: The data sets a config can name (``register_dataset`` adds in-memory ones).
def _by_flag(train: bool) -> dict[str, Any]:
    return {"train": train}


def _by_split(train: bool) -> dict[str, Any]:
    return {"split": "train" if train else "test"}


SOURCES: dict[str, DataSource] = {
    # name: DataSource(reader, training images, classes, flip)
    "cifar10": DataSource(lambda c: load_cifar10(c.data_dir, c.download), 50_000, 10, True),
    "cifar100": DataSource(
        _torchvision_reader("CIFAR100", "cifar-100-python", _by_flag), 50_000, 100, True
    ),
    "svhn": DataSource(_torchvision_reader("SVHN", "", _by_split), 73_257, 10, False),
    "mnist": DataSource(_torchvision_reader("MNIST", "MNIST/raw", _by_flag), 60_000, 10, False),
    "fashion_mnist": DataSource(
        _torchvision_reader("FashionMNIST", "FashionMNIST/raw", _by_flag), 60_000, 10, True
    ),
    "digits": DataSource(lambda c: load_digits(), 1797 - DIGITS_TEST_SIZE, 10, False),
    "synthetic": DataSource(
        lambda c: synthetic_cifar(c.synthetic_train_size, c.synthetic_test_size, c.synthetic_seed),
        None,
        SYNTHETIC_CLASSES,
        True,
    ),
}
BUILT_IN = tuple(SOURCES)
#: The in-memory sets of this process, by name; their reads are not cached (no files).
_REGISTERED: set[str] = set()


def register_dataset(
    name: str, train: ImageSet, test: ImageSet, classes: int | None = None, flip: bool = False
) -> None:
    """Make ``train`` and ``test`` a data set that configs can name: ``dataset=name``.

    Any image size, any number of channels and classes: the network's input channels and
    classes follow the data. Images are uint8 ``[N, C, H, W]``, labels int64 ``[N]`` from 0
    to ``classes`` - 1 (default: one more than the largest label), the two splits of the
    same image shape. ``flip``: whether training may mirror the images (only if a mirrored
    image keeps its label). The name lives in this process only: register it again
    wherever the env is made (a run's ``config.json`` names it, it does not hold it).
    Registering a name again replaces its data.
    """
    if not isinstance(name, str) or not name or name in BUILT_IN:
        refuse("name", name, f"a new non-empty name, not a built-in data set {BUILT_IN}")
    for split, images in (("train", train), ("test", test)):
        if not isinstance(images, ImageSet):
            refuse(split, type(images).__name__, "an ImageSet(images, labels)")
        _check_split(split, images)
    if train.images.shape[1:] != test.images.shape[1:]:
        refuse(
            "test",
            f"images of shape {tuple(test.images.shape[1:])}",
            f"the training images' shape [C, H, W] = {tuple(train.images.shape[1:])}",
        )
    if not isinstance(flip, bool):
        refuse("flip", flip, "True or False")
    largest = int(max(train.labels.max(), test.labels.max()))
    if classes is None:
        classes = largest + 1
    if isinstance(classes, bool) or not isinstance(classes, int) or classes <= largest:
        refuse("classes", classes, f"an integer above the largest label, {largest}")
    if classes < 2:
        refuse("classes", classes, "at least 2: one class leaves nothing to learn")
    train_copy = ImageSet(train.images.cpu().contiguous(), train.labels.cpu())
    test_copy = ImageSet(test.images.cpu().contiguous(), test.labels.cpu())
    SOURCES[name] = DataSource(lambda c: (train_copy, test_copy), len(train), classes, flip)
    _REGISTERED.add(name)
    _load.cache_clear()  # a name registered again must not serve the old data


def _check_split(split: str, data: ImageSet) -> None:
    images, labels = data.images, data.labels
    if images.dtype != torch.uint8 or images.ndim != 4:
        refuse(
            f"{split}.images",
            f"a {images.dtype} tensor of shape {tuple(images.shape)}",
            "uint8 [N, C, H, W] (grey images too: C = 1)",
        )
    if labels.dtype != torch.int64 or labels.shape != (len(images),):
        refuse(
            f"{split}.labels",
            f"a {labels.dtype} tensor of shape {tuple(labels.shape)}",
            f"int64 of shape ({len(images)},), one label per image",
        )
    if len(labels) == 0 or int(labels.min()) < 0:
        refuse(f"{split}.labels", "empty or negative", "class indices 0, 1, ... for every image")


@dataclass(frozen=True)
class DataFields:
    """The fields of a config that say which images a run reads, and nothing else: two
    configs with the same ones share one read of the data."""

    dataset: str
    data_dir: str
    download: bool
    synthetic_train_size: int
    synthetic_test_size: int
    synthetic_seed: int


def load_dataset(config: TrainingConfig) -> tuple[ImageSet, ImageSet]:
    """Train and test splits of ``config.dataset`` on the CPU.

    Sets read from files or generated are cached by the data fields alone, so environments
    in one process share one read-only host copy whatever their other settings.
    """
    fields = DataFields(
        config.dataset,
        config.data_dir,
        config.download,
        config.synthetic_train_size,
        config.synthetic_test_size,
        config.synthetic_seed,
    )
    if config.dataset in _REGISTERED:
        return SOURCES[config.dataset].read(fields)
    return _load(fields)


@functools.lru_cache(maxsize=4)
def _load(fields: DataFields) -> tuple[ImageSet, ImageSet]:
    return SOURCES[fields.dataset].read(fields)


def channel_statistics(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images on the [0, 1] scale, shaped ``[1, C, 1, 1]``."""
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
    images: torch.Tensor,
    generator: torch.Generator | None,
    padding: int = CROP_PADDING,
    flip: bool = True,
) -> torch.Tensor:
    """Random crop after zero padding and random horizontal flip, batched, as one gather.

    Equivalent per image to torchvision's ``RandomCrop(size, padding)`` followed by
    ``RandomHorizontalFlip()`` (without it when ``flip`` is False), and on the same device
    as ``images``.
    """
    batch, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    padded_width = width + 2 * padding
    top = torch.randint(0, 2 * padding + 1, (batch, 1, 1), generator=generator, device=device)
    left = torch.randint(0, 2 * padding + 1, (batch, 1, 1), generator=generator, device=device)
    columns = torch.arange(width, device=device)
    if flip:
        mirrored = torch.rand(batch, 1, 1, generator=generator, device=device) < 0.5
        columns = torch.where(mirrored, columns.flip(0), columns)  # [batch, 1, width]
    columns = left + columns
    rows = top + torch.arange(height, device=device).view(1, height, 1)  # [batch, height, 1]
    source = (rows * padded_width + columns).view(batch, 1, height * width)
    flat = padded.view(batch, channels, -1)
    return flat.gather(2, source.expand(batch, channels, -1)).view(batch, channels, height, width)


class DeviceLoader:
    """Endless shuffled, augmented, normalised training batches from a device-resident set.

    One epoch is ``len(data) // batch_size`` batches (the incomplete last batch is dropped,
    so every batch has the same shape). The order is drawn on the CPU from
    ``shuffle_generator`` once per epoch; augmentation (crops, and flips with ``flip``)
    draws on the device from ``augment_generator``.
    """

    def __init__(
        self,
        data: ImageSet,
        batch_size: int,
        normalizer: Normalizer,
        shuffle_generator: torch.Generator,
        augment_generator: torch.Generator | None,
        augment: bool = True,
        flip: bool = True,
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
        self.augment, self.flip = augment, flip
        self.iterations_per_epoch = len(data) // batch_size
        self._order = torch.empty(0, dtype=torch.int64)
        self._position = self.iterations_per_epoch

    def state_dict(self) -> dict:
        """The epoch's order, the position in it and both generators' states."""
        state = {
            "order": self._order.cpu(),
            "position": self._position,
            "shuffle": self.shuffle_generator.get_state(),
        }
        if self.augment_generator is not None:
            state["augment"] = self.augment_generator.get_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        self._order = state["order"].to(self.data.labels.device)
        self._position = state["position"]
        self.shuffle_generator.set_state(state["shuffle"])
        if self.augment_generator is not None:
            self.augment_generator.set_state(state["augment"])

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``(images, labels)``: float32 ``[B, C, H, W]`` and int64 ``[B]``."""
        if self._position == self.iterations_per_epoch:
            order = torch.randperm(len(self.data), generator=self.shuffle_generator)
            self._order = order.to(self.data.labels.device, non_blocking=True)
            self._position = 0
        start = self._position * self.batch_size
        indices = self._order[start : start + self.batch_size]
        self._position += 1
        images = self.data.images[indices]
        if self.augment:
            images = crop_and_flip(images, self.augment_generator, flip=self.flip)
        return self.normalizer(images), self.data.labels[indices]
