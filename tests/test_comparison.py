"""The comparison on an instance set's test split: every contender on every test instance,
resumed from its results.json without rerunning a finished episode, in worker processes."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from qan_env import instance_config
from qan_env.comparison import (
    COSINE,
    OPTIMIZER_BASELINES,
    ORACLE,
    PLATEAU,
    REPLAY,
    TRAINED,
    TUNED_ONCE,
    Comparison,
)
from qan_env.evaluation import EpisodeRecord

pytestmark = pytest.mark.slow  # some dozens of tiny episodes, and processes


class Interrupted(Exception):
    pass


def comparison(folder, workers=1, progress=None) -> Comparison:
    config = instance_config("tiny:test")
    return Comparison(
        config, None, [1000], [0], folder, peaks=(0.1, 0.4), workers=workers, progress=progress
    )


def test_an_interrupted_comparison_continues_without_rerunning_finished_episodes(tmp_path):
    landed = []

    def stop_after_five(episode):
        landed.append(episode)
        if len(landed) == 5:
            raise Interrupted

    with pytest.raises(Interrupted):
        comparison(tmp_path, progress=stop_after_five).run_all()
    first_five = [dict(e) for e in landed]
    rerun = []
    resumed = comparison(tmp_path, workers=2, progress=rerun.append)
    assert resumed.episodes == first_five  # read back from results.json
    resumed.run_all()
    keys = [(e["purpose"], e["policy"], e["instance"], e["seed"]) for e in resumed.episodes]
    assert len(keys) == len(set(keys)) == 5 + len(rerun)
    assert resumed.episodes[:5] == first_five  # not run again
    # tuning: 5 instances x 2 peaks x 1 seed; evaluation: 2 test instances x the contenders
    contenders = {COSINE, TUNED_ONCE, ORACLE, PLATEAU, *(b[0] for b in OPTIMIZER_BASELINES)}
    assert sum(k[0] == "tuning" for k in keys) == 10
    assert {k[1] for k in keys if k[0] == "evaluation"} == contenders
    assert {k[2] for k in keys if k[0] == "evaluation"} == set(resumed.test_names)
    nothing = []
    comparison(tmp_path, progress=nothing.append).run_all()  # complete: nothing to run
    assert nothing == []
    assert "| cosine |" in resumed.aggregate_table(policy=TUNED_ONCE)
    loaded = Comparison.load(tmp_path)  # what --replot and docs/render.py read
    assert loaded.episodes == resumed.episodes and loaded.peaks == (0.1, 0.4)
    assert loaded.report() == resumed.report()


def test_the_tuning_table_marks_each_instance_s_best_peak(tmp_path):
    held = comparison(tmp_path)
    name = held.train_names[0]
    for peak, accuracy in ((0.1, 0.5), (0.4, 0.7)):
        record = EpisodeRecord(f"cosine {peak:g}", 0, name, epochs=[4], test_accuracy=[accuracy])
        held.episodes.append({"purpose": "tuning", **asdict(record)})
    row = next(line for line in held.tuning_table().splitlines() if line.startswith(f"| {name} "))
    assert row.endswith("| train | 0.500 | **0.700** |")
    assert held.tuned_peaks()[0] == 0.4


def test_a_comparison_on_another_env_config_is_refused(tmp_path):
    comparison(tmp_path).save()
    other = instance_config("tiny:test", epochs=3)
    with pytest.raises(ValueError, match="another env config"):
        Comparison(other, None, [1000], [0], tmp_path)


def test_an_instance_with_a_missing_seed_is_left_out_of_the_aggregates(tmp_path):
    held = Comparison(instance_config("tiny:test"), None, [1000, 1001], [0], tmp_path)
    first, second = held.test_names
    for name, seeds in ((first, (1000, 1001)), (second, (1000,))):
        for seed in seeds:
            for policy, accuracy in ((COSINE, 0.5), (ORACLE, 0.7), (TUNED_ONCE, 0.6)):
                record = EpisodeRecord(policy, seed, name, epochs=[4], test_accuracy=[accuracy])
                held.episodes.append({"purpose": "evaluation", **asdict(record)})
    assert held.incomplete() == [second] and held.scored() == {first}
    report = held.report()
    assert f"Not every seed run yet (the comparison continues): {second}." in report
    assert "| not recorded | cosine (3), cosine (tuned per instance) (3)" in report
    assert held.coverage().startswith("Scored over 1 of 2 test instances.")
    rows = held.aggregate_table(policy=TUNED_ONCE).splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [
        f"| {COSINE}",
        f"| {ORACLE}",
        f"| {TUNED_ONCE}",
    ]
    held.episodes = [e for e in held.episodes if e["instance"] == second]
    assert held.aggregate_table().startswith("No test instance has every contender")


def add(held: Comparison, purpose: str, policy: str, name: str, seed: int, lrs=()) -> None:
    record = EpisodeRecord(policy, seed, name, lrs=list(lrs), epochs=[1], test_accuracy=[0.5])
    held.episodes.append({"purpose": purpose, **asdict(record)})


def test_a_new_policy_takes_the_baseline_episodes_of_a_comparison_on_the_same_runs(tmp_path):
    source = Comparison(instance_config("tiny:test"), None, [1000], [0], tmp_path / "old")
    name = source.test_names[0]
    add(source, "tuning", "cosine 0.1", name, 0)
    for policy in (COSINE, ORACLE, TRAINED, "random", REPLAY):
        add(source, "evaluation", policy, name, 1000)
    source.save()
    other_actions = instance_config("tiny:test", action_mode="relative", scale_factors=(0.5, 2.0))
    new = Comparison(other_actions, None, [1000], [0], tmp_path / "new")
    assert new.adopt_baselines(tmp_path / "old") == 3  # not the policy's, random's, replay's
    assert {e["policy"] for e in new.episodes} == {"cosine 0.1", COSINE, ORACLE}
    assert new.adopt_baselines(tmp_path / "old") == 0  # held already
    assert Comparison(other_actions, None, [1000], [0], tmp_path / "new").episodes == new.episodes
    another_run = instance_config("tiny:test", epochs=3)
    with pytest.raises(ValueError, match="differs in epochs"):
        Comparison(another_run, None, [1000], [0], tmp_path / "c").adopt_baselines(tmp_path / "old")
    more_seeds = Comparison(other_actions, None, [1000, 1001], [0], tmp_path / "d")
    assert more_seeds.adopt_baselines(tmp_path / "old") == 3  # seed 1000's, and the tuning
    other_seed = Comparison(other_actions, None, [1001], [0], tmp_path / "e")
    assert other_seed.adopt_baselines(tmp_path / "old") == 1  # the tuning only
    assert [e["purpose"] for e in other_seed.episodes] == ["tuning"]
    with pytest.raises(ValueError, match="tune_seeds"):
        Comparison(other_actions, None, [1000], [1], tmp_path / "f").adopt_baselines(
            tmp_path / "old"
        )
    same_env = Comparison(instance_config("tiny:test"), tmp_path, [1000], [0], tmp_path / "g")
    assert same_env.adopt_baselines(tmp_path / "old") == 4  # random's too: no policy shapes it
    assert "random" in {e["policy"] for e in same_env.episodes}
    baselines_only = Comparison(instance_config("tiny:test"), None, [1000], [0], tmp_path / "h")
    assert baselines_only.adopt_baselines(tmp_path / "old") == 3  # it runs no random policy
    on_prodigy = instance_config("tiny:test", optimizer="prodigy")  # a policy driving Prodigy
    assert (
        Comparison(on_prodigy, None, [1000], [0], tmp_path / "i").adopt_baselines(tmp_path / "old")
        == 3
    )


def test_the_policy_s_contenders_run_on_the_optimizer_it_drives(tmp_path):
    held = Comparison(
        instance_config("tiny:test", optimizer="prodigy"), tmp_path, [1000], [0], tmp_path
    )
    planned = []
    held._run = lambda tasks, config, replays=None: planned.extend(tasks)
    held.run_all()
    optimizers = {task.contender: task.optimizer for task in planned}
    assert optimizers[TRAINED] == optimizers["random"] == "prodigy"
    for label in (COSINE, TUNED_ONCE, ORACLE, PLATEAU, "cosine 0.1"):  # the user's SGD
        assert optimizers[label] == "sgd"
    assert {optimizers[b[0]] for b in OPTIMIZER_BASELINES} == {b[1] for b in OPTIMIZER_BASELINES}


def test_episodes_of_a_curve_that_moved_are_dropped_to_run_again(tmp_path):
    held = Comparison(instance_config("tiny:test"), None, [1000, 1001], [0], tmp_path)
    first, second = held.test_names
    steps = held.test_env.config_of(first).steps_per_episode
    add(held, "evaluation", TRAINED, first, 1000, [0.1] * steps)
    add(held, "evaluation", TRAINED, second, 1000, [0.4] * steps)
    add(held, "evaluation", REPLAY, first, 1000, [0.1] * steps)  # the one-seed mean
    add(held, "evaluation", REPLAY, second, 1000, [0.4] * 2)  # diverged on the same curve
    add(held, "evaluation", ORACLE, first, 1000, [0.4, 0.3])  # a cosine from 0.4
    replays = {(REPLAY, name): curve for name, curve in held.mean_lrs().items()}
    assert held.drop_stale({**replays, (ORACLE, first): [0.4]}) == 0
    add(held, "evaluation", TRAINED, first, 1001, [0.3] * steps)  # a seed more: mean 0.2
    replays = {(REPLAY, name): curve for name, curve in held.mean_lrs().items()}
    assert held.drop_stale({**replays, (ORACLE, first): [0.8]}) == 2  # and the peak moved
    kept = [(e["policy"], e["instance"]) for e in held.episodes if e["policy"] in (REPLAY, ORACLE)]
    assert kept == [(REPLAY, second)]
    assert Comparison(instance_config("tiny:test"), None, [1000], [0], tmp_path).episodes == (
        held.episodes
    )  # saved


def test_the_replay_is_the_mean_lr_of_the_steps_reached_then_held(tmp_path):
    held = Comparison(instance_config("tiny:test"), None, [1000, 1001], [0], tmp_path)
    first, second = held.test_names
    steps = held.test_env.config_of(first).steps_per_episode
    assert steps >= 3
    add(held, "evaluation", TRAINED, first, 1000, [0.1] * steps)
    add(held, "evaluation", TRAINED, first, 1001, [0.3, 0.5])  # diverged at its second step
    add(held, "evaluation", TRAINED, second, 1000, [0.4])
    add(held, "evaluation", TRAINED, second, 1001, [0.8])  # every run diverged at once
    replays = held.mean_lrs()
    assert replays[first] == pytest.approx([0.2, 0.3] + [0.1] * (steps - 2))
    assert replays[second] == pytest.approx(
        [0.6] * held.test_env.config_of(second).steps_per_episode
    )


def test_the_report_names_what_computed_each_contenders_episodes(tmp_path):
    held = Comparison(instance_config("tiny:test"), None, [1000, 1001], [0], tmp_path)
    name = held.test_names[0]
    here, there = "torch 2.14.1, CPU AVX512, 1 thread", "torch 2.14.1, CPU AVX2, 1 thread"
    for policy, seed, platform in (
        (COSINE, 1000, there),
        (COSINE, 1001, there),
        (TRAINED, 1000, here),
        (TRAINED, 1001, None),  # written before the kernels were recorded
    ):
        record = EpisodeRecord(policy, seed, name, epochs=[4], test_accuracy=[0.5])
        episode = {"purpose": "evaluation", **asdict(record), "computed_on": platform}
        if platform is None:
            del episode["computed_on"]
        held.episodes.append(episode)
    tuning = EpisodeRecord("cosine 0.1", 0, name, epochs=[4], test_accuracy=[0.5])
    held.episodes.append({"purpose": "tuning", **asdict(tuning), "computed_on": here})
    assert held.computed_on_table().splitlines()[2:] == [
        f"| {there} | {COSINE} (2) |",
        f"| {here} | {TRAINED} (1) |",  # the tuning episode is not an evaluation's
        f"| not recorded | {TRAINED} (1) |",
    ]
    held.save()
    assert Comparison.load(tmp_path).records()[2].computed_on == here
