"""An ensemble of DQN runs acts on the mean of their Q-values; its folder is written only
from finished runs of one command and read as data (names, never paths)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import ROOT
from gymnasium import spaces
from stable_baselines3.dqn.policies import DQNPolicy
from test_agents import agent_module

from qan_env.run_folder import read_run_config
from qan_env.sb3 import SB3Policy
from qan_env.sb3.policy import ENSEMBLE_FILE, MAX_MEMBERS, QNetwork, write_ensemble

GENERAL = ROOT / "agents" / "pretrained" / "general"


def constant_network(q_values: list[float], inputs: int = 4) -> QNetwork:
    """A Q-network whose Q-values are ``q_values`` whatever it observes."""
    policy = DQNPolicy(
        spaces.Box(-np.inf, np.inf, (inputs,), np.float32),
        spaces.Discrete(len(q_values)),
        lr_schedule=lambda _: 0.0,
        net_arch=[8],
    )
    with torch.no_grad():
        for parameter in policy.parameters():
            parameter.zero_()
        policy.q_net.q_net[-1].bias.copy_(torch.tensor(q_values))
    return QNetwork(policy)


def test_an_ensemble_acts_on_the_mean_q_value_which_neither_member_prefers():
    first, second = constant_network([1.0, 0.0, 0.8]), constant_network([0.0, 1.0, 0.8])
    observation = np.zeros(4, np.float32)
    assert SB3Policy([first]).act(observation, 0) == 0
    assert SB3Policy([second]).act(observation, 0) == 1
    ensemble = SB3Policy([first, second])
    np.testing.assert_allclose(ensemble.q_values(observation[None]), [[0.5, 0.5, 0.8]])
    assert ensemble.act(observation, 0) == 2


def test_networks_of_another_input_size_or_action_count_do_not_make_one_policy():
    with pytest.raises(ValueError, match="one input size and action count"):
        SB3Policy([constant_network([0.0, 1.0]), constant_network([0.0, 1.0, 2.0])])
    with pytest.raises(ValueError, match="one input size and action count"):
        SB3Policy([constant_network([0.0, 1.0], 4), constant_network([0.0, 1.0], 5)])


def run_copy(tmp_path, name: str, **agent) -> object:
    """A copy of the shipped general run, its agent settings changed by ``agent``."""
    folder = tmp_path / name
    shutil.copytree(GENERAL, folder)
    config = json.loads((folder / "config.json").read_text())
    config["agent"].update(agent)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_an_ensemble_folder_loads_its_members_as_written(tmp_path):
    members = {"seed0": GENERAL, "seed7": run_copy(tmp_path, "other", seed=7)}
    write_ensemble(tmp_path / "ensemble", members, {"seed": 0})
    policy = SB3Policy.load(tmp_path / "ensemble")
    single = SB3Policy.load(GENERAL)
    assert len(policy.networks) == 2 and policy.note == ""
    assert read_run_config(tmp_path / "ensemble").env == read_run_config(GENERAL).env
    assert read_run_config(tmp_path / "ensemble" / "seed7").agent["seed"] == 7
    written = json.loads((tmp_path / "ensemble" / "config.json").read_text())
    assert written["computed_on"] is None  # it computed nothing: its members say what they ran on
    observations = np.random.default_rng(0).normal(size=(5, single.inputs)).astype(np.float32)
    np.testing.assert_allclose(policy.q_values(observations), single.q_values(observations))
    assert not (tmp_path / "ensemble" / "seed0" / "vecnormalize.pkl").exists()  # no pickle


@pytest.mark.parametrize(
    "listing",
    [
        "not json",
        json.dumps(["seed0"]),
        json.dumps({"members": []}),
        json.dumps({"members": ["../general"]}),
        json.dumps({"members": ["seed0", "seed0"]}),
        json.dumps({"members": [f"m{i}" for i in range(MAX_MEMBERS + 1)]}),
        json.dumps({"members": [3]}),
    ],
)
def test_an_ensemble_list_other_than_distinct_subfolder_names_is_refused(tmp_path, listing):
    write_ensemble(tmp_path / "ensemble", {"seed0": GENERAL}, {})
    (tmp_path / "ensemble" / ENSEMBLE_FILE).write_text(listing)
    with pytest.raises(ValueError, match="not an ensemble's list"):
        SB3Policy.load(tmp_path / "ensemble")


def test_a_member_that_is_a_link_or_missing_or_of_another_env_is_refused(tmp_path):
    folder = tmp_path / "ensemble"
    write_ensemble(folder, {"seed0": GENERAL}, {})
    (folder / ENSEMBLE_FILE).write_text(json.dumps({"members": ["seed0", "gone"]}))
    with pytest.raises(ValueError, match="'gone', which is not a subfolder"):
        SB3Policy.load(folder)
    (folder / "gone").symlink_to(GENERAL)
    with pytest.raises(ValueError, match="'gone', which is not a subfolder"):
        SB3Policy.load(folder)
    (folder / ENSEMBLE_FILE).write_text(json.dumps({"members": ["seed0"]}))
    config = json.loads((folder / "seed0" / "config.json").read_text())
    config["env"]["epochs"] = 3
    (folder / "seed0" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="ran on another env than its ensemble's"):
        SB3Policy.load(folder)


def test_an_ensemble_is_written_only_from_finished_runs_of_one_env_into_a_new_folder(tmp_path):
    unfinished = run_copy(tmp_path, "unfinished")
    (unfinished / "model.zip").unlink()
    with pytest.raises(ValueError, match="only finished runs join an ensemble"):
        write_ensemble(tmp_path / "a", {"seed0": GENERAL, "seed1": unfinished}, {})
    other = run_copy(tmp_path, "other")
    config = json.loads((other / "config.json").read_text())
    config["env"]["batch_size"] = 64
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="ran on another env"):
        write_ensemble(tmp_path / "b", {"seed0": GENERAL, "seed1": other}, {})
    with pytest.raises(ValueError, match="letters, digits"):
        write_ensemble(tmp_path / "c", {"../x": GENERAL}, {})
    assert not any((tmp_path / name).exists() for name in "abc")  # nothing written
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "kept.txt").write_text("a user's file")
    with pytest.raises(ValueError, match="not empty"):
        write_ensemble(tmp_path / "d", {"seed0": GENERAL}, {})
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["kept.txt"]


def test_the_agent_joins_runs_of_one_command_seeds_apart_and_refuses_others(tmp_path):
    agent = agent_module()
    seven = run_copy(tmp_path, "seven", seed=7)
    output = tmp_path / "ensemble"
    agent.build_ensemble(agent.Args(ensemble=(GENERAL, seven), output=output))
    saved = read_run_config(output)
    shipped = f"seed{read_run_config(GENERAL).agent['seed']}"
    assert json.loads((output / ENSEMBLE_FILE).read_text()) == {"members": [shipped, "seed7"]}
    assert saved.agent["output"] == str(output)
    assert saved.agent["episodes"] == read_run_config(GENERAL).agent["episodes"]
    # today's command, without the --env flags the shipped run needed before they were the
    # set's: the same env, so the same command
    command = {"instances": "general", "preset": "quick", "episodes": 400, "seed": 9}
    today = run_copy(tmp_path, "today", **{**agent.resumed_settings(agent.Args()), **command})
    agent.build_ensemble(agent.Args(ensemble=(GENERAL, today), output=tmp_path / "new"))
    assert json.loads((tmp_path / "new" / ENSEMBLE_FILE).read_text())["members"][1] == "seed9"
    faster = run_copy(tmp_path, "faster", seed=8, learning_rate=1e-3)
    with pytest.raises(SystemExit, match="another --learning-rate than"):
        agent.build_ensemble(agent.Args(ensemble=(GENERAL, faster), output=tmp_path / "x"))
    with pytest.raises(SystemExit, match=f"both ran {shipped}"):
        agent.build_ensemble(agent.Args(ensemble=(GENERAL, GENERAL), output=tmp_path / "y"))
    with pytest.raises(SystemExit, match="needs --output"):
        agent.build_ensemble(agent.Args(ensemble=(GENERAL, seven)))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
