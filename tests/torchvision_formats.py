"""Small copies of torchvision's data sets, written in each one's own on-disk format, so that
torchvision's own reading code runs on them (CIFAR-10 is in ``cifar_format.py``)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import scipy.io
from torchvision import datasets

TRAIN_SIZE, TEST_SIZE = 64, 32


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _split(rng: np.random.Generator, size: int, shape: tuple[int, ...], classes: int):
    return rng.integers(0, 256, (size, *shape), dtype=np.uint8), rng.integers(0, classes, size)


def write_cifar100(root: Path, rng: np.random.Generator, monkeypatch) -> dict:
    """Pickled dicts of 3072-byte rows and fine labels, as in cifar-100-python."""
    folder = root / datasets.CIFAR100.base_folder
    folder.mkdir(parents=True)
    written = {}
    for split, size in (("train", TRAIN_SIZE), ("test", TEST_SIZE)):
        images, labels = _split(rng, size, (3, 32, 32), 100)
        entry = {"data": images.reshape(size, -1), "fine_labels": labels.tolist()}
        entry["coarse_labels"] = (labels // 5).tolist()
        (folder / split).write_bytes(pickle.dumps(entry, protocol=2))
        written[split] = (images, labels)
    meta = {"fine_label_names": [f"class{i}" for i in range(100)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    monkeypatch.setattr(datasets.CIFAR100, "train_list", [["train", _md5(folder / "train")]])
    monkeypatch.setattr(datasets.CIFAR100, "test_list", [["test", _md5(folder / "test")]])
    meta_entry = dict(datasets.CIFAR100.meta, md5=_md5(folder / "meta"))
    monkeypatch.setattr(datasets.CIFAR100, "meta", meta_entry)
    return written


def write_svhn(root: Path, rng: np.random.Generator, monkeypatch) -> dict:
    """MATLAB files of ``X`` ``[32, 32, 3, N]`` and ``y`` ``[N, 1]``, with 10 for the digit 0."""
    root.mkdir(parents=True, exist_ok=True)
    written, split_list = {}, dict(datasets.SVHN.split_list)
    for split, size in (("train", TRAIN_SIZE), ("test", TEST_SIZE)):
        images, labels = _split(rng, size, (3, 32, 32), 10)
        path = root / f"{split}_32x32.mat"
        stored = np.where(labels == 0, 10, labels).reshape(-1, 1)
        scipy.io.savemat(path, {"X": images.transpose(2, 3, 1, 0), "y": stored.astype(np.uint8)})
        split_list[split] = [split_list[split][0], path.name, _md5(path)]
        written[split] = (images, labels)
    monkeypatch.setattr(datasets.SVHN, "split_list", split_list)
    return written


def write_mnist(root: Path, rng: np.random.Generator, class_name: str) -> dict:
    """IDX files (big-endian magic number and sizes, then the bytes) in ``CLASS/raw``."""
    folder = root / class_name / "raw"
    folder.mkdir(parents=True)
    written = {}
    for split, prefix, size in (("train", "train", TRAIN_SIZE), ("test", "t10k", TEST_SIZE)):
        images, labels = _split(rng, size, (28, 28), 10)
        header = np.array([0x803, size, 28, 28], dtype=">i4").tobytes()
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        header = np.array([0x801, size], dtype=">i4").tobytes()
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
            header + labels.astype(np.uint8).tobytes()
        )
        written[split] = (images[:, None], labels)
    return written
