"""``agents/rllib_ppo.py`` on a local Ray cluster with two env runners (the ``rllib`` extra).

Ray's RLlib pins its own gymnasium, so this runs in an environment of its own (CI makes
one: ``.ci/run``); where Ray is not installed it is skipped, saying so.
"""

from __future__ import annotations

import csv
import json

import pytest
from conftest import run_script

pytest.importorskip(
    "ray.rllib", reason="Ray's RLlib is not installed: pip install -e '.[rllib]' (own venv)"
)


def rows(path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_ppo_trains_on_two_env_runners_and_resumes(tmp_path):
    args = ["agents/rllib_ppo.py", "--preset", "tiny", "--num-env-runners", "2"]
    result = run_script(*args, "--iterations", "2", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["agent"]["num_env_runners"] == 2 and config["env"]["epochs"] == 2
    episodes = rows(tmp_path / "episodes.csv")
    # the episodes were stepped on both remote runners, where qan_env was never imported
    assert {row["env_runner"] for row in episodes} == {"1", "2"}
    assert {row["iteration"] for row in episodes} == {"1", "2"}
    for row in episodes:
        assert 0.0 <= float(row["final_test_accuracy"]) <= 1.0 and int(row["length"]) >= 1
    iterations = rows(tmp_path / "iterations.csv")
    assert [int(row["iteration"]) for row in iterations] == [1, 2]
    assert int(iterations[1]["env_steps"]) > int(iterations[0]["env_steps"]) > 0
    assert (tmp_path / "checkpoint" / "rllib_checkpoint.json").is_file()
    # --resume goes on from the checkpoint: only the third iteration is trained
    result = run_script(*args, "--iterations", "3", "--output", str(tmp_path), "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming after iteration 2" in result.stdout
    assert [int(row["iteration"]) for row in rows(tmp_path / "iterations.csv")] == [1, 2, 3]
    assert {row["iteration"] for row in rows(tmp_path / "episodes.csv")} == {"1", "2", "3"}


@pytest.mark.slow
def test_a_bad_setting_is_refused_before_ray_starts(tmp_path):
    result = run_script(
        "agents/rllib_ppo.py",
        "--preset",
        "tiny",
        "--env",
        "epoch=3",
        "--output",
        str(tmp_path / "run"),
    )
    assert result.returncode != 0 and "did you mean epochs?" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
