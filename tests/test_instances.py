"""Instance sets: disjoint splits of valid runs, seeded draws, one rule for what depends on
an instance, and an instance given as overrides equal to the same one drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qan_env import LRScheduleEnv, LRScheduleVectorEnv, instance_config, make_config
from qan_env.comparison import Comparison
from qan_env.evaluation import run_episode
from qan_env.instances import INSTANCE_SETS, SPLITS
from qan_env.schedules import Cosine

TINY_BUDGET = {"epochs": 1, "synthetic_train_size": 1024, "synthetic_test_size": 64}


@pytest.mark.parametrize("name", sorted(INSTANCE_SETS))
def test_the_splits_are_disjoint_and_the_test_split_has_far_instances(name):
    instance_set = INSTANCE_SETS[name]
    train = {tuple(sorted(i.overrides.items())) for i in instance_set.train}
    test = {tuple(sorted(i.overrides.items())) for i in instance_set.test}
    assert train and test and not train & test
    assert len(train) == len(instance_set.train) and len(test) == len(instance_set.test)
    assert any(i.far for i in instance_set.test) and not any(i.far for i in instance_set.train)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(f"{name}:{split}", marks=() if name == "tiny" else pytest.mark.slow)
        for name in sorted(INSTANCE_SETS)
        for split in SPLITS
    ],
)
def test_every_instance_builds_and_steps_on_a_tiny_budget(spec):
    config = instance_config(spec)
    env = LRScheduleEnv(config=config)  # checks every instance's config and spaces
    for instance in env.instances:
        overrides = {**instance.overrides, **TINY_BUDGET}
        if instance.overrides.get("dataset", "synthetic") != "synthetic":
            overrides = {**instance.overrides, "epochs": 1}
        observation, info = env.reset(seed=0, options={"instance": overrides})
        assert env.observation_space.contains(observation) and info["instance"] == "custom"
        observation, *_ = env.step(0)
        assert env.observation_space.contains(observation)


@pytest.mark.slow
def test_instance_draws_follow_the_seed_and_cover_the_split():
    env = LRScheduleEnv(config=instance_config("tiny:train"))
    names = [env.reset(seed=seed)[1]["instance"] for seed in range(12)]
    again = [env.reset(seed=seed)[1]["instance"] for seed in range(12)]
    assert names == again
    assert set(names) == {i.name for i in env.instances}


@pytest.mark.slow
def test_an_instance_given_as_overrides_equals_the_same_one_drawn():
    env = LRScheduleEnv(config=instance_config("tiny:train"))
    _, info = env.reset(seed=5)
    drawn = env.instance_set.find(info["instance"])
    by_name = run_episode(env, Cosine(0.1), seed=5, instance=drawn.name)
    by_overrides = run_episode(env, Cosine(0.1), seed=5)  # the draw of seed 5 again
    env.reset(seed=5, options={"instance": dict(drawn.overrides)})
    assert (
        env.episode.config
        == LRScheduleEnv(
            config=make_config("tiny", **{**INSTANCE_SETS["tiny"].shared, **drawn.overrides})
        ).config
    )
    custom = run_episode(env, Cosine(0.1), seed=5, instance=None)
    assert by_name.lrs == by_overrides.lrs == custom.lrs
    assert by_name.test_accuracy == by_overrides.test_accuracy == custom.test_accuracy


def test_what_depends_on_an_instance_follows_one_rule():
    env = LRScheduleEnv(config=instance_config("tiny:test"))
    for instance in env.instances:
        env.reset(seed=0, options={"instance": instance.name})
        config = env.episode.config
        assert config.heldout_size == round(config.heldout_fraction * config.dataset_train_size)
        assert config.steps_per_episode <= config.decisions
        assert config.iterations_per_step == -(-config.total_iterations // config.decisions)


def test_bad_instance_specs_are_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"instances='tiny:validation' is not allowed"):
        make_config("tiny", instances="tiny:validation")
    env = LRScheduleEnv(config=instance_config("tiny:train"))
    with pytest.raises(ValueError, match=r"instance=.nope. is not in .tiny."):
        env.reset(seed=0, options={"instance": "nope"})
    with pytest.raises(ValueError, match=r"instance custom: unknown setting\(s\) epoch"):
        env.reset(seed=0, options={"instance": {"epoch": 3}})
    with pytest.raises(ValueError, match=r"options\['instance'\].*only for an env with"):
        LRScheduleEnv(preset="tiny").reset(seed=0, options={"instance": "x"})
    with pytest.raises(ValueError, match=r"instances=.*same action set"):
        LRScheduleEnv(config=instance_config("tiny:train", action_mode="paper")).reset(
            seed=0, options={"instance": {"action_mode": "anchored"}}
        )


@pytest.mark.slow
def test_a_saved_episode_of_an_instance_continues_bit_for_bit(tmp_path):
    config = instance_config("tiny:train")
    first = LRScheduleEnv(config=config)
    first.reset(seed=7)
    first.step(1)
    first.save(tmp_path / "episode.pt")
    expected = [first.step(3) for _ in range(2)]
    second = LRScheduleEnv(config=config)
    second.load(tmp_path / "episode.pt")
    assert second.episode.instance == first.episode.instance
    continued = [second.step(3) for _ in range(2)]
    for (obs, *rest), (obs2, *rest2) in zip(continued, expected, strict=True):
        np.testing.assert_array_equal(obs, obs2)
        assert rest == rest2


def test_a_vector_env_runs_each_sub_env_on_its_own_instance():
    env = LRScheduleVectorEnv(num_envs=3, config=instance_config("tiny:train"), batched=True)
    _, infos = env.reset(seed=0)
    assert len(set(infos["instance"])) >= 2  # several instances, trained side by side
    _, _, _, _, infos = env.step(np.array([2, 2, 2]))
    assert all(isinstance(name, str) for name in infos["instance"])


def test_an_instance_set_given_by_keyword_brings_its_preset_and_shared_mdp():
    import gymnasium as gym

    made = gym.make("qan_env/LRSchedule-v0", instances="general:train", epochs=4).unwrapped
    assert made.config == instance_config("general:train", epochs=4)
    assert made.config.action_mode == "relative" and made.config.dataset == "synthetic"
    other_preset = LRScheduleEnv(preset="tiny", instances="tiny:test")
    assert other_preset.config == instance_config("tiny:test", "tiny")
    vector = LRScheduleVectorEnv(num_envs=2, instances="tiny:train", batched=False)
    assert vector.config == instance_config("tiny:train")
    plain = LRScheduleEnv(config=make_config("tiny"), instances="tiny:train")
    assert plain.config.action_mode == make_config("tiny").action_mode  # config= is whole


@pytest.mark.parametrize("name", ["general", "noisy"])
def test_a_set_s_anchor_is_the_peak_its_baselines_tuned_once(name):
    """The set's ``anchor_lr`` is a copy of a measured fact: the tuned-once peak of the
    committed baselines' tuning runs, which own it."""
    baselines = Path(__file__).resolve().parents[1] / "docs" / "results" / f"{name}-baselines"
    once, _ = Comparison.load(baselines).tuned_peaks()
    assert INSTANCE_SETS[name].shared["anchor_lr"] == once
