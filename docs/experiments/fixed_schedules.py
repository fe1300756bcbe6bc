"""Fixed schedules on the tuning seeds, in the env the agent learns in: the landscape a
learned policy has to beat (docs/agent_design.md).

    python docs/experiments/fixed_schedules.py --output docs/experiments/fixed_schedules.json

Runs cosine at several peak lrs, and the other baselines, on ``TUNING_SEEDS`` (never the
held-out ones) of the quick preset with ``qan_env.learning_mdp``, and prints each one's
mean final test accuracy and final held-out loss.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict
from pathlib import Path

from qan_env import LRScheduleEnv, learning_mdp, make_config
from qan_env.cli import parse_overrides
from qan_env.evaluation import TUNING_SEEDS, baselines, evaluate
from qan_env.schedules import Cosine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--env", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--peaks", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.4, 0.8])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(TUNING_SEEDS))
    parser.add_argument("--cosine-only", action="store_true", help="no other baselines")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    base = make_config(args.preset)
    config = make_config(args.preset, **{**learning_mdp(base), **parse_overrides(args.env)})
    env = LRScheduleEnv(config=config)
    schedules = [Cosine(peak, label=f"cosine {peak:g}") for peak in args.peaks]
    if not args.cosine_only:
        schedules += [
            s
            for s in baselines(
                config.initial_lr,
                config.decay_rate,
                config.action_mode,
                config.steps_per_episode,
            )
            if s.name != "cosine"
        ]
    records = evaluate(
        env,
        schedules,
        args.seeds,
        progress=lambda r: print(
            f"  {r.policy}, seed {r.seed}: {r.final_accuracy:.3f}", flush=True
        ),
    )
    summary = {}
    for schedule in schedules:
        runs = [r for r in records if r.policy == schedule.name]
        summary[schedule.name] = {
            "final_test_accuracy": statistics.fmean(r.final_accuracy for r in runs),
            "final_train_loss": statistics.fmean(r.train_losses[-1] for r in runs),
            "final_heldout_loss": statistics.fmean(r.heldout_losses[-1] for r in runs),
        }
        print(f"{schedule.name}: {summary[schedule.name]}")
    args.output.write_text(
        json.dumps(
            {
                "env": config.to_dict(),
                "seeds": args.seeds,
                "summary": summary,
                "episodes": [asdict(r) for r in records],
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
