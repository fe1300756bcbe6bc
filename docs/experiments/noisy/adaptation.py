"""Does a policy on the noisy set read each run's noise? Per test instance, over the held-out
seeds: the rank correlation (Spearman) between the share of noisy labels a run drew and
the policy's mean lr over the run relative to the tuned-once cosine's (its mean
multiplier, in log2), and the policy's final test accuracy against its own open-loop
replay on the runs below and above the instance's median noise. A policy that reads the
noise lowers its lr on the noisier runs (a negative correlation) and gains on the runs
whose need is furthest from the mean curve's.

    python docs/experiments/noisy/adaptation.py docs/results/noisy [OUT.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from qan_env.comparison import TUNED_ONCE, Comparison
from qan_env.evaluation import REPLAY, TRAINED


def mean_log2_multiplier(lrs: list[float], cosine: list[float]) -> float:
    """The mean of ``log2(lr / cosine lr)`` over the steps both ran, the cosine's last (0)
    left out."""
    steps = min(len(lrs), len(cosine))
    mine, base = np.array(lrs[:steps]), np.array(cosine[:steps])
    kept = base > 0
    return float(np.mean(np.log2(mine[kept] / base[kept])))


def main() -> None:
    comparison = Comparison.load(Path(sys.argv[1]))
    records = comparison.records()
    by_key = {(r.policy, r.instance, r.seed): r for r in records}
    rows = {}
    for name in comparison.test_names:
        runs = [r for r in records if r.policy == TRAINED and r.instance == name]
        pairs = [
            (r, by_key.get((TUNED_ONCE, name, r.seed)), by_key.get((REPLAY, name, r.seed)))
            for r in runs
        ]
        pairs = [(r, once, replay) for r, once, replay in pairs if once and replay]
        if len(pairs) < 3:
            continue
        noise = np.array([r.label_noise for r, _, _ in pairs])
        level = np.array([mean_log2_multiplier(r.lrs, once.lrs) for r, once, _ in pairs])
        gain = np.array([r.final_accuracy - replay.final_accuracy for r, _, replay in pairs])
        median = np.median(noise)
        rows[name] = {
            "runs": len(pairs),
            "noise_range": [round(float(noise.min()), 3), round(float(noise.max()), 3)],
            "spearman_noise_level": round(float(spearmanr(noise, level).statistic), 3),
            "mean_log2_multiplier": round(float(level.mean()), 3),
            "gain_over_replay_below_median_noise": round(float(gain[noise <= median].mean()), 4),
            "gain_over_replay_above_median_noise": round(float(gain[noise > median].mean()), 4),
        }
    text = json.dumps(rows, indent=1)
    print(text)
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(text + "\n")


if __name__ == "__main__":
    main()
