"""How often a general policy's greedy multiplier turns back within a test episode, and what
that costs against its own open-loop replay (docs/agent_design.md, "Finer steps"). Reads a
comparison's ``results.json``; the multiplier of a step is the policy's lr over the
tuned-once cosine's at that step (the last step, where a cosine reaches 0, is left out). A
reversal is a move of the multiplier against the direction of its move before (up, then
down: one reversal), whatever the size of the step.

    python docs/experiments/general_finer/reversals.py docs/results/general-v4/results.json OUT.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np

POLICY, REPLAY, COSINE = "DQN (greedy)", "DQN mean lr, open loop", "cosine (tuned once)"


def main() -> None:
    source, output = sys.argv[1], sys.argv[2]
    results = json.loads(open(source).read())
    low, high = results["env"]["anchor_factors"]
    runs: dict[tuple[str, int], dict[str, dict]] = defaultdict(dict)
    for episode in results["episodes"]:
        if episode["purpose"] != "tuning":
            runs[episode["instance"], episode["seed"]][episode["policy"]] = episode
    reversals, gaps, replayed = [], [], []
    for contenders in runs.values():
        base = np.array(contenders[COSINE]["lrs"][:-1])
        level = np.array(contenders[POLICY]["lrs"][:-1]) / base
        moves = np.sign(np.round(np.diff(np.log(level)), 3))
        moves = moves[moves != 0]
        reversals.append(int((moves[1:] != moves[:-1]).sum()))
        final = {name: contenders[name]["test_accuracy"][-1] for name in (POLICY, REPLAY)}
        gaps.append(final[POLICY] - final[REPLAY])
        replayed += list(np.array(contenders[REPLAY]["lrs"][:-1]) / base)
    reversals, gaps, replayed = np.array(reversals), np.array(gaps), np.array(replayed)
    by_reversals = {
        str(count): {
            "episodes": int((reversals == count).sum()),
            "mean_gap_to_replay": round(float(gaps[reversals == count].mean()), 4),
        }
        for count in sorted(set(reversals.tolist()))
    }
    inner = (replayed > low + 0.1 * (high - low)) & (replayed < high - 0.1 * (high - low))
    summary = {
        "source": source,
        "episodes": len(reversals),
        "mean_reversals": round(float(reversals.mean()), 2),
        "mean_gap_to_replay": round(float(gaps.mean()), 4),
        "by_reversals": by_reversals,
        "replay_multiplier_quartiles": np.quantile(replayed, [0.25, 0.5, 0.75]).round(2).tolist(),
        "replay_share_inside_bounds": round(float(inner.mean()), 2),
    }
    with open(output, "w") as file:
        file.write(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
