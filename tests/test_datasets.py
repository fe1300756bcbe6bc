"""Every data source: torchvision's sets by name (their own reading code on files in their
own format), scikit-learn's digits, and in-memory sets; the network follows the data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torchvision_formats import TRAIN_SIZE, write_cifar100, write_mnist, write_svhn

import qan_env
from qan_env import DatasetError, ImageSet, LRScheduleEnv, register_dataset
from qan_env.training import datasets
from qan_env.training.datasets import load_dataset

WRITERS = {
    "cifar100": lambda root, rng, patch: write_cifar100(root, rng, patch),
    "svhn": lambda root, rng, patch: write_svhn(root, rng, patch),
    "mnist": lambda root, rng, patch: write_mnist(root, rng, "MNIST"),
    "fashion_mnist": lambda root, rng, patch: write_mnist(root, rng, "FashionMNIST"),
}


def run_episode(env: LRScheduleEnv) -> dict:
    """A whole episode at the initial lr; the last info."""
    env.reset(seed=0)
    terminated = False
    while not terminated:
        observation, reward, terminated, _, info = env.step(0)
        assert np.isfinite(observation).all() and np.isfinite(reward)
    return info


@pytest.mark.parametrize("name", WRITERS)
def test_a_torchvision_set_is_read_by_name_and_trains_its_own_network(name, tmp_path, monkeypatch):
    written = WRITERS[name](tmp_path, np.random.default_rng(0), monkeypatch)
    source = replace(datasets.SOURCES[name], train_size=TRAIN_SIZE)  # the real one is larger
    monkeypatch.setitem(datasets.SOURCES, name, source)
    env = LRScheduleEnv(preset="tiny", dataset=name, data_dir=str(tmp_path))
    train, test = load_dataset(env.config.data_fields)
    for split, loaded in (("train", train), ("test", test)):
        images, labels = written[split]
        np.testing.assert_array_equal(loaded.images.numpy(), images)  # [N, C, H, W], uint8
        np.testing.assert_array_equal(loaded.labels.numpy(), labels)  # SVHN's 10 is 0 here
    info = run_episode(env)
    assert info["epoch"] == env.config.epochs and 0.0 <= info["test_accuracy"] <= 1.0
    model = env.episode.trainer.model
    assert model.conv1.in_channels == images.shape[1]  # 1 for the MNISTs, 3 otherwise
    assert model.fc.out_features == source.classes  # 100 for CIFAR-100
    assert env.episode.trainer.loader.flip == source.flip


@pytest.mark.parametrize("name", WRITERS)
def test_a_missing_torchvision_set_says_where_it_looked_and_how_to_get_it(name, tmp_path):
    env = LRScheduleEnv(preset="tiny", dataset=name, data_dir=str(tmp_path / "empty"))
    with pytest.raises(DatasetError) as error:
        env.reset(seed=0)
    message = str(error.value)
    assert "was not found in" in message and str(tmp_path / "empty") in message
    assert "download=True" in message


@pytest.mark.slow
def test_digits_are_real_images_that_need_no_download():
    pytest.importorskip("sklearn")
    train, test = datasets.load_digits()
    assert train.images.shape == (1437, 1, 32, 32) and test.images.shape == (360, 1, 32, 32)
    assert train.images.dtype == torch.uint8 and int(train.images.max()) == 255
    assert sorted(set(train.labels.tolist())) == list(range(10))
    env = LRScheduleEnv(preset="tiny", dataset="digits")
    assert env.config.dataset_train_size == 1437 and env.steps_per_episode == 2 * (1437 // 32)
    info = run_episode(env)
    assert info["test_accuracy"] > 0.2  # a real, easy set: well above chance in 2 epochs
    assert env.episode.trainer.model.conv1.in_channels == 1 and not env.episode.trainer.loader.flip


def random_set(size: int, shape: tuple[int, ...], classes: int, seed: int) -> ImageSet:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (size, *shape), dtype=torch.uint8, generator=generator)
    labels = torch.arange(size) % classes
    return ImageSet(images, labels)


@pytest.fixture(autouse=True)
def registrations_stay_in_their_test():
    saved = dict(datasets.SOURCES)
    yield
    datasets.SOURCES.clear()
    datasets.SOURCES.update(saved)


def test_an_in_memory_set_of_any_shape_and_class_count_trains():
    train, test = random_set(96, (2, 20, 20), 3, seed=0), random_set(40, (2, 20, 20), 3, seed=1)
    register_dataset("mine", train, test, flip=True)
    env = qan_env.make_config("tiny", dataset="mine")
    assert env.dataset_train_size == 96
    lr_env = LRScheduleEnv(preset="tiny", dataset="mine", batch_size=16)
    run_episode(lr_env)
    model = lr_env.episode.trainer.model
    assert model.conv1.in_channels == 2 and model.fc.out_features == 3
    assert lr_env.episode.trainer.loader.flip


def test_a_name_keeps_its_data_for_the_envs_made_from_it():
    train, test = random_set(64, (3, 8, 8), 4, seed=0), random_set(16, (3, 8, 8), 4, seed=1)
    register_dataset("mine", train, test)
    env = LRScheduleEnv(preset="tiny", dataset="mine", batch_size=16)
    steps = env.config.steps_per_episode
    register_dataset("mine", train, test)  # the same data again: nothing changes
    with pytest.raises(ValueError, match=r"name='mine' is not allowed: a name not yet given"):
        register_dataset("mine", random_set(32, (3, 8, 8), 4, seed=2), test)
    assert env.config.steps_per_episode == steps
    assert datasets.SOURCES["mine"].train_size == 64
    env.reset(seed=0)
    env.step(0)  # still trains on the data it was made with


def test_a_saved_episode_is_refused_on_other_data_under_its_name():
    train, test = random_set(64, (3, 8, 8), 4, seed=0), random_set(16, (3, 8, 8), 4, seed=1)
    register_dataset("mine", train, test)
    env = LRScheduleEnv(preset="tiny", dataset="mine", batch_size=16)
    env.reset(seed=0)
    env.step(0)
    state = env.state_dict()
    same = LRScheduleEnv(preset="tiny", dataset="mine", batch_size=16)
    same.load_state_dict(state)  # the same data: it continues
    assert same.episode.steps == 1
    # another process: the name given to images of the same shape and count
    del datasets.SOURCES["mine"]
    register_dataset("mine", random_set(64, (3, 8, 8), 4, seed=5), test)
    other = LRScheduleEnv(preset="tiny", dataset="mine", batch_size=16)
    other.reset(seed=0)
    episode = other.episode
    with pytest.raises(ValueError, match="on other data than this env's 'mine'"):
        other.load_state_dict(state)
    assert other.episode is episode  # left as it was


@pytest.mark.parametrize(
    "train, test, kwargs, message",
    [
        (
            random_set(32, (3, 8, 8), 4, 0),
            random_set(16, (1, 8, 8), 4, 1),
            {},
            r"test='images of shape \(1, 8, 8\)' is not allowed: the training images' shape",
        ),
        (
            random_set(32, (3, 8, 8), 4, 0),
            random_set(16, (3, 8, 8), 4, 1),
            {"classes": 3},
            r"classes=3 is not allowed: an integer above the largest label, 3",
        ),
        (
            ImageSet(torch.zeros(8, 3, 8, 8), torch.zeros(8, dtype=torch.int64)),
            random_set(16, (3, 8, 8), 4, 1),
            {},
            r"train.images='a torch.float32 tensor of shape \(8, 3, 8, 8\)' is not allowed: "
            r"uint8 \[N, C, H, W\]",
        ),
        (
            ImageSet(torch.zeros(8, 3, 8, 8, dtype=torch.uint8), torch.zeros(8)),
            random_set(16, (3, 8, 8), 4, 1),
            {},
            r"train.labels='a torch.float32 tensor of shape \(8,\)' is not allowed: int64",
        ),
        (
            random_set(32, (3, 8, 8), 1, 0),
            random_set(16, (3, 8, 8), 1, 1),
            {},
            r"classes=1 is not allowed: at least 2",
        ),
        (
            random_set(32, (3, 8, 8), 4, 0),
            random_set(16, (3, 8, 8), 4, 1),
            {"classes": 10**9},
            r"classes=1000000000 is not allowed: at most 100,000",
        ),
        (
            ImageSet(torch.zeros(8, 3, 0, 8, dtype=torch.uint8), torch.zeros(8, dtype=torch.int64)),
            random_set(16, (3, 8, 8), 4, 1),
            {},
            r"train.images=.*\(8, 3, 0, 8\)' is not allowed: uint8 .* with C, H, W >= 1",
        ),
        (
            ImageSet(
                torch.cat(
                    [
                        torch.randint(0, 255, (8, 1, 8, 8), dtype=torch.uint8),
                        torch.full((8, 1, 8, 8), 7, dtype=torch.uint8),
                    ],
                    dim=1,
                ),
                torch.arange(8) % 2,
            ),
            random_set(16, (2, 8, 8), 2, 1),
            {},
            r"train.images='channel 1 of the same value in every pixel' is not allowed",
        ),
    ],
)
def test_a_bad_in_memory_set_is_refused_clearly_and_not_registered(train, test, kwargs, message):
    with pytest.raises(ValueError, match=message):
        register_dataset("bad", train, test, **kwargs)
    assert "bad" not in datasets.SOURCES


def test_built_in_names_cannot_be_replaced_and_unknown_names_say_how_to_register():
    with pytest.raises(ValueError, match="name='cifar10' is not allowed: a new non-empty name"):
        register_dataset("cifar10", random_set(8, (3, 8, 8), 2, 0), random_set(8, (3, 8, 8), 2, 1))
    with pytest.raises(ValueError, match=r"or a name given to qan_env\.register_dataset"):
        LRScheduleEnv(preset="tiny", dataset="not_registered")
