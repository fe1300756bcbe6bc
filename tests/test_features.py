"""The 192 weight statistics against numpy/scipy, the oracle of their definitions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
import torch

from qan_env.features import (
    FEATURES_PER_LAYER,
    feature_names,
    layer_statistics,
    weight_statistics,
)


def g_reference(groups: np.ndarray) -> np.ndarray:
    """scipy's/numpy's statistics of each row of ``groups``: a ``[rows, 12]`` table."""
    x = np.asarray(groups, dtype=np.float64)
    constant = x.std(axis=1) == 0  # scipy gives NaN there; the features define 0
    with warnings.catch_warnings():  # scipy warns of cancellation on constant rows
        warnings.simplefilter("ignore", RuntimeWarning)
        skew = np.where(constant, 0.0, scipy.stats.skew(x, axis=1))
        kurtosis = np.where(constant, 0.0, scipy.stats.kurtosis(x, axis=1))
        moments = [scipy.stats.moment(x, order=p, axis=1) for p in range(1, 6)]
    columns = [
        x.mean(axis=1),
        *np.quantile(x, [0.25, 0.5, 0.75], axis=1),
        x.std(axis=1),
        skew,
        kurtosis,
        *moments,
    ]
    return np.stack(columns, axis=1)


def h_reference(values: np.ndarray) -> list[float]:
    return [values.mean(), np.median(values), values.std(), values.max(), values.min()]


def statistics_reference(weight: np.ndarray) -> np.ndarray:
    """Paper eq. 5-8 with the README's conventions, each group listed out explicitly."""
    n_out, n_in = weight.shape[:2]
    partitions = [
        [weight[:, i].ravel() for i in range(n_in)],  # w_i*: leaving input node i
        [weight[j].ravel() for j in range(n_out)],  # w_*j: entering output node j
        [weight[j, i].ravel() for j in range(n_out) for i in range(n_in)],  # w_ij
    ]
    out = list(g_reference(weight.reshape(1, -1))[0])
    for groups in partitions:
        for column in g_reference(np.stack(groups)).T:
            out += h_reference(column)
    return np.array(out)


def assert_matches_reference(weight: torch.Tensor) -> None:
    ours = weight_statistics(weight).cpu().double().numpy()
    reference = statistics_reference(weight.double().numpy())
    assert ours.shape == (FEATURES_PER_LAYER,) == reference.shape
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, reference, rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize(
    "shape, scale",
    [((16, 3, 3, 3), 0.3), ((8, 8, 3, 3), 0.05), ((5, 7, 3, 3), 1.0), ((4, 6, 5, 5), 0.1)],
)
def test_random_weights_match_scipy(shape, scale):
    generator = torch.Generator().manual_seed(sum(shape))
    assert_matches_reference(torch.randn(shape, generator=generator) * scale)


def test_skewed_weights_match_scipy():
    generator = torch.Generator().manual_seed(1)
    weight = torch.empty(6, 4, 3, 3).exponential_(generator=generator) * 0.1
    assert_matches_reference(weight)


def test_constant_weights_give_zero_shape_statistics():
    weight = torch.full((4, 3, 3, 3), 0.25)
    stats = weight_statistics(weight)
    assert torch.isfinite(stats).all()
    assert_matches_reference(weight)
    names = feature_names("w")
    for name, value in zip(names, stats.tolist(), strict=True):
        if "/skew" in name or "/kurtosis" in name or "/std" in name or "/moment" in name:
            assert value == pytest.approx(0.0, abs=1e-6), name


def test_one_by_one_kernels_have_single_element_sets():
    generator = torch.Generator().manual_seed(2)
    weight = torch.randn(12, 5, 1, 1, generator=generator)
    assert_matches_reference(weight)
    stats = dict(zip(feature_names("w"), weight_statistics(weight).tolist(), strict=True))
    # Each kernel is one number: its own mean, with no spread.
    assert stats["w/kernel/std/max"] == 0.0
    assert stats["w/kernel/kurtosis/min"] == 0.0
    assert stats["w/kernel/mean/max"] == pytest.approx(weight.max().item())


def test_large_weights_match_scipy():
    generator = torch.Generator().manual_seed(3)
    assert_matches_reference(torch.randn(160, 160, 3, 3, generator=generator) * 0.05)


def test_first_moment_is_exactly_zero_and_names_are_ordered():
    generator = torch.Generator().manual_seed(4)
    stats = weight_statistics(torch.randn(8, 3, 3, 3, generator=generator) + 5.0)
    names = feature_names("conv1")
    assert len(names) == len(set(names)) == FEATURES_PER_LAYER
    assert names[:2] == ["conv1/all/mean", "conv1/all/q25"]
    assert names[12:14] == ["conv1/in/mean/mean", "conv1/in/mean/median"]
    for index, name in enumerate(names):
        if name.startswith("conv1/all/moment1") or "/moment1/" in name:
            assert stats[index].item() == 0.0, name


def test_rejects_a_weight_that_is_not_a_conv_weight():
    with pytest.raises(ValueError, match=r"\[out, in, kh, kw\].*\(10, 3\)"):
        weight_statistics(torch.zeros(10, 3))


def test_layers_of_one_shape_are_batched_without_changing_any_number():
    generator = torch.Generator().manual_seed(5)
    shapes = [(8, 4, 3, 3), (6, 4, 1, 1), (8, 4, 3, 3), (8, 4, 3, 3)]
    weights = [torch.randn(shape, generator=generator) * 0.1 for shape in shapes]
    together = layer_statistics(weights)
    assert together.shape == (4 * FEATURES_PER_LAYER,)
    for index, weight in enumerate(weights):
        alone = together[index * FEATURES_PER_LAYER : (index + 1) * FEATURES_PER_LAYER]
        np.testing.assert_allclose(
            alone.double().numpy(),
            statistics_reference(weight.double().numpy()),
            rtol=2e-3,
            atol=1e-6,
        )
