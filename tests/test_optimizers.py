"""The tuning-free optimizers, from their own packages, train through the same trainer,
seeds and data order as SGD, evaluate the weights their authors evaluate, and continue a
saved episode bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qan_env import LRScheduleEnv, make_config
from qan_env.evaluation import run_episode
from qan_env.schedules import Cosine
from qan_env.training import build_trainer, load_device_data
from qan_env.training.batched import batchable
from qan_env.training.config import OPTIMIZERS

LR = {"sgd": 0.1, "schedulefree_sgd": 1.0}  # the others: 1.0, a multiplier of their own


def lr_of(optimizer: str) -> float:
    return LR.get(optimizer, 1.0)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimizer_trains_a_tiny_episode_down_a_cosine_to_zero(optimizer):
    env = LRScheduleEnv(preset="tiny", optimizer=optimizer)
    env.reset(seed=0)
    first = [p.detach().clone() for p in env.episode.trainer.model.parameters()]
    record = run_episode(env, Cosine(lr_of(optimizer)), seed=0)
    assert record.lrs[-1] == 0.0 and len(record.lrs) == env.steps_per_episode
    assert not record.diverged and all(math.isfinite(r) for r in record.rewards)
    assert 0.0 <= record.final_accuracy <= 1.0
    env.reset(seed=0)
    env.step_lr(lr_of(optimizer))
    after = list(env.episode.trainer.model.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(first, after, strict=True))  # it trains


def trainer_of(optimizer: str):
    config = make_config("tiny", optimizer=optimizer)
    return build_trainer(config, load_device_data(config), np.random.default_rng(0))


@pytest.mark.parametrize("optimizer", ["schedulefree_sgd", "dog"])
def test_evaluating_changes_nothing_of_the_training(optimizer):
    lr = lr_of(optimizer)
    evaluated, plain = trainer_of(optimizer), trainer_of(optimizer)
    evaluated.train(4, lr)
    first = evaluated.evaluate()
    assert evaluated.evaluate() == first  # the same weights each time
    evaluated.train(4, lr)
    plain.train(8, lr)
    ours, theirs = evaluated.model.state_dict(), plain.model.state_dict()
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs)


def test_schedule_free_is_evaluated_at_its_average_and_dog_on_its_averaged_weights():
    schedule_free = trainer_of("schedulefree_sgd")
    schedule_free.train(6, 1.0)
    with schedule_free.evaluation.weights(schedule_free._calibration()) as model:
        at_x = [p.detach().clone() for p in model.parameters()]
    at_y = list(schedule_free.model.parameters())
    assert any(not torch.equal(x, y) for x, y in zip(at_x, at_y, strict=True))
    dog = trainer_of("dog")
    dog.train(6, 1.0)
    averaged = dog.evaluation.averager.averaged_model
    with dog.evaluation.weights(None) as model:
        assert model is averaged and model is not dog.model


@pytest.mark.parametrize(
    "optimizer",
    [pytest.param(o, marks=pytest.mark.slow) for o in ("schedulefree_sgd", "prodigy", "dog")],
)
def test_a_saved_episode_continues_bit_for_bit_with_each_optimizer(tmp_path, optimizer):
    config = make_config("tiny", optimizer=optimizer)
    lr = lr_of(optimizer)
    first = LRScheduleEnv(config=config)
    first.reset(seed=1)
    for _ in range(5):
        first.step_lr(lr)
    first.save(tmp_path / "episode.pt")
    expected = [first.step_lr(lr) for _ in range(first.steps_per_episode - 5)]
    second = LRScheduleEnv(config=config)
    second.load(tmp_path / "episode.pt")
    continued = [second.step_lr(lr) for _ in range(second.steps_per_episode - 5)]
    for (obs, *rest), (obs2, *rest2) in zip(continued, expected, strict=True):
        np.testing.assert_array_equal(obs, obs2)
        assert rest == rest2


def test_runs_of_another_optimizer_are_not_batched():
    trainers = [trainer_of("prodigy"), trainer_of("prodigy")]
    assert "SGD's" in batchable(trainers)
    assert batchable([trainer_of("sgd"), trainer_of("sgd")]) is None


def test_an_unknown_optimizer_is_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"optimizer='adam' is not allowed: one of \('sgd'"):
        make_config("tiny", optimizer="adam")


@pytest.mark.parametrize("optimizer", ["sgd", "schedulefree_sgd", "dadapt_sgd"])
def test_a_run_without_momentum_trains_with_each_momentum_optimizer(optimizer):
    """Schedule-free SGD refuses momentum 0; on such a run it keeps its own default."""
    trainer = build_trainer(
        make_config("tiny", optimizer=optimizer, momentum=0.0, nesterov=False),
        load_device_data(make_config("tiny")),
        np.random.default_rng(0),
    )
    trainer.train(2, lr_of(optimizer))
    (group,) = trainer.optimizer.param_groups
    assert group["momentum"] == (0.9 if optimizer == "schedulefree_sgd" else 0.0)
