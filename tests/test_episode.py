"""The per-run core without Gymnasium (``Episode``) is the env's MDP, and the observation
layout owns the names and the packing together."""

from __future__ import annotations

import numpy as np
import pytest

from qan_env import Episode, LRScheduleEnv, learning_mdp, make_config
from qan_env.episode import make_actions
from qan_env.observation import ObservationLayout
from qan_env.training.run import load_device_data


@pytest.mark.parametrize("mdp", [pytest.param("paper", marks=pytest.mark.slow), "learning"])
def test_an_episode_driven_directly_is_the_envs_episode_bit_for_bit(mdp):
    config = make_config("tiny")
    config = make_config("tiny", **(learning_mdp(config) if mdp == "learning" else {}))
    env = LRScheduleEnv(config=config)
    observation, info = env.reset(seed=3)
    episode = Episode(config, load_device_data(config), np.random.default_rng(3))
    own_observation, own_info = episode.start()
    np.testing.assert_array_equal(own_observation, observation)
    assert own_info == info
    step = 0
    while not episode.over:
        action = step % env.action_space.n
        observation, reward, terminated, _, info = env.step(action)
        result = episode.step(episode.action_lr(action), action)
        np.testing.assert_array_equal(result.observation, observation)
        assert (result.reward, result.terminated, result.info) == (reward, terminated, info)
        step += 1
    assert step == config.steps_per_episode
    with pytest.raises(RuntimeError, match="call reset"):
        episode.step(0.1, None)


@pytest.mark.parametrize("observation", ["paper", "training", "paper+training"])
def test_the_layout_names_every_entry_it_packs_in_order(observation):
    config = make_config("tiny", observation=observation, heldout_size=64)
    layout = ObservationLayout(config, make_actions(config))
    env = LRScheduleEnv(config=config)
    assert list(layout.names) == env.feature_names
    values = {
        block: np.arange(len(names)) + 1000 * i
        for i, (block, names) in enumerate(layout.blocks.items())
    }
    packed = layout.pack(values)
    assert packed.dtype == np.float32 and len(packed) == len(layout.names)
    start = 0
    for block, names in layout.blocks.items():  # each block's values under its own names
        np.testing.assert_array_equal(packed[start : start + len(names)], values[block])
        start += len(names)
    observed, _ = env.reset(seed=0)
    assert observed.shape == (len(layout),)


def test_the_layout_refuses_values_that_do_not_match_its_names():
    config = make_config("tiny", observation="paper+training")
    layout = ObservationLayout(config, make_actions(config))
    values = {block: np.zeros(len(names)) for block, names in layout.blocks.items()}
    with pytest.raises(ValueError, match="values for the 1 names of 'lr'"):
        layout.pack({**values, "lr": [0.1, 0.2]})
    with pytest.raises(ValueError, match="the layout has"):
        layout.pack({block: value for block, value in values.items() if block != "signals"})
