"""Shared fixtures: small environments and a CIFAR-10 folder written in CIFAR-10's own format."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from cifar_format import TRAIN_PER_BATCH, write_cifar10
from torchvision.datasets import CIFAR10

from qan_env import LRScheduleEnv
from qan_env.training import datasets

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str) -> subprocess.CompletedProcess:
    """Run ``python *args`` from the repository root, as a user would, for however long it
    takes (no timeout: a loaded machine is slow, not wrong); never raises."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.fixture
def tiny_env():
    env = LRScheduleEnv(preset="tiny")
    yield env
    env.close()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def cifar10_dir(tmp_path, monkeypatch):
    """A small CIFAR-10 folder, with torchvision's checksum table set to these files' sums
    and the data set's training size (``datasets.SOURCES``) to theirs.

    Everything else, from unpickling to the HWC layout, is torchvision's own loading code.
    """
    written = write_cifar10(tmp_path)
    folder = tmp_path / CIFAR10.base_folder
    monkeypatch.setattr(
        CIFAR10, "train_list", [[name, _md5(folder / name)] for name, _ in CIFAR10.train_list]
    )
    monkeypatch.setattr(
        CIFAR10, "test_list", [[name, _md5(folder / name)] for name, _ in CIFAR10.test_list]
    )
    meta = dict(CIFAR10.meta, md5=_md5(folder / CIFAR10.meta["filename"]))
    monkeypatch.setattr(CIFAR10, "meta", meta)
    size = len(CIFAR10.train_list) * TRAIN_PER_BATCH
    cifar10 = replace(datasets.SOURCES["cifar10"], train_size=size)
    monkeypatch.setitem(datasets.SOURCES, "cifar10", cifar10)
    return tmp_path, written
