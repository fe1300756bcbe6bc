"""Weight statistics of conv layers: the QAN state features (paper eq. 5-8).

For a conv weight of shape ``[out, in, kh, kw]``, node ``i`` is an input channel, node ``j``
an output channel and ``w_ij`` the ``kh x kw`` kernel joining them. Per layer, in order:

- ``g`` of all weights (12 numbers),
- ``h`` over ``i`` of ``g(w_i*)``, the weights leaving input channel ``i`` (12 x 5),
- ``h`` over ``j`` of ``g(w_*j)``, the weights entering output channel ``j`` (12 x 5),
- ``h`` over ``(i, j)`` of ``g(w_ij)``, each kernel (12 x 5),

192 numbers, with ``g`` and ``h`` as below (numpy/scipy definitions). Within an ``h`` block
the entries run statistic-major: ``g``-statistic 0 under ``h`` 0..4, then ``g``-statistic 1...

Everything is batched torch on the weight's device: one sort per group partition and no
Python loop over groups, so the observation costs a small fraction of a training iteration.
"""

from __future__ import annotations

import torch

#: ``g``: statistics of one set of weights. Quantiles interpolate linearly (numpy's default),
#: std is the population one (ddof 0), skew and kurtosis are scipy's biased estimators
#: (kurtosis is the excess, Fisher's), ``moment_p`` is scipy's p-th central moment.
SET_STATISTICS = (
    "mean",
    "q25",
    "q50",
    "q75",
    "std",
    "skew",
    "kurtosis",
    "moment1",
    "moment2",
    "moment3",
    "moment4",
    "moment5",
)

#: ``h``: statistics of a list of values (numpy's median and ddof-0 std).
LIST_STATISTICS = ("mean", "median", "std", "max", "min")

#: The three group partitions of a weight, in the order they appear in the vector.
PARTITIONS = ("in", "out", "kernel")

FEATURES_PER_LAYER = len(SET_STATISTICS) * (1 + len(PARTITIONS) * len(LIST_STATISTICS))


def feature_names(layer: str) -> list[str]:
    """Names of the 192 statistics of ``layer``, in the order ``weight_statistics`` returns them."""
    names = [f"{layer}/all/{g}" for g in SET_STATISTICS]
    for partition in PARTITIONS:
        names += [f"{layer}/{partition}/{g}/{h}" for g in SET_STATISTICS for h in LIST_STATISTICS]
    return names


def _sorted_quantiles(sorted_rows: torch.Tensor, qs: tuple[float, ...]) -> torch.Tensor:
    """Quantiles of each row of an already sorted ``[groups, n]`` tensor, numpy's "linear"."""
    n = sorted_rows.shape[1]
    columns = []
    for q in qs:
        position = q * (n - 1)
        low = int(position)
        high = min(low + 1, n - 1)
        fraction = position - low
        columns.append(
            sorted_rows[:, low] + fraction * (sorted_rows[:, high] - sorted_rows[:, low])
        )
    return torch.stack(columns, dim=1)


def set_statistics(groups: torch.Tensor) -> torch.Tensor:
    """``g`` of each row of a ``[groups, n]`` tensor: a ``[groups, 12]`` tensor.

    A row with zero variance (to float precision, scipy's test) has skewness and kurtosis 0.
    """
    groups = groups.float()
    mean = groups.mean(dim=1)
    centered = groups - mean[:, None]
    squared = centered * centered
    m2 = squared.mean(dim=1)
    m3 = (squared * centered).mean(dim=1)
    m4 = (squared * squared).mean(dim=1)
    m5 = (squared * squared * centered).mean(dim=1)
    # scipy's rule for "the variance is zero up to rounding": m2 <= (eps * mean)^2.
    eps = torch.finfo(groups.dtype).eps
    flat = m2 <= (eps * mean) ** 2
    safe_m2 = torch.where(flat, torch.ones_like(m2), m2)
    skew = torch.where(flat, torch.zeros_like(m2), m3 / safe_m2.pow(1.5))
    kurtosis = torch.where(flat, torch.zeros_like(m2), m4 / (safe_m2 * safe_m2) - 3.0)
    quantiles = _sorted_quantiles(groups.sort(dim=1).values, (0.25, 0.5, 0.75))
    return torch.cat(
        [
            mean[:, None],
            quantiles,
            m2.sqrt()[:, None],
            skew[:, None],
            kurtosis[:, None],
            torch.zeros_like(mean)[:, None],  # the first central moment is 0 by definition
            m2[:, None],
            m3[:, None],
            m4[:, None],
            m5[:, None],
        ],
        dim=1,
    )


def list_statistics(values: torch.Tensor) -> torch.Tensor:
    """``h`` of each column of a ``[n, k]`` tensor, flattened column-major: ``k * 5`` numbers."""
    columns = values.t()
    mean = columns.mean(dim=1, keepdim=True)
    std = (columns - mean).pow(2).mean(dim=1, keepdim=True).sqrt()
    median = _sorted_quantiles(columns.sort(dim=1).values, (0.5,))
    stats = torch.cat(
        [mean, median, std, columns.amax(dim=1, keepdim=True), columns.amin(dim=1, keepdim=True)],
        dim=1,
    )
    return stats.reshape(-1)


def weight_statistics(weight: torch.Tensor) -> torch.Tensor:
    """The 192 statistics of one conv weight ``[out, in, kh, kw]``, float32 on its device."""
    if weight.dim() != 4:
        raise ValueError(
            f"weight_statistics expects a conv weight of shape [out, in, kh, kw], "
            f"got shape {tuple(weight.shape)}"
        )
    weight = weight.detach()
    n_out, n_in = weight.shape[:2]
    by_input = weight.transpose(0, 1).reshape(n_in, -1)  # row i: w_i*
    by_output = weight.reshape(n_out, -1)  # row j: w_*j
    by_kernel = weight.reshape(n_out * n_in, -1)  # row (j, i): w_ij
    parts = [set_statistics(weight.reshape(1, -1)).reshape(-1)]
    parts += [list_statistics(set_statistics(rows)) for rows in (by_input, by_output, by_kernel)]
    return torch.cat(parts)
