"""Every benchmark runs with ``--quick``: it measures a ratio and leaves the committed results
alone. This checks what they compute, not the machine's speed."""

from __future__ import annotations

import math
import re

import pytest
from conftest import ROOT, run_script

BENCHMARKS = sorted(
    path for path in (ROOT / "benchmarks").glob("*.py") if "__main__" in path.read_text()
)
RESULTS = ROOT / "benchmarks" / "results"


def test_there_are_benchmarks():
    names = {path.stem for path in BENCHMARKS}
    assert {"env_overhead", "features_cost", "data_pipeline", "gpu", "memory"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.stem)
def test_a_quick_benchmark_measures_a_finite_ratio_and_writes_no_result(script):
    before = {path.name: path.read_bytes() for path in RESULTS.iterdir()}
    result = run_script(str(script), "--quick")
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]  # "what / what ratio[ at N=8]: 0.987 ..."
    found = re.search(r"\bratio\b[^:]*:\s*([-+0-9.e]+)", last)
    assert found, last
    ratio = float(found.group(1))
    assert math.isfinite(ratio) and ratio > 0, last
    assert {path.name: path.read_bytes() for path in RESULTS.iterdir()} == before
