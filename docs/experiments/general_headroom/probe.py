"""Headroom above the general set's upper bound at low momentum (docs/agent_design.md,
"Headroom above twice the tuned-once peak"): fixed action sequences of the set's relative
actions, "up k times, then hold", with the multiplier's bound raised from 2 to 4, on every
train run at momentum 0 and 0.5, validation seed 500. k = 2 is the highest lr the shipped
policy can reach (the cosine from 1.6 after two steps), k = 3 and 4 climb to 2.26 and 3.2
(a warm-up over the first quarter of the run, then the cosine). An output that exists is
read, not run again.

    python docs/experiments/general_headroom/probe.py OUT.json
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

CLIMBS = (2, 3, 4)
SEED = 500
CONFIG = instance_config("general:train", anchor_factors=(1.0, 4.0))
UP = CONFIG.scale_factors.index(max(CONFIG.scale_factors))
HOLD = CONFIG.scale_factors.index(1.0)


class UpThenHold:
    """Multiply the cosine's multiplier up ``climb`` times, then hold it."""

    def __init__(self, climb: int) -> None:
        self.climb = climb
        self.name = f"up {climb}"

    def reset(self, seed: int) -> None:
        """Nothing to reset: the actions depend on the step alone."""

    def act(self, observation: object, step: int) -> int:
        return UP if step < self.climb else HOLD


def episode(task: tuple[int, str]) -> dict:
    climb, instance = task
    torch.set_num_threads(1)
    record = run_episode(LRScheduleEnv(config=CONFIG), UpThenHold(climb), SEED, instance)
    return {
        "climb": climb,
        "instance": instance,
        "final": record.final_accuracy,
        "diverged": record.diverged,
        "peak_lr": max(record.lrs),
    }


def main() -> None:
    output = Path(sys.argv[1])
    if output.exists():
        episodes = json.loads(output.read_text())["episodes"]
    else:
        runs = [i.name for i in GENERAL.train if "momentum=0.9" not in i.name]
        tasks = [(c, name) for name in runs for c in CLIMBS]
        with Pool(2) as pool:
            episodes = pool.map(episode, tasks, chunksize=1)
    summary = {}
    for momentum in ("momentum=0.0", "momentum=0.5"):
        for climb in CLIMBS:
            mine = [e for e in episodes if e["climb"] == climb and momentum in e["instance"]]
            summary[f"{momentum}, up {climb}"] = {
                "runs": len(mine),
                "mean_final": round(float(np.mean([e["final"] for e in mine])), 4),
                "diverged": sum(e["diverged"] for e in mine),
            }
    output.write_text(json.dumps({"summary": summary, "episodes": episodes}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
