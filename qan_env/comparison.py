"""A trained policy against the baselines a practitioner would use, on the test instances of
an instance set: run in worker processes, saved as each episode lands, resumable.

The contenders, each made for every instance and run on the same seeds (the same initial
network and data order) through the same trainer:

- the trained policy, greedy, and a random policy over the same actions;
- cosine at the instance's initial lr (the user's guess): the normalised score's 0;
- cosine with one peak tuned on the **train** instances (the first tuning seed of each):
  "tuned once";
- cosine tuned on **each test instance** (every tuning seed): the oracle, the score's 1,
  which costs several runs per task;
- the tuning-free optimizers (``qan_env.training.optimizers``): schedule-free SGD at 10x
  the initial lr (its authors: 10 to 50 times a classical lr), D-Adaptation and Prodigy
  down a cosine from 1, DoG and LDoG at 1;
- ``ReduceLROnPlateau`` on the held-out loss, from the initial lr;
- the trained policy's own mean lr curve on each instance, replayed open loop.

``results.json`` holds every episode (its ``purpose``, tuning or evaluation, its instance
and seed) and the settings; a rerun skips the episodes it holds. Workers are processes with
their share of the torch threads; an episode's numbers depend on the thread count by
rounding (``docs/performance.md``), which ``results.json`` records.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import multiprocessing
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qan_env.config import EnvConfig, config_from_dict, with_overrides
from qan_env.env import LRScheduleEnv
from qan_env.evaluation import REPLAY, TRAINED, EpisodeRecord, Plateau, RandomPolicy, mean_ci
from qan_env.evaluation import run_episode as run_one
from qan_env.files import write_atomically
from qan_env.schedules import Constant, Cosine, Replayed
from qan_env.statistics import (
    iqm_with_interval,
    probability_of_improvement,
    score_matrix,
    speed_ups,
)

COSINE, TUNED_ONCE, ORACLE = "cosine", "cosine (tuned once)", "cosine (tuned per instance)"
PLATEAU = Plateau().name
PEAKS = (0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
#: The tuning-free optimizers: name, optimizer, schedule, absolute lr, or else a multiple
#: of the instance's initial lr.
OPTIMIZER_BASELINES = (
    ("schedule-free SGD", "schedulefree_sgd", "constant", 0.0, 10.0),
    ("D-Adaptation SGD", "dadapt_sgd", "cosine", 1.0, 0.0),
    ("Prodigy", "prodigy", "cosine", 1.0, 0.0),
    ("DoG", "dog", "constant", 1.0, 0.0),
    ("LDoG", "ldog", "constant", 1.0, 0.0),
)


#: Settings that shape only what a policy sees and does, never a run that a schedule or an
#: optimizer drives: comparisons that differ in these alone share their baseline episodes.
#: The optimizer is one: each baseline names its own, and only the policy's contenders run on
#: the config's (the optimizer whose lr the policy learned to drive).
POLICY_SETTINGS = (
    "optimizer",
    "action_mode",
    "observation",
    "observe_update",
    "observe_optimizer",
    "decay_rate",
    "restart_lr",
    "keep_action",
    "lr_floor",
    "scale_factors",
    "lr_min",
    "lr_max",
    "anchor_schedule",
    "anchor_factors",
    "anchor_lr",
    "monitored_layers",
)
#: The contenders whose episodes depend on the policy or on its action set.
POLICY_CONTENDERS = (TRAINED, "random", REPLAY)


@dataclass(frozen=True)
class Task:
    """One episode: a contender on an instance and a seed, for a purpose."""

    purpose: str  # "tuning" or "evaluation"
    contender: str
    instance: str
    seed: int
    optimizer: str = "sgd"
    schedule: str = ""  # "cosine" or "constant" from ``lr``; "": the contender sets the lr
    lr: float = 0.0  # the schedule's absolute lr (its peak), when not relative
    relative: float = 0.0  # else this multiple of the instance's initial lr

    @property
    def key(self) -> tuple:
        return (self.purpose, self.contender, self.instance, self.seed)


# A worker process's state: an env per optimizer, the trained policy, the settings.
_WORKER: dict[str, Any] = {}


def _start_worker(config: dict, run: str | None, threads: int, trust: bool) -> None:
    torch.set_num_threads(threads)
    _WORKER.clear()
    _WORKER.update(config=config_from_dict(config), run=run, trust=trust, envs={})


def _env(optimizer: str) -> LRScheduleEnv:
    envs = _WORKER["envs"]
    if optimizer not in envs:
        config = with_overrides(_WORKER["config"], {"optimizer": optimizer})
        envs[optimizer] = LRScheduleEnv(config=config)
    return envs[optimizer]


def _policy(task: Task, env: LRScheduleEnv, replays: dict[str, list[float]]):
    if task.contender == TRAINED:
        from qan_env.sb3 import SB3Policy  # only what runs the trained policy needs SB3

        if "policy" not in _WORKER:
            _WORKER["policy"] = SB3Policy.load(_WORKER["run"], trust=_WORKER["trust"])
        return _WORKER["policy"]
    if task.contender == "random":
        return RandomPolicy(env.action_space.n)
    if task.contender == PLATEAU:
        return Plateau()
    if task.contender == REPLAY:
        return Replayed(tuple(replays[task.instance]), label=REPLAY)
    lr = task.lr or task.relative * env.config_of(task.instance).initial_lr
    schedule = Constant if task.schedule == "constant" else Cosine
    return schedule(lr, label=task.contender)


def run_task(task: Task, replays: dict[str, list[float]]) -> dict:
    """``task`` in this worker: its record as a dict, with the task's purpose."""
    env = _env(task.optimizer)
    record = run_one(env, _policy(task, env, replays), task.seed, task.instance)
    return {"purpose": task.purpose, **asdict(record)}


@dataclass
class Comparison:
    """The comparison on the test split ``config.instances`` ("NAME:test")."""

    config: EnvConfig
    run: Path | None  # the trained policy's run folder; None: the baselines only
    seeds: list[int]
    tune_seeds: list[int]
    output: Path
    peaks: tuple[float, ...] = PEAKS
    workers: int = 1
    trust: bool = False
    progress: Callable[[dict], None] | None = None
    episodes: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.test_env = LRScheduleEnv(config=self.config)
        name = self.config.instances.split(":")[0]
        self.train_config = with_overrides(self.config, {"instances": f"{name}:train"})
        self.train_names = [i.name for i in LRScheduleEnv(config=self.train_config).instances]
        self.test_names = [i.name for i in self.test_env.instances]
        self.far = [i.name for i in self.test_env.instances if i.far]
        path = self.output / "results.json"
        if path.is_file() and not self.episodes:  # continue: held episodes are not rerun
            held = json.loads(path.read_text())
            if config_from_dict(held["env"]).to_dict() != self.config.to_dict():
                raise ValueError(
                    f"{path} holds a comparison on another env config: continue it with the "
                    f"settings it was started with, or give another output folder"
                )
            self.episodes = held["episodes"]

    @classmethod
    def load(cls, folder: Path) -> Comparison:
        """The comparison held in ``folder``'s ``results.json``, with its settings."""
        results = json.loads((folder / "results.json").read_text())
        run = None if results["run"] is None else Path(results["run"])
        config = config_from_dict(results["env"])
        peaks = tuple(results["peaks"])
        return cls(config, run, results["seeds"], results["tune_seeds"], folder, peaks)

    def adopt_baselines(self, source: Path) -> int:
        """Take from the comparison in ``source`` every episode that no policy shapes (the
        tuning and the baselines), so that a new policy is judged on the same baseline runs
        without running them again; returns how many were taken. ``source`` must have the
        same tuning seeds and peaks, its env differing in ``POLICY_SETTINGS`` only; of its
        evaluation episodes, those on seeds of this comparison are taken (so that more seeds
        grow from fewer). The random policy's episodes depend on the env alone, not on the
        trained policy: a comparison of a policy takes them too when the two envs are the
        same."""
        held = json.loads((source / "results.json").read_text())
        mine, theirs = self.config.to_dict(), config_from_dict(held["env"]).to_dict()
        differ = sorted(
            key for key in mine if mine[key] != theirs[key] and key not in POLICY_SETTINGS
        )
        if differ:
            raise ValueError(
                f"{source} ran another training run: its env differs in {', '.join(differ)}; "
                f"only these may differ: {', '.join(POLICY_SETTINGS)}"
            )
        for name, value in (("tune_seeds", self.tune_seeds), ("peaks", list(self.peaks))):
            if held[name] != value:
                raise ValueError(f"{source} has {name} {held[name]}, this comparison {value}")
        done = {(e["purpose"], e["policy"], e["instance"], e["seed"]) for e in self.episodes}
        same_env = mine == theirs and self.run is not None
        shaped = (TRAINED, REPLAY) if same_env else POLICY_CONTENDERS
        taken = [
            e
            for e in held["episodes"]
            if e["policy"] not in shaped
            and (e["purpose"] == "tuning" or e["seed"] in self.seeds)
            and (e["purpose"], e["policy"], e["instance"], e["seed"]) not in done
        ]
        self.episodes.extend(taken)
        self.save()
        return len(taken)

    def run_all(self) -> None:
        """The tuning, every contender, then the replays: each episode only if missing."""
        # Tuned once: every train instance on the first tuning seed (tens of instances
        # average the seeds out); the oracle: each test instance on every tuning seed.
        tuning = [
            Task("tuning", f"cosine {peak:g}", name, seed, schedule="cosine", lr=peak)
            for names, seeds in (
                (self.train_names, self.tune_seeds[:1]),
                (self.test_names, self.tune_seeds),
            )
            for name in names
            for peak in self.peaks
            for seed in seeds
        ]
        self._run(tuning, self.train_config)  # its env finds the instances of both splits
        once, oracle = self.tuned_peaks()
        self.drop_stale(
            {(TUNED_ONCE, name): [once] for name in self.test_names}
            | {(ORACLE, name): [peak] for name, peak in oracle.items()}
        )
        tasks = []  # seed by seed: an interrupted comparison holds whole seeds
        for seed in self.seeds:
            for name in self.test_names:
                tasks += [
                    Task("evaluation", COSINE, name, seed, schedule="cosine", relative=1.0),
                    Task("evaluation", TUNED_ONCE, name, seed, schedule="cosine", lr=once),
                    Task("evaluation", ORACLE, name, seed, schedule="cosine", lr=oracle[name]),
                    Task("evaluation", PLATEAU, name, seed),
                    *(
                        Task("evaluation", label, name, seed, optimizer, schedule, lr, relative)
                        for label, optimizer, schedule, lr, relative in OPTIMIZER_BASELINES
                    ),
                ]
                if self.run is not None:  # on the optimizer whose lr the policy drives
                    tasks += [
                        Task("evaluation", TRAINED, name, seed, self.config.optimizer),
                        Task("evaluation", "random", name, seed, self.config.optimizer),
                    ]
        self._run(tasks, self.config)
        if self.run is not None:
            replays = self.mean_lrs()
            self.drop_stale({(REPLAY, name): curve for name, curve in replays.items()})
            replay = [
                Task("evaluation", REPLAY, name, seed, self.config.optimizer)
                for seed in self.seeds
                for name in self.test_names
                if name in replays
            ]
            self._run(replay, self.config, replays)

    def records(self, purpose: str = "evaluation") -> list[EpisodeRecord]:
        names = set(EpisodeRecord.__dataclass_fields__)
        return [
            EpisodeRecord(**{key: value for key, value in e.items() if key in names})
            for e in self.episodes
            if e["purpose"] == purpose
        ]

    def tuned_peaks(self) -> tuple[float, dict[str, float]]:
        """The peak of the best mean final accuracy over the train instances (tuned once),
        and over each test instance (the oracle), on the tuning seeds."""
        tuning = self.records("tuning")

        def mean(peak: float, names: list[str]) -> float:
            runs = [
                r.final_accuracy
                for r in tuning
                if r.policy == f"cosine {peak:g}" and r.instance in names
            ]
            return statistics.fmean(runs) if runs else -math.inf

        once = max(self.peaks, key=lambda peak: mean(peak, self.train_names))
        oracle = {
            name: max(self.peaks, key=lambda peak, name=name: mean(peak, [name]))
            for name in self.test_names
        }
        return once, oracle

    def mean_lrs(self) -> dict[str, list[float]]:
        """The trained policy's mean lr curve on each test instance it ran: per step, the
        mean over its episodes that reached the step; after the last step any reached (all
        of them diverged), the last mean held, so that every run has its replay."""
        result = {}
        for name in self.test_names:
            runs = [r.lrs for r in self.records() if r.policy == TRAINED and r.instance == name]
            if not any(runs):
                continue
            curve: list[float] = []
            for step in range(self.test_env.config_of(name).steps_per_episode):
                reached = [lrs[step] for lrs in runs if len(lrs) > step]
                curve.append(statistics.fmean(reached) if reached else curve[-1])
            result[name] = curve
        return result

    def drop_stale(self, expected: dict[tuple[str, str], list[float]]) -> int:
        """Drop the episodes of each (contender, instance) in ``expected`` whose lrs do not
        begin as its curve does, so that they run again: a tuned peak that moved when its
        tuning runs changed, or a replay whose mean curve moved when the comparison grew by
        seeds. Returns how many."""

        def follows(lrs: list[float], curve: list[float]) -> bool:
            n = min(len(lrs), len(curve))
            return all(
                math.isclose(lr, c, rel_tol=1e-9, abs_tol=1e-12)
                for lr, c in zip(lrs[:n], curve[:n], strict=True)
            )

        kept = [
            e
            for e in self.episodes
            if e["purpose"] != "evaluation"
            or (e["policy"], e["instance"]) not in expected
            or follows(e["lrs"], expected[e["policy"], e["instance"]])
        ]
        dropped = len(self.episodes) - len(kept)
        if dropped:
            self.episodes = kept
            self.save()
        return dropped

    def _run(self, tasks: list[Task], config: EnvConfig, replays: dict | None = None) -> None:
        done = {(e["purpose"], e["policy"], e["instance"], e["seed"]) for e in self.episodes}
        missing = [task for task in tasks if task.key not in done]
        if not missing:
            return
        run = None if self.run is None else str(self.run)
        threads = max(1, torch.get_num_threads() // self.workers)
        arguments = (config.to_dict(), run, threads, self.trust)
        if self.workers == 1:  # in this process
            _start_worker(*arguments)
            for task in missing:
                self._landed(run_task(task, replays or {}))
            return
        with concurrent.futures.ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),  # a fork could hang in OpenMP
            initializer=_start_worker,
            initargs=arguments,
        ) as pool:
            futures = {pool.submit(run_task, task, replays or {}): task for task in missing}
            for future in concurrent.futures.as_completed(futures):
                if (error := future.exception()) is not None:
                    # not run the queued episodes before saying so (what leaving the pool
                    # would do): the finished ones are saved, a rerun continues from them
                    pool.shutdown(cancel_futures=True)
                    task = futures[future]
                    raise RuntimeError(
                        f"{task.contender} on {task.instance}, seed {task.seed}: {error!r}"
                    ) from error
                self._landed(future.result())

    def _landed(self, episode: dict) -> None:
        self.episodes.append(episode)
        self.save()
        if self.progress is not None:
            self.progress(episode)

    def save(self) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        results = {
            "run": None if self.run is None else str(self.run),
            "instances": self.config.instances,
            "env": self.config.to_dict(),
            "seeds": self.seeds,
            "tune_seeds": self.tune_seeds,
            "peaks": list(self.peaks),
            "threads_per_worker": max(1, torch.get_num_threads() // self.workers),
            "episodes": self.episodes,
        }
        write_atomically(self.output / "results.json", json.dumps(results) + "\n")

    def contenders(self) -> list[str]:
        return list(dict.fromkeys(r.policy for r in self.records()))

    def per_instance_table(self) -> str:
        """A row per test instance (far ones marked), a column per contender: the mean final
        test accuracy over seeds and its 95% interval; * where some seed diverged."""
        records, names = self.records(), self.contenders()
        lines = ["| instance | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 1)]
        for instance in self.test_names:
            cells = []
            for name in names:
                runs = [r for r in records if r.policy == name and r.instance == instance]
                mean, half = mean_ci([r.final_accuracy for r in runs]) if runs else (math.nan,) * 2
                diverged = "*" if any(r.diverged for r in runs) else ""
                cells.append(f"{mean:.3f} ± {half:.3f}{diverged}")
            far = " (far)" if instance in self.far else ""
            lines.append(f"| {instance}{far} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def tuning_table(self) -> str:
        """The set's landscape: a row per instance, the mean final test accuracy of the
        cosine at each tuned peak over the tuning runs it had (bold: its best peak)."""
        tuning = self.records("tuning")
        lines = [
            "| instance | split | " + " | ".join(f"peak {p:g}" for p in self.peaks) + " |",
            "|" + " --- |" * (len(self.peaks) + 2),
        ]
        for names, split in ((self.train_names, "train"), (self.test_names, "test")):
            for name in names:
                means = [
                    [r.final_accuracy for r in tuning if r.instance == name and r.policy == label]
                    for label in (f"cosine {peak:g}" for peak in self.peaks)
                ]
                means = [statistics.fmean(runs) if runs else math.nan for runs in means]
                best = max(means, key=lambda m: -math.inf if math.isnan(m) else m)
                cells = [f"**{m:.3f}**" if m == best else f"{m:.3f}" for m in means]
                far = " (far)" if name in self.far else ""
                lines.append(f"| {name}{far} | {split} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def report(self) -> str:
        """``table.md``: the per-instance table, the aggregates over every test instance and
        over the far ones, and the tuning runs' landscape."""
        once, _ = self.tuned_peaks()
        parts = [
            "## Per test instance: final test accuracy (mean ± 95% CI over seeds)\n\n",
            self.per_instance_table(),
            "\n## All test instances (score 0: cosine at the initial lr; 1: per-instance oracle)"
            "\n\n",
            self.aggregate_table(),
        ]
        if self.far:
            parts += [
                "\n## The far test instances alone\n\n",
                self.aggregate_table(instances=self.far),
            ]
        parts.append("\n" + self.coverage())
        parts += ["\n## What computed the evaluation episodes\n\n", self.computed_on_table()]
        parts += [
            f"\n## Tuning runs (tuned once: peak {once:g}, the best mean over the train split)\n\n",
            self.tuning_table(),
        ]
        return "".join(parts)

    def computed_on_table(self) -> str:
        """A row per torch, kernels and thread count that computed some evaluation episodes,
        naming the contenders it computed and how many episodes of each: contenders computed
        on different kernels differ by the kernels' rounding as well as by what they did
        (docs/performance.md)."""
        counts = Counter(
            (episode["policy"], episode.get("computed_on") or "not recorded")
            for episode in self.episodes
            if episode["purpose"] == "evaluation"
        )
        lines = ["| computed with | contenders (episodes) |", "| --- | --- |"]
        for platform in dict.fromkeys(platform for _, platform in counts):
            named = ", ".join(f"{name} ({n})" for (name, on), n in counts.items() if on == platform)
            lines.append(f"| {platform} | {named} |")
        return "\n".join(lines) + "\n"

    def degenerate(self) -> list[str]:
        """Test instances whose oracle is no better than the plain cosine (the guess was
        already the best peak): a normalised score is undefined there, so the aggregates
        leave them out (their rows in the per-instance table stay)."""
        records = self.records()
        names = {r.instance for r in records if r.policy == ORACLE}
        return [
            name
            for name in self.test_names
            if name in names
            and statistics.fmean(
                r.final_accuracy for r in records if r.policy == ORACLE and r.instance == name
            )
            <= statistics.fmean(
                r.final_accuracy for r in records if r.policy == COSINE and r.instance == name
            )
        ]

    def incomplete(self) -> list[str]:
        """Test instances on which some contender lacks a seed (a comparison still running):
        the aggregates leave them out until it finishes."""
        records = self.records()
        seeds = set(self.seeds)
        return [
            name
            for name in self.test_names
            if any(
                {r.seed for r in records if r.policy == policy and r.instance == name} != seeds
                for policy in self.contenders()
            )
        ]

    def coverage(self) -> str:
        """Which test instances the aggregates score, and why any is left out."""
        incomplete, degenerate = self.incomplete(), self.degenerate()
        text = f"Scored over {len(self.scored())} of {len(self.test_names)} test instances."
        if incomplete:
            text += f" Not every seed run yet (the comparison continues): {', '.join(incomplete)}."
        if degenerate:
            text += f" Oracle no better than the cosine: {', '.join(degenerate)}."
        return text + "\n"

    def scored(self, instances: list[str] | None = None) -> set[str]:
        """The instances a normalised score aggregates: ``instances`` (default: every test
        instance) less the degenerate and the incomplete ones."""
        left_out = set(self.degenerate()) | set(self.incomplete())
        return set(instances or self.test_names) - left_out

    def aggregate_table(self, policy: str = TRAINED, instances: list[str] | None = None) -> str:
        """A row per contender: the IQM of the normalised score with its interval, the
        probability that ``policy`` beats it, the same for the per-instance oracle (the bar a
        schedule that matches the best tuned cosine on every instance would reach), and
        ``policy``'s median speed-up to its final accuracy; over ``scored(instances)``."""
        chosen = self.scored(instances)
        records = [r for r in self.records() if r.instance in chosen]
        if not records:
            return "No test instance has every contender on every seed yet.\n"
        names = list(dict.fromkeys(r.policy for r in records))
        scores = {name: score_matrix(records, name, COSINE, ORACLE) for name in names}
        iqm = iqm_with_interval(scores)
        others = [name for name in names if name != policy]
        improvement = probability_of_improvement(scores, policy, others) if policy in names else {}
        by_oracle = probability_of_improvement(scores, ORACLE, [n for n in names if n != ORACLE])
        per_epoch = {name: self.test_env.config_of(name).iterations_per_epoch for name in chosen}
        lines = [
            f"| contender | IQM normalised score (95% CI) | P({policy} beats it) (95% CI) "
            f"| P({ORACLE} beats it) (95% CI) "
            f"| {policy}'s median speed-up to its final accuracy | diverged episodes |",
            "| --- | --- | --- | --- | --- | --- |",
        ]

        def interval(estimates: dict, name: str) -> str:
            if name not in estimates:
                return "n/a"
            p, p_low, p_high = estimates[name]
            return f"{p:.2f} ({p_low:.2f}, {p_high:.2f})"

        for name in names:
            point, low, high = iqm[name]
            row = f"| {name} | {point:.2f} ({low:.2f}, {high:.2f}) | {interval(improvement, name)}"
            row += f" | {interval(by_oracle, name)} | "
            if name in improvement:
                ups = np.median(list(speed_ups(records, policy, name, per_epoch).values()))
                row += f"{ups:.2f} | "
            else:
                row += "n/a | "
            row += f"{sum(r.diverged for r in records if r.policy == name)} |"
            lines.append(row)
        return "\n".join(lines) + "\n"
