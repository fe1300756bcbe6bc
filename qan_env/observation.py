"""``ObservationLayout``: what the observation vector holds, named and packed in one place.

The observation is a sequence of blocks, in this order, each present or not by the
config's ``observation``:

- ``weights``: the 192 weight statistics of each monitored conv layer (``paper``);
- ``lr``: the learning rate of the last step (``paper``);
- ``schedule``: progress ``t/T`` and ``log(lr / lr0)`` (``training``);
- ``last_action``: the last action, as the action set describes it (``training``);
- ``signals``: the loss, gradient and held-out signals (``training``);
- ``update``: the step's update-to-weight ratio and its change (``observe_update``).

The layout makes the names and packs the values from the same list of blocks, and
``pack`` refuses a block whose values do not match its names, so entries cannot shift.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from qan_env.actions import ActionSet
from qan_env.config import EnvConfig
from qan_env.features import feature_names
from qan_env.signals import SCHEDULE_NAMES, UPDATE_NAMES, signal_names


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
