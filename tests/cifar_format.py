"""Writing a small CIFAR-10 in the data set's own on-disk format."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from torchvision.datasets import CIFAR10

TRAIN_PER_BATCH = 40
TEST_SIZE = 50


def write_cifar10(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a small CIFAR-10 in its on-disk format: pickled dicts of uint8 rows and labels.

    Each row is 3072 bytes, the red plane then green then blue, 32x32 each, as in the
    original files. Returns the images (as [N, 3, 32, 32]) and labels written per split.
    """
    rng = np.random.default_rng(seed)
    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    written = {"train_images": [], "train_labels": []}
    for name, _ in CIFAR10.train_list:
        rows = rng.integers(0, 256, (TRAIN_PER_BATCH, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, TRAIN_PER_BATCH).tolist()
        _dump(folder / name, rows, labels, name)
        written["train_images"].append(rows.reshape(-1, 3, 32, 32))
        written["train_labels"] += labels
    rows = rng.integers(0, 256, (TEST_SIZE, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, TEST_SIZE).tolist()
    _dump(folder / CIFAR10.test_list[0][0], rows, labels, "testing batch 1 of 1")
    with open(folder / CIFAR10.meta["filename"], "wb") as file:
        names = ["airplane", "automobile", "bird", "cat", "deer"]
        names += ["dog", "frog", "horse", "ship", "truck"]
        pickle.dump({"label_names": names, "num_cases_per_batch": 10000, "num_vis": 3072}, file)
    return {
        "train_images": np.concatenate(written["train_images"]),
        "train_labels": np.array(written["train_labels"]),
        "test_images": rows.reshape(-1, 3, 32, 32),
        "test_labels": np.array(labels),
    }


def _dump(path: Path, rows: np.ndarray, labels: list[int], batch_label: str) -> None:
    entry = {
        "batch_label": batch_label,
        "labels": labels,
        "data": rows,
        "filenames": [f"image_{index}.png" for index in range(len(labels))],
    }
    with open(path, "wb") as file:
        pickle.dump(entry, file, protocol=2)
