"""The data sets a config can name, and their readers: torchvision's sets, scikit-learn's
digits, the embedded synthetic set and in-memory sets a user registers.

Every data set comes back as an ``ImageSet`` (uint8 ``[N, C, H, W]`` images, int64 labels);
the network's input channels and classes follow the data. ``SOURCES`` names them all, with
what is known before reading them (the training size, whether mirrored images keep their
labels). ``load_dataset`` reads one by its ``DataFields``, the few config fields that say
which images a run reads.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from qan_env.training.images import ImageSet
from qan_env.training.synthetic import SYNTHETIC_CLASSES, synthetic_cifar
from qan_env.validation import refuse

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
#: The UCI digits (scikit-learn's copy): the images kept for testing, the rest train.
DIGITS_TEST_SIZE = 360


class DatasetError(RuntimeError):
    """A data set is missing or corrupt; the message says where and how to get it."""


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
    fingerprint: str | None = None
    """An in-memory set's sha256 over its images, labels, classes and flip (what a saved
    episode is checked against); None: a built-in set, read from files or generated."""


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


#: The most classes a registered data set may have: far above any image benchmark's, low
#: enough that a stray label cannot make the classifier's weight take all memory.
MAX_CLASSES = 100_000


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
    A name names one data set for the life of the process, so that an env made from it
    keeps its data: registering it again with the same data does nothing, with other data
    is refused (register that under a new name).
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
    if classes > MAX_CLASSES:
        refuse("classes", classes, f"at most {MAX_CLASSES:,} (the network has a weight per class)")
    constant = (train.images.amin(dim=(0, 2, 3)) == train.images.amax(dim=(0, 2, 3))).nonzero()
    if len(constant):
        refuse(
            "train.images",
            f"channel {int(constant[0, 0])} of the same value in every pixel",
            "channels that vary: each is normalised by its std, which is 0 there",
        )
    train_copy = ImageSet(train.images.cpu().contiguous(), train.labels.cpu())
    test_copy = ImageSet(test.images.cpu().contiguous(), test.labels.cpu())
    fingerprint = _fingerprint(train_copy, test_copy, classes, flip)
    if name in SOURCES and SOURCES[name].fingerprint != fingerprint:
        refuse(
            "name",
            name,
            "a name not yet given to other data: envs made from it keep that data, so a "
            "name is registered once per process (register the new data under a new name)",
        )
    SOURCES[name] = DataSource(
        lambda c: (train_copy, test_copy), len(train), classes, flip, fingerprint
    )


def _fingerprint(train: ImageSet, test: ImageSet, classes: int, flip: bool) -> str:
    digest = hashlib.sha256(f"{classes} {flip} {tuple(train.images.shape)}".encode())
    for tensor in (train.images, train.labels, test.images, test.labels):
        digest.update(tensor.contiguous().numpy())  # read in place, never copied
    return digest.hexdigest()


def dataset_fingerprint(name: str) -> str | None:
    """What ``register_dataset`` recorded of ``name``'s data (None: a built-in set)."""
    return SOURCES[name].fingerprint


def _check_split(split: str, data: ImageSet) -> None:
    images, labels = data.images, data.labels
    if images.dtype != torch.uint8 or images.ndim != 4 or min(images.shape[1:], default=0) < 1:
        refuse(
            f"{split}.images",
            f"a {images.dtype} tensor of shape {tuple(images.shape)}",
            "uint8 [N, C, H, W] with C, H, W >= 1 (grey images too: C = 1)",
        )
    if labels.dtype != torch.int64 or labels.shape != (len(images),):
        refuse(
            f"{split}.labels",
            f"a {labels.dtype} tensor of shape {tuple(labels.shape)}",
            f"int64 of shape ({len(images)},), one label per image",
        )
    if len(labels) == 0 or int(labels.min()) < 0:
        refuse(f"{split}.labels", "empty or negative", "class indices 0, 1, ... for every image")


def load_dataset(fields: DataFields) -> tuple[ImageSet, ImageSet]:
    """Train and test splits of ``fields.dataset`` on the CPU.

    Sets read from files or generated are cached by these fields alone, so environments
    in one process share one read-only host copy whatever their other settings.
    """
    if SOURCES[fields.dataset].fingerprint is not None:  # in memory: nothing to cache
        return SOURCES[fields.dataset].read(fields)
    return _load(fields)


@functools.lru_cache(maxsize=4)
def _load(fields: DataFields) -> tuple[ImageSet, ImageSet]:
    return SOURCES[fields.dataset].read(fields)
