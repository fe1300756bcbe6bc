"""Where the best cosine peak sits for SGD with Nesterov momentum 0.9 alone (the optimizer
most users train a CNN with), and where Prodigy stands against it: the probe for an
instance set without the low-momentum runs on which no lr schedule of SGD reaches Prodigy
(docs/agent_design.md, "An instance set for feedback"). One or two factors at a time
from the general set's base run (2,048 synthetic images, WRN-10-1, batch 128, 8 epochs, the set's
shared MDP), cosine at each peak and Prodigy with its cosine, on the tuning seeds 0 and 1.
Episodes already in the output are kept, not run again; the design log's table (its
``peak-probe`` block) is rendered from them.

    python docs/experiments/general_v6/landscape.py OUT.json
"""

from __future__ import annotations

import json
import sys
from multiprocessing import Pool
from pathlib import Path

import torch

from qan_env.comparison import OPTIMIZER_BASELINES
from qan_env.config import instance_config, with_overrides
from qan_env.env import LRScheduleEnv
from qan_env.evaluation import TUNING_SEEDS, run_episode
from qan_env.schedules import Cosine

BASE = {"momentum": 0.9, "nesterov": True, "batch_size": 128, "synthetic_seed": 0}
PROBES = {
    "base": {},
    "weight decay 5e-5": {"weight_decay": 5e-5},
    "weight decay 5e-3": {"weight_decay": 5e-3},
    "label noise 0.5": {"label_noise": 0.5},
    "momentum 0.97": {"momentum": 0.97},
    "batch 32, label noise 0.6": {"batch_size": 32, "label_noise": 0.6},
    "batch 512, 4,096 images": {"batch_size": 512, "synthetic_train_size": 4096},
    "batch 32": {"batch_size": 32},
    "batch 32, label noise 0.3": {"batch_size": 32, "label_noise": 0.3},
    "batch 64, label noise 0.5": {"batch_size": 64, "label_noise": 0.5},
}
PEAKS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
PRODIGY = "Prodigy"
SEEDS = TUNING_SEEDS[:2]
CONFIG = instance_config("general:train")


def episode(task: tuple[str, str, int]) -> dict:
    probe, contender, seed = task
    torch.set_num_threads(1)
    config = with_overrides(CONFIG, {"instances": None, **BASE, **PROBES[probe]})
    if contender == PRODIGY:
        _, optimizer, _, lr, _ = next(b for b in OPTIMIZER_BASELINES if b[0] == PRODIGY)
        env = LRScheduleEnv(config=with_overrides(config, {"optimizer": optimizer}))
        policy = Cosine(lr, label=PRODIGY)
    else:
        env, policy = LRScheduleEnv(config=config), Cosine(float(contender))
    record = run_episode(env, policy, seed)
    return {
        "probe": probe,
        "contender": contender,
        "seed": seed,
        "final": record.final_accuracy,
        "diverged": record.diverged,
    }


def main() -> None:
    output = Path(sys.argv[1])
    episodes = json.loads(output.read_text())["episodes"] if output.exists() else []
    done = {(e["probe"], e["contender"], e["seed"]) for e in episodes}
    contenders = [str(p) for p in PEAKS] + [PRODIGY]
    tasks = [
        (probe, contender, seed)
        for probe in PROBES
        for contender in contenders
        for seed in SEEDS
        if (probe, contender, seed) not in done
    ]
    with Pool(2) as pool:
        for record in pool.imap(episode, tasks, chunksize=1):
            episodes.append(record)
            output.write_text(json.dumps({"episodes": episodes}, indent=1) + "\n")
    print(f"{len(episodes)} episodes in {output}; docs/render.py tabulates them (peak-probe)")


if __name__ == "__main__":
    main()
