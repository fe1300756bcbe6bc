"""Compare a trained scheduling policy, greedy, with a random policy and fixed schedules.

    python agents/sb3_dqn.py --preset quick
    python examples/compare_schedules.py --run runs/sb3_dqn/quick-seed0

Every policy runs on the same seeds (by default the held-out seeds, which no training
episode uses), so for a given seed they all start from the same network and see the same
data order, on the env the run trained on (its ``config.json``):

- the trained policy, greedy (epsilon 0), and a random policy over the same actions;
- constant, the WRN step schedule, cosine, SGDR and always decay (and, with the paper's
  actions, restart every k steps);
- cosine (tuned): cosine with its peak lr chosen from ``--peaks`` by the mean final test
  accuracy on ``--tune-seeds`` (never the evaluation seeds);
- open-loop replay: the trained policy's mean lr at each step over the evaluation seeds,
  replayed as a fixed schedule. If it does as well as the policy, the policy's gain is its
  lr curve, not its use of what it observes.

``--env FIELD=VALUE`` changes the run's env for every policy (a transfer: another
network, budget or data set); ``--only NAME ...`` keeps the trained policy and the named
ones (say ``--only cosine``), skipping the tuning unless ``"cosine (tuned)"`` is named.

``--instances NAME:test`` compares on the test split of an instance set instead
(``qan_env.comparison``: the baselines a practitioner would use, tuned once on the train
instances and per test instance, the tuning-free optimizers, ReduceLROnPlateau, the
open-loop replay; ``--run`` may be left out for the baselines alone), in ``--workers N``
processes, continuing from ``--output``'s ``results.json`` when it holds some episodes.
It writes ``table.md`` (per instance; aggregated with rliable over all test instances and
over the far ones), ``performance_profile.png`` and ``final_accuracy.png``.

Writes to ``--output`` (default ``RUN/comparison``): ``results.json`` (every episode:
policy, seed, test accuracy per evaluated epoch, lrs, actions, diverged; and the tuning),
``table.md`` (final test accuracy, mean and 95% confidence interval over seeds, and the
paired difference to cosine and to the tuned cosine, each with its interval) and the
figures ``final_accuracy.png``, ``test_accuracy.png``, ``lr_schedule.png`` and
``actions.png``. ``--replot DIR`` redraws DIR's table and figures from its ``results.json``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import matplotlib.pyplot as plt  # picks a file-only backend where there is no display
import numpy as np
from matplotlib.ticker import MaxNLocator
from rliable.plot_utils import plot_performance_profiles

from qan_env import LRScheduleEnv, instance_config
from qan_env.cli import parse_overrides
from qan_env.comparison import COSINE, ORACLE, Comparison
from qan_env.comparison import PEAKS as INSTANCE_PEAKS
from qan_env.config import EnvConfig, config_from_dict
from qan_env.evaluation import (
    HELD_OUT_SEEDS,
    REPLAY,
    TRAINED,
    TUNED,
    TUNING_SEEDS,
    EpisodeRecord,
    RandomPolicy,
    baselines,
    best_of,
    comparison_table,
    evaluate,
    feedback_share,
    final_accuracies,
    mean_ci,
)
from qan_env.files import check_writable, replace_atomically, write_atomically
from qan_env.run_folder import saved_env
from qan_env.sb3 import SB3Policy
from qan_env.schedules import Cosine, Replayed
from qan_env.statistics import performance_profile, score_matrix

PEAKS = (0.05, 0.1, 0.2, 0.4, 0.8)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a run folder of an agent")
    parser.add_argument(
        "--replot", type=Path, metavar="DIR", help="redo DIR's table and figures from its results"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=list(HELD_OUT_SEEDS))
    parser.add_argument("--output", type=Path, default=None, help="default: RUN/comparison")
    parser.add_argument("--tune-seeds", type=int, nargs="+", default=list(TUNING_SEEDS))
    parser.add_argument("--peaks", type=float, nargs="+", default=list(PEAKS))
    parser.add_argument(
        "--env", action="append", default=[], metavar="FIELD=VALUE", help="change the env"
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these policies only")
    parser.add_argument(
        "--trust", action="store_true", help="read an older run's vecnormalize.pkl (a pickle)"
    )
    parser.add_argument(
        "--small", action="store_true", help="two epochs, one seed, two peaks: a smoke run"
    )
    parser.add_argument("--instances", metavar="NAME:test", help="an instance set's test split")
    parser.add_argument("--workers", type=int, default=1, help="processes (--instances)")
    parser.add_argument(
        "--baselines-from",
        type=Path,
        metavar="DIR",
        help="take DIR's tuning and baseline episodes (--instances; a new policy, same runs)",
    )
    args = parser.parse_args()
    if args.run is not None and args.replot is not None:
        parser.error("give --run RUN_DIR (to compare) or --replot DIR (to redraw), not both")
    if args.run is None and args.replot is None and args.instances is None:
        parser.error("give --run RUN_DIR, --instances NAME:test or --replot DIR")
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: at least 1")
    if overlap := set(args.seeds) & set(args.tune_seeds):
        parser.error(f"--tune-seeds must not be evaluation seeds: {sorted(overlap)}")
    if args.small:
        args.seeds, args.tune_seeds, args.peaks = args.seeds[:1], args.tune_seeds[:1], [0.05, 0.1]
    return args


def plot_final_accuracy(records: list[EpisodeRecord], path: Path) -> None:
    """Every seed's final test accuracy per policy, with the mean and its 95% interval."""
    names = list(dict.fromkeys(record.policy for record in records))
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for index, name in enumerate(names):
        values = final_accuracies(records, name)
        mean, half = mean_ci(values)
        axes.plot(np.full(len(values), index), values, "o", alpha=0.35, color="grey")
        axes.errorbar(index, mean, yerr=half, fmt="s", color="C3" if name == TRAINED else "C0")
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axes.set(ylabel="final test accuracy", title="Final test accuracy: seeds (dots), mean ± 95% CI")
    axes.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    replace_atomically(path, lambda side: figure.savefig(side, dpi=120))
    plt.close(figure)


def plot_test_accuracy(records: list[EpisodeRecord], path: Path) -> None:
    """Paper Fig. 1: mean test accuracy per evaluated epoch, per policy (a run that
    diverged counts with its last accuracy)."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for name in dict.fromkeys(record.policy for record in records):
        runs = [record for record in records if record.policy == name]
        epochs = max((run.epochs for run in runs), key=len)  # a diverged run stops early
        mean = [np.mean([run.accuracy_at(epoch) for run in runs]) for epoch in epochs]
        width = 2.5 if name == TRAINED else 1.2
        axes.plot(epochs, mean, marker="o", markersize=3, label=name, linewidth=width)
    axes.set(xlabel="epoch", ylabel="test accuracy", title="Test accuracy (mean over seeds)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    replace_atomically(path, lambda side: figure.savefig(side, dpi=120))
    plt.close(figure)


def plot_lr(records: list[EpisodeRecord], path: Path) -> None:
    """Paper Fig. 2: the lr the policy chose at each step, one line per seed, against the
    cosine schedule and the open-loop replay; a log axis, so small lrs stay visible."""
    figure, axes = plt.subplots(figsize=(8, 4))
    for record in (r for r in records if r.policy == TRAINED):
        axes.plot(record.lrs, drawstyle="steps-post", linewidth=0.8, alpha=0.6, color="C3")
    for name, colour in (("cosine", "C0"), (TUNED, "C2"), (REPLAY, "k")):
        record = next((r for r in records if r.policy == name), None)
        if record is not None:
            axes.plot(record.lrs, drawstyle="steps-post", linewidth=2, color=colour, label=name)
    axes.plot([], [], color="C3", label=f"{TRAINED}, one line per seed")
    axes.set_yscale("log")
    axes.set(xlabel="step", ylabel="learning rate", title="Learning rate per step")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    figure.tight_layout()
    replace_atomically(path, lambda side: figure.savefig(side, dpi=120))
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
    axes.set(ylabel="share of steps", ylim=(0, 1.25), title="Actions taken (mean over seeds)")
    axes.legend(ncols=len(action_names), loc="upper center", fontsize=8)
    figure.tight_layout()
    replace_atomically(path, lambda side: figure.savefig(side, dpi=120))
    plt.close(figure)


def progress(record: EpisodeRecord) -> None:
    print(f"  {record.policy:>24}, seed {record.seed}: {record.final_accuracy:.3f}", flush=True)


def main() -> None:
    args = parse_args()
    if args.replot:
        replot(args.replot)
        return
    if args.instances:
        compare_instances(args)
        return
    output = args.output or args.run / "comparison"
    try:
        overrides = {**parse_overrides(args.env), **({"epochs": 2} if args.small else {})}
        config = saved_env(args.run, overrides)
        env = LRScheduleEnv(config=config)
        check_writable(output)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"compare_schedules.py: {error}") from error
    print(
        f"seeds {args.seeds} on the env of {args.run / 'config.json'}"
        f"{f' with {overrides}' if overrides else ''} ({env.steps_per_episode} steps per episode)"
    )

    try:
        policy = SB3Policy.load(args.run, TRAINED, trust=args.trust)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"compare_schedules.py: {error}") from error
    if policy.note:
        print(policy.note)

    def wanted(name: str) -> bool:
        return args.only is None or name in args.only

    tuning, tuned = [], None
    if wanted(TUNED):
        print(f"tuning the cosine's peak lr on seeds {args.tune_seeds}: {args.peaks}")
        candidates = [Cosine(peak, label=f"cosine, peak {peak:g}") for peak in args.peaks]
        best, tuning = best_of(env, candidates, args.tune_seeds)
        tuned = Cosine(best.initial_lr, label=TUNED)
        print(f"chosen: peak {tuned.initial_lr:g}")

    agent = evaluate(env, [policy], args.seeds, progress)
    complete = [r.lrs for r in agent if len(r.lrs) == env.steps_per_episode]
    others = [RandomPolicy(env.action_space.n)]
    others += baselines(
        config.initial_lr, config.decay_rate, config.action_mode, env.steps_per_episode
    )
    others += [tuned] if tuned else []
    if complete:
        others.append(Replayed(tuple(np.mean(complete, axis=0).tolist()), label=REPLAY))
    others = [policy for policy in others if wanted(policy.name)]
    records = agent + evaluate(env, others, args.seeds, progress)

    results = {
        "run": str(args.run),
        "seeds": args.seeds,
        "env": config.to_dict(),
        "env_overrides": overrides,
        "tuning": {
            "seeds": args.tune_seeds,
            "peaks": args.peaks,
            "chosen_peak": tuned.initial_lr if tuned else None,
            "episodes": [asdict(r) for r in tuning],
        },
        "feedback_share": feedback_share(records),
        "episodes": [asdict(r) for r in records],
    }
    write_atomically(output / "results.json", json.dumps(results) + "\n")
    write_report(records, config, output)


def write_report(records: list[EpisodeRecord], config: EnvConfig, output: Path) -> None:
    """``table.md`` and the figures, from the episodes: those just run, or a saved
    ``results.json``'s (``--replot``)."""
    table = comparison_table(records, config.epochs)
    write_atomically(output / "table.md", table)
    print(table, end="")
    share = feedback_share(records)
    print(f"the greedy policy's actions differ between seeds at {100 * share:.0f}% of steps")
    plot_final_accuracy(records, output / "final_accuracy.png")
    plot_test_accuracy(records, output / "test_accuracy.png")
    plot_lr(records, output / "lr_schedule.png")
    plot_actions(records, LRScheduleEnv(config=config).action_names, output / "actions.png")
    print(f"wrote {output}: table.md, results.json and 4 figures")


def replot(folder: Path) -> None:
    """Rewrite ``folder``'s table and figures from its ``results.json``, running nothing."""
    try:
        results = json.loads((folder / "results.json").read_text())
        config = config_from_dict(results["env"])
    except (FileNotFoundError, KeyError, ValueError) as error:
        raise SystemExit(f"compare_schedules.py --replot: {error}") from error
    if results.get("instances"):
        write_instance_report(Comparison.load(folder))
        return
    write_report([EpisodeRecord(**episode) for episode in results["episodes"]], config, folder)


def compare_instances(args: argparse.Namespace) -> None:
    """``--instances``: the comparison on an instance set's test split."""
    try:
        overrides = {**parse_overrides(args.env), "instances": args.instances}
        config = saved_env(args.run, overrides) if args.run else instance_config(args.instances)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"compare_schedules.py: {error}") from error
    output = args.output or (args.run or Path("runs")) / "comparison"
    try:
        check_writable(output)
    except ValueError as error:
        raise SystemExit(f"compare_schedules.py --output: {error}") from error
    comparison = Comparison(
        config,
        args.run,
        args.seeds,
        args.tune_seeds,
        output,
        tuple(args.peaks) if args.peaks != list(PEAKS) else INSTANCE_PEAKS,
        workers=args.workers,
        trust=args.trust,
        progress=lambda e: print(
            f"  {e['purpose']}: {e['policy']:>28}, {e['instance']}, seed {e['seed']}: "
            f"{EpisodeRecord(**{k: v for k, v in e.items() if k != 'purpose'}).final_accuracy:.3f}",
            flush=True,
        ),
    )
    if args.baselines_from:
        try:
            taken = comparison.adopt_baselines(args.baselines_from)
        except (FileNotFoundError, ValueError) as error:
            raise SystemExit(f"compare_schedules.py --baselines-from: {error}") from error
        print(f"took {taken} tuning and baseline episodes from {args.baselines_from}")
    print(
        f"{config.instances}: {len(comparison.test_names)} test instances, seeds {args.seeds}, "
        f"{len(comparison.episodes)} episodes already in {output / 'results.json'}"
    )
    comparison.run_all()
    write_instance_report(comparison)


def write_instance_report(comparison: Comparison) -> None:
    """``table.md`` and the figures of an instance comparison, from its episodes."""
    text = comparison.report()
    write_atomically(comparison.output / "table.md", text)
    print(text)
    if comparison.scored():  # a profile needs an instance with every seed of every contender
        plot_profiles(comparison, comparison.output / "performance_profile.png")
    print(f"wrote {comparison.output}: results.json, table.md, performance_profile.png")


def plot_profiles(comparison: Comparison, path: Path) -> None:
    """rliable's performance profiles: the share of (instance, seed) runs above each score."""
    records = comparison.records()
    chosen = comparison.scored()
    records = [r for r in records if r.instance in chosen]
    names = list(dict.fromkeys(r.policy for r in records))
    scores = {name: score_matrix(records, name, COSINE, ORACLE) for name in names}
    taus = np.linspace(-1.0, 1.5, 101)
    profiles, intervals = performance_profile(scores, taus)
    palette = plt.get_cmap("tab20").colors  # one colour each: rliable's default repeats
    colors = {name: palette[(2 * i) % 20 + (2 * i) // 20] for i, name in enumerate(names)}
    figure, axes = plt.subplots(figsize=(9, 5))
    plot_performance_profiles(profiles, taus, intervals, colors=colors, ax=axes)
    axes.legend(axes.lines, list(profiles), fontsize=7, loc="lower left")  # not the bands
    axes.set_title("Performance profiles over the test instances (rliable)")
    figure.tight_layout()
    replace_atomically(path, lambda side: figure.savefig(side, dpi=120))
    plt.close(figure)


if __name__ == "__main__":
    main()
