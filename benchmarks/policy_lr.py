"""What ``PolicyLR`` costs a training loop: its work per iteration beside the iteration itself.

Two twin runs of the quick network (the shipped general policy's run: same config, same
seed) train in one process, in alternating order: a plain loop at a fixed lr, and the same
loop with ``PolicyLR`` driven by the general policy; each round is a fresh twin pair
trained for the policy's whole budget (16 decisions). The scheduler's own work is the time
spent in its ``step(loss)`` calls and in the hook that decides after an update, less the
held-out loss it calls (user code, which the env pays at every decision too; reported
beside it); the ratio is the median round's work over the plain loop's time. The target:
at most 1%.

    python benchmarks/policy_lr.py            # the quick network, CPU
    python benchmarks/policy_lr.py --quick    # a check that it runs, in seconds
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from common import machine, timed, train_loop, write_results

from qan_env import PolicyLR
from qan_env.run_folder import saved_env
from qan_env.training import build_trainer, load_device_data

POLICY = Path(__file__).resolve().parents[1] / "agents" / "pretrained" / "general"
TARGET = 0.01


class Timed:
    """Seconds spent in the calls of ``work``, added up."""

    def __init__(self, work) -> None:
        self.work, self.seconds = work, 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.work(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few small rounds, no file")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    overrides = {"instances": None, "eval_every_epochs": 0, "device": "cpu"}
    if args.quick:
        overrides.update(synthetic_train_size=256, batch_size=32, epochs=2)
    config = saved_env(POLICY, overrides)
    data = load_device_data(config)
    total = config.total_iterations
    rounds = 2 if args.quick else args.rounds
    plain_seconds, scheduler_seconds, heldout_seconds = [], [], []
    for index in range(rounds + 1):  # round 0 warms up; each round is a fresh twin pair
        plain, driven = (
            build_trainer(config, data, np.random.default_rng(index)) for _ in range(2)
        )
        for trainer in (plain, driven):
            for group in trainer.optimizer.param_groups:
                group["lr"] = config.initial_lr
        heldout = Timed(driven.heldout_loss)
        scheduler = PolicyLR(driven.optimizer, POLICY, total, heldout_loss=heldout)
        heldout.seconds = 0.0  # the call at construction (once a run) is not an iteration's
        # the scheduler's whole work: its step(loss) and the hook that decides after an
        # update (put back timed in place of its own registration)
        scheduler._hook.remove()
        decide = Timed(scheduler._after_update)
        scheduler._hook = driven.optimizer.register_step_post_hook(decide)
        step = Timed(scheduler.step)
        elapsed = {}
        runs = [("plain", plain, None), ("driven", driven, step)]
        for name, trainer, stepping in runs if index % 2 else runs[::-1]:
            elapsed[name] = timed(
                lambda t=trainer, s=stepping: train_loop(t.model, t.loader, t.optimizer, total, s)
            )
        if index:
            plain_seconds.append(elapsed["plain"])
            scheduler_seconds.append(step.seconds + decide.seconds - heldout.seconds)
            heldout_seconds.append(heldout.seconds)
    plain_time = statistics.median(plain_seconds)
    own = statistics.median(scheduler_seconds)
    heldout = statistics.median(heldout_seconds)
    results = {
        "machine": machine(),
        "iterations_per_run": total,
        "decisions_per_run": -(-total // config.iterations_per_step),
        "plain_seconds_per_iteration": plain_time / total,
        "scheduler_seconds_per_iteration": own / total,
        "heldout_seconds_per_iteration": heldout / total,
        "scheduler_share": own / plain_time,
        "with_heldout_share": (own + heldout) / plain_time,
        "target": TARGET,
    }
    print(f"{machine()}: {total} iterations a run, {results['decisions_per_run']} decisions")
    per_iteration = {
        "plain loop": results["plain_seconds_per_iteration"],
        "PolicyLR's own work": results["scheduler_seconds_per_iteration"],
        "the held-out loss it calls": results["heldout_seconds_per_iteration"],
    }
    for name, seconds in per_iteration.items():
        print(f"{name}: {seconds * 1e3:.3f} ms per iteration")
    if not args.quick:
        write_results("policy_lr_cpu", results)
    share = results["scheduler_share"]
    print(f"PolicyLR's own work / plain iteration ratio: {share:.4f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
