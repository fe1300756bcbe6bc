"""What the benchmarks share: a device-aware timer and the results folder."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

RESULTS = Path(__file__).parent / "results"


def train_loop(model, loader, optimizer, iterations: int, before_update=None) -> None:
    """The training loop a user writes: the data on the device, forward, backward, step;
    ``before_update(loss)``, when given, between the backward pass and the update (where
    ``PolicyLR.step`` goes)."""
    model.train()
    for _ in range(iterations):
        images, labels = loader.next_batch()
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if before_update is not None:
            before_update(loss)
        optimizer.step()


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(work: Callable[[], object], device: torch.device | str = "cpu") -> float:
    """Seconds ``work()`` takes, including the device work it queued."""
    synchronize(device)
    start = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - start


def machine(device: torch.device | str = "cpu") -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def write_results(name: str, results: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
