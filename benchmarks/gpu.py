"""The paper's network on a GPU: seconds per epoch, peak memory, and the env's overhead there.

One prepared run for a CUDA machine (under 8 minutes on one H200):

    python benchmarks/gpu.py --device cuda

1. Seconds per epoch of WRN-40-4 at batch 128 (390 iterations, the trainer the env uses),
   in fp32 and in bf16 autocast with channels_last, with the peak GPU memory of each.
2. The env's overhead there: env / plain-loop images per second at 1 and 10 iterations
   per step (``env_overhead.py`` on the paper preset).

The data is the synthetic set at CIFAR-10's size (50,000 + 10,000 images): the same shapes
and cost as CIFAR-10, with no download. ``--quick`` runs a tiny version on the CPU.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from common import machine, synchronize, timed, write_results
from env_overhead import describe
from env_overhead import measure as env_overhead

from qan_env.config import EnvConfig, make_config
from qan_env.training import build_trainer, load_device_data


def seconds_per_epoch(config: EnvConfig) -> dict:
    """One epoch of ``config``'s run, timed after a short warm-up, and its peak memory."""
    device = torch.device(config.device)
    trainer = build_trainer(config, load_device_data(config), np.random.default_rng(0))
    lr = config.initial_lr
    trainer.train(5, lr)  # warm up: cuDNN's algorithm choice, allocator
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    iterations = config.iterations_per_epoch
    seconds = timed(lambda: trainer.train(iterations, lr), device)
    losses = trainer.train(2, lr)
    synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else math.nan
    return {
        "precision": "bf16 autocast" if config.precision == "bf16" else "fp32",
        "channels_last": config.channels_last,
        "iterations": iterations,
        "seconds_per_epoch": seconds,
        "images_per_second": iterations * config.batch_size / seconds,
        "peak_memory_gib": peak / 2**30,
        "finite_loss": bool(torch.isfinite(losses).all()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="a tiny version, on the CPU")
    args = parser.parse_args()
    if args.quick:
        args.device = "cpu"
    device = torch.device(args.device)
    # The paper's run on synthetic data of CIFAR-10's size (the quick check: a tiny one).
    data = {"dataset": "synthetic", "device": args.device}
    if args.quick:
        data.update(synthetic_train_size=512, synthetic_test_size=256, depth=10, widen_factor=1)
    else:
        data.update(synthetic_train_size=50_000, synthetic_test_size=10_000)
    config = make_config("paper", **data)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    print(f"machine: {machine(device)}, torch {torch.__version__}")
    epochs = [
        seconds_per_epoch(config),
        seconds_per_epoch(make_config("paper", **data, precision="bf16", channels_last=True)),
    ]
    for result in epochs:
        print(
            f"WRN-{config.depth}-{config.widen_factor}, batch {config.batch_size}, "
            f"{result['precision']}, channels_last="
            f"{result['channels_last']}: {result['seconds_per_epoch']:.2f} s/epoch "
            f"({result['images_per_second']:,.0f} img/s), peak memory "
            f"{result['peak_memory_gib']:.2f} GiB"
        )
    preset = "tiny" if args.quick else "paper"
    iterations, rounds, pairs = (10, 2, 4) if args.quick else (100, 4, 40)
    overrides = {"device": args.device, "dataset": "synthetic"}
    if not args.quick:
        overrides.update(synthetic_train_size=50_000, synthetic_test_size=10_000)
    overhead = [
        {"variant": "paper MDP", **env_overhead(preset, overrides, ips, iterations, rounds, pairs)}
        for ips in (1, 10)
    ]
    for result in overhead:
        print(describe(preset, result))
    if not args.quick:
        write_results(
            f"gpu_{device.type}",
            {"machine": machine(device), "epochs": epochs, "env_overhead": overhead},
        )
    print(
        "env / plain images per second ratio: "
        + ", ".join(
            f"{r['median_round_ratio']:.3f} at {r['iterations_per_step']} it/step" for r in overhead
        )
    )


if __name__ == "__main__":
    main()
