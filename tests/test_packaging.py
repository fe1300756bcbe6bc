"""The core package needs only its core dependencies; the extras carry the rest."""

from __future__ import annotations

import subprocess

import tomllib
from conftest import ROOT, run_script

EXTRAS_ONLY = (
    "stable_baselines3",
    "tqdm",
    "tensorboard",
    "tyro",
    "matplotlib",
    "scipy",
    "sklearn",
)

# Import qan_env and run a tiny episode, every extra-only package made unimportable.
EPISODE_WITHOUT_EXTRAS = f"""
import sys
for name in {EXTRAS_ONLY!r}:
    sys.modules[name] = None  # "import name" now raises ImportError
import gymnasium as gym
import qan_env
import qan_env.evaluation, qan_env.schedules, qan_env.run_folder
env = gym.make("qan_env/LRSchedule-tiny-v0")
env.reset(seed=0)
terminated = False
while not terminated:
    *_, terminated, _, info = env.step(0)
print("finished", info["iteration"])
"""


def test_an_episode_runs_without_any_extra():
    result = run_script("-c", EPISODE_WITHOUT_EXTRAS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "finished 16"


def test_the_extras_carry_the_agent_and_test_tools():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    extras = project["optional-dependencies"]
    for name in ("stable-baselines3", "tqdm", "tensorboard", "tyro", "matplotlib", "scipy"):
        assert name not in core
    assert any(name.startswith("stable-baselines3") for name in extras["agents"])
    assert "qan_env[agents,plot,digits]" in extras["test"]
    assert extras["digits"] == ["scikit-learn>=1.3"]  # the digits data set, no download


def test_ci_runs_the_two_commands_of_the_readme():
    result = subprocess.run(
        [str(ROOT / ".ci" / "readme_commands")], capture_output=True, text=True, check=True
    )
    main, tests = result.stdout.splitlines()
    assert main.startswith("python -m venv") and "python agents/sb3_dqn.py --preset quick" in main
    assert tests.startswith("python -m venv") and tests.endswith("python -m pytest")
    assert 'pip install -e ".[test]"' in tests
