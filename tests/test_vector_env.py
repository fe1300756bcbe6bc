"""The native vector env against Gymnasium's ``SyncVectorEnv`` of single envs."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import qan_env
from qan_env import LRScheduleEnv, LRScheduleVectorEnv
from qan_env.config import make_config
from qan_env.training.batched import train_together
from qan_env.training.run import build_trainer, load_device_data

gym.register_envs(qan_env)

TINY = "qan_env/LRSchedule-tiny-v0"
# Action 2 multiplies the lr by 100: three of them in a row make run 0 diverge.
SCALE = {"action_mode": "scale", "scale_factors": (0.5, 1.0, 100.0), "lr_max": 1000.0}


def drive(env, steps: int = 24, seed: int = 0) -> list[tuple]:
    """A fixed scenario on 3 sub-envs: mixed actions, run 0 diverging at step 3 (and, with
    next-step autoreset, starting again), run 1 reset with seed 7 in the middle of its
    episode while the others go on, and episodes ending at different steps."""
    rng = np.random.default_rng(seed)
    results = [env.reset(seed=0)]
    for step in range(steps):
        if step == 6:
            mask = np.array([False, True, False])
            results.append(env.reset(seed=[None, 7, None], options={"reset_mask": mask}))
        actions = rng.integers(0, 2, env.num_envs)
        actions[0] = 2 if step < 3 else actions[0]
        results.append(env.step(actions))
    return results


def assert_infos_equal(native: dict, sync: dict, rtol: float = 0.0) -> None:
    assert native.keys() == sync.keys()
    for key, value in native.items():
        if isinstance(value, dict):
            assert_infos_equal(value, sync[key], rtol)
        elif value.dtype == object:  # final_obs: arrays or None
            for a, b in zip(value, sync[key], strict=True):
                assert (a is None) == (b is None)
                if a is not None:
                    np.testing.assert_allclose(a, b, rtol=rtol)
        elif value.dtype == bool:
            np.testing.assert_array_equal(value, sync[key], err_msg=key)
        else:
            np.testing.assert_allclose(value, sync[key], rtol=rtol, atol=rtol, err_msg=key)


def test_make_vec_returns_the_native_vector_env_with_batched_spaces():
    env = gym.make_vec(TINY, num_envs=3)
    assert isinstance(env, LRScheduleVectorEnv)
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    single = gym.make(TINY)
    assert env.single_observation_space == single.observation_space
    assert env.single_action_space == single.action_space
    assert env.observation_space.shape == (3, *single.observation_space.shape)
    assert env.action_space == gym.spaces.MultiDiscrete([2, 2, 2])
    assert not env.batched  # "auto" on the CPU: the runs one after the other
    observations, infos = env.reset(seed=0)
    assert observations.shape == (3, 193) and observations.dtype == np.float32
    assert infos["lr"].shape == (3,) and infos["_lr"].all()
    assert len({id(sub_env.data) for sub_env in env.envs}) == 1  # one copy of the data
    env.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_each_sub_env_is_the_single_env_bit_for_bit(mode):
    native = gym.make_vec(TINY, num_envs=3, batched=False, autoreset_mode=mode, **SCALE)
    sync = gym.make_vec(
        TINY, 3, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, **SCALE
    )
    results = drive(native)
    for ours, theirs in zip(results, drive(sync), strict=True):
        for a, b in zip(ours[:-1], theirs[:-1], strict=True):
            np.testing.assert_array_equal(a, b)
        assert_infos_equal(ours[-1], theirs[-1])
    # the scenario is what it says: run 0 diverges at its third step, the others go on ...
    info = results[3][4]
    info = info["final_info"] if mode == AutoresetMode.SAME_STEP else info
    assert info["diverged"].tolist() == [True, False, False]
    assert results[3][2].tolist() == [True, False, False]
    # ... and every run ends an episode, run 1 later than the others (reset at step 6)
    ends = np.array([r[2] for r in results if len(r) == 5])
    assert ends[:, 1].nonzero()[0][0] > max(ends[:, 0].nonzero()[0][1], ends[:, 2].argmax())


@pytest.mark.slow
def test_batched_training_matches_the_single_env_within_float_rounding():
    """Rounding of another summation order grows as training goes on, and the higher
    moments of the paper's weight statistics magnify it, so this compares the training
    observation (signals of the loss, gradient and lr) with losses, rewards and flags."""
    native = gym.make_vec(TINY, num_envs=3, batched=True, observation="training", **SCALE)
    sync = gym.make_vec(TINY, 3, vectorization_mode="sync", observation="training", **SCALE)
    assert native.batched
    for ours, theirs in zip(drive(native), drive(sync), strict=True):
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-3, atol=2e-3)
        if len(ours) == 5:
            np.testing.assert_array_equal(ours[2], theirs[2])  # terminated
            np.testing.assert_array_equal(ours[4]["diverged"], theirs[4]["diverged"])
            running = ~ours[4]["diverged"]
            np.testing.assert_allclose(ours[1][running], theirs[1][running], atol=1e-4)
            loss, their_loss = ours[4]["train_loss"][running], theirs[4]["train_loss"][running]
            np.testing.assert_allclose(loss, their_loss, rtol=1e-3)


def test_train_together_equals_separate_training_and_leaves_each_run_whole():
    config = make_config("tiny")
    data = load_device_data(config)
    separate = [build_trainer(config, data, np.random.default_rng(s)) for s in range(3)]
    together = [build_trainer(config, data, np.random.default_rng(s)) for s in range(3)]
    lrs = [0.1, 0.05, 0.02]
    expected = torch.stack(
        [trainer.train(3, lr) for trainer, lr in zip(separate, lrs, strict=True)]
    )
    losses = train_together(together, 3, lrs)
    torch.testing.assert_close(losses, expected, rtol=1e-4, atol=1e-5)
    for a, b in zip(separate, together, strict=True):
        assert b.iteration == a.iteration == 3
        # the grouped convolution sums in another order: at 2 threads the batch-norm
        # biases differ by about 1e-5 after 3 steps; another run's lr moves them by 1e-3
        torch.testing.assert_close(b.model.state_dict(), a.model.state_dict(), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(b.gradient_norm(), a.gradient_norm(), rtol=1e-4, atol=0)
        momenta = [b.optimizer.state[p]["momentum_buffer"] for p in b.model.parameters()]
        assert all(m.shape == p.shape for m, p in zip(momenta, b.model.parameters(), strict=True))
        # each run continues on its own, its own optimizer carrying the batched momentum
        torch.testing.assert_close(b.train(1, 0.1), a.train(1, 0.1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("options", "tolerance"),
    [
        ({"channels_last": True}, 1e-4),
        ({"precision": "bf16"}, 1e-2),
        ({"momentum": 0.0, "nesterov": False}, 1e-4),
        ({"nesterov": False, "weight_decay": 0.0}, 1e-4),
    ],
)
@pytest.mark.filterwarnings("error:There is a performance drop")  # vmap's slow fallback
def test_train_together_covers_the_training_options(options, tolerance):
    config = make_config("tiny", **options)
    data = load_device_data(config)
    separate = [build_trainer(config, data, np.random.default_rng(s)) for s in range(2)]
    together = [build_trainer(config, data, np.random.default_rng(s)) for s in range(2)]
    expected = torch.stack([trainer.train(3, 0.05) for trainer in separate])
    losses = train_together(together, 3, [0.05, 0.05])
    torch.testing.assert_close(losses, expected, rtol=tolerance, atol=tolerance)


def test_train_together_refuses_what_it_cannot_do():
    config = make_config("tiny", dropout=0.3)
    data = load_device_data(config)
    trainers = [build_trainer(config, data, np.random.default_rng(s)) for s in range(2)]
    with pytest.raises(ValueError, match="dropout"):
        train_together(trainers, 1, [0.1, 0.1])
    plain = make_config("tiny")
    trainers = [build_trainer(plain, data, np.random.default_rng(s)) for s in range(2)]
    with pytest.raises(ValueError, match="1 learning rates were given for 2 runs"):
        train_together(trainers, 1, [0.1])
    with pytest.raises(ValueError, match="iterations=0 is not allowed"):
        train_together(trainers, 0, [0.1, 0.1])
    # the vector env trains runs with dropout one after the other instead
    env = gym.make_vec(TINY, num_envs=2, batched=True, dropout=0.3)
    env.reset(seed=0)
    assert env.step(np.array([0, 1]))[4]["iteration"].tolist() == [1, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_envs": 0}, "num_envs=0 is not allowed"),
        ({"num_envs": True}, "num_envs=True is not allowed"),
        ({"batched": "yes"}, "batched='yes' is not allowed: one of"),
        ({"autoreset_mode": "disabled"}, "next_step or same_step"),
        ({"epochs": -1}, "epochs"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LRScheduleVectorEnv(**{"num_envs": 2, "preset": "tiny", **kwargs})


def test_bad_actions_and_masks_are_refused_before_anything_trains():
    env = LRScheduleVectorEnv(2, preset="tiny")
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.array([0, 0]))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="an array of 2 actions"):
        env.step(np.array([0]))
    with pytest.raises(
        ValueError, match=r"actions\[1\]: action .*5.* is not valid: allowed are 0 \(decay\)"
    ):
        env.step(np.array([0, 5]))
    assert [sub_env.episode.trainer.iteration for sub_env in env.envs] == [0, 0]
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": [True, False]})
    with pytest.raises(ValueError, match="a list of 2 ints >= 0 or None"):
        env.reset(seed=[1, 2, 3])
    env.step(np.array([0, 0]))
    for seed in ([5, -1], -1, [5, 1.5], [True, 2]):
        with pytest.raises(ValueError, match="seed="):
            env.reset(seed=seed)  # refused before sub-env 0 restarts
        assert [sub_env.episode.trainer.iteration for sub_env in env.envs] != [0, 0]
    observations, _ = env.reset(seed=np.array([7, 8]))  # numpy seeds are seeds
    again, _ = LRScheduleVectorEnv(2, preset="tiny").reset(seed=[7, 8])
    np.testing.assert_array_equal(observations, again)


@pytest.mark.slow
def test_the_sb3_adapter_equals_sb3s_own_vec_env_of_single_envs():
    from stable_baselines3 import DQN
    from stable_baselines3.common.vec_env import DummyVecEnv

    from qan_env.sb3 import SB3VectorEnv

    ours = SB3VectorEnv(3, preset="tiny", **SCALE)
    theirs = DummyVecEnv([lambda: gym.make(TINY, **SCALE) for _ in range(3)])
    ours.seed(5)
    theirs.seed(5)
    np.testing.assert_array_equal(ours.reset(), theirs.reset())
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(40):  # episodes end at different steps, by divergence or budget
        actions = rng.integers(0, 3, 3)
        mine, sb3s = ours.step(actions), theirs.step(actions)
        for a, b in zip(mine[:3], sb3s[:3], strict=True):
            np.testing.assert_array_equal(a, b)
        for info, their_info in zip(mine[3], sb3s[3], strict=True):
            assert info.keys() == their_info.keys()
            for key, value in info.items():
                np.testing.assert_equal(value, their_info[key])
        ended += mine[2].sum()
    assert ended >= 6
    for info, their_info in zip(ours.reset_infos, theirs.reset_infos, strict=True):
        assert info == their_info
    assert ours.get_attr("steps_per_episode") == [16, 16, 16]
    model = DQN("MlpPolicy", SB3VectorEnv(2, preset="tiny"), learning_starts=4, seed=0)
    model.learn(20)  # SB3 counts a vector step as 2 steps, one transition of each sub-env
    assert model.num_timesteps >= 20 and model.replay_buffer.size() == model.num_timesteps // 2


def test_workers_spread_over_the_gpus_with_device_auto(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    devices = [gym.make(TINY, worker_index=i).unwrapped.device for i in range(5)]
    assert [str(device) for device in devices] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    # a chosen device stays chosen, and an index that is not one is refused
    assert LRScheduleEnv(preset="tiny", device="cuda:2", worker_index=0).config.device == "cuda:2"
    with pytest.raises(ValueError, match="worker_index=-1 is not allowed"):
        LRScheduleEnv(preset="tiny", worker_index=-1)


def test_vector_env_calls_reach_every_sub_env():
    env = LRScheduleVectorEnv(2, preset="tiny")
    assert env.get_attr("steps_per_episode") == (16, 16)
    assert env.call("action_names") == (("decay", "restart"),) * 2


@pytest.mark.slow
def test_the_readme_recipe_for_one_process_per_env_runs():
    make = [
        functools.partial(gym.make, "qan_env:qan_env/LRSchedule-tiny-v0", worker_index=i)
        for i in range(2)
    ]
    envs = gym.vector.AsyncVectorEnv(make, context="spawn")
    try:
        envs.reset(seed=0)
        observations, _, _, _, infos = envs.step(np.array([0, 1]))
        assert observations.shape == (2, 193) and infos["iteration"].tolist() == [1, 1]
        assert envs.get_attr("device") == (torch.device("cpu"),) * 2  # "auto" without CUDA
    finally:
        envs.close()


def test_gymnasiums_vector_wrappers_work_on_it():
    env = gym.make_vec(TINY, num_envs=2)
    env = gym.wrappers.vector.NormalizeObservation(env)
    env = gym.wrappers.vector.RecordEpisodeStatistics(env)
    env.reset(seed=0)
    for _ in range(16):  # a whole tiny episode
        observations, _, terminated, _, info = env.step(np.array([0, 1]))
    assert terminated.all() and info["episode"]["l"].tolist() == [16, 16]
    assert np.abs(observations).max() < 10  # normalised
