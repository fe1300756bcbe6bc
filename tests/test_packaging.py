"""The core package needs only its core dependencies; the extras carry the rest."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
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


@pytest.mark.slow
def test_an_episode_runs_without_any_extra():
    result = run_script("-c", EPISODE_WITHOUT_EXTRAS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "finished 16"


def requirement_names(requirements: list[str]) -> set[str]:
    """Distribution names of pyproject requirements: ``"torch>=2.4"`` -> ``"torch"``."""
    names = set()
    for requirement in requirements:
        name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
        names.add(name.lower().replace("_", "-"))
    return names


def imported_distributions(paths: list[Path]) -> dict[str, set[str]]:
    """The distributions whose modules ``paths`` import (anywhere in a file), and by whom;
    the standard library, qan_env and the repository's own helper modules left out."""
    local = {path.stem for path in ROOT.glob("*/*.py")}
    distributions = importlib.metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "qan_env" or top in local:
                    continue
                for name in distributions.get(top, [top]):
                    found.setdefault(name.lower().replace("_", "-"), set()).add(path.name)
    return found


def test_every_package_the_code_imports_is_declared():
    """What CI installs (``.[test]``; RLlib's script: ``.[rllib]``) is what the code imports:
    an undeclared import would pass here, where it is installed, and fail on a fresh one."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    core = requirement_names(project["dependencies"])
    tested = core | set().union(*(requirement_names(extras[e]) for e in extras if e != "rllib"))
    code = [*ROOT.glob("qan_env/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("examples/*.py")]
    code += [*ROOT.glob("benchmarks/*.py"), *ROOT.glob("docs/**/*.py"), ROOT / "agents/sb3_dqn.py"]
    undeclared = {
        name: users for name, users in imported_distributions(code).items() if name not in tested
    }
    assert not undeclared, f"imported but in no dependency list of pyproject.toml: {undeclared}"
    rllib = imported_distributions([ROOT / "agents" / "rllib_ppo.py"])
    assert set(rllib) <= core | requirement_names(extras["rllib"]), rllib


@pytest.mark.slow
def test_ci_runs_the_two_commands_of_the_readme():
    result = subprocess.run(
        [str(ROOT / ".ci" / "readme_commands")], capture_output=True, text=True, check=True
    )
    main, tests = result.stdout.splitlines()
    assert main.startswith("python -m venv") and "python agents/sb3_dqn.py --preset quick" in main
    assert tests.startswith("python -m venv") and tests.endswith("python -m pytest")
    assert 'pip install -e ".[test]"' in tests
