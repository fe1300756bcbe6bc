"""Every setting of the environment, its allowed values, and the named presets.

``EnvConfig`` is a ``TrainingConfig`` (the run: data, network, optimizer, budget, device)
plus the MDP around it, in one flat, frozen dataclass. Its defaults are the paper's
experiment (WRN-40-4 on CIFAR-10, 50 epochs, batch 128, SGD with Nesterov momentum 0.9 and
weight decay 5e-4, lr0 0.1, one decision per iteration). ``make_config(preset,
**overrides)`` starts from a preset and replaces fields; a bad value is refused when the
config is made, with a message naming the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

from qan_env.actions import ACTION_MODES
from qan_env.instances import parse as parse_instances
from qan_env.rewards import default_reward_scale
from qan_env.schedules import SCHEDULES
from qan_env.training.config import TrainingConfig
from qan_env.training.models import conv_layer_names
from qan_env.validation import (
    check_choice,
    check_flag,
    check_float,
    check_int,
    real_number,
    refuse,
)

LAYER_SELECTIONS = ("first_conv", "all_conv")
#: The largest learning rate a setting, an action's factor or ``step_lr`` may ask for: far
#: above any useful one, low enough that a step at it stays finite in float32.
LR_LIMIT = 1e4
OBSERVATIONS = ("paper", "training", "paper+training")
REWARDS = ("train_log_loss", "heldout_log_loss")


@dataclass(frozen=True)
class EnvConfig(TrainingConfig):
    """One episode: a training run (``TrainingConfig``'s fields) and the MDP around it."""

    initial_lr: float = 0.1
    """The learning rate at reset."""
    iterations_per_step: int = 1
    """SGD iterations per env step: how often the agent decides (paper: every iteration)."""
    decisions: int = 0
    """> 0: ``iterations_per_step`` follows the budget, ``ceil(T / decisions)``, whatever it
    says, so that runs of any length get (at most) this many decisions: one rule for every
    instance of a set."""
    instances: str | None = None
    """"NAME:SPLIT" of an instance set (``qan_env.instances``): every reset draws one of
    its runs from the seed, on top of this config; None: this config's run every time."""
    action_mode: str = "paper"
    """"paper" (decay / restart), "scale" (lr times a factor, bounded), "anchored" (a
    fixed schedule times a factor) or "relative" (a fixed schedule times a multiplier that
    each action moves by a factor)."""
    observation: str = "paper"
    """"paper" (weight statistics and lr), "training" (scale-free training signals) or
    "paper+training" (both)."""
    observe_update: bool = False
    """With the training observation: add how far each step moved the weights relative to
    their size, ``log(|dw| / |w|)``, and its change (``qan_env.signals.UpdateRatio``)."""
    observe_optimizer: bool = False
    """With the training observation: add the step's lr and SGD's effective step
    ``lr / (1 - momentum)``, logged, so that a policy trained across runs of different
    momenta sees where each run is on the absolute scale (the relative actions' own
    ``log_lr_ratio`` is measured from the instance's guessed initial lr)."""
    reward: str = "train_log_loss"
    """"train_log_loss" (paper eq. 9) or "heldout_log_loss" (the same on the held-out
    set; needs heldout_size > 0)."""
    decay_rate: float = 0.05
    """The decay action's cut: lr <- lr * (1 - decay_rate)."""
    restart_lr: float | None = None
    """The restart action's lr; None: ``initial_lr``."""
    keep_action: bool = False
    """Add a third action that keeps the lr."""
    lr_floor: float = 0.0
    """Paper actions: none takes the lr below this."""
    scale_factors: tuple[float, ...] = (1 / 1.5, 1.0, 1.5)
    """Scale actions: the factors the lr can be multiplied by; relative actions: the
    factors the multiplier can be."""
    lr_min: float = 1e-4
    """Scale actions: the lowest lr."""
    lr_max: float = 1.0
    """Scale actions: the highest lr."""
    anchor_schedule: str = "cosine"
    """Anchored and relative actions: the base schedule over the episode, from
    ``base_lr``, one of ``qan_env.schedules.SCHEDULES``."""
    anchor_lr: float | None = None
    """Anchored and relative actions: the base schedule's peak, and the lr the observation's
    ``log_lr_ratio`` is measured from; None: ``initial_lr`` (a policy's own peak, say one
    tuned once on its training runs, where a user's guess should not move it)."""
    anchor_factors: tuple[float, ...] = (0.5, 0.71, 1.0, 1.41, 2.0)
    """Anchored actions: the factors the base schedule's lr can be multiplied by; relative
    actions: the multiplier's range, from the smallest to the largest."""
    reward_scale: float | None = None
    """c in r_k = -c (log L_k - log L_{k-1}); None: 1 / (T - 1), T the episode's iterations."""
    monitored_layers: str | tuple[str, ...] = "first_conv"
    """Conv layers observed: "first_conv", "all_conv", or a list of module names."""
    eval_every_epochs: int = 1
    """Evaluate on the test set every this many epochs (and after the last); 0: never."""
    max_loss: float = 100.0
    """A step whose training loss is above this (or not finite) has diverged and ends the
    episode; a held-out loss above it is rewarded as this, and the run goes on."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float(self, "initial_lr", 0.0, LR_LIMIT, low_open=True)
        check_int(self, "decisions", 0, 10**9)
        if self.decisions > 0:
            every = max(1, -(-self.total_iterations // self.decisions))
            object.__setattr__(self, "iterations_per_step", every)
        check_int(self, "iterations_per_step", 1, 10**9)
        if self.instances is not None:
            parse_instances(self.instances)  # refuses naming the sets that exist
        check_choice(self, "action_mode", ACTION_MODES)
        check_choice(self, "observation", OBSERVATIONS)
        check_choice(self, "reward", REWARDS)
        check_flag(self, "observe_update")
        if self.observe_update and "training" not in self.observation:
            refuse("observe_update", True, "only with the training observation")
        check_flag(self, "observe_optimizer")
        if self.observe_optimizer and "training" not in self.observation:
            refuse("observe_optimizer", True, "only with the training observation")
        if self.reward == "heldout_log_loss" and self.heldout_size == 0:
            refuse("reward", self.reward, "only with a held-out set: heldout_size > 0 (say 1024)")
        check_float(self, "decay_rate", 0.0, 1.0, low_open=True)
        if self.decay_rate == 1.0:
            refuse(
                "decay_rate", self.decay_rate, "a fraction in (0, 1): lr <- lr * (1 - decay_rate)"
            )
        if self.restart_lr is not None:
            check_float(self, "restart_lr", 0.0, LR_LIMIT, low_open=True)
        check_flag(self, "keep_action")
        check_float(self, "lr_floor", 0.0)
        if self.lr_floor > min(self.initial_lr, self.effective_restart_lr):
            refuse(
                "lr_floor",
                self.lr_floor,
                f"at most the initial and restart learning rates "
                f"({self.initial_lr}, {self.effective_restart_lr})",
            )
        for field in ("scale_factors", "anchor_factors"):
            _check_factors(self, field)
        check_float(self, "lr_min", 0.0, LR_LIMIT, low_open=True)
        check_float(self, "lr_max", 0.0, LR_LIMIT, low_open=True)
        if self.lr_max < self.lr_min:
            raise ValueError(
                f"lr_min={self.lr_min} and lr_max={self.lr_max} are not allowed together: "
                f"lr_min <= lr_max"
            )
        if self.action_mode == "scale" and not self.lr_min <= self.initial_lr <= self.lr_max:
            refuse(
                "initial_lr",
                self.initial_lr,
                f"within [lr_min, lr_max] = [{self.lr_min}, {self.lr_max}] for scale actions",
            )
        check_choice(self, "anchor_schedule", tuple(SCHEDULES))
        if self.anchor_lr is not None:
            check_float(self, "anchor_lr", 0.0, LR_LIMIT, low_open=True)
        if self.reward_scale is not None:
            check_float(self, "reward_scale", 0.0, 1e6, low_open=True)
        _check_monitored_layers(self)
        check_int(self, "eval_every_epochs", 0, 10**9)
        check_float(self, "max_loss", 0.0, 1e6, low_open=True)

    @property
    def base_lr(self) -> float:
        """The peak of the anchored and relative actions' base schedule."""
        return self.initial_lr if self.anchor_lr is None else self.anchor_lr

    @property
    def effective_restart_lr(self) -> float:
        return self.initial_lr if self.restart_lr is None else self.restart_lr

    @property
    def effective_reward_scale(self) -> float:
        """``reward_scale``, or the paper's ``1 / (T - 1)`` when it is None."""
        if self.reward_scale is not None:
            return self.reward_scale
        return default_reward_scale(self.total_iterations)

    @property
    def steps_per_episode(self) -> int:
        """Env steps of a whole episode: the run's iterations in steps of
        ``iterations_per_step``, the last step shorter when they do not divide."""
        return -(-self.total_iterations // self.iterations_per_step)

    @property
    def monitored_conv_layers(self) -> tuple[str, ...]:
        """The module names of the monitored conv layers, in the network's order."""
        names = conv_layer_names(self.depth, self.widen_factor)
        if self.monitored_layers == "first_conv":
            return names[:1]
        if self.monitored_layers == "all_conv":
            return names
        return tuple(self.monitored_layers)

    @property
    def uses_heldout_loss(self) -> bool:
        """Whether a step measures the held-out loss: for the reward or the observation."""
        return self.heldout_size > 0 and (
            self.reward == "heldout_log_loss" or "training" in self.observation
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field, as JSON-ready plain values."""
        values = dataclasses.asdict(self)
        for field, value in values.items():
            if isinstance(value, tuple):
                values[field] = list(value)
        return values


def _check_factors(config: EnvConfig, field: str) -> None:
    """A non-empty list of distinct finite factors in (0, 1000], kept as a tuple of floats."""
    factors = getattr(config, field)
    numbers = [real_number(f) for f in factors] if isinstance(factors, list | tuple) else []
    ok = (
        len(numbers) > 0
        and all(number is not None and 0 < number <= 1e3 for number in numbers)
        and len(set(numbers)) == len(numbers)
    )
    if not ok:
        refuse(field, factors, "a non-empty list of distinct finite numbers > 0 and <= 1000")
    object.__setattr__(config, field, tuple(numbers))


def _check_monitored_layers(config: EnvConfig) -> None:
    layers = config.monitored_layers
    if isinstance(layers, str) and layers in LAYER_SELECTIONS:
        return
    if not (
        isinstance(layers, list | tuple)
        and len(layers) > 0
        and all(isinstance(name, str) and name for name in layers)
    ):
        refuse(
            "monitored_layers",
            layers,
            f"one of {LAYER_SELECTIONS} or a non-empty list of conv module names "
            f"(such as ['conv1', 'block1.0.conv1'])",
        )
    object.__setattr__(config, "monitored_layers", tuple(layers))  # frozen, and hashable
    names = conv_layer_names(config.depth, config.widen_factor)
    unknown = [name for name in layers if name not in names]
    if unknown:
        refuse(
            "monitored_layers",
            list(layers),
            f"{', '.join(unknown)} is not a conv layer of WRN-{config.depth}-"
            f"{config.widen_factor}; use {LAYER_SELECTIONS[0]!r}, {LAYER_SELECTIONS[1]!r} "
            f"or names from: {', '.join(names)}",
        )


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


def learning_mdp(config: TrainingConfig) -> dict[str, Any]:
    """MDP options a learner can learn from, sized for ``config``'s run (README, "Choosing
    the MDP"): a cosine schedule times a factor from 1/2 to 8 chosen every 20 iterations
    (at most half an epoch), from scale-free training signals, rewarded by the decrease of
    the log loss on 1,024 held-out images (at most a fifth of the training split),
    unscaled, so that an episode's return is ``log(H_0 / H_K)``. The factors lean upward:
    an initial lr is usually a cautious guess (the quick preset's best cosine peak is 4
    to 8 times its 0.1, docs/agent_design.md)."""
    iterations_per_epoch = config.dataset_train_size // config.batch_size
    return {
        "action_mode": "anchored",
        "anchor_factors": (0.5, 1.0, 2.0, 4.0, 8.0),
        "observation": "training",
        "reward": "heldout_log_loss",
        "reward_scale": 1.0,
        "heldout_size": min(1024, config.dataset_train_size // 5),
        "iterations_per_step": min(20, max(1, iterations_per_epoch // 2)),
    }


def with_overrides(config: EnvConfig, overrides: dict[str, Any]) -> EnvConfig:
    """``config`` with the fields named in ``overrides`` replaced, and checked again."""
    fields = {field.name for field in dataclasses.fields(EnvConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        guesses = [f"{name}{_did_you_mean(name, fields)}" for name in unknown]
        raise ValueError(
            f"unknown setting(s) {', '.join(guesses)}: allowed are {', '.join(sorted(fields))}"
        )
    return dataclasses.replace(config, **overrides)


# Names a user of other libraries reaches for first, which no spelling distance finds.
SYNONYMS = {"lr": "initial_lr", "learning_rate": "initial_lr", "seed": "reset(seed=...)"}


def _did_you_mean(name: str, fields: set[str]) -> str:
    close = difflib.get_close_matches(name, fields, n=1, cutoff=0.75)
    guess = SYNONYMS.get(name) or (close[0] if close else None)
    return f" (did you mean {guess}?)" if guess else ""


def make_config(preset: str = "paper", **overrides: Any) -> EnvConfig:
    """The ``preset``'s configuration with ``overrides`` replacing fields of the same name."""
    if preset not in PRESETS:
        refuse("preset", preset, f"one of {tuple(PRESETS)}")
    return with_overrides(PRESETS[preset], overrides)


def instance_config(spec: str, preset: str | None = None, **overrides: Any) -> EnvConfig:
    """The env of an instance set's split, ``"NAME:SPLIT"``: the set's preset (or
    ``preset``) and shared settings, ``instances=spec``, then ``overrides`` on top (of every
    run of the split)."""
    instance_set, _ = parse_instances(spec)
    shared = {**instance_set.shared, "instances": spec, **overrides}
    return make_config(preset or instance_set.preset, **shared)


def constructor_config(
    preset: str | None, config: EnvConfig | None, overrides: dict[str, Any]
) -> EnvConfig:
    """The config an env's arguments name: ``config`` with ``overrides`` on top; else, with
    ``instances="NAME:SPLIT"`` among the overrides, that set's env (``instance_config``),
    so that a set's runs keep the MDP they share; else ``preset``'s (default "paper")."""
    if config is not None:
        return with_overrides(config, overrides) if overrides else config
    if overrides.get("instances") is not None:
        rest = {key: value for key, value in overrides.items() if key != "instances"}
        return instance_config(overrides["instances"], preset, **rest)
    return make_config(preset or "paper", **overrides)


def config_from_dict(values: dict[str, Any]) -> EnvConfig:
    """An ``EnvConfig`` from ``to_dict``'s output (say, a run folder's ``config.json``),
    through the same checks as a constructor's arguments; a field it lacks keeps the
    default, so a config saved before a field existed still loads."""
    return with_overrides(EnvConfig(), values)
