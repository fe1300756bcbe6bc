"""``ImageSet``: the one shape every data set takes, whatever it was read from."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
