"""How often a general policy's greedy multiplier turns back within a test episode, and what
that costs against its own open-loop replay (docs/agent_design.md, "Finer steps"). Reads a
comparison folder; the multiplier of a step is the policy's lr over the tuned-once cosine's
at that step (the last step, where a cosine reaches 0, is left out). A reversal is a move
of the multiplier against the direction of its move before (up, then down: one reversal),
whatever the size of the step. An episode's departure is its mean log2 multiplier less its
replay's: below, near (within 0.05 of an octave) or above the mean curve of its instance.

    python docs/experiments/general_finer/reversals.py docs/results/general-v4 OUT.json

Outputs: ``reversals_v4.json`` (docs/results/general-v4), ``reversals_v5.json``
(docs/results/general), ``reversals_ensemble.json`` (docs/results/general-ensemble).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from qan_env.comparison import TUNED_ONCE, Comparison
from qan_env.evaluation import REPLAY, TRAINED, EpisodeRecord

NEAR = 0.05  # octaves: a departure within it counts as on the mean curve


def main() -> None:
    source, output = Path(sys.argv[1]), Path(sys.argv[2])
    runs: dict[tuple[str, int], dict[str, EpisodeRecord]] = defaultdict(dict)
    for record in Comparison.load(source).records():
        runs[record.instance, record.seed][record.policy] = record
    reversals, gaps, replayed, departures = [], [], [], []
    for contenders in runs.values():
        base = np.array(contenders[TUNED_ONCE].lrs[:-1])
        level = np.array(contenders[TRAINED].lrs[:-1]) / base
        moves = np.sign(np.round(np.diff(np.log(level)), 3))
        moves = moves[moves != 0]
        reversals.append(int((moves[1:] != moves[:-1]).sum()))
        gaps.append(contenders[TRAINED].final_accuracy - contenders[REPLAY].final_accuracy)
        replay = np.array(contenders[REPLAY].lrs[:-1]) / base
        replayed += list(replay)
        departures.append(float(np.mean(np.log2(level)) - np.mean(np.log2(replay))))
    reversals, gaps, replayed = np.array(reversals), np.array(gaps), np.array(replayed)
    departures = np.array(departures)
    sides = {
        "below": departures < -NEAR,
        "near": np.abs(departures) <= NEAR,
        "above": departures > NEAR,
    }
    by_departure = {
        side: {
            "episodes": int(chosen.sum()),
            "mean_gap_to_replay": round(float(gaps[chosen].mean()), 4),
        }
        for side, chosen in sides.items()
    }
    by_reversals = {
        str(count): {
            "episodes": int((reversals == count).sum()),
            "mean_gap_to_replay": round(float(gaps[reversals == count].mean()), 4),
        }
        for count in sorted(set(reversals.tolist()))
    }
    summary = {
        "source": str(source),
        "episodes": len(reversals),
        "mean_reversals": round(float(reversals.mean()), 2),
        "mean_gap_to_replay": round(float(gaps.mean()), 4),
        "by_reversals": by_reversals,
        "by_departure": by_departure,
        "replay_multiplier_quartiles": np.quantile(replayed, [0.25, 0.5, 0.75]).round(2).tolist(),
    }
    output.write_text(json.dumps(summary, indent=1) + "\n")
    print(output.read_text(), end="")


if __name__ == "__main__":
    main()
