"""Stalled runs and whether a lower lr rescues them (docs/agent_design.md, "Stalled runs").
On the test split some seeds of the noisy runs stall under the tuned-once cosine (momentum
0.9, label noise 0.3: seeds 1000 and 1003 end at 0.24 and 0.31 where the others reach 0.40
to 0.56, and the cosine from 0.4 ends at 0.41 and 0.40 on them); the shipped policy cannot
go below the tuned-once cosine, so it stalls with it. A policy that lowers the lr only on a
run that stalls would beat every open-loop curve, its own replay included.

Fixed action sequences of the general set's relative actions, the multiplier's lower bound
taken from 1 to 1/2: "hold" (the tuned-once cosine), "down late" (two steps down after the
run has shown three decisions' training loss: 1/2 from the sixth decision on), "down early"
(1/2 from the third decision: about the cosine from 0.4). Every train run with label noise,
validation seeds 500 and 501. Episodes already in the output are kept, not run again.

    python docs/experiments/general_stalls/probe.py OUT.json
"""

from __future__ import annotations

import json
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

from qan_env.config import instance_config
from qan_env.env import LRScheduleEnv
from qan_env.evaluation import run_episode
from qan_env.instances import GENERAL

SEEDS = (500, 501)
#: Each variant's decisions that step the multiplier down; it holds at every other.
VARIANTS = {"hold": (), "down late": (3, 4), "down early": (0, 1)}
CONFIG = instance_config("general:train", anchor_factors=(0.5, 2.0))
DOWN = CONFIG.scale_factors.index(min(CONFIG.scale_factors))
HOLD = CONFIG.scale_factors.index(1.0)


class DownAt:
    """Step the multiplier down at the decisions ``steps``, hold it at the others."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = VARIANTS[name]

    def reset(self, seed: int) -> None:
        """Nothing to reset: the actions depend on the step alone."""

    def act(self, observation: object, step: int) -> int:
        return DOWN if step in self.steps else HOLD


def episode(task: tuple[str, str, int]) -> dict:
    variant, instance, seed = task
    torch.set_num_threads(1)
    record = run_episode(LRScheduleEnv(config=CONFIG), DownAt(variant), seed, instance)
    return {
        "variant": variant,
        "instance": instance,
        "seed": seed,
        "final": record.final_accuracy,
        "diverged": record.diverged,
        "train_losses": record.train_losses,
        "lrs": record.lrs,
    }


def main() -> None:
    output = Path(sys.argv[1])
    episodes = json.loads(output.read_text())["episodes"] if output.exists() else []
    done = {(e["variant"], e["instance"], e["seed"]) for e in episodes}
    runs = [i.name for i in GENERAL.train if "label_noise=0.0" not in i.name]
    tasks = [
        (variant, name, seed)
        for seed in SEEDS
        for name in runs
        for variant in VARIANTS
        if (variant, name, seed) not in done
    ]
    with Pool(2) as pool:
        episodes += pool.map(episode, tasks, chunksize=1)
    final = {(e["variant"], e["instance"], e["seed"]): e["final"] for e in episodes}
    pairs = sorted({(e["instance"], e["seed"]) for e in episodes})
    summary = {}
    for variant in VARIANTS:
        gains = np.array([final[variant, i, s] - final["hold", i, s] for i, s in pairs])
        summary[variant] = {
            "runs": len(pairs),
            "mean_final": round(float(np.mean([final[variant, i, s] for i, s in pairs])), 4),
            "mean_gain_over_hold": round(float(gains.mean()), 4),
            "gain_above_0.05": int((gains > 0.05).sum()),
            "loss_above_0.05": int((gains < -0.05).sum()),
        }
    # The ceiling of a policy that lowers only where lowering pays: per run, the better of
    # holding and each lowering (what a perfect reading of the run would choose).
    for variant in ("down late", "down early"):
        best = [max(final["hold", i, s], final[variant, i, s]) for i, s in pairs]
        summary[f"hold or {variant}, whichever is better"] = round(float(np.mean(best)), 4)
    output.write_text(json.dumps({"summary": summary, "episodes": episodes}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
