"""Stable-Baselines3 drives the env, and the agent script runs end to end on ``tiny``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import numpy as np
from conftest import ROOT, run_script
from stable_baselines3 import DQN

from qan_env import LRScheduleEnv


def test_sb3_dqn_learns_on_tiny_and_is_told_when_episodes_end():
    env = LRScheduleEnv(preset="tiny")
    steps_per_episode = env.total_iterations
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


def test_agent_script_trains_two_tiny_episodes_and_writes_its_outputs(tmp_path):
    args = ["--preset", "tiny", "--episodes", "2", "--output", str(tmp_path)]
    result = run_script("agents/sb3_dqn.py", *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "preset: tiny (device: cpu)"
    for name in ("model.zip", "vecnormalize.pkl", "steps.csv", "summary.json"):
        assert (tmp_path / name).is_file(), name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["env_overrides"] == {} and len(summary["episodes"]) == 2
    with open(tmp_path / "steps.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == summary["steps"] == 2 * 16
    # Each episode's logged rewards add up to the return reported for it.
    for episode in summary["episodes"]:
        rewards = [float(r["reward"]) for r in rows if int(r["episode"]) == episode["episode"]]
        assert np.isclose(sum(rewards), episode["return"])


def test_resume_after_an_interrupted_run_continues_from_the_checkpoint(tmp_path):
    command = [
        sys.executable,
        "agents/sb3_dqn.py",
        "--preset",
        "tiny",
        "--episodes",
        "6",
        "--env",
        "epochs=2",
        "--output",
        str(tmp_path),
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state_file = tmp_path / "checkpoint" / "state.json"
    deadline = time.monotonic() + 240
    while not state_file.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.kill()  # interrupted part way through episode 2 (or later)
    process.wait()
    assert process.returncode != 0, "the run finished before it could be interrupted"
    checkpoint = json.loads(state_file.read_text())
    assert 1 <= len(checkpoint["episodes"]) < 6

    result = run_script(*command[1:], "--resume")
    assert result.returncode == 0, result.stderr
    assert f"resuming after episode {len(checkpoint['episodes']) - 1}" in result.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [e["episode"] for e in summary["episodes"]] == list(range(6))
    assert summary["episodes"][: len(checkpoint["episodes"])] == checkpoint["episodes"]
    assert summary["steps"] == 6 * 16
    with open(tmp_path / "steps.csv") as file:
        steps = [int(row["step"]) for row in csv.DictReader(file)]
    assert steps == list(range(1, 6 * 16 + 1))  # rows after the checkpoint were replaced
    assert DQN.load(tmp_path / "model.zip").num_timesteps == 6 * 16


def test_evaluate_runs_the_saved_model_greedily(tmp_path):
    run = run_script(
        "agents/sb3_dqn.py", "--preset", "tiny", "--episodes", "1", "--output", str(tmp_path)
    )
    assert run.returncode == 0, run.stderr
    result = run_script("agents/sb3_dqn.py", "--evaluate", str(tmp_path), "--eval-seeds", "4", "4")
    assert result.returncode == 0, result.stderr
    first, second = json.loads((tmp_path / "evaluation.json").read_text())
    assert first["seed"] == second["seed"] == 4
    assert first["actions"] == second["actions"] and len(first["actions"]) == 16
    assert "greedily (preset: tiny" in result.stdout.splitlines()[0]
