"""What the env costs over a plain PyTorch training loop: images per second, side by side.

The env (made with ``gym.make``, stepped with a fixed policy) and a plain loop written
here train the same network on the same data with the same batch, optimizer, device and
seed; both are built by ``qan_env.training.build_trainer``, the plain loop keeping only the
model, loader and optimizer and running its own loop. They run alternately in one process,
round after round, so that both see the same machine; the ratio is env / plain images per
second, at 1 and at 10 iterations per step.

Each is measured for the paper's MDP (the targets), with the training-signal observation,
and with the held-out reward (1,024 held-out images, evaluated at every step).

The env's own work per step: env steps are paired with the same iterations of
``Trainer.train`` on a twin run (same config, same seed), timed moments apart on the same
work in alternating order; the env's own work is the median of the pairs' differences,
and its share of a step that over the median step time.

    python benchmarks/env_overhead.py                 # the quick preset's network, CPU
    python benchmarks/env_overhead.py --quick         # a check that it runs, in seconds
    python benchmarks/env_overhead.py --device cuda --preset paper --env dataset=synthetic
"""

from __future__ import annotations

import argparse
import statistics

import gymnasium as gym
import numpy as np
from common import machine, timed, train_loop, write_results

import qan_env
from qan_env.cli import parse_overrides
from qan_env.config import make_config
from qan_env.training import Trainer, build_trainer, load_device_data

gym.register_envs(qan_env)
TARGETS = {1: 0.95, 10: 0.98}


def variants(heldout_size: int) -> dict[str, dict]:
    """The MDPs measured, each on top of the preset: the targets are the paper MDP's."""
    return {
        "paper MDP": {},
        "training signals": {"observation": "training"},
        "held-out reward": {"reward": "heldout_log_loss", "heldout_size": heldout_size},
    }


class PlainLoop:
    """The training loop a user would write: the data on the device, forward, backward, step."""

    def __init__(self, trainer: Trainer, lr: float) -> None:
        self.model, self.loader, self.optimizer = trainer.model, trainer.loader, trainer.optimizer
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def run(self, iterations: int) -> None:
        train_loop(self.model, self.loader, self.optimizer, iterations)


def measure(
    preset: str,
    overrides: dict,
    iterations_per_step: int,
    iterations: int = 20,
    rounds: int = 20,
    pairs: int = 100,
    seed: int = 0,
) -> dict:
    """Env against plain loop over ``rounds`` rounds of ``iterations`` each; then the env's
    own work per step from ``pairs`` env steps paired with the twin's training. The episode
    is long enough never to end, and never evaluated."""
    config = make_config(
        preset,
        **{**overrides, "iterations_per_step": iterations_per_step},
        eval_every_epochs=0,
        epochs=10_000,
    )
    env = gym.make("qan_env/LRSchedule-v0", config=config)
    env.reset(seed=seed)
    device = env.unwrapped.device
    data = load_device_data(config)
    plain = PlainLoop(build_trainer(config, data, np.random.default_rng(seed)), config.initial_lr)
    twin = build_trainer(config, data, np.random.default_rng(seed))
    decay, restart = (env.unwrapped.action_names.index(name) for name in ("decay", "restart"))
    steps = [0]

    def env_step() -> None:
        """One step of a fixed policy: decay, and restart every 10th step."""
        env.step(restart if steps[0] % 10 == 9 else decay)
        steps[0] += 1

    def env_run(iterations: int) -> None:
        for _ in range(iterations // iterations_per_step):
            env_step()

    def twin_step() -> None:
        """The training of one env step, without the env."""
        twin.train(iterations_per_step, config.initial_lr)

    iterations = max(iterations_per_step, iterations // iterations_per_step * iterations_per_step)
    env_run(iterations_per_step)  # warm up all three
    plain.run(iterations_per_step)
    twin_step()
    env_seconds, plain_seconds = [], []
    for _ in range(rounds):
        env_seconds.append(timed(lambda: env_run(iterations), device))
        plain_seconds.append(timed(lambda: plain.run(iterations), device))
    # The same training work with and without the env around it, moments apart, in
    # alternating order; the median difference is the env's own work.
    step_seconds, differences = [], []
    for pair in range(pairs):
        if pair % 2:
            train_seconds, step = timed(twin_step, device), timed(env_step, device)
        else:
            step, train_seconds = timed(env_step, device), timed(twin_step, device)
        step_seconds.append(step)
        differences.append(step - train_seconds)
    images = iterations * config.batch_size
    return {
        "iterations_per_step": iterations_per_step,
        "env_images_per_second": images / statistics.median(env_seconds),
        "plain_images_per_second": images / statistics.median(plain_seconds),
        # The ratio of the two medians above, and the median of each round's ratio: a
        # round compares two runs a few seconds apart, so the latter is robust to the bursts
        # of load a shared machine has (the reported ratio).
        "ratio_of_medians": statistics.median(plain_seconds) / statistics.median(env_seconds),
        "median_round_ratio": statistics.median(
            p / e for p, e in zip(plain_seconds, env_seconds, strict=True)
        ),
        "env_ms_per_step": 1000 * statistics.median(differences),
        "env_share_of_step": statistics.median(differences) / statistics.median(step_seconds),
        "pairs": pairs,
        "target": TARGETS[iterations_per_step],
        "device": str(device),
        "machine": machine(device),
    }


def describe(preset: str, result: dict) -> str:
    """One result as a line of the report."""
    return (
        f"{preset}, {result['variant']}, {result['iterations_per_step']} iteration(s) per step, "
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
    parser.add_argument("--pairs", type=int, default=100, help="env steps paired with training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny network, few rounds")
    args = parser.parse_args()
    overrides = {"device": args.device, **parse_overrides(args.env)}
    if args.quick:
        args.preset, args.iterations, args.rounds, args.pairs = "tiny", 10, 2, 4
    results = []
    for name, options in variants(heldout_size=64 if args.quick else 1024).items():
        for ips in (1, 10):
            result = measure(
                args.preset,
                {**overrides, **options},
                ips,
                args.iterations,
                args.rounds,
                args.pairs,
                args.seed,
            )
            results.append({"variant": name, **result})
            print(describe(args.preset, results[-1]), flush=True)
    if not args.quick:
        write_results(
            f"env_overhead_{args.preset}_{results[0]['device'].split(':')[0]}",
            {"preset": args.preset, "overrides": overrides, "results": results},
        )
    print(
        "env / plain images per second ratio, paper MDP: "
        + ", ".join(
            f"{r['median_round_ratio']:.3f} at {r['iterations_per_step']} it/step "
            f"(target >= {r['target']})"
            for r in results
            if r["variant"] == "paper MDP"
        )
    )


if __name__ == "__main__":
    main()
