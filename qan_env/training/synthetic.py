"""The embedded synthetic set: CIFAR-shaped images generated from a seed, no download.

Every image is a sum of colour plane waves. A bank of wave components is shared by all
classes; a class is a few "modes", each a weighted pair of components, so telling classes
apart needs conjunctions of frequency, orientation and colour. Each image also carries a
random distractor component, random phases (position carries no label) and pixel noise, so
a small network learns it well but not perfectly.
"""

from __future__ import annotations

import math

import torch

from qan_env.training.images import ImageSet

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
