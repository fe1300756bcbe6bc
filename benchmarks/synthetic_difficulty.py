"""Is the embedded synthetic set learnable but not trivial, and does the learning rate matter?

Trains the ``quick`` preset's network at constant learning rates, side by side on the same
seeds, and prints the final test accuracy of each; the last line is the ratio of the best
accuracy to the accuracy at a tenth of the default lr (0.01). Writes
``benchmarks/results/synthetic_difficulty.json``.

    python benchmarks/synthetic_difficulty.py          # about 6 minutes on 2 CPU cores
    python benchmarks/synthetic_difficulty.py --quick  # a check that it runs, in seconds
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from qan_env import PRESETS, LRScheduleEnv
from qan_env.actions import KEEP

LEARNING_RATES = (1.0, 0.1, 0.01, 0.001)


def final_accuracy(lr: float, seed: int, overrides: dict) -> float:
    """Test accuracy after the whole budget at a constant ``lr`` (the ``keep`` action)."""
    env = LRScheduleEnv(preset="quick", initial_lr=lr, keep_action=True, **overrides)
    env.reset(seed=seed)
    while True:
        *_, terminated, _, info = env.step(KEEP)
        if terminated:
            return info["test_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny budget: checks it runs")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    overrides = {"iterations_per_step": 40, "epochs": PRESETS["quick"].epochs}
    if args.quick:
        overrides.update(epochs=1, synthetic_train_size=512, synthetic_test_size=256)
        args.seeds = 1
    overrides["eval_every_epochs"] = overrides["epochs"]  # the final epoch only
    results = {}
    for lr in LEARNING_RATES:
        accuracies = [final_accuracy(lr, seed, overrides) for seed in range(args.seeds)]
        results[lr] = statistics.mean(accuracies)
        print(
            f"constant lr {lr:g}: final test accuracy {results[lr]:.3f} "
            f"(seeds {', '.join(f'{a:.3f}' for a in accuracies)})",
            flush=True,
        )
    ratio = max(results.values()) / results[0.01]
    print(f"chance 0.100; best / lr 0.01 accuracy ratio: {ratio:.2f}")
    out = Path(__file__).parent / "results" / "synthetic_difficulty.json"
    if not args.quick:
        out.write_text(
            json.dumps(
                {
                    "final_test_accuracy": results,
                    "ratio": ratio,
                    "seeds": args.seeds,
                    "preset": "quick",
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
