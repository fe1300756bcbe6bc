"""Each test run's probability that a contender beats Prodigy (the Mann-Whitney share over
its seeds, of which rliable's probability of improvement is the mean over runs), and what
the runs at momentum 0 leave for the rest: the mean the other runs need for the split to
pass 0.5 (docs/agent_design.md, "Headroom above twice the tuned-once peak").

    python docs/experiments/general_headroom/per_instance.py docs/results/general
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from qan_env.comparison import ORACLE, Comparison
from qan_env.evaluation import TRAINED


def beats(mine: list[float], theirs: list[float]) -> float:
    a, b = np.array(mine)[:, None], np.array(theirs)[None, :]
    return float(((a > b) + 0.5 * (a == b)).mean())


def main() -> None:
    finals: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in Comparison.load(Path(sys.argv[1])).records():
        finals[record.instance][record.policy].append(record.final_accuracy)
    low = [name for name in finals if name.startswith("momentum=0.0")]
    for contender in (TRAINED, ORACLE):
        p = {name: beats(c[contender], c["Prodigy"]) for name, c in finals.items()}
        rest = [p[name] for name in finals if name not in low]
        needed = (0.5 * len(p) - sum(p[name] for name in low)) / len(rest)
        print(f"{contender} against Prodigy: over the split {np.mean(list(p.values())):.2f}")
        print("  momentum 0:", ", ".join(f"{p[name]:.2f}" for name in low))
        print(f"  the other {len(rest)} runs: {np.mean(rest):.2f} (for 0.5: {needed:.2f})")


if __name__ == "__main__":
    main()
