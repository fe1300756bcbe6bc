"""Two comparisons' trained policies paired run by run and seed by seed: the mean
difference of their final test accuracy, and on how many episodes the first is ahead and
behind (docs/agent_design.md quotes it for the ensembles against v5).

    python docs/experiments/general_ensemble3/paired.py docs/results/general-ensemble3 \
        docs/results/general
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from qan_env.comparison import Comparison
from qan_env.evaluation import TRAINED


def finals(folder: Path) -> dict[tuple[str, int], float]:
    return {
        (record.instance, record.seed): record.final_accuracy
        for record in Comparison.load(folder).records()
        if record.policy == TRAINED
    }


def main() -> None:
    first, second = finals(Path(sys.argv[1])), finals(Path(sys.argv[2]))
    shared = sorted(set(first) & set(second))
    gaps = np.array([first[key] - second[key] for key in shared])
    print(
        f"{len(shared)} episodes paired: mean difference {gaps.mean():+.4f}, "
        f"ahead on {(gaps > 0).sum()}, behind on {(gaps < 0).sum()}"
    )


if __name__ == "__main__":
    main()
