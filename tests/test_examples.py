"""The examples run, made small with their flags."""

from __future__ import annotations

import json

from conftest import run_script


def test_quickstart():
    result = run_script("examples/quickstart.py", "--small")
    assert result.returncode == 0, result.stderr
    assert "observation: 193 numbers" in result.stdout
    assert "'test_accuracy'" in result.stdout.splitlines()[-1]


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
    result = run_script(
        "examples/compare_schedules.py",
        "--run",
        str(run),
        "--small",
        "--output",
        str(tmp_path / "out"),
    )
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "out" / "table.md").read_text().splitlines()
    assert len(table) == 2 + 8  # header, the greedy policy, random and 6 fixed schedules
    assert table[2].startswith("| DQN (greedy) |") and table[3].startswith("| random |")
    for figure in ("test_accuracy", "lr_schedule", "lr_zoom", "actions"):
        assert (tmp_path / "out" / f"{figure}.png").stat().st_size > 10_000
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(results["episodes"]) == 8 and results["env_overrides"] == {"epochs": 1}
