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
from types import SimpleNamespace

import torch
from common import machine, synchronize, timed, write_results
from env_overhead import describe
from env_overhead import measure as env_overhead

from qan_env.training.data import DeviceLoader, Normalizer, channel_statistics, load_dataset
from qan_env.training.models import build_wide_resnet
from qan_env.training.trainer import Trainer


def seconds_per_epoch(args, device: torch.device, bf16: bool, channels_last: bool) -> dict:
    train, test = load_dataset(
        "synthetic", synthetic_train_size=args.images, synthetic_test_size=1000
    )
    train, test = train.to(device), test.to(device)
    model = build_wide_resnet(
        args.depth, args.widen, 0.0, torch.Generator().manual_seed(0), None, device
    )
    loader = DeviceLoader(
        train,
        128,
        Normalizer(*channel_statistics(train.images)),
        torch.Generator().manual_seed(0),
        torch.Generator(device=device).manual_seed(0),
    )
    trainer = Trainer(model, loader, test, bf16=bf16, channels_last=channels_last)
    trainer.train(5, 0.1)  # warm up: cuDNN's algorithm choice, allocator
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    iterations = loader.iterations_per_epoch
    seconds = timed(lambda: trainer.train(iterations, 0.1), device)
    losses = trainer.train(2, 0.1)
    synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else math.nan
    return {
        "precision": "bf16 autocast" if bf16 else "fp32",
        "channels_last": channels_last,
        "iterations": iterations,
        "seconds_per_epoch": seconds,
        "images_per_second": iterations * 128 / seconds,
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
    args.depth, args.widen, args.images = (10, 1, 512) if args.quick else (40, 4, 50_000)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    print(f"machine: {machine(device)}, torch {torch.__version__}")
    epochs = [
        seconds_per_epoch(args, device, bf16=False, channels_last=False),
        seconds_per_epoch(args, device, bf16=True, channels_last=True),
    ]
    for result in epochs:
        print(
            f"WRN-{args.depth}-{args.widen}, batch 128, {result['precision']}, channels_last="
            f"{result['channels_last']}: {result['seconds_per_epoch']:.2f} s/epoch "
            f"({result['images_per_second']:,.0f} img/s), peak memory "
            f"{result['peak_memory_gib']:.2f} GiB"
        )
    overhead_args = SimpleNamespace(
        preset="tiny" if args.quick else "paper",
        seed=0,
        iterations=10 if args.quick else 100,
        rounds=2 if args.quick else 4,
    )
    overrides = {"device": args.device, "dataset": "synthetic"}
    if not args.quick:
        overrides.update(synthetic_train_size=50_000, synthetic_test_size=10_000)
    overhead = [env_overhead(overhead_args, overrides, ips) for ips in (1, 10)]
    for result in overhead:
        print(describe(overhead_args.preset, result))
    if not args.quick:
        write_results(
            f"gpu_{device.type}",
            {"machine": machine(device), "epochs": epochs, "env_overhead": overhead},
        )
    print(
        "env / plain images per second ratio: "
        + ", ".join(f"{r['ratio']:.3f} at {r['iterations_per_step']} it/step" for r in overhead)
    )


if __name__ == "__main__":
    main()
