"""Compare a trained scheduling policy, greedy, with a random policy and fixed schedules.

    python agents/sb3_dqn.py --preset quick
    python examples/compare_schedules.py --run runs/sb3_dqn/quick-seed0 --output docs/results

Every policy runs on the same seeds (by default the held-out seeds, which no training
episode uses), so for a given seed they all start from the same network and see the same
data order, on the env the run trained on (its ``config.json``). The trained policy acts
greedily (epsilon 0); the random policy draws uniformly from the same actions. Writes to
``--output``: ``table.md`` (test accuracy at 40% of the budget, the paper's "after 20 of
50 epochs", and at the end, mean and std over seeds), ``results.json`` (every episode),
and the figures
``test_accuracy.png`` (paper Fig. 1), ``lr_schedule.png`` (Fig. 2), ``lr_zoom.png``
(Fig. 3) and ``actions.png`` (how often each action was taken).
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict
from pathlib import Path

import matplotlib.pyplot as plt  # picks a file-only backend where there is no display
import numpy as np

from qan_env import LRScheduleEnv
from qan_env.config import with_overrides
from qan_env.evaluation import HELD_OUT_SEEDS, EpisodeRecord, RandomPolicy, SB3Policy, evaluate
from qan_env.run_folder import read_run_config
from qan_env.schedules import baselines

POLICY = "DQN (greedy)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--run",
        type=Path,
        default=Path("runs/sb3_dqn/quick-seed0"),
        help="an output directory of agents/sb3_dqn.py",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=list(HELD_OUT_SEEDS))
    parser.add_argument("--output", type=Path, default=Path("docs/results"))
    parser.add_argument("--small", action="store_true", help="one seed, one epoch: a smoke run")
    return parser.parse_args()


def mean_std(values: list[float]) -> str:
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def write_table(
    records: list[EpisodeRecord], early_epoch: int, final_epoch: int, restart: int, path: Path
):
    """Mean ± std per policy; ``restart`` is the index of the env's restart action."""
    names = list(dict.fromkeys(record.policy for record in records))
    lines = [
        f"| policy | test accuracy after epoch {early_epoch} | after epoch {final_epoch} "
        "(final) | return (x1000) | restarts |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in names:
        runs = [record for record in records if record.policy == name]
        restarts = "n/a"
        if runs[0].actions:
            share = np.mean([np.mean(np.array(run.actions) == restart) for run in runs])
            restarts = f"{100 * share:.0f}%"
        lines.append(
            f"| {name} | {mean_std([run.accuracy_at(early_epoch) for run in runs])} "
            f"| {mean_std([run.accuracy_at(final_epoch) for run in runs])} "
            f"| {mean_std([1000 * run.episode_return for run in runs])} | {restarts} |"
        )
    path.write_text("\n".join(lines) + "\n")
    return "\n".join(lines)


def plot_test_accuracy(records: list[EpisodeRecord], path: Path) -> None:
    """Paper Fig. 1: test accuracy per epoch, the policy against the baselines."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for name in dict.fromkeys(record.policy for record in records):
        runs = [record for record in records if record.policy == name]
        accuracy = np.array([run.test_accuracy for run in runs])
        epochs = runs[0].epochs
        mean, std = accuracy.mean(axis=0), accuracy.std(axis=0)
        width = 2.5 if name == POLICY else 1.2
        (line,) = axes.plot(epochs, mean, label=name, linewidth=width)
        axes.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.12)
    axes.set(xlabel="epoch", ylabel="test accuracy", title="Test accuracy (mean ± std over seeds)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_lr(record: EpisodeRecord, path: Path, window: slice | None = None) -> None:
    """Paper Fig. 2 (the whole run) and Fig. 3 (a window of it): the lr the policy chose."""
    steps = np.arange(1, len(record.lrs) + 1)[window or slice(None)]
    lrs = np.array(record.lrs)[window or slice(None)]
    figure, axes = plt.subplots(figsize=(8, 3.5))
    axes.plot(steps, lrs, drawstyle="steps-post", linewidth=1.0 if window is None else 1.5)
    if window is not None:
        axes.plot(steps, lrs, "o", markersize=3)
    part = "" if window is None else f", steps {steps[0]}-{steps[-1]}"
    axes.set(
        xlabel="step", ylabel="learning rate", title=f"{record.policy}, seed {record.seed}{part}"
    )
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_actions(records: list[EpisodeRecord], action_names: tuple[str, ...], path: Path) -> None:
    """How often each action was taken, per policy that takes actions."""
    names = [
        name
        for name in dict.fromkeys(r.policy for r in records)
        if next(r for r in records if r.policy == name).actions
    ]
    figure, axes = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(action_names)
    for index, action in enumerate(action_names):
        shares = [
            np.mean([np.mean(np.array(r.actions) == index) for r in records if r.policy == name])
            for name in names
        ]
        axes.bar(np.arange(len(names)) + index * width, shares, width, label=action)
    axes.set_xticks(np.arange(len(names)) + width * (len(action_names) - 1) / 2, names)
    axes.set(ylabel="share of steps", title="Actions taken (mean over seeds)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    args = parse_args()
    overrides = {"epochs": 1} if args.small else {}
    if args.small:
        args.seeds = args.seeds[:1]
    run = read_run_config(args.run)
    config = with_overrides(run.env, overrides)
    env = LRScheduleEnv(config=config)
    policies = [SB3Policy.load(args.run, POLICY), RandomPolicy(env.action_space.n)]
    policies += baselines(config.initial_lr, config.decay_rate)
    print(
        f"{len(policies)} policies x seeds {args.seeds} on the env of {args.run / 'config.json'} "
        f"({env.steps_per_episode} steps per episode)"
    )
    records = evaluate(
        env,
        policies,
        args.seeds,
        progress=lambda record: print(
            f"  {record.policy:>18}, seed {record.seed}: final test accuracy "
            f"{record.test_accuracy[-1]:.3f}, return {1000 * record.episode_return:+.3f}e-3",
            flush=True,
        ),
    )

    args.output.mkdir(parents=True, exist_ok=True)
    final_epoch = config.epochs
    early_epoch = max(1, round(0.4 * final_epoch))
    restart = env.action_names.index("restart")
    print(write_table(records, early_epoch, final_epoch, restart, args.output / "table.md"))
    (args.output / "results.json").write_text(
        json.dumps(
            {
                "run": str(args.run),
                "seeds": args.seeds,
                "env": config.to_dict(),
                "env_overrides": overrides,
                "episodes": [asdict(r) for r in records],
            }
        )
    )
    plot_test_accuracy(records, args.output / "test_accuracy.png")
    first = next(record for record in records if record.policy == POLICY)
    plot_lr(first, args.output / "lr_schedule.png")
    middle = len(first.lrs) // 2
    plot_lr(first, args.output / "lr_zoom.png", slice(middle, middle + 100))
    plot_actions(records, env.action_names, args.output / "actions.png")
    print(f"wrote {args.output}: table.md, results.json and 4 figures")


if __name__ == "__main__":
    main()
