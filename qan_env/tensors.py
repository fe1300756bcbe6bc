"""Reading tensors from a file someone handed us: as data, within a memory bound.

``torch.load(weights_only=True)`` runs no code, but it allocates what the file declares:
the bytes are read with a bound first, and every tensor must be dense over storage of its
own size (a stride-0 or overlapping tensor is a small file that claims a large array).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import IO, Any

import torch


def read_bounded(file: IO[bytes], limit: int, source: str) -> bytes:
    """At most ``limit`` bytes of ``file``; a ValueError naming ``source`` if it has more."""
    data = file.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{source} is larger than {limit:,} bytes, more than it may hold")
    return data


def load_tensors(data: bytes, source: str) -> Any:
    """``torch.load`` of ``data`` with ``weights_only=True`` onto the CPU, every tensor in
    it (in dicts, lists and tuples) checked dense; a ValueError naming ``source`` else."""
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # weights_only refuses code with an UnpicklingError
        raise ValueError(f"{source} is not a file of tensors: {error}") from None
    _check_dense(loaded, source)
    return loaded


def _check_dense(value: Any, source: str, where: str = "") -> None:
    if isinstance(value, torch.Tensor):
        size = value.numel() * value.element_size()
        if not value.is_contiguous() or value.untyped_storage().nbytes() < size:
            raise ValueError(
                f"{source}: entry {where or '(the file)'} of shape {tuple(value.shape)} is not "
                f"dense over its own storage (a stride-0 or overlapping tensor)"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_dense(item, source, f"{where}[{key!r}]")
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index, item in enumerate(value):
            _check_dense(item, source, f"{where}[{index}]")


def check_like(loaded: Any, fresh: Mapping[str, torch.Tensor], source: str) -> None:
    """``loaded`` is a dict with ``fresh``'s names, each a tensor of its shape and type."""
    if not isinstance(loaded, Mapping) or set(loaded) != set(fresh):
        names = sorted(loaded) if isinstance(loaded, Mapping) else type(loaded).__name__
        raise ValueError(f"{source} holds {names}, not the tensors {sorted(fresh)}")
    for name, tensor in fresh.items():
        got = loaded[name]
        if not isinstance(got, torch.Tensor) or (got.shape, got.dtype) != (
            tensor.shape,
            tensor.dtype,
        ):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise ValueError(
                f"{source}: {name!r} is {shape}, where this run's settings make it "
                f"{tuple(tensor.shape)} {tensor.dtype}"
            )
