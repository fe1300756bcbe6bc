"""Headroom for a schedule over Prodigy: on every train run of an instance set, Prodigy with
its cosine as the comparison runs it (``qan_env.comparison.OPTIMIZER_BASELINES``, lr 1: the
multiplier of the step size it estimates), and the same cosine from 1/4, 1/2, 2, 4 and 8
times that, on the validation seeds given (8 was added after the general set's first pass
found 4 best on most of its runs; the noisy set's first 38 episodes stop at 4). If the
best multiplier is 1 on every run, no lr schedule on top of Prodigy has room to beat it; if
it moves from run to run, a policy that drives Prodigy's multiplier from what it reads of
the run has (docs/agent_design.md, "Headroom over Prodigy"). Prodigy ignores the settings
only SGD reads (its momentum, the user's guessed lr), so runs that differ in nothing else
are run once. Episodes already in the output are kept, not run again.

    python docs/experiments/prodigy_multiplier/probe.py noisy probe.json 500 501
    python docs/experiments/prodigy_multiplier/probe.py general general.json 500
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
from qan_env.evaluation import run_episode
from qan_env.instances import INSTANCE_SETS, Instance
from qan_env.schedules import Cosine

MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
SGD_ONLY = ("momentum", "nesterov", "initial_lr")
_, OPTIMIZER, SCHEDULE, LR, _ = next(b for b in OPTIMIZER_BASELINES if b[0] == "Prodigy")


def distinct_for_prodigy(instances: tuple[Instance, ...]) -> list[Instance]:
    """The first of each group of runs that differ only in settings Prodigy ignores."""
    seen, kept = set(), []
    for instance in instances:
        key = tuple(sorted((k, v) for k, v in instance.overrides.items() if k not in SGD_ONLY))
        if key not in seen:
            seen.add(key)
            kept.append(instance)
    return kept


def episode(task: tuple[str, float, str, int]) -> dict:
    instance_set, multiplier, instance, seed = task
    torch.set_num_threads(1)
    config = with_overrides(instance_config(f"{instance_set}:train"), {"optimizer": OPTIMIZER})
    record = run_episode(LRScheduleEnv(config=config), Cosine(multiplier * LR), seed, instance)
    return {
        "multiplier": multiplier,
        "instance": instance,
        "seed": seed,
        "label_noise": record.label_noise,
        "final": record.final_accuracy,
        "diverged": record.diverged,
    }


def main() -> None:
    assert SCHEDULE == "cosine", "the probe scales the cosine Prodigy runs with"
    instance_set, output, seeds = sys.argv[1], Path(sys.argv[2]), [int(s) for s in sys.argv[3:]]
    episodes = json.loads(output.read_text())["episodes"] if output.exists() else []
    done = {(e["multiplier"], e["instance"], e["seed"]) for e in episodes}
    tasks = [
        (instance_set, multiplier, instance.name, seed)
        for seed in seeds
        for instance in distinct_for_prodigy(INSTANCE_SETS[instance_set].train)
        for multiplier in MULTIPLIERS
        if (multiplier, instance.name, seed) not in done
    ]
    with Pool(2) as pool:
        for record in pool.imap(episode, tasks, chunksize=1):
            episodes.append(record)
            output.write_text(json.dumps({"episodes": episodes}, indent=1) + "\n")
    print(f"{len(episodes)} episodes in {output}")


if __name__ == "__main__":
    main()
