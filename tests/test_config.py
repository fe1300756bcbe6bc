"""Presets, overrides, and refusing bad values with a message that names field, value and rule."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re

import numpy as np
import pytest

import qan_env
from qan_env import PRESETS, EnvConfig, LRScheduleEnv, make_config
from qan_env.cli import parse_overrides
from qan_env.config import config_from_dict
from qan_env.training import TrainingConfig


def test_the_paper_preset_is_the_papers_experiment():
    paper = make_config("paper")
    assert (paper.dataset, paper.depth, paper.widen_factor) == ("cifar10", 40, 4)
    assert (paper.batch_size, paper.epochs, paper.initial_lr) == (128, 50, 0.1)
    assert (paper.momentum, paper.nesterov, paper.weight_decay) == (0.9, True, 5e-4)
    assert (paper.iterations_per_step, paper.decay_rate) == (1, 0.05)
    assert paper.monitored_layers == "first_conv" and paper.restart_lr is None


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_is_valid_and_overridable(preset):
    config = make_config(preset, epochs=3, decay_rate=0.1)
    assert (config.epochs, config.decay_rate) == (3, 0.1)
    kept = [f.name for f in dataclasses.fields(EnvConfig) if f.name not in ("epochs", "decay_rate")]
    assert all(getattr(config, name) == getattr(PRESETS[preset], name) for name in kept)
    # what follows from the fields follows the override
    assert config.total_iterations == 3 * PRESETS[preset].iterations_per_epoch
    assert config.steps_per_episode == -(-config.total_iterations // config.iterations_per_step)


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("depth", 12, r"6n\+4"),
        ("depth", "40", r"6n\+4"),
        ("initial_lr", -0.1, "> 0.0"),
        ("initial_lr", float("nan"), "finite"),
        (
            "dataset",
            "imagenet",
            r"one of \('cifar10', .*'synthetic'\), or a name given to qan_env.register_dataset",
        ),
        ("batch_size", 0, ">= 1"),
        ("batch_size", 512, r"at most synthetic_train_size \(256\)"),
        ("epochs", 2.5, "integer"),
        ("decay_rate", 1.0, r"\(0, 1\)"),
        ("decay_rate", 0.0, "> 0.0"),
        ("dropout", 1.0, r"\[0, 1\)"),
        ("label_noise_max", 1.0, r"\(label_noise=0.0, 1\)"),
        ("momentum", 1.5, "<= 1.0"),
        ("momentum", 0.0, "> 0 with nesterov=True"),  # found by the fuzz test
        ("restart_lr", 0.0, "> 0.0"),
        ("lr_floor", 0.5, "at most the initial and restart"),
        ("reward_scale", -1.0, "> 0.0"),
        ("eval_every_epochs", -1, ">= 0"),
        ("iterations_per_step", 0, ">= 1"),
        ("keep_action", "yes", "True or False"),
        ("monitored_layers", "last_conv", "first_conv"),
        ("monitored_layers", (), "non-empty list"),
        ("device", "tpu", "'auto', 'cpu', 'cuda'"),
        ("max_loss", 0, "> 0.0"),
        ("precision", "fp16", r"one of \('fp32', 'bf16'\)"),
        ("channels_last", 1, "True or False"),
    ],
)
def test_bad_values_are_refused_with_field_value_and_rule(field, value, allowed):
    with pytest.raises(ValueError) as error:
        make_config("tiny", **{field: value})
    message = str(error.value)
    assert message.startswith(f"{field}={value!r}")
    assert re.search(allowed, message), message


def test_unknown_preset_and_unknown_setting_are_refused():
    with pytest.raises(ValueError, match=r"preset='huge' is not allowed: one of \('paper'"):
        make_config("huge")
    with pytest.raises(
        ValueError,
        match=r"unknown setting\(s\) learning_rate \(did you mean initial_lr\?\): allowed are",
    ):
        make_config("tiny", learning_rate=0.1)
    with pytest.raises(ValueError, match="unknown setting"):
        LRScheduleEnv(preset="tiny", lr=0.1)
    with pytest.raises(ValueError, match=r"depht \(did you mean depth\?\), epoch \(did you"):
        make_config("tiny", epoch=3, depht=10)


def test_unknown_layer_name_lists_the_conv_layers():
    with pytest.raises(ValueError) as error:
        LRScheduleEnv(preset="tiny", monitored_layers=["conv1", "block9.conv"])
    message = str(error.value)
    assert "monitored_layers=['conv1', 'block9.conv']" in message
    assert "block9.conv is not a conv layer of WRN-10-1" in message
    assert "block1.0.conv2" in message


def test_layer_list_is_accepted_as_a_list():
    env = LRScheduleEnv(preset="tiny", monitored_layers=["conv1", "block2.0.shortcut"])
    assert env.monitored_layers == ("conv1", "block2.0.shortcut")
    assert env.observation_space.shape == (2 * 192 + 1,)


def test_command_line_overrides_are_parsed_as_literals_or_words():
    pairs = ["epochs=5", "device=cpu", "restart_lr=0.05", "monitored_layers=['conv1']"]
    assert parse_overrides(pairs) == {
        "epochs": 5,
        "device": "cpu",
        "restart_lr": 0.05,
        "monitored_layers": ["conv1"],
    }
    with pytest.raises(ValueError, match="'epochs' is not FIELD=VALUE"):
        parse_overrides(["epochs"])


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_config_survives_its_json_round_trip(preset):
    config = make_config(preset, monitored_layers=["conv1", "block1.0.conv2"], restart_lr=0.05)
    again = config_from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and isinstance(again.monitored_layers, tuple)


def test_a_saved_config_is_checked_like_constructor_arguments():
    saved = make_config("tiny").to_dict()
    with pytest.raises(ValueError, match=r"^epochs=0 is not allowed"):
        config_from_dict({**saved, "epochs": 0})
    with pytest.raises(ValueError, match="unknown setting"):
        config_from_dict({**saved, "no_such_field": 1})
    del saved["max_loss"]  # saved before the field existed: it takes its default
    assert config_from_dict(saved).max_loss == EnvConfig().max_loss


def test_the_episode_length_follows_the_config_with_one_rounding():
    assert make_config("paper").steps_per_episode == 50 * (50_000 // 128) == 19_500
    assert make_config("quick", iterations_per_step=10).steps_per_episode == 40
    assert make_config("quick", iterations_per_step=400).steps_per_episode == 1
    assert make_config("quick", iterations_per_step=401).steps_per_episode == 1
    assert make_config("quick", iterations_per_step=399).steps_per_episode == 2


@pytest.mark.parametrize("module", [qan_env.config, qan_env.training.config])
def test_every_config_field_has_a_docstring(module):
    """Each field is documented where it is declared (the line below it), as CleanRL's Args."""
    tree = ast.parse(inspect.getsource(module))
    checked = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in ("EnvConfig", "TrainingConfig"):
            body = node.body
            for index, statement in enumerate(body):
                if isinstance(statement, ast.AnnAssign):
                    after = body[index + 1] if index + 1 < len(body) else None
                    documented = isinstance(after, ast.Expr) and isinstance(
                        after.value, ast.Constant
                    )
                    assert documented, f"{node.name}.{statement.target.id} has no docstring"
                    checked += 1
    run_fields = len(dataclasses.fields(TrainingConfig))
    own_fields = (
        run_fields
        if module is qan_env.training.config
        else len(dataclasses.fields(EnvConfig)) - run_fields
    )
    assert checked == own_fields > 5


NUMERIC_FIELDS = [
    f.name for f in dataclasses.fields(EnvConfig) if f.type in ("int", "float", "float | None")
]


@pytest.mark.parametrize("field", NUMERIC_FIELDS)
@pytest.mark.parametrize("value", [10**400, -(10**400), 1e308, float("inf"), True, "1", [1]])
def test_no_numeric_field_overflows_hangs_or_passes_an_absurd_value(field, value):
    with pytest.raises(ValueError, match=rf"^{field}=.* is not allowed: "):
        make_config("tiny", **{field: value})


def test_sizes_are_bounded_so_that_a_run_fits_in_memory():
    for field, value in [
        ("synthetic_train_size", 10**6),
        ("depth", 1_000_000),
        ("widen_factor", 10**6),
        ("synthetic_seed", 2**63),
        ("epochs", 10**9),
    ]:
        with pytest.raises(ValueError, match=rf"^{field}=.* is not allowed"):
            make_config("tiny", **{field: value})


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    config = make_config("tiny", epochs=np.int64(3), initial_lr=np.float32(0.25))
    assert config.epochs == 3 and type(config.epochs) is int
    assert config.initial_lr == 0.25 and type(config.initial_lr) is float


def test_a_network_too_large_for_memory_is_refused_before_it_is_built():
    with pytest.raises(ValueError, match=r"depth=1000 is not allowed: with widen_factor=32, a "):
        make_config("tiny", depth=1000, widen_factor=32)  # 16 billion parameters
    assert make_config("tiny", depth=28, widen_factor=10).depth == 28  # WRN-28-10 is fine
