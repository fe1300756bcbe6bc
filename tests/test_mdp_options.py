"""The MDP's options beyond the paper: action modes, training signals, the held-out reward."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from qan_env import LRScheduleEnv, learning_mdp, make_config
from qan_env.actions import ACTION_MODES
from qan_env.config import OBSERVATIONS, REWARDS
from qan_env.evaluation import run_episode
from qan_env.schedules import Cosine, StepDecay
from qan_env.signals import EMA_SHORT_ITERATIONS, TrainingSignals

HELDOUT = 64  # of the tiny preset's 256 training images


def options(action_mode: str, observation: str, reward: str, **more) -> dict:
    heldout = {"heldout_size": HELDOUT} if reward == "heldout_log_loss" else {}
    return {"action_mode": action_mode, "observation": observation, "reward": reward, **heldout}


# The fast tier runs a few combinations in which every value of each option appears; the
# whole suite runs them all.
FAST = {
    ("paper", "paper", "train_log_loss"),
    ("scale", "training", "heldout_log_loss"),
    ("anchored", "paper+training", "heldout_log_loss"),
    ("relative", "training", "train_log_loss"),
}
COMBINATIONS = [
    pytest.param(*combination, marks=() if combination in FAST else pytest.mark.slow)
    for combination in itertools.product(ACTION_MODES, OBSERVATIONS, REWARDS)
]


def steps_of(env: LRScheduleEnv, actions, seed: int = 0):
    """The reset and every step's outputs, taking ``actions(step)``."""
    reset = env.reset(seed=seed)
    steps, terminated = [], False
    while not terminated:
        steps.append(env.step(actions(len(steps))))
        terminated = steps[-1][2]
    return reset, steps


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("action_mode, observation, reward", COMBINATIONS)
def test_the_checkers_pass_for_every_combination(action_mode, observation, reward):
    kwargs = options(action_mode, observation, reward)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*A Box observation space (minimum|maximum) value is -?infinity"
        )
        gym_check_env(LRScheduleEnv(preset="tiny", **kwargs), skip_render_check=True)
        sb3_check_env(LRScheduleEnv(preset="tiny", **kwargs), warn=True)
    env = LRScheduleEnv(preset="tiny", **kwargs)
    assert env.observation_space.shape == (len(env.feature_names),)
    assert len(set(env.feature_names)) == len(env.feature_names)


@pytest.mark.parametrize("action_mode, observation, reward", COMBINATIONS)
def test_same_seed_same_episode_bit_for_bit_for_every_combination(action_mode, observation, reward):
    kwargs = options(action_mode, observation, reward, dropout=0.2)

    def episode():
        env = LRScheduleEnv(preset="tiny", iterations_per_step=3, **kwargs)
        (first, _), steps = steps_of(env, lambda step: (7 * step) % env.action_space.n, seed=5)
        return [first] + [s[0] for s in steps], [s[1] for s in steps]

    (observations, rewards), (again, again_rewards) = episode(), episode()
    assert rewards == again_rewards
    assert all(np.array_equal(a, b) for a, b in zip(observations, again, strict=True))


def test_anchored_with_factor_1_is_the_base_schedule_bit_for_bit():
    env = LRScheduleEnv(preset="tiny", action_mode="anchored", iterations_per_step=3)
    one = env.action_names.index("x1")
    _, anchored = steps_of(env, lambda step: one, seed=2)
    base = run_episode(env, Cosine(env.config.initial_lr), seed=2)
    assert [s[4]["lr"] for s in anchored] == base.lrs
    assert [s[4]["train_loss"] for s in anchored] == base.train_losses  # every loss
    assert [s[1] for s in anchored] == base.rewards


def test_anchored_multiplies_the_chosen_base_schedule():
    env = LRScheduleEnv(preset="tiny", action_mode="anchored", anchor_schedule="wrn_step")
    factors = env.config.anchor_factors
    _, steps = steps_of(env, lambda step: step % len(factors))
    base = StepDecay(env.config.initial_lr)
    for step, (*_, info) in enumerate(steps):
        expected = base(step, env.steps_per_episode) * factors[step % len(factors)]
        assert info["lr"] == expected


@pytest.mark.parametrize("anchor_lr", [None, 0.35])
def test_relative_holding_its_level_is_the_base_schedule_bit_for_bit(anchor_lr):
    env = LRScheduleEnv(
        preset="tiny",
        action_mode="relative",
        observation="training",
        iterations_per_step=3,
        anchor_lr=anchor_lr,
    )
    hold = env.action_names.index("x1")
    _, held = steps_of(env, lambda step: hold, seed=2)
    base = run_episode(env, Cosine(anchor_lr or env.config.initial_lr), seed=2)
    ratio = env.feature_names.index("log_lr_ratio")  # measured from the base's peak
    assert held[0][0][ratio] == pytest.approx(0.0, abs=1e-6)
    assert [s[4]["lr"] for s in held] == pytest.approx(base.lrs, rel=1e-12)
    assert [s[4]["train_loss"] for s in held] == pytest.approx(base.train_losses, rel=1e-6)


def test_relative_moves_a_bounded_multiplier_that_lasts_until_undone():
    env = LRScheduleEnv(
        preset="tiny",
        action_mode="relative",
        anchor_schedule="wrn_step",
        scale_factors=(0.5, 1.0, 2.0),
        anchor_factors=(0.25, 4.0),
        epochs=4,
    )
    down, hold, up = 0, 1, 2
    actions = [up, up, up, hold, up, down] + [down] * 6 + [hold, up] * 20
    _, steps = steps_of(env, lambda step: actions[step])
    base = StepDecay(env.config.initial_lr)
    level = 1.0
    for step, (*_, info) in enumerate(steps):
        level = min(max(level * env.config.scale_factors[actions[step]], 0.25), 4.0)
        assert info["lr"] == pytest.approx(base(step, env.steps_per_episode) * level)
    levels = [info["lr"] / base(k, env.steps_per_episode) for k, (*_, info) in enumerate(steps)]
    assert levels[:6] == pytest.approx([2, 4, 4, 4, 4, 2])  # the ceiling holds a step up
    assert min(levels) == pytest.approx(0.25)  # and the floor a step down


def test_scale_stays_within_its_bounds_and_reaches_them():
    env = LRScheduleEnv(preset="tiny", action_mode="scale", lr_min=0.05, lr_max=0.2, epochs=4)
    assert env.action_names == ("x0.666667", "x1", "x1.5")
    actions = [2] * 8 + [0] * 12 + [1, 2, 0] * 4  # up to the ceiling, down to the floor
    _, steps = steps_of(env, lambda step: actions[step % len(actions)])
    lrs = [info["lr"] for *_, info in steps]
    assert all(0.05 <= lr <= 0.2 for lr in lrs)
    assert lrs[7] == 0.2 and lrs[19] == 0.05
    assert lrs[0] == pytest.approx(0.15) and lrs[8] == pytest.approx(0.2 / 1.5)


@pytest.mark.parametrize("reward", REWARDS)
def test_each_reward_telescopes_to_its_log_loss_decrease(reward):
    env = LRScheduleEnv(preset="tiny", **options("paper", "training", reward))
    (_, first), steps = steps_of(env, lambda step: step % 2)
    key = "heldout_loss" if reward == "heldout_log_loss" else "train_loss"
    last = steps[-1][4]
    expected = -env.reward_scale * (math.log(last[key]) - math.log(first[key]))
    assert sum(step[1] for step in steps) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert ("heldout_loss" in last) == (reward == "heldout_log_loss")


def test_the_heldout_reward_is_measured_in_eval_mode_on_images_that_never_train():
    env = LRScheduleEnv(preset="tiny", **options("paper", "paper", "heldout_log_loss"))
    assert env.config.train_size == 256 - HELDOUT and env.steps_per_episode == 2 * (192 // 32)
    env.reset(seed=0)
    trainer = env.unwrapped.episode.trainer
    trained, heldout = trainer.loader.data, trainer.heldout_set
    assert len(heldout) == HELDOUT and len(trained) == 256 - HELDOUT
    rows = {bytes(image.numpy()) for image in trained.images}
    assert not any(bytes(image.numpy()) in rows for image in heldout.images)
    assert trainer.heldout_loss().item() == pytest.approx(env.step(0)[4]["heldout_loss"], 0.2)
    env.reset(seed=0)
    assert torch.equal(env.unwrapped.episode.trainer.heldout_set.labels, heldout.labels)  # seed's
    env.reset(seed=1)
    assert not torch.equal(env.unwrapped.episode.trainer.heldout_set.labels, heldout.labels)


def test_training_signals_are_finite_up_to_and_at_divergence():
    env = LRScheduleEnv(
        preset="tiny", initial_lr=1e4, **options("paper", "training", "train_log_loss")
    )
    (first, _), steps = steps_of(env, lambda step: 1)
    assert steps[-1][4]["diverged"]
    for observation in [first] + [s[0] for s in steps]:
        assert np.isfinite(observation).all()


def test_training_signals_stay_finite_at_lr_0():
    env = LRScheduleEnv(preset="tiny", **options("paper", "training", "heldout_log_loss"))
    _, info = env.reset(seed=0)
    names = env.feature_names
    for _ in range(6):
        previous = info["heldout_loss"]
        observation, *_, info = env.step_lr(0.0)
        assert np.isfinite(observation).all()
        change = math.log(info["heldout_loss"]) - math.log(previous)
        assert observation[names.index("heldout_loss_change")] == pytest.approx(change, abs=1e-6)
    assert observation[names.index("log_lr_ratio")] == pytest.approx(math.log(1e-6))


def test_signals_of_a_constant_loss():
    signals = TrainingSignals(heldout=True)
    loss, norm = torch.tensor(0.5), torch.tensor(3.0)
    first = signals.reset(loss, norm, loss)
    for _ in range(30):
        values = signals.update(torch.full((4,), 0.5), norm, loss)
    named = dict(zip(signals.names, values.tolist(), strict=True))
    assert torch.isfinite(first).all() and torch.isfinite(values).all()
    assert named["log_loss_ema_short"] == pytest.approx(math.log(0.5), abs=1e-6)
    assert named["loss_ema_gap"] == pytest.approx(0.0, abs=1e-6)
    assert named["loss_window_cv"] == 0.0
    assert named["grad_norm_change"] == named["heldout_loss_change"] == 0.0
    zero = signals.update(torch.zeros(4), torch.zeros(()), torch.zeros(()))
    assert torch.isfinite(zero).all()  # a loss or a gradient of exactly 0


def test_the_moving_averages_follow_their_definition():
    signals = TrainingSignals(heldout=False)
    losses = torch.rand(25, generator=torch.Generator().manual_seed(0)) + 0.5
    signals.reset(torch.tensor(2.0), torch.tensor(1.0), None)
    for part in losses.split([1, 3, 10, 11]):
        values = signals.update(part, torch.tensor(1.0), None)
    keep, average = math.exp(-1 / EMA_SHORT_ITERATIONS), 2.0
    for loss in losses.tolist():  # one iteration at a time
        average = keep * average + (1 - keep) * loss
    assert values[0].item() == pytest.approx(math.log(average), rel=1e-5)
    window = losses[-20:]
    assert values[3].item() == pytest.approx((window.std(correction=0) / window.mean()).item())


def test_the_gradient_norm_is_the_last_iterations():
    env = LRScheduleEnv(preset="tiny", **options("paper", "training", "train_log_loss"))
    env.reset(seed=0)
    trainer = env.unwrapped.episode.trainer
    observation, *_ = env.step(0)
    grads = [p.grad.flatten() for p in trainer.model.parameters()]
    expected = math.log(torch.cat(grads).norm().item())
    assert observation[env.feature_names.index("log_grad_norm")] == pytest.approx(expected, 1e-5)


def test_the_last_action_is_in_the_observation():
    env = LRScheduleEnv(preset="tiny", keep_action=True, observation="training")
    names = env.feature_names
    assert names[:5] == [
        "progress",
        "log_lr_ratio",
        "last_action/decay",
        "last_action/restart",
        "last_action/keep",
    ]
    observation, _ = env.reset(seed=0)
    assert observation[:5].tolist() == [0, 0, 0, 0, 0]
    observation, *_ = env.step(2)
    assert observation[2:5].tolist() == [0, 0, 1]
    assert observation[0] == pytest.approx(1 / env.total_iterations)
    anchored = LRScheduleEnv(preset="tiny", action_mode="anchored", observation="training")
    anchored.reset(seed=0)
    observation, *_ = anchored.step(0)
    assert observation[anchored.feature_names.index("log_multiplier")] == pytest.approx(
        math.log(0.5)
    )


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("action_mode", "greedy", r"one of \('paper', 'scale', 'anchored', 'relative'\)"),
        ("observation", "pixels", "one of"),
        ("reward", "accuracy", "one of"),
        ("scale_factors", (), "non-empty list"),
        ("anchor_factors", (0.5, 0.0, 2.0), "numbers > 0"),
        ("anchor_factors", (1.0, -2.0), "numbers > 0"),
        ("scale_factors", (1.0, 1.0), "distinct"),
        ("scale_factors", "x1.5", "non-empty list"),
        ("anchor_schedule", "linear", "one of"),
        ("heldout_size", 256, "fewer than the training split's 256 images"),
        ("heldout_size", -1, ">= 0"),
        ("lr_min", 0.0, "> 0.0"),
        ("anchor_lr", 0.0, "> 0.0"),
    ],
)
def test_bad_option_values_are_refused_naming_the_field(field, value, allowed):
    with pytest.raises(ValueError, match=allowed) as error:
        make_config("tiny", **{field: value})
    assert str(error.value).startswith(f"{field}={value!r}")


def test_option_combinations_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match=r"^reward='heldout_log_loss' .*heldout_size > 0"):
        make_config("tiny", reward="heldout_log_loss")
    with pytest.raises(ValueError, match=r"^initial_lr=0.1 .*within \[lr_min, lr_max\]"):
        make_config("tiny", action_mode="scale", lr_min=0.2, lr_max=1.0)
    with pytest.raises(ValueError, match=r"^batch_size=32 .*less heldout_size \(16\)"):
        make_config("tiny", heldout_size=240)
    with pytest.raises(ValueError, match=r"^lr_min=1.5 and lr_max=1.0 are not allowed together"):
        make_config("tiny", lr_min=1.5)  # both named: either may be the wrong one


def test_the_learning_mdp_is_sized_for_each_preset():
    quick = make_config("quick", **learning_mdp(make_config("quick")))
    assert (quick.train_size, quick.total_iterations, quick.steps_per_episode) == (4096, 320, 16)
    paper = make_config("paper", **learning_mdp(make_config("paper")))
    assert (paper.heldout_size, paper.iterations_per_step) == (1024, 20)
    tiny = learning_mdp(make_config("tiny"))
    assert (tiny["heldout_size"], tiny["iterations_per_step"]) == (51, 4)
    env = LRScheduleEnv(preset="tiny", **tiny)
    (observation, info), steps = steps_of(env, lambda step: env.action_names.index("x1"))
    assert len(steps) == env.steps_per_episode == (205 // 32) * 2 // 4
    assert "heldout_loss" in info and np.isfinite(observation).all()


def test_the_optimizer_block_is_the_lr_and_the_effective_step_of_the_run_s_momentum():
    env = LRScheduleEnv(
        preset="tiny", observation="training", observe_optimizer=True, momentum=0.75
    )
    at = env.feature_names.index("log_lr")
    assert env.feature_names[at:] == ["log_lr", "log_effective_lr"]
    observation, _ = env.reset(seed=0)
    lr = env.config.initial_lr
    assert observation[at : at + 2] == pytest.approx([math.log(lr), math.log(lr / 0.25)])
    observation, *_, info = env.step(0)  # the paper's decay: another lr
    assert info["lr"] != lr
    assert observation[at : at + 2] == pytest.approx(
        [math.log(info["lr"]), math.log(info["lr"] / 0.25)], rel=1e-6
    )
    plain = LRScheduleEnv(preset="tiny", observation="training", observe_optimizer=True)
    assert plain.config.momentum == 0.9  # the same lr, another momentum: another step
    observation, _ = plain.reset(seed=0)
    assert observation[at + 1] == pytest.approx(math.log(lr / 0.1))
    with pytest.raises(ValueError, match="observe_optimizer=True is not allowed: only with"):
        LRScheduleEnv(preset="tiny", observe_optimizer=True)


def test_the_update_ratio_is_how_far_a_step_moved_the_weights():
    env = LRScheduleEnv(preset="tiny", observation="training", observe_update=True)
    names = env.feature_names
    at = names.index("log_update_ratio")
    assert names[at + 1] == "update_ratio_change" and at + 2 == len(names)
    observation, _ = env.reset(seed=0)
    assert observation[at] == observation[at + 1] == 0.0  # no step yet
    parameters = list(env.episode.trainer.model.parameters())
    before = torch.cat([p.detach().reshape(-1) for p in parameters]).clone()
    observation, *_ = env.step(1)
    after = torch.cat([p.detach().reshape(-1) for p in parameters])
    expected = math.log((after - before).norm() / after.norm())
    assert observation[at] == pytest.approx(expected, rel=1e-5)
    assert observation[at + 1] == pytest.approx(expected, rel=1e-5)  # its change from 0
    with pytest.raises(ValueError, match="observe_update=True is not allowed: only with the"):
        LRScheduleEnv(preset="tiny", observe_update=True)
