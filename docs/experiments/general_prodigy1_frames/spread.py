"""How far a policy over Prodigy's level moves from seed to seed of one test run, and what
its departures from its replay cost (docs/agent_design.md, "Four observations over
Prodigy"). An episode's level is its mean log2 multiplier of Prodigy's lr over the steps
before the last (the policy's lr over Prodigy's at the same step); its departure is that
level less its replay's, below, near (within ``NEAR`` of an octave) or above the mean curve.

    python docs/experiments/general_prodigy1_frames/spread.py \
        docs/results/general-prodigy1-ten-seeds docs/results/general-prodigy1-frames
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from qan_env.comparison import Comparison
from qan_env.evaluation import REPLAY, TRAINED

PRODIGY = "Prodigy"
NEAR = 0.05  # octaves


def log2_multiplier(lrs: list[float], prodigy: list[float]) -> np.ndarray:
    """Per step before the last, log2 of the lr over Prodigy's (the cosine reaches 0 last)."""
    return np.log2(np.array(lrs[:-1]) / np.array(prodigy[:-1]))


def describe(folder: Path) -> None:
    runs: dict[tuple[str, int], dict] = defaultdict(dict)
    for record in Comparison.load(folder).records():
        runs[record.instance, record.seed][record.policy] = record
    levels: dict[str, list[float]] = defaultdict(list)
    sides: dict[str, list[float]] = defaultdict(list)
    turns = []
    for (instance, _), contenders in sorted(runs.items()):
        policy, replay, prodigy = contenders[TRAINED], contenders[REPLAY], contenders[PRODIGY]
        multiplier = log2_multiplier(policy.lrs, prodigy.lrs)
        levels[instance].append(multiplier.mean())
        departure = multiplier.mean() - log2_multiplier(replay.lrs, prodigy.lrs).mean()
        side = "near" if abs(departure) <= NEAR else "above" if departure > 0 else "below"
        sides[side].append(policy.final_accuracy - replay.final_accuracy)
        moves = np.sign(np.round(np.diff(multiplier), 3))
        moves = moves[moves != 0]
        turns.append(int((moves[1:] != moves[:-1]).sum()))
    spread = np.mean([np.std(values) for values in levels.values()])
    print(f"{folder}: {len(turns)} episodes")
    print(f"  the level's standard deviation over a run's seeds, mean over runs: {spread:.3f}")
    print(f"  the level's mean: {np.mean([v for vs in levels.values() for v in vs]):+.3f}")
    print(f"  turns back an episode: {np.mean(turns):.2f}")
    for side in ("below", "near", "above"):
        gaps = np.array(sides[side])
        print(f"  {side} its replay: {len(gaps)} episodes, {gaps.mean():+.4f} against it")


def main() -> None:
    for folder in sys.argv[1:]:
        describe(Path(folder))


if __name__ == "__main__":
    main()
