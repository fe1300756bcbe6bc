"""Prodigy tuned once, on the test split: Prodigy's cosine held at 4 times its lr (the
multiplier best over the general train split in docs/experiments/prodigy_multiplier, and
what a policy over Prodigy from 4 does when it only holds) on every test run and seed of a
comparison, beside that comparison's episodes (docs/agent_design.md, "The policy over
Prodigy that cannot climb, on its test split"). It runs through the same env and seeds as
the comparison's Prodigy episodes; its first episode, at 1 times Prodigy's lr, says whether
it reproduces one of them. Episodes already in the output are kept, not run again.

    python docs/experiments/general_prodigy4_down/held.py docs/results/general-prodigy4-down \
        docs/experiments/general_prodigy4_down/held.json
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from multiprocessing import Pool
from pathlib import Path

import torch

from qan_env.comparison import COSINE, ORACLE, TUNED_ONCE, Comparison
from qan_env.config import EnvConfig, config_from_dict, with_overrides
from qan_env.env import LRScheduleEnv
from qan_env.evaluation import REPLAY, TRAINED, EpisodeRecord, run_episode
from qan_env.schedules import Cosine
from qan_env.statistics import iqm_with_interval, probability_of_improvement, score_matrix

HELD = "Prodigy x4 (tuned once)"
MULTIPLIER = 4.0
PRODIGY = "Prodigy"


def episode(task: tuple[dict, str, float, str, int]) -> dict:
    config, label, multiplier, instance, seed = task
    torch.set_num_threads(1)
    env = LRScheduleEnv(config=with_overrides(config_from_dict(config), {"optimizer": "prodigy"}))
    return asdict(run_episode(env, Cosine(multiplier, label=label), seed, instance))


def run(config: EnvConfig, names: list[str], seeds: list[int], output: Path) -> list[dict]:
    episodes = json.loads(output.read_text())["episodes"] if output.exists() else []
    done = {(e["policy"], e["instance"], e["seed"]) for e in episodes}
    tasks = [(config.to_dict(), PRODIGY, 1.0, names[0], seeds[0])] + [
        (config.to_dict(), HELD, MULTIPLIER, name, seed) for seed in seeds for name in names
    ]
    tasks = [task for task in tasks if (task[1], task[3], task[4]) not in done]
    with Pool(2) as pool:
        for record in pool.imap(episode, tasks, chunksize=1):
            episodes.append(record)
            output.write_text(json.dumps({"episodes": episodes}) + "\n")
    return episodes


def main() -> None:
    comparison = Comparison.load(Path(sys.argv[1]))
    records = comparison.records()
    episodes = run(comparison.config, comparison.test_names, comparison.seeds, Path(sys.argv[2]))
    check = next(e for e in episodes if e["policy"] == PRODIGY)
    recorded = next(
        r
        for r in records
        if r.policy == PRODIGY and r.instance == check["instance"] and r.seed == check["seed"]
    )
    same = "the same" if check["test_accuracy"] == recorded.test_accuracy else "NOT the same"
    print(
        f"check, Prodigy at x1 on {check['instance']}, seed {check['seed']}: test accuracy "
        f"{check['test_accuracy']} here, {recorded.test_accuracy} in the comparison: {same}"
    )
    records += [EpisodeRecord(**e) for e in episodes if e["policy"] == HELD]
    contenders = (HELD, PRODIGY, TUNED_ONCE, ORACLE, TRAINED, REPLAY)
    scores = {name: score_matrix(records, name, COSINE, ORACLE) for name in contenders}
    for name, (iqm, low, high) in iqm_with_interval(scores).items():
        print(f"IQM of {name}: {iqm:.2f} ({low:.2f}, {high:.2f})")
    for name, others in ((HELD, contenders[1:]), (TRAINED, (HELD,))):
        for other, (p, low, high) in probability_of_improvement(scores, name, others).items():
            print(f"P({name} beats {other}): {p:.2f} ({low:.2f}, {high:.2f})")


if __name__ == "__main__":
    main()
