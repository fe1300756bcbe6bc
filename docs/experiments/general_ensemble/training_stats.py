"""What a general-set training run did, from its run folder: the episodes that diverged, the
mean final test accuracy per 40 episodes, and from episode 200 on the share of its steps at
each level of the multiplier, by the instance's first field (the general set's momentum) or
by the setting named, read from the instance set (the base's value where an instance leaves
it) (the last step, where the cosine reaches 0, left out); docs/experiments/agent_runs.json
quotes them.

    python docs/experiments/general_ensemble/training_stats.py runs/sb3_dqn/general-seed20
    python docs/experiments/general_ensemble/training_stats.py RUN batch_size
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from qan_env.episode import make_actions
from qan_env.instances import INSTANCE_SETS
from qan_env.run_folder import read_run_config

PER = 40
LATE = 200


def main() -> None:
    folder = Path(sys.argv[1])
    field = sys.argv[2] if len(sys.argv) > 2 else None
    episodes = json.loads((folder / "summary.json").read_text())["episodes"]
    finals = [e["final_test_accuracy"] for e in episodes]
    print("diverged:", [e["episode"] for e in episodes if e["diverged"]])
    means = [
        sum(finals[i : i + PER]) / len(finals[i : i + PER]) for i in range(0, len(finals), PER)
    ]
    print(f"mean final test accuracy per {PER}:", ", ".join(f"{m:.3f}" for m in means))
    saved = read_run_config(folder)
    actions = make_actions(saved.env)  # one base for every instance
    instances = INSTANCE_SETS[saved.agent["instances"]]

    def group(name: str) -> str:
        if field is None:
            return name.split(",")[0]
        value = instances.find(name).overrides.get(field, getattr(saved.env, field))
        return f"{field}={value}"

    levels: dict[str, Counter] = defaultdict(Counter)
    step_of: Counter = Counter()
    with open(folder / "steps.csv") as file:
        for row in csv.DictReader(file):
            episode = int(row["episode"])
            step_of[episode] += 1  # the multiplier of the step just taken
            if episode >= LATE and step_of[episode] < actions.total_steps:  # a cosine's 0 left out
                level = actions.multiplier(float(row["lr"]), step_of[episode])
                levels[group(row["instance"])][round(level, 2)] += 1
    for name, counts in sorted(levels.items()):
        total = sum(counts.values())
        shares = ", ".join(f"x{level:g} {n / total:.0%}" for level, n in sorted(counts.items()))
        print(f"episodes {LATE} on, {name}: {shares}")


if __name__ == "__main__":
    main()
