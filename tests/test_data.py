"""The data layer: CIFAR-10's real loading code on files in its format, the synthetic set,
batched augmentation and the device-resident loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cifar_format import write_cifar10
from torchvision.datasets import CIFAR10

from qan_env.training.datasets import DatasetError, load_cifar10
from qan_env.training.images import ImageSet
from qan_env.training.loader import DeviceLoader, Normalizer, channel_statistics, crop_and_flip
from qan_env.training.synthetic import synthetic_cifar


def test_cifar10_loads_the_files_written_in_its_format(cifar10_dir):
    root, written = cifar10_dir
    train, test = load_cifar10(root)
    assert train.images.dtype == torch.uint8 and train.images.shape == (200, 3, 32, 32)
    np.testing.assert_array_equal(train.images.numpy(), written["train_images"])
    np.testing.assert_array_equal(train.labels.numpy(), written["train_labels"])
    np.testing.assert_array_equal(test.images.numpy(), written["test_images"])
    np.testing.assert_array_equal(test.labels.numpy(), written["test_labels"])
    assert train.labels.dtype == torch.int64


def test_missing_cifar10_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_cifar10(tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert "download=True" in message and "cifar-10-python.tar.gz" in message
    assert "data_batch_1" in message


def test_partly_missing_cifar10_names_the_missing_files(cifar10_dir):
    root, _ = cifar10_dir
    (root / CIFAR10.base_folder / "test_batch").unlink()
    with pytest.raises(DatasetError, match="missing test_batch"):
        load_cifar10(root)


def test_corrupt_cifar10_is_reported_as_corrupt(cifar10_dir):
    root, _ = cifar10_dir
    batch = root / CIFAR10.base_folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="checksum") as error:
        load_cifar10(root)
    assert str(root / CIFAR10.base_folder) in str(error.value)


def test_unpatched_checksums_reject_files_that_are_not_the_real_set(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(DatasetError, match="checksum"):
        load_cifar10(tmp_path)


def test_synthetic_set_is_deterministic_balanced_and_cifar_shaped():
    train, test = synthetic_cifar(300, 120, seed=5)
    again, _ = synthetic_cifar(300, 120, seed=5)
    other, _ = synthetic_cifar(300, 120, seed=6)
    assert train.images.shape == (300, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (120, 3, 32, 32)
    assert torch.equal(train.images, again.images) and torch.equal(train.labels, again.labels)
    assert not torch.equal(train.images, other.images)
    assert torch.bincount(train.labels, minlength=10).tolist() == [30] * 10
    # Images use the byte range without being saturated.
    assert 60 < train.images.float().mean() < 200
    assert (train.images == 255).float().mean() < 0.05


def test_channel_statistics_and_normalizer_standardise():
    train, _ = synthetic_cifar(200, 10, seed=0)
    normalizer = Normalizer(*channel_statistics(train.images))
    normalized = normalizer(train.images)
    assert normalized.dtype == torch.float32
    torch.testing.assert_close(normalized.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(normalized.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3, rtol=0)


def test_crop_and_flip_gives_padded_crops_of_each_image():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=generator)
    out = crop_and_flip(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    seen_flip = seen_plain = seen_offsets = 0
    for index in range(len(images)):
        windows = [
            (top, left, flip)
            for top in range(9)
            for left in range(9)
            for flip in (False, True)
            if torch.equal(
                out[index],
                padded[index, :, top : top + 32, left : left + 32].flip(-1)
                if flip
                else padded[index, :, top : top + 32, left : left + 32],
            )
        ]
        assert windows, f"image {index} is not a crop of its padded image"
        seen_flip += any(flip for *_, flip in windows)
        seen_plain += any(not flip for *_, flip in windows)
        seen_offsets += any((top, left) != (4, 4) for top, left, _ in windows)
    assert seen_flip > 10 and seen_plain > 10 and seen_offsets > 40


def _loader(data: ImageSet, batch_size: int, seed: int, augment: bool = False) -> DeviceLoader:
    return DeviceLoader(
        data,
        batch_size,
        Normalizer(torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1) / 255),
        shuffle_generator=torch.Generator().manual_seed(seed),
        augment_generator=torch.Generator().manual_seed(seed + 1),
        augment=augment,
    )


def test_loader_visits_every_whole_batch_once_per_epoch_in_a_new_order():
    data = ImageSet(
        torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 3, 32, 32).clone(),
        torch.arange(100),
    )
    loader = _loader(data, batch_size=16, seed=0)
    assert loader.iterations_per_epoch == 6
    epochs = []
    for _ in range(2):
        labels = torch.cat([loader.next_batch()[1] for _ in range(loader.iterations_per_epoch)])
        assert len(labels) == 96 and len(set(labels.tolist())) == 96
        epochs.append(labels)
    assert not torch.equal(epochs[0], epochs[1])
    images, labels = _loader(data, batch_size=16, seed=0).next_batch()
    # The images stay paired with their labels (normalizer here is the identity).
    assert torch.equal(images[:, 0, 0, 0].long(), labels)


def test_loader_is_reproducible_from_its_generators():
    train, _ = synthetic_cifar(128, 10, seed=0)
    first = [_loader(train, 32, seed=3, augment=True).next_batch()[0] for _ in range(2)]
    assert torch.equal(first[0], first[1])
    other = _loader(train, 32, seed=4, augment=True).next_batch()[0]
    assert not torch.equal(first[0], other)


def test_loader_refuses_a_batch_larger_than_the_set():
    train, _ = synthetic_cifar(20, 10, seed=0)
    with pytest.raises(ValueError, match="batch_size=32 is larger than the training set"):
        _loader(train, 32, seed=0)
