"""The examples run, made small with their flags."""

from __future__ import annotations

import json

import pytest
from conftest import run_script

pytestmark = pytest.mark.slow  # each runs an example as a user would, in a process


def test_quickstart():
    result = run_script("examples/quickstart.py", "--small")
    assert result.returncode == 0, result.stderr
    assert "observation: 193 numbers" in result.stdout
    assert "'test_accuracy'" in result.stdout.splitlines()[-1]
    assert "step  16: action 1" in result.stdout  # it restarts within tiny's 16 steps


def test_own_data_registers_arrays_and_runs_an_episode_on_them():
    result = run_script("examples/own_data.py", "--small")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "256 training images, 2 steps per episode"
    assert lines[1].startswith("cosine from 0.1: final test accuracy 0.")


def test_custom_agent_trains_and_acts_greedily():
    result = run_script("examples/custom_agent.py", "--small")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("episode 0: return") and lines[1].startswith("episode 1: return")
    assert lines[-1].startswith("greedy: restarts")


def test_compare_schedules_writes_the_table_and_figures(tmp_path):
    run = tmp_path / "run"
    trained = run_script(
        "agents/sb3_dqn.py", "--preset", "tiny", "--episodes", "1", "--output", str(run)
    )
    assert trained.returncode == 0, trained.stderr
    result = run_script("examples/compare_schedules.py", "--run", str(run), "--small")
    assert result.returncode == 0, result.stderr
    out = run / "comparison"  # the default: inside the run folder
    table = (out / "table.md").read_text().splitlines()
    names = [line.split(" | ")[0].lstrip("| ") for line in table[2:]]
    assert names == [
        "DQN (greedy)",
        "random",
        "constant 0.1",
        "WRN step",
        "cosine",
        "SGDR",
        "always decay",
        "cosine (tuned)",
        "DQN mean lr, open loop",
    ]
    cosine = table[2 + names.index("cosine")]
    assert "| +0.000 ± nan (0/1) |" in cosine  # its paired difference to itself
    dqn = table[2].split(" | ")
    assert cosine.split(" | ")[4] == dqn[2]  # the DQN - cosine difference, seen from both
    assert dqn[4] == "n/a"
    assert "final test accuracy (epoch 2)" in table[0] and "after epoch 1 |" in table[0]
    figures = ("final_accuracy", "test_accuracy", "lr_schedule", "actions")
    for figure in figures:
        assert (out / f"{figure}.png").stat().st_size > 10_000
    results = json.loads((out / "results.json").read_text())
    assert len(results["episodes"]) == len(names) and results["env_overrides"] == {"epochs": 2}
    assert results["episodes"][0]["epochs"] == [1, 2]  # two points on the accuracy plot
    assert (
        results["tuning"]["chosen_peak"] in (0.05, 0.1) and len(results["tuning"]["episodes"]) == 2
    )
    episode = results["episodes"][0]
    assert {"policy", "seed", "test_accuracy", "lrs", "actions", "diverged"} <= set(episode)
    replay = next(e for e in results["episodes"] if e["policy"] == "DQN mean lr, open loop")
    assert replay["lrs"] == episode["lrs"]  # one seed: the mean is the policy's own curve

    for name in ("table.md", *(f"{figure}.png" for figure in figures)):
        (out / name).unlink()
    result = run_script("examples/compare_schedules.py", "--replot", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "table.md").read_text().splitlines() == table  # redrawn, nothing rerun
    assert all((out / f"{figure}.png").is_file() for figure in figures)


def test_compare_schedules_refuses_a_bad_env_override_in_one_line(tmp_path):
    result = run_script(
        "examples/compare_schedules.py",
        "--run",
        "agents/pretrained/quick",
        "--env",
        "depth=12",
        "--output",
        str(tmp_path / "out"),
    )
    assert (
        result.returncode != 0 and "depth=12 is not allowed: a Wide ResNet depth" in result.stderr
    )
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
