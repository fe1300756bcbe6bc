"""The shipped general policy with a margin for holding (docs/agent_design.md, "A margin for
holding"): it moves its multiplier only where the move's Q-value beats holding's by more
than the margin. Every train run of the general set, validation seed 500, margins 0 (the
greedy policy), 0.02 and 0.05, in two processes; the output pairs each margin's final
accuracy and turns back with the greedy policy's on the same run and seed. A turn back is a
move of the multiplier against its move before, as in ``general_finer/reversals.py`` (a
move the bounds stop is none). An output that exists is read, not run again, and its
summary written anew.

    python docs/experiments/general_hold_margin/validate.py validation.json
"""

from __future__ import annotations

import dataclasses
import json
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

from qan_env.config import with_overrides
from qan_env.env import LRScheduleEnv
from qan_env.episode import make_actions
from qan_env.evaluation import run_episode
from qan_env.instances import GENERAL
from qan_env.run_folder import read_run_config
from qan_env.sb3.policy import SB3Policy
from qan_env.schedules import Constant

FOLDER = "agents/pretrained/general"
MARGINS = (0.0, 0.02, 0.05)
SEED = 500
CONFIG = read_run_config(FOLDER).env
HOLD = CONFIG.scale_factors.index(1.0)
#: The policy's actions over a base of 1: the lr they set is the multiplier itself.
MULTIPLIER = dataclasses.replace(make_actions(CONFIG), base=Constant(1.0))


class WithMargin(SB3Policy):
    """The policy, holding unless a move's Q-value is ahead of holding's by ``margin``."""

    margin = 0.0

    def act(self, observation: np.ndarray, step: int) -> int:
        values = self.q_values(self.stack(observation))[0]
        values[HOLD] += self.margin
        return int(values.argmax())


def turns_back(actions: list[int]) -> int:
    levels = [1.0]
    for step, action in enumerate(actions):
        levels.append(MULTIPLIER.next_lr(action, levels[-1], step))
    moves = np.sign(np.round(np.diff(np.log(levels)), 3))
    moves = moves[moves != 0]
    return int((moves[1:] != moves[:-1]).sum())


def episode(task: tuple[float, str]) -> dict:
    margin, instance = task
    torch.set_num_threads(1)
    policy = WithMargin.load(FOLDER)
    policy.margin = margin
    config = with_overrides(CONFIG, {"instances": "general:train"})
    record = run_episode(LRScheduleEnv(config=config), policy, SEED, instance)
    return {
        "margin": margin,
        "instance": instance,
        "final": record.final_accuracy,
        "actions": record.actions,
    }


def main() -> None:
    output = Path(sys.argv[1])
    if output.exists():
        episodes = json.loads(output.read_text())["episodes"]
    else:
        tasks = [(m, i.name) for i in GENERAL.train for m in MARGINS]
        with Pool(2) as pool:
            episodes = pool.map(episode, tasks, chunksize=1)
    greedy = {e["instance"]: e for e in episodes if e["margin"] == 0.0}
    summary = {}
    for margin in MARGINS:
        mine = [e for e in episodes if e["margin"] == margin]
        gains = [e["final"] - greedy[e["instance"]]["final"] for e in mine]
        summary[str(margin)] = {
            "mean_final": float(np.mean([e["final"] for e in mine])),
            "mean_gain_over_greedy": float(np.mean(gains)),
            "ahead": sum(g > 0 for g in gains),
            "behind": sum(g < 0 for g in gains),
            "mean_turns_back": float(np.mean([turns_back(e["actions"]) for e in mine])),
        }
    output.write_text(json.dumps({"summary": summary, "episodes": episodes}, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
