"""Stable-Baselines3 drives the env, and the agent script runs end to end on ``tiny``."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import pathlib
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import ROOT, run_script
from stable_baselines3 import DQN
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize

import qan_env
import qan_env.instances
from qan_env import LRScheduleEnv, make_config
from qan_env.config import PRESETS, with_overrides
from qan_env.evaluation import HELD_OUT_SEEDS
from qan_env.run_folder import read_run_config
from qan_env.sb3 import SB3Policy
from qan_env.sb3.callbacks import CSV_COLUMNS, truncate_csv
from qan_env.sb3.checkpoint import recover_checkpoint
from qan_env.sb3.policy import policy_weights


def agent_module():
    """``agents/sb3_dqn.py`` imported as a module, to call its parts in this process."""
    spec = importlib.util.spec_from_file_location("sb3_dqn", ROOT / "agents" / "sb3_dqn.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_sb3_dqn_learns_on_tiny_and_is_told_when_episodes_end():
    env = LRScheduleEnv(preset="tiny")
    steps_per_episode = env.steps_per_episode
    model = DQN(
        "MlpPolicy",
        env,
        learning_starts=8,
        buffer_size=100,
        batch_size=8,
        train_freq=1,
        target_update_interval=10,
        seed=0,
        device="cpu",
    )
    model.learn(total_timesteps=steps_per_episode + 8)
    buffer = model.replay_buffer
    assert model.num_timesteps == buffer.size() == steps_per_episode + 8
    dones = buffer.dones[: buffer.size(), 0]
    # Exactly the last step of the first episode is terminal (eq. 4: no bootstrap there).
    assert np.flatnonzero(dones).tolist() == [steps_per_episode - 1]
    assert buffer.observations.dtype == np.float32  # states are stored as floats, whole
    assert model._n_updates > 0
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(int(action))


@pytest.mark.slow
def test_agent_script_trains_two_tiny_episodes_and_writes_its_outputs(tmp_path):
    args = ["--preset", "tiny", "--output", str(tmp_path)]  # the default configuration
    result = run_script("agents/sb3_dqn.py", *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "preset: tiny (device: cpu)"
    # Not a terminal: the progress bar comes as whole lines of a fixed width, for a log.
    assert "\r" not in result.stderr
    bar = [line for line in result.stderr.splitlines() if re.match(r"\s*\d+%\|", line)]
    assert bar[-1].startswith("100%|") and all(len(line) <= 120 for line in bar)
    written = ("config.json", "model.zip", "vecnormalize.pkl", "normalization.json")
    for name in (*written, "steps.csv", "summary.json"):
        assert (tmp_path / name).is_file(), name
    config = json.loads((tmp_path / "config.json").read_text())
    agent = agent_module()
    expected = agent.env_config(agent.Args(preset="tiny"))  # the learning MDP by default
    assert config["env"] == expected.to_dict()  # every field, resolved
    assert config["agent"]["preset"] == "tiny" and config["agent"]["gamma"] == 1.0
    assert config["version"] == qan_env.__version__
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["episodes"]) == agent.DEFAULT_EPISODES["tiny"] == 2
    with open(tmp_path / "steps.csv", newline="") as file:
        text = file.read()
    assert "\r" not in text
    for cell in (cell for line in text.splitlines()[1:] for cell in line.split(",") if cell):
        digits = cell.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
        assert len(digits) <= 7 and cell != "-0", cell  # float32 precision, no -0.0
    with open(tmp_path / "steps.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == summary["steps"] == 2 * expected.steps_per_episode
    # Each episode's logged rewards add up to the return reported for it.
    for episode in summary["episodes"]:
        rewards = [float(r["reward"]) for r in rows if int(r["episode"]) == episode["episode"]]
        assert np.isclose(sum(rewards), episode["return"])


@pytest.mark.slow
@pytest.mark.parametrize("vectorization", ["native", "subprocess"])
def test_agent_script_trains_on_two_envs_at_once(tmp_path, vectorization):
    args = ["--preset", "tiny", "--episodes", "4", "--output", str(tmp_path)]
    result = run_script(
        "agents/sb3_dqn.py", *args, "--n-envs", "2", "--vectorization", vectorization
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [episode["env"] for episode in summary["episodes"]] == [0, 1, 0, 1]
    with open(tmp_path / "steps.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["step"]) for row in rows] == list(range(1, summary["steps"] + 1))
    assert {row["env"] for row in rows} == {"0", "1"}
    # (env, its episode number) names an episode's rows; its rewards add up to its return
    for episode in summary["episodes"]:
        rewards = [
            float(r["reward"])
            for r in rows
            if (int(r["env"]), int(r["episode"])) == (episode["env"], episode["env_episode"])
        ]
        assert len(rewards) >= 1 and np.isclose(sum(rewards), episode["return"])
    assert json.loads((tmp_path / "config.json").read_text())["agent"]["n_envs"] == 2


@pytest.mark.slow
def test_agent_script_trains_one_policy_across_an_instance_set(tmp_path):
    result = run_script(
        "agents/sb3_dqn.py",
        "--instances",
        "tiny",
        "--episodes",
        "4",
        "--output",
        str(tmp_path),
        "--env",
        "label_noise_max=0.5",
    )
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["env"]["instances"] == "tiny:train" and config["agent"]["instances"] == "tiny"
    names = {i.name for i in qan_env.instances.INSTANCE_SETS["tiny"].train}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["episodes"]) == 4
    assert {e["instance"] for e in summary["episodes"]} <= names
    noise = [e["label_noise"] for e in summary["episodes"]]  # each run's own draw
    assert all(0.0 <= share < 0.5 for share in noise) and len(set(noise)) == 4
    with open(tmp_path / "steps.csv") as file:
        rows = list(csv.DictReader(file))
    for episode in summary["episodes"]:  # every row names its episode's instance
        assert {r["instance"] for r in rows if int(r["episode"]) == episode["episode"]} == {
            episode["instance"]
        }


RESUMABLE_RUN = ["agents/sb3_dqn.py", "--preset", "tiny", "--episodes", "6", "--mdp", "paper"]


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory):
    """Six tiny episodes (96 steps), run straight through: what a resumed run must equal."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    result = run_script(*RESUMABLE_RUN, "--output", str(folder))
    assert result.returncode == 0, result.stderr
    return folder


@pytest.mark.slow
def test_a_run_with_reward_normalisation_resumed_mid_episode_equals_an_uninterrupted_one(
    tmp_path,
):
    extra = ["--normalize-reward", "--checkpoint-steps", "5"]
    whole = tmp_path / "whole"
    assert run_script(*RESUMABLE_RUN, "--output", str(whole), *extra).returncode == 0
    folder = tmp_path / "run"

    def mid_episode(f):
        state = checkpoint_state(f)
        return state["steps"] >= 20 and "episode_in_progress" in state

    kill_when(folder, mid_episode, *extra)
    result = run_script(*RESUMABLE_RUN, "--output", str(folder), "--resume", *extra)
    assert result.returncode == 0 and "resuming inside episode" in result.stdout, result.stderr
    for name in ("steps.csv", "summary.json"):
        assert (folder / name).read_text() == (whole / name).read_text(), name
    # the running returns were put back: the reward statistics, so the Q-network, are equal
    resumed, straight = (policy_weights(f / "model.zip") for f in (folder, whole))
    assert all(torch.equal(resumed[name], straight[name]) for name in straight)


@pytest.fixture(scope="module")
def uninterrupted_two_env_run(tmp_path_factory):
    """The same on two envs at once (48 steps of each)."""
    folder = tmp_path_factory.mktemp("uninterrupted_two")
    result = run_script(*RESUMABLE_RUN, "--n-envs", "2", "--output", str(folder))
    assert result.returncode == 0, result.stderr
    return folder


def kill_when(folder, ready, *extra: str) -> None:
    """Start the run, SIGKILL it as soon as ``ready(folder)`` holds (polled every ms)."""
    process = subprocess.Popen(
        [sys.executable, *RESUMABLE_RUN, "--output", str(folder), *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not ready(folder) and process.poll() is None:
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if process.returncode == 0:
        pytest.skip("the run ended before the moment to kill it came (a very fast machine)")


def checkpoint_state(folder) -> dict:
    try:
        return json.loads((folder / "checkpoint" / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"steps": 0, "episodes": []}


def episodes_checkpointed(folder) -> int:
    return len(checkpoint_state(folder)["episodes"])


@pytest.mark.parametrize(
    "moment",
    [
        "after the first checkpoint",
        "after the third checkpoint",
        "inside a checkpoint write",
        "after a checkpoint inside an episode",
    ],
)
@pytest.mark.slow
def test_a_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path, uninterrupted_run, moment):
    folder = tmp_path / "run"
    extra = []
    if moment == "after a checkpoint inside an episode":
        extra = ["--checkpoint-steps", "5"]  # 5, 10, ... : inside 16-step episodes

        def mid_episode(f):
            return checkpoint_state(f)["steps"] >= 20 and "episode_in_progress" in checkpoint_state(
                f
            )

        kill_when(folder, mid_episode, *extra)
    elif moment == "inside a checkpoint write":
        kill_when(
            folder, lambda f: episodes_checkpointed(f) >= 1 and (f / "checkpoint.partial").exists()
        )
    else:
        kill_when(folder, lambda f: episodes_checkpointed(f) >= (3 if "third" in moment else 1))
    result = run_script(*RESUMABLE_RUN, "--output", str(folder), "--resume", *extra)
    assert result.returncode == 0, result.stderr
    assert (
        "resuming inside episode" in result.stdout if extra else "resuming after" in result.stdout
    )
    for name in ("steps.csv", "summary.json"):  # the same rows, returns and accuracies
        assert (folder / name).read_text() == (uninterrupted_run / name).read_text(), name
    assert DQN.load(folder / "model.zip").num_timesteps == 96


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A one-episode run on ``tiny`` with the paper's MDP (16 steps), shared by the tests."""
    folder = tmp_path_factory.mktemp("tiny_run")
    args = ["--preset", "tiny", "--mdp", "paper", "--episodes", "1", "--output", str(folder)]
    run = run_script("agents/sb3_dqn.py", *args)
    assert run.returncode == 0, run.stderr
    return folder


@pytest.mark.slow
def test_evaluate_runs_the_saved_model_greedily(tiny_run):
    result = run_script("agents/sb3_dqn.py", "--evaluate", str(tiny_run), "--eval-seeds", "4", "4")
    assert result.returncode == 0, result.stderr
    first, second = json.loads((tiny_run / "evaluation.json").read_text())
    assert first["seed"] == second["seed"] == 4
    assert first["actions"] == second["actions"] and len(first["actions"]) == 16
    assert "greedily (preset: tiny" in result.stdout.splitlines()[0]
    assert "note: preset" not in result.stdout  # nothing changed since the run


@pytest.mark.slow
def test_a_frame_stacked_run_is_loaded_with_sb3_s_own_stack_and_normalisation(tmp_path):
    """A run trained on several observations a state: the loaded policy (no pickle) sees
    the stack SB3's VecFrameStack builds, normalised as its VecNormalize does, and gets the
    Q-values SB3's own model gets, step by step through a greedy episode."""
    args = ["--preset", "tiny", "--episodes", "2", "--frame-stack", "3", "--output", str(tmp_path)]
    result = run_script("agents/sb3_dqn.py", *args)
    assert result.returncode == 0, result.stderr
    config = read_run_config(tmp_path).env
    stacked = VecFrameStack(DummyVecEnv([lambda: LRScheduleEnv(config=config)]), n_stack=3)
    sb3_env = VecNormalize.load(str(tmp_path / "vecnormalize.pkl"), stacked)  # a trusted pickle
    sb3_env.training = False
    model = DQN.load(tmp_path / "model.zip", device="cpu")
    policy = SB3Policy.load(tmp_path)
    env = LRScheduleEnv(config=config)
    sb3_env.seed(7)
    sb3_observation = sb3_env.reset()
    observation, _ = env.reset(seed=7)
    policy.reset(7)
    for _ in range(config.steps_per_episode):
        ours = policy.q_values(policy.stack(observation))
        assert ours.shape == (1, env.action_space.n)
        with torch.no_grad():
            theirs = model.q_net(torch.as_tensor(sb3_observation)).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        action = int(theirs.argmax())
        sb3_observation, *_ = sb3_env.step(np.array([action]))
        observation, *_ = env.step(action)
    assert policy.inputs == 3 * env.observation_space.shape[0]


@pytest.mark.slow
def test_evaluate_into_a_folder_it_cannot_write_fails_before_any_episode(tiny_run, monkeypatch):
    agent = agent_module()

    def unwritable(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def never(*args, **kwargs):
        raise AssertionError("an episode ran before the folder was found unwritable")

    monkeypatch.setattr(agent, "evaluate", never)
    monkeypatch.setattr("tempfile.mkstemp", unwritable)
    with pytest.raises(SystemExit, match=r"--evaluate: .* cannot take the results \(Permission"):
        agent.run_evaluation(agent.Args(evaluate=tiny_run, eval_seeds=(5,)))


@pytest.mark.slow
def test_evaluate_uses_the_saved_config_when_the_preset_has_changed(tiny_run, monkeypatch, capsys):
    # The tiny preset changes after the run: one epoch (8 steps) where the run had two (16).
    monkeypatch.setitem(PRESETS, "tiny", make_config("tiny", epochs=1))
    agent = agent_module()
    agent.run_evaluation(agent.Args(evaluate=tiny_run, eval_seeds=(5,)))
    output = capsys.readouterr().out
    assert f"as saved in {tiny_run / 'config.json'}" in output
    assert "note: preset 'tiny' has changed since this run (epochs)" in output
    (record,) = json.loads((tiny_run / "evaluation.json").read_text())
    assert len(record["actions"]) == 16  # the saved two epochs, not today's one


@pytest.mark.slow
def test_evaluate_of_an_unfinished_run_uses_its_checkpoint_or_says_what_to_do(tiny_run, tmp_path):
    unfinished = tmp_path / "run"
    shutil.copytree(tiny_run, unfinished)
    for name in ("model.zip", "vecnormalize.pkl", "normalization.json", "summary.json"):  # killed
        (unfinished / name).unlink()
    result = run_script("agents/sb3_dqn.py", "--evaluate", str(unfinished), "--eval-seeds", "4")
    assert result.returncode == 0, result.stderr
    assert (
        f"note: {unfinished} is unfinished (no model.zip): evaluating its last checkpoint, "
        "after 1 episodes (16 steps)" in result.stdout
    )
    assert len(json.loads((unfinished / "evaluation.json").read_text())) == 1

    shutil.rmtree(unfinished / "checkpoint")
    result = run_script("agents/sb3_dqn.py", "--evaluate", str(unfinished))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"--evaluate: {unfinished} is unfinished and has no checkpoint yet" in result.stderr
    assert "--resume the run" in result.stderr


@pytest.mark.slow
def test_evaluate_refuses_a_folder_without_config_json(tmp_path):
    (tmp_path / "summary.json").write_text('{"preset": "tiny", "env_overrides": {}}')
    result = run_script("agents/sb3_dqn.py", "--evaluate", str(tmp_path))
    assert result.returncode != 0
    assert f"{tmp_path / 'config.json'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "epoch=5"], "--env: unknown setting(s) epoch (did you mean epochs?)"),
        (["--env", "depth=12"], "--env: depth=12 is not allowed: a Wide ResNet depth"),
        (["--seed", str(HELD_OUT_SEEDS[0])], "is a held-out evaluation seed"),
        (["--seed", str(HELD_OUT_SEEDS[0] - 1), "--n-envs", "2"], "--seed + i) is a held-out"),
        (["--n-envs", "0"], "--n-envs 0 is not allowed"),
        (["--episodes", "0"], "--episodes 0 is not allowed: a number >= 1"),
        (["--gamma", "2"], "--gamma 2 is not allowed: a number >= 0 and <= 1"),
        (["--final-epsilon", "5"], "--final-epsilon 5 is not allowed"),
        (["--batch-size", "0"], "--batch-size 0 is not allowed"),
        (["--hidden", "0"], "--hidden (0,) is not allowed"),
        (["--n-steps", "0"], "--n-steps 0 is not allowed"),
        (["--gradient-steps", "-1"], "--gradient-steps -1 is not allowed"),
        (["--learning-rate", "-1"], "--learning-rate -1 is not allowed: a number > 0"),
        (["--frame-stack", "0"], "--frame-stack 0 is not allowed"),
        (["--seed", "-1"], "--seed -1 is not allowed"),
    ],
)
@pytest.mark.slow
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, args, message):
    output = tmp_path / "run"
    result = run_script("agents/sb3_dqn.py", "--preset", "tiny", "--output", str(output), *args)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr and not output.exists()


@pytest.mark.slow
def test_a_run_folder_is_never_started_over_without_being_told(tiny_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(tiny_run, folder)
    before = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    args = ["agents/sb3_dqn.py", "--preset", "tiny", "--mdp", "paper", "--output", str(folder)]
    result = run_script(*args, "--episodes", "1")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "holds a run (config.json, steps.csv, checkpoint): --resume it" in result.stderr
    result = run_script(*args, "--episodes", "1", "--resume", "--gamma", "0.5")
    assert "--resume: " in result.stderr and "--gamma" in result.stderr
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == before


@pytest.mark.slow
def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path):
    from qan_env.run_folder import lock_run_folder

    held = lock_run_folder(tmp_path / "run")  # as a running agent holds it
    args = ["--preset", "tiny", "--episodes", "1", "--output", str(tmp_path / "run")]
    result = run_script("agents/sb3_dqn.py", *args)
    held.close()
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "is in use by another process" in result.stderr
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock"]


def test_dqn_settings_are_sized_from_the_episode_length():
    agent = agent_module()
    kwargs = agent.dqn_kwargs(agent.Args(episodes=10), steps_per_episode=400)
    assert kwargs["buffer_size"] == 4000  # the whole run
    assert kwargs["learning_starts"] == 64 and kwargs["target_update_interval"] == 80
    big = agent.dqn_kwargs(agent.Args(episodes=10), steps_per_episode=19_500)
    assert (big["learning_starts"], big["target_update_interval"]) == (1950, 3900)


PRETRAINED = ROOT / "agents" / "pretrained"
SHIPPED = {"quick": {"preset": "quick"}, "general": {"instances": "general"}}  # their flags


@pytest.mark.parametrize("name", SHIPPED)
def test_a_pretrained_policy_is_the_default_configuration_and_small(name):
    folder, agent = PRETRAINED / name, agent_module()
    run = read_run_config(folder)
    assert run.env == agent.env_config(agent.Args(**SHIPPED[name]))
    defaults = dataclasses.asdict(agent.Args())
    for setting in ("gamma", "n_steps", "frame_stack", "normalize_reward", "gradient_steps"):
        assert run.agent[setting] == defaults[setting], setting
    episodes = agent.DEFAULT_INSTANCE_EPISODES.get(SHIPPED[name].get("instances"))
    assert run.agent["episodes"] == (episodes or agent.DEFAULT_EPISODES["quick"])
    assert sum(path.stat().st_size for path in folder.rglob("*")) < 5 * 2**20  # members too


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_a_pretrained_policy_evaluates_without_training(tmp_path, name):
    folder = PRETRAINED / name
    result = run_script(
        "agents/sb3_dqn.py",
        "--evaluate",
        str(folder),
        "--env",
        "epochs=1",  # a tiny budget: the policy's env, one epoch long
        "--eval-seeds",
        "1000",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    (record,) = json.loads((tmp_path / "evaluation.json").read_text())
    env = LRScheduleEnv(config=with_overrides(read_run_config(folder).env, {"epochs": 1}))
    run = env.config_of(record["instance"]) if record["instance"] else env.config
    steps = run.steps_per_episode  # a general run's drawn instance sets its own
    assert record["seed"] == 1000 and not record["diverged"]
    assert len(record["actions"]) == steps
    assert 0.0 < record["final_test_accuracy"] <= 1.0
    assert not (folder / "evaluation.json").exists()  # the repo's folder is left alone


def make_checkpoint(folder, steps: int, complete: bool = True):
    folder.mkdir(parents=True)
    (folder / "model.zip").write_text(f"model at {steps}")
    if complete:
        (folder / "state.json").write_text(json.dumps({"steps": steps, "episodes": []}))
    return folder


@pytest.mark.parametrize(
    "moment, expected_steps",
    [
        ("side folder half written", 16),  # the previous checkpoint stays
        ("side folder complete, old one still in place", 32),
        ("old one moved aside, side folder not yet in place", 32),
        ("old one moved aside, side folder half written", 16),
    ],
)
def test_a_checkpoint_save_killed_at_any_moment_leaves_a_whole_checkpoint(
    tmp_path, moment, expected_steps
):
    checkpoint = tmp_path / "checkpoint"
    partial, old = tmp_path / "checkpoint.partial", tmp_path / "checkpoint.old"
    complete = "half written" not in moment
    make_checkpoint(partial, 32, complete=complete)
    make_checkpoint(old if "moved aside" in moment else checkpoint, 16)
    recover_checkpoint(checkpoint)
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["steps"] == expected_steps
    assert (checkpoint / "model.zip").read_text() == f"model at {expected_steps}"
    assert not partial.exists() and not old.exists()


def test_links_planted_beside_a_checkpoint_are_removed_never_followed(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "checkpoint", 16)
    elsewhere = make_checkpoint(tmp_path / "elsewhere", 99)
    (tmp_path / "checkpoint.partial").symlink_to(elsewhere)  # "complete", but a link
    (tmp_path / "checkpoint.old").symlink_to(elsewhere)
    recover_checkpoint(checkpoint)
    assert json.loads((checkpoint / "state.json").read_text())["steps"] == 16
    assert not (tmp_path / "checkpoint.partial").is_symlink()
    assert not (tmp_path / "checkpoint.old").is_symlink()
    assert (elsewhere / "model.zip").read_text() == "model at 99"  # untouched


def test_truncate_csv_drops_later_rows_and_a_half_written_one(tmp_path):
    path = tmp_path / "steps.csv"
    filler = ",".join(["0"] * (len(CSV_COLUMNS) - 1))
    rows = [",".join(CSV_COLUMNS)] + [f"{s},{filler}" for s in range(1, 7)]
    path.write_text("\n".join(rows) + "\n4")  # a kill cut the 7th row after "4"
    truncate_csv(path, steps=4)
    assert path.read_text().splitlines() == rows[:5]
    path.write_text("\n".join(rows[:3] + rows[4:]) + "\n")  # step 3 is missing
    with pytest.raises(ValueError, match="does not hold steps 1 to 4"):
        truncate_csv(path, steps=4)


class RunsCode:
    """Unpickling this writes a file: what a crafted pickle in a run folder could do."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.mark.slow
def test_evaluate_reads_no_pickle_and_refuses_an_older_folder_without_trust(tiny_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(tiny_run, folder)
    marker = tmp_path / "code_ran"
    (folder / "vecnormalize.pkl").write_bytes(pickle.dumps(RunsCode(marker)))
    result = run_script("agents/sb3_dqn.py", "--evaluate", str(folder), "--eval-seeds", "4")
    assert result.returncode == 0, result.stderr
    assert not marker.exists()  # the statistics came from normalization.json

    (folder / "normalization.json").unlink()  # as a folder of an older version
    result = run_script("agents/sb3_dqn.py", "--evaluate", str(folder), "--eval-seeds", "4")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "only in vecnormalize.pkl" in result.stderr and "--trust" in result.stderr
    assert not marker.exists()

    (first,) = json.loads((folder / "evaluation.json").read_text())
    shutil.copy(tiny_run / "vecnormalize.pkl", folder)  # a real one, from a trusted source
    result = run_script(
        "agents/sb3_dqn.py", "--evaluate", str(folder), "--eval-seeds", "4", "--trust"
    )
    assert result.returncode == 0, result.stderr
    (again,) = json.loads((folder / "evaluation.json").read_text())
    assert again["actions"] == first["actions"]  # the same statistics, read from the pickle


def plant_pickle(folder, name: str, marker) -> None:
    """A payload that writes ``marker`` when unpickled, in place of checkpoint file ``name``,
    in each form a loader could be fooled by."""
    path = folder / "checkpoint" / name
    if name == "agent.pt":  # a torch file whose entries are not tensors
        torch.save({"policy": RunsCode(marker), "optimizer": {}}, path)
    elif name == "replay_buffer.npz":  # the right arrays, one of them an object array
        with np.load(path) as arrays:
            arrays = dict(arrays)
        arrays["rewards"] = np.array([RunsCode(marker)], dtype=object)
        np.savez(path, **arrays)
    else:  # a bare pickle under the name of an array file, or an older version's pickle
        path.write_bytes(pickle.dumps(RunsCode(marker)))


@pytest.mark.parametrize(
    "name", ["agent.pt", "replay_buffer.npz", "vecnormalize.npz", "vecnormalize.pkl"]
)
@pytest.mark.slow
def test_resume_loads_no_pickle_from_a_checkpoint(tiny_run, tmp_path, name):
    """A checkpoint is data: a planted pickle is refused (or, under an older version's
    name, never read), whatever checksums or files beside it say."""
    folder = tmp_path / "run"
    shutil.copytree(tiny_run, folder)
    marker = tmp_path / "code_ran"
    plant_pickle(folder, name, marker)
    args = ["--preset", "tiny", "--mdp", "paper", "--episodes", "1", "--output", str(folder)]
    result = run_script("agents/sb3_dqn.py", *args, "--resume")
    assert not marker.exists()
    if name == "vecnormalize.pkl":  # not a file this version reads: the resume goes on
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert f"--resume: {folder / 'checkpoint' / name}" in result.stderr


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_of_the_pickle_format(tiny_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(tiny_run, folder)
    (folder / "checkpoint" / "agent.pt").unlink()
    (folder / "checkpoint" / "model.zip").write_bytes(b"PK")
    args = ["--preset", "tiny", "--mdp", "paper", "--episodes", "1", "--output", str(folder)]
    result = run_script("agents/sb3_dqn.py", *args, "--resume")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "not a checkpoint of this version" in result.stderr and "model.zip" in result.stderr


@pytest.mark.slow
def test_a_killed_and_resumed_two_env_run_equals_an_uninterrupted_one(
    tmp_path, uninterrupted_two_env_run
):
    """With two envs every checkpoint is inside episodes: each env's is saved and loaded."""
    folder = tmp_path / "run"
    extra = ["--n-envs", "2", "--checkpoint-steps", "10"]  # also inside the 16-step episodes
    kill_when(folder, lambda f: checkpoint_state(f)["steps"] >= 30, *extra)
    assert {"env0.pt", "env1.pt"} <= {path.name for path in (folder / "checkpoint").iterdir()}
    result = run_script(*RESUMABLE_RUN, "--output", str(folder), "--resume", *extra)
    assert result.returncode == 0, result.stderr
    assert "resuming inside the 2 envs' episodes" in result.stdout
    for name in ("steps.csv", "summary.json"):
        assert (folder / name).read_text() == (uninterrupted_two_env_run / name).read_text(), name
    # resuming with another number of envs is refused
    result = run_script(*RESUMABLE_RUN, "--output", str(folder), "--resume")  # one env
    assert result.returncode != 0 and "ran with another --n-envs" in result.stderr
