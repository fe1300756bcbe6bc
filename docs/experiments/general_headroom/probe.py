"""Headroom above the general set's upper bound at low momentum (docs/agent_design.md,
"Headroom above twice the tuned-once peak"): fixed action sequences of the set's relative
actions, "up k times, then hold", with the multiplier's bound raised from 2 to 4, on every
train run at momentum 0 and 0.5, validation seed 500. k = 2 is the highest lr the shipped
policy can reach (the cosine from 1.6 after two steps), k = 3 and 4 climb to 2.26 and 3.2
(a warm-up over the first quarter of the run, then the cosine); beside them, Prodigy with
its cosine as the comparison runs it (``qan_env.comparison.OPTIMIZER_BASELINES``), on the
same runs and seed. Episodes already in the output are kept, not run again.

    python docs/experiments/general_headroom/probe.py OUT.json
"""

from __future__ import annotations

import json
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

from qan_env.comparison import OPTIMIZER_BASELINES
from qan_env.config import instance_config, with_overrides
from qan_env.env import LRScheduleEnv
from qan_env.evaluation import run_episode
from qan_env.instances import GENERAL
from qan_env.schedules import Cosine

CLIMBS = (2, 3, 4)
PRODIGY = 0  # the climb that stands for Prodigy's episodes
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


def prodigy() -> tuple[LRScheduleEnv, Cosine]:
    """Prodigy as the comparison runs it: its optimizer, its schedule from its lr."""
    label, optimizer, schedule, lr, _ = next(b for b in OPTIMIZER_BASELINES if b[0] == "Prodigy")
    assert schedule == "cosine", "the probe runs Prodigy with the cosine its authors use"
    env = LRScheduleEnv(config=with_overrides(CONFIG, {"optimizer": optimizer}))
    return env, Cosine(lr, label=label)


def episode(task: tuple[int, str]) -> dict:
    climb, instance = task
    torch.set_num_threads(1)
    if climb == PRODIGY:
        env, policy = prodigy()
    else:
        env, policy = LRScheduleEnv(config=CONFIG), UpThenHold(climb)
    record = run_episode(env, policy, SEED, instance)
    return {
        "climb": climb,
        "instance": instance,
        "final": record.final_accuracy,
        "diverged": record.diverged,
        "peak_lr": max(record.lrs),
    }


def main() -> None:
    output = Path(sys.argv[1])
    episodes = json.loads(output.read_text())["episodes"] if output.exists() else []
    done = {(e["climb"], e["instance"]) for e in episodes}
    runs = [i.name for i in GENERAL.train if "momentum=0.9" not in i.name]
    tasks = [(c, name) for name in runs for c in (*CLIMBS, PRODIGY) if (c, name) not in done]
    with Pool(2) as pool:
        episodes += pool.map(episode, tasks, chunksize=1)
    summary = {}
    for momentum in ("momentum=0.0", "momentum=0.5"):
        for climb in (*CLIMBS, PRODIGY):
            mine = [e for e in episodes if e["climb"] == climb and momentum in e["instance"]]
            name = "Prodigy" if climb == PRODIGY else f"up {climb}"
            summary[f"{momentum}, {name}"] = {
                "runs": len(mine),
                "mean_final": round(float(np.mean([e["final"] for e in mine])), 4),
                "diverged": sum(e["diverged"] for e in mine),
            }
    output.write_text(json.dumps({"summary": summary, "episodes": episodes}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
