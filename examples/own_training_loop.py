"""A trained policy in a plain PyTorch training loop: ``qan_env.PolicyLR`` beside the cosine.

    python examples/own_training_loop.py            # a small CNN on scikit-learn's digits
    python examples/own_training_loop.py --small    # two epochs: seconds
    python examples/own_training_loop.py --output docs/results/own_loop.json   # the README's

The network is not the env's Wide ResNet and the loop is not the env's: a small CNN on the
8x8 digits (no download), SGD with momentum 0.9 from a guessed lr of 0.1, a fifth of the
training images held out for the loss the policy observes. The same run (the same seed,
so the same initial weights and data order) is trained twice: with ``PolicyLR`` driven by
the shipped general policy, and with ``CosineAnnealingLR`` from the same lr. It prints
both final test accuracies. The README's ran with ``OMP_NUM_THREADS=1``, as the
comparisons do: at another thread count a run differs by rounding.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

from qan_env import PolicyLR


def digits() -> tuple[torch.Tensor, ...]:
    """Train, held-out and test images ``[N, 1, 8, 8]`` scaled to [0, 1], and labels."""
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    images, labels = images[order], labels[order]
    test, heldout = 360, 288
    return (
        images[test + heldout :], labels[test + heldout :],
        images[test : test + heldout], labels[test : test + heldout],
        images[:test], labels[:test],
    )  # fmt: skip


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 4 * 4, 10),
    )  # fmt: skip


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        correct = (model(images).argmax(dim=1) == labels).float().mean().item()
    model.train()
    return correct


def train(schedule: str, epochs: int, seed: int, batch_size: int = 32) -> float:
    """One run with ``schedule`` ("policy" or "cosine"); its final test accuracy."""
    x, y, x_held, y_held, x_test, y_test = digits()
    torch.manual_seed(seed)
    model = small_cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    total = epochs * (len(y) // batch_size)

    def heldout_loss() -> torch.Tensor:  # the policy reads how the held-out loss moves
        model.eval()
        with torch.no_grad():
            loss = F.cross_entropy(model(x_held), y_held)
        model.train()
        return loss

    if schedule == "policy":
        scheduler = PolicyLR(optimizer, "general", total_steps=total, heldout_loss=heldout_loss)
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        batches = torch.randperm(len(y), generator=order)[: total // epochs * batch_size]
        for rows in batches.split(batch_size):
            loss = F.cross_entropy(model(x[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            if schedule == "policy":
                scheduler.step(loss)  # before the update: it sets this update's lr
                optimizer.step()
            else:
                optimizer.step()
                scheduler.step()
    return accuracy(model, x_test, y_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="two epochs, one seed")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000, 1001, 1002])
    parser.add_argument("--output", type=Path, help="write the accuracies there, as JSON")
    args = parser.parse_args()
    epochs, seeds = (2, args.seeds[:1]) if args.small else (args.epochs, args.seeds)
    runs = []
    for seed in seeds:
        policy, cosine = train("policy", epochs, seed), train("cosine", epochs, seed)
        runs.append({"seed": seed, "policy": policy, "cosine": cosine})
        print(f"seed {seed}: PolicyLR (general) {policy:.3f}, cosine from 0.1 {cosine:.3f}")
    if args.output:
        results = {"epochs": epochs, "initial_lr": 0.1, "policy": "general", "runs": runs}
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
