"""What the env costs over a plain PyTorch training loop: images per second, side by side.

The env (made with ``gym.make``, stepped with a fixed policy) and a plain loop written
here train the same network on the same data with the same batch, optimizer, device and
seed. They run alternately in one process, round after round, so that both see the same
machine; the ratio is env / plain images per second, at 1 and at 10 iterations per step.

    python benchmarks/env_overhead.py                 # the quick preset's network, CPU
    python benchmarks/env_overhead.py --quick         # a check that it runs, in seconds
    python benchmarks/env_overhead.py --device cuda --preset paper --env dataset=synthetic
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import torch
from common import machine, synchronize, timed, write_results
from torch.nn import functional as F

from qan_env.config import make_config, parse_overrides
from qan_env.training.data import DeviceLoader, Normalizer, channel_statistics, load_dataset
from qan_env.training.models import build_wide_resnet

TARGETS = {1: 0.95, 10: 0.98}


class PlainLoop:
    """The training loop a user would write: the data on the device, forward, backward, step."""

    def __init__(self, config, device: torch.device, seed: int) -> None:
        train = load_dataset(**config.data_source)[0].to(device)
        augment = torch.Generator(device=device).manual_seed(seed)
        self.model = build_wide_resnet(
            config.depth,
            config.widen_factor,
            config.dropout,
            torch.Generator().manual_seed(seed),
            augment,
            device,
        )
        self.loader = DeviceLoader(
            train,
            config.batch_size,
            Normalizer(*channel_statistics(train.images)),
            torch.Generator().manual_seed(seed),
            augment,
        )
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=config.initial_lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )

    def run(self, iterations: int) -> None:
        self.model.train()
        for _ in range(iterations):
            images, labels = self.loader.next_batch()
            loss = F.cross_entropy(self.model(images), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()


def env_runner(preset: str, overrides: dict, iterations_per_step: int, seed: int):
    """Steps of a fresh env, restarting the lr every 10 steps (a fixed policy)."""
    env = gym.make(
        "qan_env/LRSchedule-v0",
        preset=preset,
        iterations_per_step=iterations_per_step,
        eval_every_epochs=0,
        epochs=10_000,
        **overrides,
    )
    env.reset(seed=seed)
    steps = [0]
    # Time the training inside the steps too: the rest of a step is the env's own cost,
    # measured in the very same steps (unlike the side-by-side ratio, free of machine noise).
    trainer = env.unwrapped._trainer
    train, device = trainer.train, env.unwrapped.device
    inside = {"train": 0.0, "step": 0.0}

    def timed_train(count: int, lr: float) -> torch.Tensor:
        start = time.perf_counter()
        losses = train(count, lr)
        synchronize(device)
        inside["train"] += time.perf_counter() - start
        return losses

    trainer.train = timed_train

    def run(iterations: int) -> None:
        start = time.perf_counter()
        for _ in range(iterations // iterations_per_step):
            env.step(1 if steps[0] % 10 == 9 else 0)
            steps[0] += 1
        inside["step"] += time.perf_counter() - start

    return env, run, inside


def measure(args, overrides: dict, iterations_per_step: int) -> dict:
    config = make_config(args.preset, **overrides)
    env, env_run, inside = env_runner(args.preset, overrides, iterations_per_step, args.seed)
    device = env.unwrapped.device
    plain = PlainLoop(config, device, args.seed)
    iterations = max(
        iterations_per_step, args.iterations // iterations_per_step * iterations_per_step
    )
    env_run(iterations_per_step)  # warm up both
    plain.run(iterations_per_step)
    inside.update(train=0.0, step=0.0)
    env_seconds, plain_seconds = [], []
    for _ in range(args.rounds):
        env_seconds.append(timed(lambda: env_run(iterations), device))
        plain_seconds.append(timed(lambda: plain.run(iterations), device))
    images = iterations * config.batch_size
    return {
        "iterations_per_step": iterations_per_step,
        "env_images_per_second": images / statistics.median(env_seconds),
        "plain_images_per_second": images / statistics.median(plain_seconds),
        # Each round's ratio compares two runs a few seconds apart; the median of the
        # rounds is robust to the bursts of load a shared machine has.
        "ratio": statistics.median(p / e for p, e in zip(plain_seconds, env_seconds, strict=True)),
        "env_share_of_step": 1 - inside["train"] / inside["step"],
        "env_ms_per_step": 1000
        * (inside["step"] - inside["train"])
        / (args.rounds * iterations)
        * iterations_per_step,
        "target": TARGETS[iterations_per_step],
        "device": str(device),
        "machine": machine(device),
    }


def describe(preset: str, result: dict) -> str:
    """One result as a line of the report."""
    return (
        f"{preset}, {result['iterations_per_step']} iteration(s) per step, "
        f"{result['machine']}: env {result['env_images_per_second']:,.0f} img/s, plain "
        f"{result['plain_images_per_second']:,.0f} img/s; the env's own work "
        f"{result['env_ms_per_step']:.2f} ms per step, "
        f"{100 * result['env_share_of_step']:.2f}% of the step"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--env", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--iterations", type=int, default=20, help="per side, per round")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny network, few rounds")
    args = parser.parse_args()
    overrides = {"device": args.device, **parse_overrides(args.env)}
    if args.quick:
        args.preset, args.iterations, args.rounds = "tiny", 10, 2
    results = [measure(args, overrides, ips) for ips in (1, 10)]
    for result in results:
        print(describe(args.preset, result))
    if not args.quick:
        write_results(
            f"env_overhead_{args.preset}_{results[0]['device'].split(':')[0]}",
            {"preset": args.preset, "overrides": overrides, "results": results},
        )
    print(
        "env / plain images per second ratio: "
        + ", ".join(
            f"{r['ratio']:.3f} at {r['iterations_per_step']} it/step (target >= {r['target']})"
            for r in results
        )
    )


if __name__ == "__main__":
    main()
