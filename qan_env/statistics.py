"""Aggregate statistics of a comparison over the instances of a set, from ``rliable``.

Scores are final test accuracies normalised per instance: 0 is the cosine at the
instance's initial lr, 1 the cosine tuned on that instance (the oracle), both their means
over seeds. ``rliable`` gives the interquartile mean with stratified-bootstrap 95%
intervals, the probability of improvement of one policy over another (with its interval)
and performance profiles; a diverged run keeps its last accuracy (counted as a failure,
never dropped). ``iterations_to_target`` answers the paper's own question, how much sooner
a run reaches an accuracy.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from rliable import library as rly
from rliable import metrics

from qan_env.evaluation import EpisodeRecord

#: Bootstrap repetitions: enough for two-digit intervals, quick enough for every table.
BOOTSTRAP_REPS = 2000


def instances_of(records: Sequence[EpisodeRecord]) -> list[str]:
    return list(dict.fromkeys(record.instance for record in records))


def mean_final_accuracy(records: Sequence[EpisodeRecord], policy: str, instance: str) -> float:
    runs = [r.final_accuracy for r in records if r.policy == policy and r.instance == instance]
    if not runs:
        raise ValueError(f"no episode of {policy!r} on instance {instance!r}")
    return statistics.fmean(runs)


def normalized(accuracy: float, low: float, high: float) -> float:
    """``accuracy`` on the scale where ``low`` is 0 and ``high`` is 1 (NaN when they meet)."""
    return (accuracy - low) / (high - low) if high != low else math.nan


def score_matrix(records: Sequence[EpisodeRecord], policy: str, low: str, high: str) -> np.ndarray:
    """``policy``'s normalised scores, seeds x instances (rliable's runs x tasks, seeds in
    ascending order); the references ``low`` and ``high`` are policy names."""
    instances = instances_of(records)
    columns = []
    for instance in instances:
        zero = mean_final_accuracy(records, low, instance)
        one = mean_final_accuracy(records, high, instance)
        runs = sorted(
            (r for r in records if r.policy == policy and r.instance == instance),
            key=lambda r: r.seed,
        )
        columns.append([normalized(r.final_accuracy, zero, one) for r in runs])
    if len({len(column) for column in columns}) != 1:
        raise ValueError(f"{policy!r} has not run the same seeds on every instance")
    return np.array(columns, dtype=np.float64).T


@contextlib.contextmanager
def _bootstrap_seeded(seed: int) -> Iterator[None]:
    """NumPy's global generator seeded with ``seed`` for the block, then put back as it was.

    rliable's ``StratifiedBootstrap`` draws its resamples with ``np.random.choice``, the
    global generator, whatever ``random_state`` it is handed; seeding that generator is what
    makes an interval the same number on every run and every machine."""
    saved = np.random.get_state()  # noqa: NPY002 (the legacy generator is the one rliable uses)
    np.random.seed(seed)  # noqa: NPY002
    try:
        with warnings.catch_warnings():  # arch deprecates the RandomState rliable passes
            warnings.filterwarnings("ignore", message="random_state is deprecated")
            yield
    finally:
        np.random.set_state(saved)  # noqa: NPY002


def _estimates(
    score_dict: dict, func: Callable[..., float | np.ndarray], seed: int
) -> dict[str, tuple[float, float, float]]:
    """rliable's point estimate of ``func`` and its stratified-bootstrap 95% interval, per
    entry of ``score_dict``, the resamples drawn from ``seed``."""
    with _bootstrap_seeded(seed):
        point, interval = rly.get_interval_estimates(score_dict, func, reps=BOOTSTRAP_REPS)
    return {
        name: (
            float(np.ravel(point[name])[0]),
            float(np.ravel(interval[name][0])[0]),
            float(np.ravel(interval[name][1])[0]),
        )
        for name in score_dict
    }


def iqm_with_interval(
    scores: dict[str, np.ndarray], seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """Each policy's interquartile mean and its stratified-bootstrap 95% interval."""
    return _estimates(scores, lambda matrix: np.array([metrics.aggregate_iqm(matrix)]), seed)


def probability_of_improvement(
    scores: dict[str, np.ndarray], policy: str, others: Sequence[str], seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """P(``policy`` beats each of ``others`` on an instance), averaged over instances, with
    its stratified-bootstrap 95% interval."""
    pairs = {other: (scores[policy], scores[other]) for other in others}
    return _estimates(pairs, metrics.probability_of_improvement, seed)


def performance_profile(
    scores: dict[str, np.ndarray], taus: np.ndarray, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable's score distributions: the share of runs above each ``tau``, and intervals."""
    with _bootstrap_seeded(seed):
        return rly.create_performance_profile(scores, taus, reps=BOOTSTRAP_REPS)


def iterations_to_target(record: EpisodeRecord, target: float, per_epoch: int) -> float:
    """The iterations ``record``'s run needed to reach test accuracy ``target`` at an
    evaluated epoch's end; infinite when it never did."""
    for epoch, accuracy in zip(record.epochs, record.test_accuracy, strict=True):
        if accuracy >= target:
            return epoch * per_epoch
    return math.inf


def speed_ups(
    records: Sequence[EpisodeRecord],
    policy: str,
    reference: str,
    per_epoch: dict[str, int],
) -> dict[str, float]:
    """Per instance: the reference's iterations over ``policy``'s to reach the reference's
    mean final accuracy (the median over seeds of ``policy``'s iterations; above 1:
    ``policy`` gets there sooner; 0 when it never does)."""
    result = {}
    for instance in instances_of(records):
        target = mean_final_accuracy(records, reference, instance)
        runs = [r for r in records if r.policy == reference and r.instance == instance]
        budget = max(max(r.epochs, default=0) for r in runs) * per_epoch[instance]
        needed = [
            iterations_to_target(r, target, per_epoch[instance])
            for r in records
            if r.policy == policy and r.instance == instance
        ]
        median = float(np.median(needed))
        result[instance] = budget / median if math.isfinite(median) and median > 0 else 0.0
    return result
