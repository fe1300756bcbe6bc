"""Where a policy over Prodigy wins and loses (docs/agent_design.md, "The policy over Prodigy
from 4 on its test split", and the one that cannot climb): its final test accuracy paired run
by run with each contender of its comparison, and per greedy episode its multiplier of
Prodigy's lr at each decision and over the first eight and the last seven (geometric means),
with its gap to Prodigy on the episodes whose last seven stay below the anchor (the
tuned-once multiplier, 4 for both policies) and on the others.

    python docs/experiments/general_prodigy4/halves.py docs/results/general-prodigy4 \
        docs/experiments/general_prodigy4/seed10
    python docs/experiments/general_prodigy4/halves.py docs/results/general-prodigy4-down \
        docs/experiments/general_prodigy4_down/seed10
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from qan_env.comparison import Comparison
from qan_env.episode import make_actions
from qan_env.evaluation import TRAINED
from qan_env.run_folder import read_run_config

FIRST = 8  # decisions in the first half; the last lr (the cosine's 0) is left out
ROUNDING = 1 - 1e-9  # a multiplier read back from the lr may fall short of the anchor by this


def main() -> None:
    records = Comparison.load(Path(sys.argv[1])).records()
    saved = read_run_config(Path(sys.argv[2])).env
    actions = make_actions(saved)  # one base for every instance
    finals: dict[str, dict] = {}
    for record in records:
        finals.setdefault(record.policy, {})[(record.instance, record.seed)] = record.final_accuracy
    mine = finals[TRAINED]
    for contender, theirs in finals.items():
        shared = [key for key in mine if key in theirs and contender != TRAINED]
        if shared:
            gaps = np.array([mine[key] - theirs[key] for key in shared])
            print(
                f"against {contender}: {len(shared)} paired, mean {gaps.mean():+.3f}, "
                f"ahead on {(gaps > 0).sum()}, behind on {(gaps < 0).sum()}"
            )
    rows = []
    for record in (r for r in records if r.policy == TRAINED):
        levels = np.log(
            [
                saved.anchor_lr * actions.multiplier(lr, k + 1)
                for k, lr in enumerate(record.lrs[:-1])
            ]
        )
        first, last = np.exp(levels[:FIRST].mean()), np.exp(levels[FIRST:].mean())
        gap = record.final_accuracy - finals["Prodigy"][(record.instance, record.seed)]
        rows.append((first, last, gap))
        steps = " ".join(f"{level:.1f}" for level in np.exp(levels))
        print(
            f"{record.instance}, seed {record.seed}: {steps}; "
            f"{first:.2f} then {last:.2f}, {gap:+.3f}"
        )
    first, last, gap = (np.array(column) for column in zip(*rows, strict=True))
    high = last >= saved.anchor_lr * ROUNDING
    print(f"first half {first.min():.1f} to {first.max():.1f} times Prodigy's lr")
    print(
        f"last seven at {saved.anchor_lr:g} or more on {high.sum()} of {len(rows)} "
        f"({last[high].min():.1f} to {last[high].max():.1f}; "
        f"above the first half on {(last[high] > first[high]).sum()}): "
        f"{gap[high].mean():+.3f} against Prodigy; the others {gap[~high].mean():+.3f}"
    )


if __name__ == "__main__":
    main()
