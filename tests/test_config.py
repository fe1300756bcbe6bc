"""Presets, overrides, and refusing bad values with a message that names field, value and rule."""

from __future__ import annotations

import dataclasses
import re

import pytest

from qan_env import PRESETS, LRScheduleEnv, make_config
from qan_env.config import parse_overrides


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
    assert dataclasses.replace(PRESETS[preset], epochs=3, decay_rate=0.1) == config


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("depth", 12, r"6n\+4"),
        ("depth", "40", r"6n\+4"),
        ("initial_lr", -0.1, "> 0.0"),
        ("initial_lr", float("nan"), "finite"),
        ("dataset", "imagenet", r"one of \('cifar10', 'synthetic'\)"),
        ("batch_size", 0, ">= 1"),
        ("batch_size", 512, r"at most synthetic_train_size \(256\)"),
        ("epochs", 2.5, "integer"),
        ("decay_rate", 1.0, r"\(0, 1\)"),
        ("decay_rate", 0.0, "> 0.0"),
        ("dropout", 1.0, r"\[0, 1\)"),
        ("momentum", 1.5, "<= 1.0"),
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
    with pytest.raises(ValueError, match=r"unknown setting\(s\) learning_rate: allowed are .*"):
        make_config("tiny", learning_rate=0.1)
    with pytest.raises(ValueError, match="unknown setting"):
        LRScheduleEnv(preset="tiny", lr=0.1)


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
