"""``ObservationLayout``: what the observation vector holds, named and packed in one place.

The observation is a sequence of blocks, in this order, each present or not by the
config's ``observation``:

- ``weights``: the 192 weight statistics of each monitored conv layer (``paper``);
- ``lr``: the learning rate of the last step (``paper``);
- ``schedule``: progress ``t/T`` and ``log(lr / lr0)`` (``training``);
- ``last_action``: the last action, as the action set describes it (``training``);
- ``signals``: the loss, gradient and held-out signals (``training``);
- ``update``: the step's update-to-weight ratio and its change (``observe_update``);
- ``optimizer``: the lr and the effective step ``lr / (1 - momentum)``, logged
  (``observe_optimizer``).

The layout makes the names and packs the values from the same list of blocks, and
``pack`` refuses a block whose values do not match its names, so entries cannot shift.
``RunObserver`` measures those values from what any training loop has (the losses, the
gradient, the parameters, a held-out loss): the env's episodes and ``PolicyLR`` observe
a run with the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from qan_env.actions import ActionSet
from qan_env.config import EnvConfig
from qan_env.features import feature_names, layer_statistics
from qan_env.signals import (
    OPTIMIZER_NAMES,
    SCHEDULE_NAMES,
    UPDATE_NAMES,
    TrainingSignals,
    UpdateRatio,
    optimizer_signals,
    schedule_signals,
    signal_names,
)


class ObservationLayout:
    """The blocks of ``config``'s observation and the name of every entry."""

    def __init__(self, config: EnvConfig, actions: ActionSet) -> None:
        blocks: dict[str, tuple[str, ...]] = {}
        if config.observation in ("paper", "paper+training"):
            layers = config.monitored_conv_layers
            blocks["weights"] = tuple(name for layer in layers for name in feature_names(layer))
            blocks["lr"] = ("lr",)
        if "training" in config.observation:
            blocks["schedule"] = SCHEDULE_NAMES
            blocks["last_action"] = actions.feature_names
            blocks["signals"] = signal_names(config.uses_heldout_loss)
            if config.observe_update:
                blocks["update"] = UPDATE_NAMES
            if config.observe_optimizer:
                blocks["optimizer"] = OPTIMIZER_NAMES
        self.blocks = blocks
        self.names = tuple(name for names in blocks.values() for name in names)

    def __contains__(self, block: str) -> bool:
        return block in self.blocks

    def __iter__(self) -> Iterator[str]:
        return iter(self.blocks)

    def __len__(self) -> int:
        return len(self.names)

    def pack(self, values: Mapping[str, Sequence[float] | np.ndarray]) -> np.ndarray:
        """The observation: each block's values, in the layout's order, as float32."""
        if set(values) != set(self.blocks):
            raise ValueError(f"values for blocks {sorted(values)}; the layout has {list(self)}")
        parts = []
        for block, names in self.blocks.items():
            part = np.asarray(values[block], dtype=np.float32).reshape(-1)
            if len(part) != len(names):
                raise ValueError(f"{len(part)} values for the {len(names)} names of {block!r}")
            parts.append(part)
        return np.concatenate(parts)


class RunObserver:
    """The observation of one run of ``total_iterations`` of ``config``, measured from
    the run's ``parameters`` (the update ratio), ``monitored`` conv weights (the weight
    statistics) and the losses, gradient norm and held-out loss each step hands in."""

    def __init__(
        self,
        config: EnvConfig,
        actions: ActionSet,
        parameters: list[torch.Tensor],
        monitored: Sequence[torch.Tensor],
        total_iterations: int,
    ) -> None:
        self.layout = ObservationLayout(config, actions)
        self.actions = actions
        self.monitored = list(monitored) if "weights" in self.layout else []
        self.total_iterations, self.reference_lr = total_iterations, config.base_lr
        self.momentum = config.momentum
        self.signals = None
        if "signals" in self.layout:
            self.signals = TrainingSignals(heldout=config.uses_heldout_loss)
        self.update = UpdateRatio(parameters) if "update" in self.layout else None

    @property
    def needs_gradient(self) -> bool:
        """Whether an observation reads the gradient norm (the training signals do)."""
        return self.signals is not None

    def mark(self) -> None:
        """Note the weights before a step's iterations (the update ratio's start)."""
        if self.update is not None:
            self.update.mark()

    def observe(
        self,
        losses: torch.Tensor,
        gradient_norm: Callable[[], torch.Tensor],
        heldout: torch.Tensor | None,
        iteration: int,
        lr: float,
        action: int | None,
        starting: bool,
    ) -> tuple[np.ndarray, float, float | None]:
        """The observation after ``iteration`` iterations, the step's mean training loss and
        its held-out loss (None without one), measured on the device and brought to the
        host in one copy. ``losses``: the step's per-iteration losses (at the start: the
        first batch's, before any update); ``lr``: the step's; ``action``: the one that
        chose it (None at the start or for an lr set directly)."""
        on_device = {"loss": losses.mean().view(1)}
        if heldout is not None:
            on_device["heldout"] = heldout.view(1)
        if self.monitored:
            on_device["weights"] = layer_statistics(self.monitored)
        if self.signals is not None:
            update = self.signals.reset if starting else self.signals.update
            on_device["signals"] = update(losses, gradient_norm(), heldout)
        if self.update is not None:
            on_device["update"] = self.update.reset() if starting else self.update.update()
        sizes = [part.numel() for part in on_device.values()]
        packed = torch.cat([part.float() for part in on_device.values()]).cpu().numpy()
        host = dict(zip(on_device, np.split(packed, np.cumsum(sizes)[:-1]), strict=True))
        values: dict[str, Any] = {}
        if "weights" in self.layout:
            values["weights"], values["lr"] = host["weights"], [lr]
        if "signals" in self.layout:
            values["schedule"] = schedule_signals(
                iteration, self.total_iterations, lr, self.reference_lr
            )
            values["last_action"] = self.actions.features(action)
            values["signals"] = host["signals"]
        if "update" in self.layout:
            values["update"] = host["update"]
        if "optimizer" in self.layout:
            values["optimizer"] = optimizer_signals(lr, self.momentum)
        heldout_loss = float(host["heldout"][0]) if "heldout" in host else None
        return self.layout.pack(values), float(host["loss"][0]), heldout_loss

    def state_dict(self) -> dict[str, Any]:
        """The running averages and the last update ratio the next step continues from."""
        return {
            "signals": None if self.signals is None else self.signals.state_dict(),
            "update": None if self.update is None else self.update.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        if self.signals is not None:
            self.signals.load_state_dict(
                {
                    name: None if value is None else value.to(device)
                    for name, value in state["signals"].items()
                }
            )
        if self.update is not None:
            self.update.load_state_dict(state["update"])
