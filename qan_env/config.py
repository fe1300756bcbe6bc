"""Every setting of the environment, its allowed values, and the named presets.

``EnvConfig``'s defaults are the paper's experiment (WRN-40-4 on CIFAR-10, 50 epochs,
batch 128, SGD with Nesterov momentum 0.9 and weight decay 5e-4, lr0 0.1, one decision per
iteration). ``make_config(preset, **overrides)`` starts from a preset and replaces fields;
a bad value is refused with a message naming the field, the value and what is allowed.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from dataclasses import dataclass

import torch

from qan_env.training.models import check_depth

DATASETS = ("cifar10", "synthetic")
LAYER_SELECTIONS = ("first_conv", "all_conv")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class EnvConfig:
    """One episode's training run and the MDP around it. Defaults: the paper."""

    # Data
    dataset: str = "cifar10"
    data_dir: str = "~/.cache/qan_env"
    download: bool = False
    synthetic_train_size: int = 50_000
    synthetic_test_size: int = 10_000
    synthetic_seed: int = 0
    # Network and optimizer
    depth: int = 40
    widen_factor: int = 4
    dropout: float = 0.0
    batch_size: int = 128
    epochs: int = 50
    initial_lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    # The MDP
    iterations_per_step: int = 1
    decay_rate: float = 0.05
    restart_lr: float | None = None  # None: initial_lr
    keep_action: bool = False
    lr_floor: float = 0.0
    reward_scale: float | None = None  # None: 1 / (T - 1), T the episode's iterations
    monitored_layers: str | tuple[str, ...] = "first_conv"
    eval_every_epochs: int = 1  # 0: never evaluate on the test set
    max_loss: float = 100.0  # a step's loss above this (or not finite) is divergence
    # Runtime
    device: str = "auto"  # "auto": CUDA when available, else the CPU
    precision: str = "fp32"  # "bf16": bfloat16 autocast for the network (for GPUs)
    channels_last: bool = False  # NHWC memory layout for convolutions (for GPUs)
    compile_model: bool = False  # torch.compile the network (slow first steps)

    def __post_init__(self) -> None:
        if isinstance(self.monitored_layers, list):
            object.__setattr__(self, "monitored_layers", tuple(self.monitored_layers))
        _validate(self)

    @property
    def data_source(self) -> dict[str, object]:
        """The arguments of ``qan_env.training.data.load_dataset`` for this configuration."""
        return {
            "name": self.dataset,
            "data_dir": self.data_dir,
            "download": self.download,
            "synthetic_train_size": self.synthetic_train_size,
            "synthetic_test_size": self.synthetic_test_size,
            "synthetic_seed": self.synthetic_seed,
        }

    @property
    def effective_restart_lr(self) -> float:
        return self.initial_lr if self.restart_lr is None else self.restart_lr


def _refuse(field: str, value: object, allowed: str) -> None:
    raise ValueError(f"{field}={value!r} is not allowed: {allowed}")


def _check_int(config: EnvConfig, field: str, minimum: int) -> None:
    value = getattr(config, field)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _refuse(field, value, f"an integer >= {minimum}")


def _check_float(
    config: EnvConfig, field: str, low: float, high: float = math.inf, low_open: bool = False
) -> None:
    value = getattr(config, field)
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and value <= high
    )
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        upper = "" if high == math.inf else f" and <= {high}"
        _refuse(field, value, f"a finite number {bound}{upper}")


def _validate(config: EnvConfig) -> None:
    if config.precision not in PRECISIONS:
        _refuse("precision", config.precision, f"one of {PRECISIONS}")
    if config.dataset not in DATASETS:
        _refuse("dataset", config.dataset, f"one of {DATASETS}")
    for flag in ("download", "nesterov", "keep_action", "channels_last", "compile_model"):
        if not isinstance(getattr(config, flag), bool):
            _refuse(flag, getattr(config, flag), "True or False")
    for field in ("synthetic_train_size", "synthetic_test_size", "widen_factor", "batch_size"):
        _check_int(config, field, 1)
    for field in ("epochs", "iterations_per_step"):
        _check_int(config, field, 1)
    _check_int(config, "synthetic_seed", 0)
    if config.dataset == "synthetic" and config.batch_size > config.synthetic_train_size:
        _refuse(
            "batch_size",
            config.batch_size,
            f"at most synthetic_train_size ({config.synthetic_train_size})",
        )
    _check_int(config, "eval_every_epochs", 0)
    if isinstance(config.depth, bool) or not isinstance(config.depth, int):
        _refuse("depth", config.depth, "an integer 6n+4 with n >= 1 (10, 16, 22, 28, 34, 40, ...)")
    check_depth(config.depth)
    _check_float(config, "dropout", 0.0, 1.0)
    if config.dropout == 1.0:
        _refuse("dropout", config.dropout, "a probability in [0, 1)")
    _check_float(config, "initial_lr", 0.0, low_open=True)
    _check_float(config, "momentum", 0.0, 1.0)
    _check_float(config, "weight_decay", 0.0)
    _check_float(config, "decay_rate", 0.0, 1.0, low_open=True)
    if config.decay_rate == 1.0:
        _refuse(
            "decay_rate", config.decay_rate, "a fraction in (0, 1): lr <- lr * (1 - decay_rate)"
        )
    if config.restart_lr is not None:
        _check_float(config, "restart_lr", 0.0, low_open=True)
    _check_float(config, "lr_floor", 0.0)
    if config.lr_floor > min(config.initial_lr, config.effective_restart_lr):
        _refuse(
            "lr_floor",
            config.lr_floor,
            f"at most the initial and restart learning rates "
            f"({config.initial_lr}, {config.effective_restart_lr})",
        )
    if config.reward_scale is not None:
        _check_float(config, "reward_scale", 0.0, low_open=True)
    _check_float(config, "max_loss", 0.0, low_open=True)
    layers = config.monitored_layers
    valid_list = (
        isinstance(layers, tuple)
        and len(layers) > 0
        and all(isinstance(name, str) and name for name in layers)
    )
    if layers not in LAYER_SELECTIONS and not valid_list:
        _refuse(
            "monitored_layers",
            layers,
            f"one of {LAYER_SELECTIONS} or a non-empty list of conv module names "
            f"(such as ['conv1', 'block1.0.conv1'])",
        )
    if not isinstance(config.device, str) or not _is_device_name(config.device):
        _refuse("device", config.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")


def _is_device_name(name: str) -> bool:
    if name == "auto":
        return True
    try:
        return torch.device(name).type in ("cpu", "cuda")
    except RuntimeError:
        return False


PRESETS: dict[str, EnvConfig] = {
    # The paper's experiment. Needs CIFAR-10 and, to be practical, a GPU.
    "paper": EnvConfig(),
    # A small WRN on the embedded synthetic set: about a minute per episode on 2 CPU cores.
    "quick": EnvConfig(
        dataset="synthetic",
        synthetic_train_size=5120,
        synthetic_test_size=2048,
        depth=10,
        widen_factor=1,
        epochs=10,
    ),
    # The smallest WRN on a few hundred images: seconds per episode, for tests and checkers.
    "tiny": EnvConfig(
        dataset="synthetic",
        synthetic_train_size=256,
        synthetic_test_size=256,
        depth=10,
        widen_factor=1,
        batch_size=32,
        epochs=2,
    ),
}


def make_config(preset: str = "paper", **overrides: object) -> EnvConfig:
    """The ``preset``'s configuration with ``overrides`` replacing fields of the same name."""
    if preset not in PRESETS:
        _refuse("preset", preset, f"one of {tuple(PRESETS)}")
    fields = {field.name for field in dataclasses.fields(EnvConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"unknown setting(s) {', '.join(unknown)}: allowed are {', '.join(sorted(fields))}"
        )
    return dataclasses.replace(PRESETS[preset], **overrides)


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """Command-line ``FIELD=VALUE`` pairs as overrides: ``["epochs=5", "device=cpu"]`` ->
    ``{"epochs": 5, "device": "cpu"}``. Values are Python literals, or else plain strings."""
    overrides: dict[str, object] = {}
    for pair in pairs:
        field, separator, text = pair.partition("=")
        if not separator or not field:
            raise ValueError(f"{pair!r} is not FIELD=VALUE, such as epochs=5")
        try:
            overrides[field] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[field] = text  # a bare word such as cpu or cifar10
    return overrides
