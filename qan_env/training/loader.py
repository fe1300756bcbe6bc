"""The device-resident loader: the whole training split on the device, batches drawn there.

Augmentation is a random crop with 4-pixel zero padding and, where the set allows it, a
horizontal flip, both batched as one gather, with no per-sample Python and no worker
processes; normalisation is one fused multiply-add.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from qan_env.training.images import ImageSet

CROP_PADDING = 4


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
