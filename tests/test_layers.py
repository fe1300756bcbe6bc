"""The package's import contracts (pyproject.toml, ``[tool.importlinter]``) hold: one-way
layers, no import cycle at any depth (type-only and deferred imports count), Gymnasium only
from the env up, Stable-Baselines3 only in ``qan_env.sb3``, no pickle in evaluation."""

from __future__ import annotations

from conftest import ROOT
from importlinter.cli import lint_imports


def test_the_import_contracts_hold():
    config = str(ROOT / "pyproject.toml")
    assert lint_imports(config_filename=config, no_cache=True, no_logo=True) == 0
