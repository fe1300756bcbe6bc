"""Fixed schedules give the lr curves they name; evaluation is greedy and reproducible."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize

import qan_env
from qan_env import LRScheduleEnv
from qan_env.actions import DECAY, RESTART
from qan_env.evaluation import (
    ActionSchedule,
    EpisodeRecord,
    RandomPolicy,
    baselines,
    best_of,
    evaluate,
    mean_ci,
    restart_period,
    run_episode,
)
from qan_env.run_folder import read_run_config, saved_env, write_run_config
from qan_env.sb3 import Normalization, SB3Policy
from qan_env.sb3.policy import QNetwork
from qan_env.schedules import (
    Constant,
    Cosine,
    Exponential,
    Replayed,
    StepDecay,
    WarmRestarts,
)
from qan_env.training.config import computed_on

LR0 = 0.1


@pytest.fixture(scope="module")
def env():
    return LRScheduleEnv(preset="tiny", epochs=4, eval_every_epochs=2)  # 32 steps


def lrs_of(env, schedule) -> np.ndarray:
    return np.array(run_episode(env, schedule, seed=0).lrs)


def test_constant(env):
    assert np.all(lrs_of(env, Constant(0.03)) == 0.03)


def test_wrn_step_multiplies_by_0_2_at_30_60_and_80_percent(env):
    lrs = lrs_of(env, StepDecay(LR0))
    expected = LR0 * 0.2 ** np.searchsorted([10, 19, 26], np.arange(32), side="right")
    np.testing.assert_allclose(lrs, expected)  # round(0.3 * 32) = 10, 19, 26
    budget = np.array([StepDecay(LR0)(step, 200) for step in range(200)])
    assert [int(i) for i in np.flatnonzero(np.diff(budget)) + 1] == [60, 120, 160]


def test_cosine_falls_smoothly_from_lr0_to_zero(env):
    lrs = lrs_of(env, Cosine(LR0))
    assert lrs[0] == LR0 and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(lrs) < 0)
    assert lrs[len(lrs) // 2] == pytest.approx(LR0 / 2, rel=0.1)


def test_sgdr_restarts_twice_with_cycles_doubling(env):
    lrs = lrs_of(env, WarmRestarts(LR0))
    restarts = [int(i) for i in np.flatnonzero(np.diff(lrs) > 0) + 1]
    # 32 steps in cycles of 1:2:4 units of 32/7: restarts at steps 5 (4.57) and 14 (13.7).
    assert restarts == [5, 14]
    assert lrs[0] == lrs[5] == lrs[14] == LR0
    for start, end in ((0, 5), (5, 14), (14, 32)):
        assert np.all(np.diff(lrs[start:end]) < 0)


def test_always_decay_takes_the_envs_decay_every_step(env):
    record = run_episode(env, ActionSchedule(), seed=0)
    assert record.actions == [DECAY] * 32
    np.testing.assert_allclose(record.lrs, LR0 * 0.95 ** np.arange(1, 33))


def test_restart_every_k_steps(env):
    record = run_episode(env, ActionSchedule(restart_every=5), seed=0)
    assert [i for i, a in enumerate(record.actions) if a == RESTART] == [4, 9, 14, 19, 24, 29]
    assert record.lrs[4] == record.lrs[9] == LR0
    assert record.lrs[3] == pytest.approx(LR0 * 0.95**4)
    assert restart_period(0.05) == 90 and LR0 * 0.95**90 <= 0.01 * LR0 < LR0 * 0.95**89


def test_baselines_are_the_six_named_schedules_and_restart_within_the_episode():
    names = [schedule.name for schedule in baselines(LR0, 0.05, "paper", steps_per_episode=400)]
    assert names == [
        "constant 0.1",
        "WRN step",
        "cosine",
        "SGDR",
        "always decay",
        "restart every 90",
    ]
    short = baselines(LR0, 0.05, "paper", steps_per_episode=16)[-1]
    assert short.name == "restart every 8"  # 90 steps would never come in 16


@pytest.mark.slow
def test_evaluate_records_every_policy_on_every_seed(env):
    records = evaluate(env, [RandomPolicy(2), Cosine(LR0)], seeds=[3, 4])
    assert [(r.policy, r.seed) for r in records] == [
        ("random", 3),
        ("random", 4),
        ("cosine", 3),
        ("cosine", 4),
    ]
    for record in records:
        assert record.computed_on == computed_on(env.device)
        assert record.epochs == [2, 4] and len(record.test_accuracy) == 2
        assert len(record.lrs) == len(record.rewards) == len(record.train_losses) == 32
        assert record.episode_return == pytest.approx(sum(record.rewards))
        assert math.isnan(record.accuracy_at(1)) and record.accuracy_at(4) > 0
    # Same seed, same start: the two policies' first losses agree.
    assert records[0].train_losses[0] == records[2].train_losses[0]
    random_actions = [records[0].actions, records[1].actions]
    assert random_actions[0] != random_actions[1] and set(random_actions[0]) == {0, 1}
    assert records[2].actions == []


def test_a_run_that_draws_its_label_noise_names_the_share_in_info_and_record():
    env = LRScheduleEnv(preset="tiny", epochs=1, label_noise=0.2, label_noise_max=0.6)
    _, info = env.reset(seed=3)
    record = run_episode(env, Cosine(LR0), seed=3)
    assert 0.2 <= info["label_noise"] < 0.6 and record.label_noise == info["label_noise"]
    assert run_episode(env, Cosine(LR0), seed=4).label_noise != record.label_noise
    assert "label_noise" not in LRScheduleEnv(preset="tiny", label_noise=0.2).reset(seed=3)[1]


@pytest.fixture(scope="module")
def exploring_model(env):
    model = DQN(
        "MlpPolicy",
        LRScheduleEnv(preset="tiny"),
        learning_starts=4,
        buffer_size=64,
        batch_size=4,
        seed=0,
        device="cpu",
    )
    model.learn(20)
    model.exploration_rate = 1.0  # exploration left on, as in the withdrawn code
    return model


@pytest.mark.slow
def test_evaluation_is_greedy_same_seed_same_actions(env, exploring_model):
    policy = SB3Policy([QNetwork(exploring_model.policy)])
    first = run_episode(env, policy, seed=7)
    second = run_episode(env, policy, seed=7)
    assert first.actions == second.actions and first.lrs == second.lrs
    # A policy that explored with epsilon 1 would act at random; greedy ones do not.
    observation, _ = env.reset(seed=7)
    greedy, _ = exploring_model.predict(observation[None], deterministic=True)
    assert first.actions[0] == int(greedy[0])


@pytest.mark.slow
def test_sb3_policy_sees_what_sb3s_wrappers_showed_the_model(env):
    """Stacking and normalising from the saved statistics gives the very inputs
    VecFrameStack + VecNormalize give."""
    venv = VecNormalize(VecFrameStack(DummyVecEnv([lambda: LRScheduleEnv(preset="tiny")]), 3))
    venv.seed(0)
    venv.reset()
    for step in range(20):  # gather normalisation statistics, across an episode end
        venv.step(np.array([step % 2]))
    venv.training = False
    model = DQN("MlpPolicy", venv, device="cpu", seed=0)
    statistics = Normalization.of(venv)
    network = QNetwork(model.policy, normalization=statistics)  # as normalization.json has it
    policy = SB3Policy([network])
    raw_env = LRScheduleEnv(preset="tiny")
    venv.seed(11)
    wrapped = venv.reset()
    raw, _ = raw_env.reset(seed=11)
    policy.reset(11)
    for step in range(8):
        stacked = network.normalization(policy.stack(raw))
        np.testing.assert_allclose(stacked, wrapped, rtol=1e-6, atol=1e-6)
        action = step % 2
        wrapped, *_ = venv.step(np.array([action]))
        raw, *_ = raw_env.step(action)


@pytest.mark.slow
def test_always_decay_as_a_schedule_gives_the_decay_actions_lrs(env):
    as_actions = run_episode(env, ActionSchedule(), seed=0).lrs
    as_schedule = lrs_of(env, Exponential(LR0, 0.05))
    np.testing.assert_allclose(as_schedule, as_actions, rtol=1e-12)
    names = [b.name for b in baselines(LR0, 0.05, "anchored", steps_per_episode=400)]
    assert names == ["constant 0.1", "WRN step", "cosine", "SGDR", "always decay"]


def test_a_replayed_curve_is_run_open_loop_and_must_fit_the_episode(env):
    curve = tuple(0.01 * (1 + step % 3) for step in range(32))
    assert lrs_of(env, Replayed(curve, label="replay")).tolist() == list(curve)
    assert Replayed(curve, label="replay").name == "replay"
    with pytest.raises(ValueError, match="32 lrs to replay for an episode of 16 steps"):
        run_episode(LRScheduleEnv(preset="tiny"), Replayed(curve), seed=0)


@pytest.mark.slow
def test_best_of_picks_the_highest_mean_final_accuracy(env):
    candidates = [Cosine(0.0001, label="tiny lr"), Cosine(0.3, label="large lr")]
    best, records = best_of(env, candidates, seeds=[0, 1])
    assert [r.policy for r in records] == ["tiny lr", "tiny lr", "large lr", "large lr"]
    means = {
        name: np.mean([r.final_accuracy for r in records if r.policy == name])
        for name in ("tiny lr", "large lr")
    }
    assert best.name == max(means, key=means.get)


def test_mean_and_confidence_interval_on_known_numbers():
    # mean 3, sample std sqrt(2.5), t(0.975, 4) = 2.776445: half-width 1.963243;
    # t(0.95, 4) = 2.131847: 1.507443
    assert mean_ci([1, 2, 3, 4, 5]) == (3.0, pytest.approx(1.9632432, rel=1e-6))
    assert mean_ci([2.0, 2.0, 2.0]) == (2.0, 0.0)
    mean, half = mean_ci([0.7])
    assert mean == 0.7 and math.isnan(half)
    assert mean_ci([1, 2, 3, 4, 5], confidence=0.9)[1] == pytest.approx(1.5074433, rel=1e-6)


def test_a_diverged_run_keeps_its_last_accuracy_and_nan_does_not_break_intervals():
    diverged = EpisodeRecord("p", 0, epochs=[1, 2], test_accuracy=[0.2, 0.3], diverged=True)
    finished = EpisodeRecord("p", 1, epochs=[2, 4], test_accuracy=[0.5, 0.6])
    assert diverged.accuracy_at(4) == diverged.final_accuracy == 0.3
    assert math.isnan(finished.accuracy_at(3))  # not evaluated, and the run went on
    mean, half = mean_ci([0.5, math.nan, 0.7])
    assert math.isnan(mean) and math.isnan(half)


def test_a_run_folders_config_never_downloads_unless_told_to(tmp_path):
    config = qan_env.make_config("tiny", download=True)  # as a folder from elsewhere may say
    write_run_config(tmp_path, config, {"preset": "tiny"})
    assert read_run_config(tmp_path).env.download  # recorded as it was
    assert not saved_env(tmp_path, {}).download  # evaluated without fetching anything
    assert saved_env(tmp_path, {"download": True, "epochs": 1}).download


def test_a_run_folders_config_records_torch_the_kernels_and_the_thread_count(tmp_path):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if threads > 1 else 2)  # another count than the default
        write_run_config(tmp_path, qan_env.make_config("tiny"), {"preset": "tiny"})
        recorded = json.loads((tmp_path / "config.json").read_text())["computed_on"]
        capability = torch.backends.cpu.get_cpu_capability()
        count = torch.get_num_threads()
        assert count != threads
        assert recorded == f"torch {torch.__version__}, CPU {capability}, {count} thread" + (
            "s" if count > 1 else ""
        )
    finally:
        torch.set_num_threads(threads)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_run_config_for_a_gpu_this_machine_lacks_is_written_without_its_kernels(tmp_path):
    config = qan_env.make_config("tiny", device="cuda")  # an ensemble of runs trained there
    write_run_config(tmp_path, config, {"preset": "tiny"}, runs_here=False)
    values = json.loads((tmp_path / "config.json").read_text())
    assert values["computed_on"] is None and values["env"]["device"] == "cuda"
    with pytest.raises(ValueError, match="device='cuda'"):  # a run cannot compute here
        write_run_config(tmp_path / "run", config, {"preset": "tiny"})


def test_reduce_lr_on_plateau_cuts_the_lr_when_the_heldout_loss_stops_improving():
    from qan_env.evaluation import Plateau

    plateau = Plateau(factor=0.5, patience=2)
    plateau.reset(seed=0, initial_lr=0.2)
    assert plateau.lr({"heldout_loss": 2.0}, step=0) == 0.2  # the reset's loss: no decision
    losses = [1.5, 1.4, 1.4, 1.4, 1.4, 1.3]  # improves, then three steps without
    lrs = [plateau.lr({"heldout_loss": loss}, step) for step, loss in enumerate(losses, 1)]
    assert lrs == [0.2, 0.2, 0.2, 0.2, 0.1, 0.1]
