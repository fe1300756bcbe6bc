"""What the observation costs: the weight statistics against one training iteration.

For each case, the time of the statistics of the monitored conv layers (what the env
computes every step) and of one training iteration of the same run (batch, forward,
backward and SGD step at batch 128, ``Trainer.train``), measured side by side; the ratio
is statistics / iteration.

    python benchmarks/features_cost.py            # WRN-40-4 and the quick network, CPU
    python benchmarks/features_cost.py --quick    # small networks, a check that it runs
    python benchmarks/features_cost.py --device cuda
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import machine, timed, write_results

from qan_env.config import make_config
from qan_env.features import layer_statistics
from qan_env.training import build_trainer, load_device_data

# (name, depth, widen factor, monitored layers, target share of an iteration)
CASES = [
    ("WRN-40-4, first conv", 40, 4, "first", 0.01),
    ("quick WRN-10-1, first conv", 10, 1, "first", 0.01),
    ("WRN-40-4, all 40 convs", 40, 4, "all", 0.10),
]
QUICK_CASES = [
    ("WRN-16-2, first conv", 16, 2, "first", 0.01),
    ("WRN-16-2, all convs", 16, 2, "all", 0.10),
]


def measure(name, depth, widen, layers, target, device, batch_size, repeats) -> dict:
    config = make_config(
        "paper",
        dataset="synthetic",
        synthetic_train_size=2 * batch_size,
        synthetic_test_size=batch_size,
        depth=depth,
        widen_factor=widen,
        batch_size=batch_size,
        monitored_layers="first_conv" if layers == "first" else "all_conv",
        device=device,
    )
    trainer = build_trainer(config, load_device_data(config), np.random.default_rng(0))
    modules = dict(trainer.model.named_modules())
    monitored = [modules[name].weight for name in config.monitored_conv_layers]

    def iteration() -> None:
        trainer.train(1, 0.01)

    iteration_seconds = statistics_seconds = 0.0
    iteration()
    layer_statistics(monitored)
    for _ in range(repeats):  # alternate, so that both see the same machine
        iteration_seconds += timed(iteration, device)
        statistics_seconds += timed(lambda: layer_statistics(monitored), device)
    return {
        "case": name,
        "weights": sum(w.numel() for w in monitored),
        "statistics_ms": 1000 * statistics_seconds / repeats,
        "iteration_ms": 1000 * iteration_seconds / repeats,
        "ratio": statistics_seconds / iteration_seconds,
        "target": target,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small networks, 2 repeats")
    args = parser.parse_args()
    cases = QUICK_CASES if args.quick else CASES
    repeats = 2 if args.quick else args.repeats
    results = [measure(*case, args.device, args.batch_size, repeats) for case in cases]
    for result in results:
        print(
            f"{result['case']} ({result['weights']:,} weights): statistics "
            f"{result['statistics_ms']:.2f} ms, iteration {result['iteration_ms']:.1f} ms, "
            f"{100 * result['ratio']:.2f}% (target <= {100 * result['target']:.0f}%)"
        )
    if not args.quick:
        write_results(
            f"features_cost_{torch.device(args.device).type}",
            {"machine": machine(args.device), "results": results},
        )
    print(
        "statistics / iteration time ratio: "
        + ", ".join(f"{r['ratio']:.4f} ({r['case']})" for r in results)
    )


if __name__ == "__main__":
    main()
