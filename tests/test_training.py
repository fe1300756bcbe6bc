"""The Wide ResNet and the trainer, used on their own without any RL."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from qan_env.config import make_config
from qan_env.training import TrainingConfig, build_trainer, load_device_data
from qan_env.training.models import WideResNet, build_wide_resnet, check_depth, conv_layer_names
from qan_env.training.trainer import Trainer

# The tiny preset's run (an EnvConfig is a TrainingConfig), driven here without any env.
SMALL_RUN = make_config("tiny", synthetic_test_size=100)


def test_wrn_40_4_has_the_papers_size():
    model = build_wide_resnet(40, 4, 0.0, torch.Generator().manual_seed(0), None)
    assert sum(p.numel() for p in model.parameters()) == 8_949_210  # 8.95M
    assert len(conv_layer_names(40, 4)) == 40  # conv1, 18 blocks of 2 convs, 3 shortcuts
    assert conv_layer_names(40, 4)[0] == "conv1"


@pytest.mark.parametrize("depth", [9, 12, 4, 0, 41])
def test_depth_must_be_6n_plus_4(depth):
    with pytest.raises(
        ValueError, match=rf"depth={depth} is not allowed: a Wide ResNet depth, 6n\+4"
    ):
        check_depth(depth)


def test_initialisation_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    first = build_wide_resnet(10, 1, 0.3, torch.Generator().manual_seed(7), None)
    second = build_wide_resnet(10, 1, 0.3, torch.Generator().manual_seed(7), None)
    third = build_wide_resnet(10, 1, 0.3, torch.Generator().manual_seed(8), None)
    assert torch.equal(torch.get_rng_state(), state)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first.conv1.weight, third.conv1.weight)
    # He-normal, fan-out: std sqrt(2 / (out * k * k)).
    assert first.block3[0].conv2.weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, 0.05)
    assert torch.all(first.bn.running_var == 1) and torch.all(first.bn.running_mean == 0)


def test_dropout_draws_from_its_generator_only():
    model = build_wide_resnet(10, 1, 0.5, torch.Generator().manual_seed(0), torch.Generator())
    images = torch.randn(4, 3, 32, 32)
    model.block1[0].dropout.generator.manual_seed(1)
    first = model(images)
    model.block1[0].dropout.generator.manual_seed(1)
    state = torch.get_rng_state()
    assert torch.equal(model(images), first)
    assert torch.equal(torch.get_rng_state(), state)
    model.eval()
    assert torch.equal(model(images), model(images))
    assert WideResNet(16, 2)(images).shape == (4, 10)


def make_trainer(seed: int = 0, **changes: float) -> Trainer:
    """The small run on ``seed``, with ``changes`` to its config."""
    config = dataclasses.replace(SMALL_RUN, **changes)
    return build_trainer(config, load_device_data(config), np.random.default_rng(seed))


def test_a_run_is_sized_and_built_from_its_config_alone():
    assert (SMALL_RUN.iterations_per_epoch, SMALL_RUN.total_iterations) == (8, 8 * 2)
    assert TrainingConfig().total_iterations == 50 * (50_000 // 128)  # the paper: 19,500
    first, again, other = make_trainer(seed=3), make_trainer(seed=3), make_trainer(seed=4)
    assert first.loader.iterations_per_epoch == SMALL_RUN.iterations_per_epoch
    assert first.model.fc.out_features == 10 and len(first.test_set) == 100
    assert torch.equal(first.model.conv1.weight, again.model.conv1.weight)
    assert not torch.equal(first.model.conv1.weight, other.model.conv1.weight)
    # The same seed gives the same data order and augmentation, so the same losses.
    assert torch.equal(first.train(3, lr=0.05), again.train(3, lr=0.05))


def test_train_returns_one_loss_per_iteration_and_updates_the_weights():
    trainer = make_trainer()
    before = trainer.model.conv1.weight.clone()
    losses = trainer.train(3, lr=0.05)
    assert losses.shape == (3,) and torch.isfinite(losses).all()
    assert trainer.iteration == 3
    assert not torch.equal(before, trainer.model.conv1.weight)
    group = trainer.optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (
        0.05,
        0.9,
        True,
        5e-4,
    )


def test_initial_loss_changes_nothing_and_is_the_first_iterations_loss():
    trainer = make_trainer()
    state = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    initial = trainer.initial_loss()
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, state[name]), name
    assert trainer.iteration == 0
    # Same weights, same batch, training mode: the first update's loss is L_0 itself.
    assert trainer.train(1, lr=0.1)[0].item() == pytest.approx(initial.item(), abs=1e-6)


def relabelled(trainer: Trainer, clean: Trainer) -> float:
    """The share of ``trainer``'s training labels that differ from the clean run's."""
    return (trainer.loader.data.labels != clean.loader.data.labels).float().mean().item()


def test_label_noise_relabels_its_share_and_draws_it_per_run_when_asked():
    clean = make_trainer(5)
    fixed = make_trainer(5, label_noise=0.5)
    # The same network and data order: only the labels change, about 9 in 10 of those
    # redrawn (a redrawn label may be the true one).
    assert torch.equal(fixed.model.conv1.weight, clean.model.conv1.weight)
    assert fixed.label_noise == 0.5 and clean.label_noise == 0.0
    assert 0.35 < relabelled(fixed, clean) < 0.55
    drawn = {seed: make_trainer(seed, label_noise=0.1, label_noise_max=0.7) for seed in (5, 6)}
    shares = [trainer.label_noise for trainer in drawn.values()]
    assert all(0.1 <= share < 0.7 for share in shares) and shares[0] != shares[1]
    assert make_trainer(5, label_noise=0.1, label_noise_max=0.7).label_noise == shares[0]
    assert abs(relabelled(drawn[5], clean) - 0.9 * shares[0]) < 0.12


def test_evaluate_gives_a_loss_and_an_accuracy():
    trainer = make_trainer()
    loss, accuracy = trainer.evaluate()
    assert loss > 0 and 0.0 <= accuracy <= 1.0
    assert (loss, accuracy) == trainer.evaluate()


@pytest.mark.slow
def test_the_learning_rate_matters_on_the_synthetic_set():
    """Same start, same batches: a sensible lr learns in 12 epochs, a tiny one barely moves."""
    final = {}
    for lr in (0.1, 0.001):
        trainer = make_trainer(seed=0)
        losses = trainer.train(96, lr=lr)
        final[lr] = losses[-16:].mean().item()
    assert final[0.001] > 2.2  # about log(10): chance
    assert final[0.1] < 0.8 * final[0.001]
