"""Batches per second of the device-resident loader against torchvision's standard pipeline.

Both draw shuffled batches of 128 from the same uint8 CIFAR-shaped images with the same
augmentation (random crop after 4-pixel zero padding, horizontal flip) and normalisation:
the env's ``DeviceLoader`` in batched tensor operations, and torchvision's ``DataLoader``
with per-image ``transforms`` on PIL images, with 0 and with 2 worker processes. The ratio
is the device loader against the faster of the two.

    python benchmarks/data_pipeline.py            # 10,000 images, CPU
    python benchmarks/data_pipeline.py --quick    # a check that it runs, in seconds
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import machine, timed, write_results
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from qan_env.config import make_config
from qan_env.training import build_trainer, load_device_data
from qan_env.training.loader import channel_statistics


class UInt8Images(Dataset):
    """Images kept as HWC uint8 arrays and handed out as PIL images, as torchvision's CIFAR10."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=60, help="batches timed per pipeline")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="few images and batches")
    args = parser.parse_args()
    if args.quick:
        args.images, args.batches = 1024, 6
    config = make_config(
        "quick",
        synthetic_train_size=args.images,
        synthetic_test_size=10,
        batch_size=args.batch_size,
        device="cpu",
    )
    data = load_device_data(config)
    train = data.train
    loader = build_trainer(config, data, np.random.default_rng(0)).loader  # the env's loader
    mean, std = channel_statistics(train.images)  # for torchvision's Normalize

    def device_batches() -> None:
        for _ in range(args.batches):
            loader.next_batch()

    standard = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean.flatten().tolist(), std.flatten().tolist()),
        ]
    )
    dataset = UInt8Images(train.images, train.labels, standard)
    results = {"device_loader": args.batches / timed(device_batches)}
    for workers in (0, 2):
        data_loader = DataLoader(
            dataset,
            batch_size=args.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            persistent_workers=workers > 0,
        )

        def torchvision_batches(data_loader=data_loader) -> None:
            batches = iter(data_loader)
            for _ in range(args.batches):
                try:
                    next(batches)
                except StopIteration:
                    batches = iter(data_loader)
                    next(batches)

        torchvision_batches()  # warm up (starts the workers)
        results[f"torchvision_{workers}_workers"] = args.batches / timed(torchvision_batches)
    for name, rate in results.items():
        print(f"{name}: {rate:.1f} batches/s ({rate * args.batch_size:,.0f} images/s)")
    ratio = results["device_loader"] / max(
        results["torchvision_0_workers"], results["torchvision_2_workers"]
    )
    if not args.quick:
        write_results(
            "data_pipeline_cpu",
            {
                "machine": machine(),
                "images": args.images,
                "batch_size": args.batch_size,
                "batches_per_second": results,
                "ratio": ratio,
                "target": 10.0,
            },
        )
    print(f"device loader / torchvision batches per second ratio: {ratio:.1f} (target >= 10)")


if __name__ == "__main__":
    main()
