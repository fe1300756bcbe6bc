"""How the best cosine peak moves with the run: one factor at a time from a small base run.

    python docs/experiments/landscape_probe.py --output docs/experiments/landscape/probe.jsonl

Each line of the output is one episode (cosine at a peak, on a tuning seed) of one probe
configuration, with its final test accuracy and wall time; a rerun skips the episodes
already there, so the probe can be cut and continued. The learning MDP's derivations
(``qan_env.learning_mdp``) are applied to each configuration.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from qan_env import LRScheduleEnv, learning_mdp, make_config
from qan_env.evaluation import TUNING_SEEDS, run_episode
from qan_env.schedules import Cosine

BASE = {"synthetic_train_size": 2048, "synthetic_test_size": 1024, "epochs": 10}
PROBES = {
    "base": {},
    "batch 32": {"batch_size": 32},
    "digits": {"dataset": "digits"},
    "label noise 0.4": {"label_noise": 0.4},
    "20 epochs": {"epochs": 20},
    "width 2": {"widen_factor": 2},
    "512 images": {"synthetic_train_size": 512, "batch_size": 64},
    "batch 512": {"batch_size": 512, "synthetic_train_size": 5120},
    "no weight decay": {"weight_decay": 0.0},
    "4 epochs": {"epochs": 4},
    "momentum 0": {"momentum": 0.0, "nesterov": False},
    "momentum 0.5": {"momentum": 0.5},
    "momentum 0.97": {"momentum": 0.97},
}
PEAKS = (0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(TUNING_SEEDS[:2]))
    parser.add_argument("--only", nargs="+", default=list(PROBES))
    parser.add_argument("--peaks", type=float, nargs="+", default=list(PEAKS))
    args = parser.parse_args()
    done = set()
    if args.output.exists():
        for line in args.output.read_text().splitlines():
            row = json.loads(line)
            done.add((row["probe"], row["peak"], row["seed"]))
    for probe in args.only:
        overrides = {**BASE, **PROBES[probe]}
        config = make_config("quick", **overrides)
        config = make_config("quick", **{**learning_mdp(config), **overrides})
        env = LRScheduleEnv(config=config)
        for peak in args.peaks:
            for seed in args.seeds:
                if (probe, peak, seed) in done:
                    continue
                start = time.perf_counter()
                record = run_episode(env, Cosine(peak), seed)
                row = {
                    "probe": probe,
                    "overrides": overrides,
                    "peak": peak,
                    "seed": seed,
                    "final_accuracy": record.final_accuracy,
                    "diverged": record.diverged,
                    "steps": len(record.lrs),
                    "seconds": time.perf_counter() - start,
                }
                with open(args.output, "a") as file:
                    file.write(json.dumps(row) + "\n")
                print(probe, peak, seed, f"{record.final_accuracy:.3f}", f"{row['seconds']:.1f}s")


if __name__ == "__main__":
    main()
