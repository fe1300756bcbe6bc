"""Every benchmark runs with ``--quick`` (this checks that they run, not their speed)."""

from __future__ import annotations

import pytest
from conftest import ROOT, run_script

BENCHMARKS = sorted(
    path for path in (ROOT / "benchmarks").glob("*.py") if "__main__" in path.read_text()
)


def test_there_are_benchmarks():
    names = {path.stem for path in BENCHMARKS}
    assert {"env_overhead", "features_cost", "data_pipeline", "gpu", "memory"} <= names


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.stem)
def test_benchmark_runs_quick_and_prints_its_ratio_last(script):
    result = run_script(str(script), "--quick")
    assert result.returncode == 0, result.stderr
    assert "ratio" in result.stdout.strip().splitlines()[-1]
