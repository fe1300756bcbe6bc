"""Prodigy's cosine held at one multiple of its lr on every test run and seed of a comparison,
beside that comparison's episodes, through the same env and seeds as its Prodigy episodes.

At 4 (the default): "Prodigy tuned once", the multiplier best over the general train split
in docs/experiments/prodigy_multiplier and what a policy over Prodigy from 4 does when it
only holds (docs/agent_design.md, "The policy over Prodigy that cannot climb, on its test
split"); a first episode at 1 says whether it reproduces one of the comparison's.
At 1: Prodigy itself, run on this machine, which says how far the comparison's Prodigy
episodes, run on another, lie from it, and how a policy run here stands against Prodigy
run here (docs/agent_design.md, "Where the held episodes' reproduction gap came from").
Episodes already in the output are kept, not run again.

    python docs/experiments/general_prodigy4_down/held.py docs/results/general-prodigy4-down \
        docs/experiments/general_prodigy4_down/held.json
    python docs/experiments/general_prodigy4_down/held.py docs/results/general-prodigy1 \
        docs/experiments/general_prodigy1/prodigy_here.json 1
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

TUNED_ONCE_MULTIPLIER = 4.0
PRODIGY = "Prodigy"


def label(multiplier: float) -> str:
    """The contender's name: Prodigy at ``multiplier`` times its lr, run here."""
    return (
        "Prodigy x4 (tuned once)"
        if multiplier == TUNED_ONCE_MULTIPLIER
        else f"Prodigy x{multiplier:g} (here)"
    )


def episode(task: tuple[dict, str, float, str, int]) -> dict:
    config, name, multiplier, instance, seed = task
    torch.set_num_threads(1)
    env = LRScheduleEnv(config=with_overrides(config_from_dict(config), {"optimizer": "prodigy"}))
    return asdict(run_episode(env, Cosine(multiplier, label=name), seed, instance))


def run(
    config: EnvConfig, names: list[str], seeds: list[int], multiplier: float, output: Path
) -> list[dict]:
    episodes = json.loads(output.read_text())["episodes"] if output.exists() else []
    done = {(e["policy"], e["instance"], e["seed"]) for e in episodes}
    check = [(config.to_dict(), PRODIGY, 1.0, names[0], seeds[0])] if multiplier != 1.0 else []
    tasks = check + [
        (config.to_dict(), label(multiplier), multiplier, name, seed)
        for seed in seeds
        for name in names
    ]
    tasks = [task for task in tasks if (task[1], task[3], task[4]) not in done]
    with Pool(2) as pool:
        for record in pool.imap(episode, tasks, chunksize=1):
            episodes.append(record)
            output.write_text(json.dumps({"episodes": episodes}) + "\n")
    return episodes


def main() -> None:
    comparison = Comparison.load(Path(sys.argv[1]))
    multiplier = float(sys.argv[3]) if len(sys.argv) > 3 else TUNED_ONCE_MULTIPLIER
    held = label(multiplier)
    records = comparison.records()
    episodes = run(
        comparison.config, comparison.test_names, comparison.seeds, multiplier, Path(sys.argv[2])
    )
    recorded = {(r.instance, r.seed): r.final_accuracy for r in records if r.policy == PRODIGY}
    at_one = [e for e in episodes if e["policy"] in (PRODIGY, label(1.0))]
    gaps = [e["test_accuracy"][-1] - recorded[e["instance"], e["seed"]] for e in at_one]
    print(
        f"Prodigy at x1, {len(gaps)} episode(s) here against the comparison's: "
        f"{sum(g == 0 for g in gaps)} the same, mean difference {sum(gaps) / len(gaps):+.4f}, "
        f"largest {max(gaps, key=abs):+.4f}"
    )
    records += [EpisodeRecord(**e) for e in episodes if e["policy"] == held]
    contenders = (held, PRODIGY, TUNED_ONCE, ORACLE, TRAINED, REPLAY)
    scores = {name: score_matrix(records, name, COSINE, ORACLE) for name in contenders}
    for name, (iqm, low, high) in iqm_with_interval(scores).items():
        print(f"IQM of {name}: {iqm:.2f} ({low:.2f}, {high:.2f})")
    for name, others in ((held, contenders[1:]), (TRAINED, (held, PRODIGY))):
        for other, (p, low, high) in probability_of_improvement(scores, name, others).items():
            print(f"P({name} beats {other}): {p:.2f} ({low:.2f}, {high:.2f})")


if __name__ == "__main__":
    main()
