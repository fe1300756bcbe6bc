"""The aggregate statistics on known numbers: normalised scores, rliable's IQM and
probability of improvement, and the iterations a run needs to reach a target."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qan_env.evaluation import EpisodeRecord
from qan_env.statistics import (
    iqm_with_interval,
    iterations_to_target,
    normalized,
    probability_of_improvement,
    score_matrix,
    speed_ups,
)


def record(policy, instance, seed, accuracies, epochs=None) -> EpisodeRecord:
    epochs = epochs or list(range(1, len(accuracies) + 1))
    return EpisodeRecord(policy, seed, instance, epochs=epochs, test_accuracy=list(accuracies))


def records() -> list[EpisodeRecord]:
    rows = []
    for instance, low, high in (("a", 0.5, 0.9), ("b", 0.2, 0.4)):
        for seed in (0, 1):
            rows.append(record("cosine", instance, seed, [low]))
            rows.append(record("oracle", instance, seed, [high]))
    rows += [
        record("policy", "a", 0, [0.7]),
        record("policy", "a", 1, [0.8]),
        record("policy", "b", 0, [0.4]),
        record("policy", "b", 1, [0.2]),
    ]
    return rows


def test_scores_are_normalised_per_instance_between_the_references():
    assert normalized(0.7, 0.5, 0.9) == pytest.approx(0.5)
    assert math.isnan(normalized(0.7, 0.5, 0.5))
    scores = score_matrix(records(), "policy", low="cosine", high="oracle")
    np.testing.assert_allclose(scores, [[0.5, 1.0], [0.75, 0.0]])  # seeds x instances
    np.testing.assert_allclose(score_matrix(records(), "oracle", "cosine", "oracle"), 1.0)


def test_iqm_and_probability_of_improvement_come_from_rliable_on_known_numbers():
    scores = {
        "even": np.arange(8, dtype=float).reshape(4, 2),  # 0..7: the middle half is 2..5
        "better": np.arange(8, dtype=float).reshape(4, 2) + 10,
    }
    iqm = iqm_with_interval(scores)
    assert iqm["even"][0] == pytest.approx(3.5) and iqm["better"][0] == pytest.approx(13.5)
    assert iqm["even"][1] <= 3.5 <= iqm["even"][2]
    improvement = probability_of_improvement(scores, "better", ["even"])
    assert improvement["even"] == pytest.approx((1.0, 1.0, 1.0))
    tie = probability_of_improvement({**scores, "same": scores["even"]}, "same", ["even"])
    assert tie["even"][0] == pytest.approx(0.5)


def test_iterations_to_target_and_the_speed_up():
    run = record("policy", "a", 0, [0.5, 0.7, 0.9])
    assert iterations_to_target(run, 0.7, per_epoch=10) == 20
    assert iterations_to_target(run, 0.95, per_epoch=10) == math.inf
    rows = [
        record("tuned", "a", 0, [0.3, 0.5, 0.6, 0.8]),  # its final 0.8, after 4 epochs
        record("policy", "a", 0, [0.6, 0.85, 0.9, 0.9]),  # there after 2
        record("tuned", "b", 0, [0.2, 0.4]),
        record("policy", "b", 0, [0.1, 0.3]),  # never
    ]
    assert speed_ups(rows, "policy", "tuned", {"a": 10, "b": 10}) == {"a": 2.0, "b": 0.0}


def test_intervals_are_the_same_numbers_on_every_call_and_leave_numpy_as_they_found_it():
    # rliable resamples with NumPy's global generator: without a seed the intervals of a
    # page rendered twice would differ in the second digit.
    scores = {"a": np.random.default_rng(0).normal(size=(3, 10))}
    first = iqm_with_interval(scores)
    np.random.seed(123)  # noqa: NPY002 (the global generator rliable draws from)
    before = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    assert iqm_with_interval(scores) == first
    assert np.random.random() == before  # noqa: NPY002
    pairs = {"a": scores["a"], "b": scores["a"] + 0.1}
    assert probability_of_improvement(pairs, "b", ["a"]) == probability_of_improvement(
        pairs, "b", ["a"]
    )
