"""LRScheduleEnv: the MDP of its docstring and the README, the checkers, seeding, divergence,
registration."""

from __future__ import annotations

import dataclasses
import math
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import qan_env
from qan_env import ENV_IDS, LRScheduleEnv
from qan_env.actions import DECAY, KEEP, RESTART

INFO_KEYS = {"lr", "train_loss", "epoch", "iteration", "diverged"}


def run_episode(env, policy, seed=0):
    """Step ``policy(step_index)`` to the end; the reset output and every step's output."""
    reset = env.reset(seed=seed)
    steps = []
    terminated = False
    while not terminated:
        steps.append(env.step(policy(len(steps))))
        terminated = steps[-1][2]
    return reset, steps


@pytest.mark.filterwarnings("error")
def test_gymnasium_and_sb3_checkers_pass_on_tiny():
    with warnings.catch_warnings():
        # The only warning allowed: the observation space is unbounded, by design.
        warnings.filterwarnings(
            "ignore", message=r".*A Box observation space (minimum|maximum) value is -?infinity"
        )
        gym_check_env(LRScheduleEnv(preset="tiny"), skip_render_check=True)
        sb3_check_env(LRScheduleEnv(preset="tiny"), warn=True)


def test_spaces_observation_and_info(tiny_env):
    assert tiny_env.action_space == gym.spaces.Discrete(2)
    assert tiny_env.observation_space.shape == (193,)
    assert tiny_env.observation_space.dtype == np.float32
    assert len(tiny_env.feature_names) == 193 and tiny_env.feature_names[-1] == "lr"
    assert tiny_env.feature_names[0] == "conv1/all/mean"
    observation, info = tiny_env.reset(seed=0)
    assert observation in tiny_env.observation_space
    assert observation[-1] == np.float32(0.1)
    assert set(info) == INFO_KEYS
    assert (info["epoch"], info["iteration"], info["lr"]) == (0, 0, 0.1)
    assert info["train_loss"] == pytest.approx(math.log(10), rel=0.2)
    for value in info.values():
        assert type(value) in (int, float, bool)


def test_episode_length_evaluation_and_termination(tiny_env):
    _, steps = run_episode(tiny_env, lambda step: DECAY)
    per_epoch = 256 // 32
    assert len(steps) == tiny_env.total_iterations == 2 * per_epoch
    assert tiny_env.steps_per_episode == len(steps)
    for index, (observation, reward, terminated, truncated, info) in enumerate(steps):
        assert observation in tiny_env.observation_space
        assert isinstance(reward, float) and not truncated
        assert terminated == (index == len(steps) - 1)
        assert info["iteration"] == index + 1
        assert info["epoch"] == (index + 1) // per_epoch
        evaluated = (index + 1) % per_epoch == 0
        assert ("test_accuracy" in info) == evaluated == ("test_loss" in info)
        if evaluated:
            assert 0.0 <= info["test_accuracy"] <= 1.0 and info["test_loss"] > 0
    with pytest.raises(RuntimeError, match=r"call reset\(\)"):
        tiny_env.step(DECAY)


def test_rewards_sum_to_the_log_loss_decrease_of_eq_9():
    env = LRScheduleEnv(preset="tiny", iterations_per_step=3)
    (_, reset_info), steps = run_episode(env, lambda step: step % 2)
    total_iterations = env.total_iterations
    scale = 1 / (total_iterations - 1)
    assert env.reward_scale == pytest.approx(scale)
    expected = -scale * (math.log(steps[-1][4]["train_loss"]) - math.log(reset_info["train_loss"]))
    assert sum(step[1] for step in steps) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    previous = reset_info["train_loss"]
    for _, reward, _, _, info in steps:
        assert reward == pytest.approx(-scale * math.log(info["train_loss"] / previous))
        previous = info["train_loss"]


def test_reward_scale_override():
    env = LRScheduleEnv(preset="tiny", reward_scale=2.0)
    (_, reset_info), steps = run_episode(env, lambda step: DECAY)
    ratio = steps[-1][4]["train_loss"] / reset_info["train_loss"]
    assert sum(step[1] for step in steps) == pytest.approx(-2.0 * math.log(ratio))


def test_actions_set_the_learning_rate_they_promise():
    env = LRScheduleEnv(preset="tiny", keep_action=True, restart_lr=0.08, lr_floor=0.075)
    assert env.action_space == gym.spaces.Discrete(3)
    env.reset(seed=0)
    expected = [
        (DECAY, 0.1 * 0.95),
        (DECAY, 0.1 * 0.95**2),
        (KEEP, 0.1 * 0.95**2),
        (RESTART, 0.08),
        (DECAY, 0.08 * 0.95),
        (DECAY, 0.075),  # the floor
        (np.int64(RESTART), 0.08),
        (np.array(DECAY), 0.08 * 0.95),
    ]
    for action, lr in expected:
        observation, *_, info = env.step(action)
        assert info["lr"] == pytest.approx(lr, rel=1e-12)
        assert observation[-1] == np.float32(lr)
        assert env.unwrapped.episode.trainer.optimizer.param_groups[0]["lr"] == info["lr"]


def test_restart_defaults_to_the_initial_lr(tiny_env):
    tiny_env.reset(seed=0)
    tiny_env.step(DECAY)
    assert tiny_env.step(RESTART)[4]["lr"] == 0.1


@pytest.mark.parametrize("action", [2, -1, 0.5, "decay", True, np.array([0, 1])])
def test_invalid_actions_name_the_actions_that_exist(tiny_env, action):
    tiny_env.reset(seed=0)
    with pytest.raises(ValueError, match=r"is not valid: allowed are 0 \(decay\), 1 \(restart\)$"):
        tiny_env.step(action)
    tiny_env.step(DECAY)  # nothing was lost


def test_divergence_ends_the_episode_with_the_documented_penalty():
    env = LRScheduleEnv(preset="tiny", initial_lr=1e4)
    (_, reset_info), steps = run_episode(env, lambda step: RESTART)
    observation, reward, terminated, truncated, info = steps[-1]
    assert terminated and not truncated and info["diverged"]
    assert len(steps) < env.total_iterations
    assert not (math.isfinite(info["train_loss"]) and info["train_loss"] <= env.config.max_loss)
    previous = steps[-2][4]["train_loss"] if len(steps) > 1 else reset_info["train_loss"]
    assert reward == pytest.approx(-env.reward_scale * math.log(env.config.max_loss / previous))
    assert observation in env.observation_space and np.isfinite(observation).all()
    # The return is that of a run whose loss ended at the bound: below any run that did not.
    total = sum(step[1] for step in steps)
    bound = -env.reward_scale * math.log(env.config.max_loss / reset_info["train_loss"])
    assert total == pytest.approx(bound)
    observation, info = env.reset(seed=1)
    assert not info["diverged"] and np.isfinite(observation).all()
    assert env.step(DECAY)[4]["iteration"] == 1


def test_a_held_out_loss_above_the_bound_is_rewarded_as_the_bound_and_the_run_goes_on():
    # At a constant lr of 2 the tiny run's eval-mode held-out loss spikes to 19 and 109
    # while its training loss stays below 4: batch norm behind the weights, not divergence.
    env = LRScheduleEnv(
        preset="tiny",
        reward="heldout_log_loss",
        heldout_size=64,
        iterations_per_step=4,
        initial_lr=2.0,
        restart_lr=2.0,
        max_loss=5.0,
    )
    (_, reset_info), steps = run_episode(env, lambda step: RESTART)
    infos = [step[4] for step in steps]
    assert len(steps) == env.steps_per_episode and not any(i["diverged"] for i in infos)
    assert all(i["train_loss"] < 5.0 for i in infos)
    assert any(i["heldout_loss"] > 5.0 for i in infos)  # the spike this test is about
    rewarded = [min(i["heldout_loss"], 5.0) for i in infos]
    previous = [reset_info["heldout_loss"], *rewarded[:-1]]
    for (_, reward, *_), before, after in zip(steps, previous, rewarded, strict=True):
        assert reward == pytest.approx(-env.reward_scale * math.log(after / before))
    assert steps[-1][4]["epoch"] == env.config.epochs  # the whole budget was trained


@pytest.mark.slow
def test_same_seed_same_trajectory_bit_for_bit_and_other_seeds_differ():
    def trajectory(env, seed):
        policy = np.random.default_rng(0).integers(0, 2, size=100)
        reset, steps = run_episode(env, lambda step: policy[step], seed=seed)
        return [reset[0]] + [step[0] for step in steps], [step[1] for step in steps]

    env = LRScheduleEnv(preset="tiny", dropout=0.3)
    observations, rewards = trajectory(env, seed=3)
    again_observations, again_rewards = trajectory(LRScheduleEnv(preset="tiny", dropout=0.3), 3)
    assert rewards == again_rewards
    for a, b in zip(observations, again_observations, strict=True):
        assert np.array_equal(a, b)
    other_observations, other_rewards = trajectory(env, seed=4)
    assert not np.array_equal(observations[0], other_observations[0])
    assert rewards != other_rewards


def test_unseeded_resets_start_new_episodes(tiny_env):
    first, _ = tiny_env.reset(seed=0)
    second, _ = tiny_env.reset()
    assert not np.array_equal(first, second)


def test_the_global_rngs_are_never_touched():
    legacy_numpy = np.random.get_state  # the global RNG is what is checked
    torch_state, numpy_state = torch.get_rng_state(), legacy_numpy()
    run_episode(LRScheduleEnv(preset="tiny", dropout=0.2), lambda step: step % 2)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(legacy_numpy(), numpy_state, strict=True))


def test_construction_is_cheap_and_picklable():
    env = LRScheduleEnv(preset="paper", data_dir="/nonexistent")  # no data read yet
    assert env.episode is None and env.data is None
    clone = pickle.loads(pickle.dumps(env))
    assert clone.config == env.config and clone.observation_space == env.observation_space
    with pytest.raises(qan_env.DatasetError, match="/nonexistent"):
        env.reset(seed=0)


def test_all_conv_monitoring_observes_every_conv_layer():
    env = LRScheduleEnv(preset="tiny", monitored_layers="all_conv")
    layers = env.monitored_layers
    assert len(layers) == 9  # conv1, 3 blocks of 2 convs, 2 shortcuts (block1 keeps width)
    assert env.observation_space.shape == (192 * len(layers) + 1,)
    observation, _ = env.reset(seed=0)
    assert observation in env.observation_space
    assert env.feature_names[192] == f"{layers[1]}/all/mean"


def test_steps_that_span_epoch_ends_evaluate_at_the_epoch_end():
    env = LRScheduleEnv(preset="tiny", iterations_per_step=5, eval_every_epochs=1, epochs=3)
    _, steps = run_episode(env, lambda step: DECAY)
    iterations = [info["iteration"] for *_, info in steps]
    assert iterations == [5, 10, 15, 20, 24]  # 24 iterations; the last step is shorter
    assert env.steps_per_episode == len(steps) == 5  # rounded up, once, by the config
    evaluated = [info["iteration"] for *_, info in steps if "test_accuracy" in info]
    assert evaluated == [10, 20, 24]  # the steps containing the ends of epochs 1, 2 and 3


@pytest.mark.slow
def test_eval_every_n_epochs_and_never():
    _, steps = run_episode(LRScheduleEnv(preset="tiny", epochs=3, eval_every_epochs=2), lambda s: 0)
    assert [info["epoch"] for *_, info in steps if "test_accuracy" in info] == [2, 3]
    _, steps = run_episode(LRScheduleEnv(preset="tiny", eval_every_epochs=0), lambda s: 0)
    assert not any("test_accuracy" in info for *_, info in steps)


def test_cifar10_episode_runs_on_files_in_cifar10_format(cifar10_dir):
    root, _ = cifar10_dir
    env = LRScheduleEnv(preset="tiny", dataset="cifar10", data_dir=str(root), batch_size=50)
    assert env.steps_per_episode == 2 * (200 // 50)  # known before any file is read
    _, steps = run_episode(env, lambda step: DECAY)
    assert len(steps) == env.steps_per_episode
    assert 0.0 <= steps[-1][4]["test_accuracy"] <= 1.0


def test_a_data_set_of_another_size_than_the_config_says_is_refused(cifar10_dir, monkeypatch):
    root, _ = cifar10_dir
    cifar10 = dataclasses.replace(qan_env.training.datasets.SOURCES["cifar10"], train_size=50_000)
    monkeypatch.setitem(qan_env.training.datasets.SOURCES, "cifar10", cifar10)  # the real size
    env = LRScheduleEnv(preset="tiny", dataset="cifar10", data_dir=str(root), batch_size=50)
    assert env.steps_per_episode == 2 * (50_000 // 50)
    with pytest.raises(qan_env.DatasetError, match="has 200 training images where"):
        env.reset(seed=0)


def test_the_episode_length_is_known_at_construction_and_never_changes():
    env = LRScheduleEnv(preset="quick", iterations_per_step=7)
    assert env.total_iterations == 10 * (5120 // 128) == 400
    assert env.steps_per_episode == 58  # 57 steps of 7 iterations and one of 1
    env = LRScheduleEnv(preset="tiny", iterations_per_step=7)  # 16 iterations: 7, 7, 2
    before = (env.total_iterations, env.steps_per_episode, env.reward_scale)
    _, steps = run_episode(env, lambda step: DECAY)
    assert len(steps) == env.steps_per_episode == 3
    assert (env.total_iterations, env.steps_per_episode, env.reward_scale) == before


def test_a_whole_config_with_overrides_on_top():
    config = qan_env.make_config("tiny", epochs=3)
    env = gym.make("qan_env/LRSchedule-v0", config=config, iterations_per_step=2)
    assert env.unwrapped.config == qan_env.make_config("tiny", epochs=3, iterations_per_step=2)
    with pytest.raises(ValueError, match="unknown setting"):
        LRScheduleEnv(config=config, epoch=3)
    with pytest.raises(ValueError, match=r"iterations_per_step=0 is not allowed"):
        LRScheduleEnv(config=config, iterations_per_step=0)


def test_cuda_requested_without_cuda_is_refused_at_construction():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    config = qan_env.make_config("tiny", device="cuda")  # a config may be read elsewhere
    for make in (
        lambda: gym.make("qan_env/LRSchedule-v0", preset="tiny", device="cuda"),
        lambda: LRScheduleEnv(config=config),
    ):
        with pytest.raises(
            ValueError, match=r"device=.cuda. is not allowed.*CUDA is not available"
        ):
            make()


def test_registration_is_idempotent_and_module_prefixed_ids_work():
    qan_env.register_envs()
    qan_env.register_envs()
    gym.register_envs(qan_env)
    env = gym.make("qan_env:qan_env/LRSchedule-v0", preset="tiny", epochs=1)
    assert env.unwrapped.config.epochs == 1
    assert env.spec.id == "qan_env/LRSchedule-v0"


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_every_registered_id_makes_its_preset(env_id):
    env = gym.make(env_id)
    assert env.unwrapped.config == qan_env.make_config(**ENV_IDS[env_id])
    assert env.observation_space.shape == (193,) and env.action_space.n == 2
    assert env.unwrapped.action_names == ("decay", "restart")
    # The env ends its own episodes; a fixed TimeLimit would be wrong after an override.
    assert env.spec.max_episode_steps is None
    if env.unwrapped.config.dataset == "synthetic":
        observation, _ = env.reset(seed=0)
        assert observation in env.observation_space
        assert env.step(DECAY)[0] in env.observation_space


def test_vector_env_and_frame_stacking_from_gymnasium():
    envs = gym.make_vec("qan_env/LRSchedule-tiny-v0", num_envs=2, vectorization_mode="sync")
    observations, _ = envs.reset(seed=[0, 1])
    assert observations.shape == (2, 193)
    assert not np.array_equal(observations[0], observations[1])
    observations, rewards, *_ = envs.step(np.array([DECAY, RESTART]))
    assert rewards.shape == (2,)
    stacked = gym.wrappers.FrameStackObservation(gym.make("qan_env/LRSchedule-tiny-v0"), 4)
    observation, _ = stacked.reset(seed=0)
    assert observation.shape == (4, 193)


def test_bf16_autocast_and_channels_last_train_the_same_network():
    _, fp32 = run_episode(LRScheduleEnv(preset="tiny"), lambda step: DECAY)
    fast_env = LRScheduleEnv(preset="tiny", precision="bf16", channels_last=True)
    _, fast = run_episode(fast_env, lambda step: DECAY)
    trainer = fast_env.unwrapped.episode.trainer
    assert trainer.bf16 and trainer.model.conv1.weight.is_contiguous(
        memory_format=torch.channels_last
    )
    assert len(fast) == len(fp32)
    for (obs, *_, info), (*_, ref_info) in zip(fast, fp32, strict=True):
        assert obs in fast_env.observation_space
        # bf16 keeps about 3 significant digits: the runs agree closely, not exactly.
        assert info["train_loss"] == pytest.approx(ref_info["train_loss"], rel=0.05)


@pytest.mark.parametrize("lr", [True, -0.1, float("nan"), 1e5, 3.5e38, 10**400, "0.1", None])
def test_step_lr_refuses_a_bad_lr_before_anything_changes(tiny_env, lr):
    tiny_env.reset(seed=0)
    before = (tiny_env.episode.lr, tiny_env.episode.trainer.iteration)
    with pytest.raises(ValueError, match=r"^lr=.* is not allowed: a finite number >= 0 and <= "):
        tiny_env.step_lr(lr)
    assert (tiny_env.episode.lr, tiny_env.episode.trainer.iteration) == before
    *_, info = tiny_env.step_lr(0.05)  # the episode goes on
    assert info["iteration"] == before[1] + 1


@pytest.mark.parametrize("lr", [np.float32(0.05), np.float64(0.05), np.int64(0), 0, 0.05])
def test_step_lr_takes_numpy_scalars_as_plain_numbers(tiny_env, lr):
    tiny_env.reset(seed=0)
    *_, info = tiny_env.step_lr(lr)
    assert info["lr"] == float(lr) and type(info["lr"]) is float


def test_a_max_loss_below_the_first_loss_is_refused_at_reset():
    env = LRScheduleEnv(preset="tiny", max_loss=0.5)  # a fresh 10-class network: about 2.3
    with pytest.raises(ValueError, match=r"max_loss=0.5 is not allowed: above the loss of the"):
        env.reset(seed=0)


def test_rewards_stay_finite_at_the_largest_reward_scale_when_training_diverges():
    env = LRScheduleEnv(preset="tiny", initial_lr=1e4, reward_scale=1e6)  # decays: still huge
    env.reset(seed=0)
    terminated = False
    while not terminated:
        _, reward, terminated, _, info = env.step(0)
    assert info["diverged"] and math.isfinite(reward) and reward < 0


@pytest.mark.parametrize("mdp", ["paper", pytest.param("learning", marks=pytest.mark.slow)])
def test_a_saved_episode_continues_bit_for_bit_in_a_new_env(tmp_path, mdp):
    options = {} if mdp == "paper" else qan_env.learning_mdp(qan_env.make_config("tiny"))
    config = qan_env.make_config("tiny", dropout=0.3, **options)  # dropout draws too
    actions = [i % len(LRScheduleEnv(config=config).action_names) for i in range(40)]

    def run(env, steps):
        return [env.step(action) for action in steps]

    first = LRScheduleEnv(config=config)
    cut = first.steps_per_episode // 2  # mid-way, inside an epoch
    first.reset(seed=3)
    run(first, actions[:cut])
    first.save(tmp_path / "episode.pt")
    expected = run(first, actions[cut : first.steps_per_episode])

    second = LRScheduleEnv(config=config)  # another env, no reset: the file is enough
    second.load(tmp_path / "episode.pt")
    continued = run(second, actions[cut : second.steps_per_episode])
    assert len(continued) == len(expected) and continued[-1][2]  # to the episode's end
    for (obs, reward, term, trunc, info), (obs2, reward2, term2, trunc2, info2) in zip(
        continued, expected, strict=True
    ):
        np.testing.assert_array_equal(obs, obs2)
        assert (reward, term, trunc, info) == (reward2, term2, trunc2, info2)
    second.reset(seed=4)  # and the next episode is the one the first env would run
    first.reset(seed=4)
    assert run(second, actions[:2])[-1][4] == run(first, actions[:2])[-1][4]


def test_a_saved_episode_is_refused_by_an_env_of_another_config(tmp_path, tiny_env):
    tiny_env.reset(seed=0)
    tiny_env.step(0)
    tiny_env.save(tmp_path / "episode.pt")
    other = LRScheduleEnv(preset="tiny", epochs=3)
    with pytest.raises(ValueError, match=r"another config \(epochs differ\)"):
        other.load(tmp_path / "episode.pt")
    with pytest.raises(RuntimeError, match="call reset"):
        LRScheduleEnv(preset="tiny").save(tmp_path / "never.pt")


def test_a_state_kept_in_memory_is_a_snapshot_that_several_envs_continue_alike(tiny_env):
    # branching a run: keep its state, step on, and load the state into two other envs
    tiny_env.reset(seed=5)
    tiny_env.step(0)
    state = tiny_env.state_dict()
    expected = [tiny_env.step(a)[1] for a in (0, 1, 0)]  # the original steps on
    branches = [LRScheduleEnv(preset="tiny"), LRScheduleEnv(preset="tiny")]
    for branch in branches:
        branch.load_state_dict(state)
    rewards = [[branch.step(a)[1] for branch in branches] for a in (0, 1, 0)]
    assert [r[0] for r in rewards] == [r[1] for r in rewards] == expected


def test_a_state_that_fails_to_load_leaves_the_episode_as_it_was(tiny_env):
    twin = LRScheduleEnv(preset="tiny")
    for env in (tiny_env, twin):
        env.reset(seed=6)
        env.step(1)
    state = tiny_env.state_dict()
    name = next(iter(state["trainer"]["model"]))
    state["trainer"]["model"][name] = torch.zeros(3)  # the wrong shape
    with pytest.raises(RuntimeError, match="size mismatch"):
        tiny_env.load_state_dict(state)
    assert [tiny_env.step(0)[1] for _ in range(3)] == [twin.step(0)[1] for _ in range(3)]
