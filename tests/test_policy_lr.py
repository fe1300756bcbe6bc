"""``PolicyLR``: a trained policy as a PyTorch lr scheduler. The same run as an env episode
and as a plain loop with the scheduler gets the same lr at every iteration (one owner of
the observation); a state saved mid-run continues the same lrs; bad input is refused."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import run_script

from qan_env import LRScheduleEnv, PolicyLR
from qan_env.run_folder import read_run_config, saved_env
from qan_env.sb3 import SB3Policy
from qan_env.sb3.policy import write_ensemble

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "agents" / "pretrained" / "general"
# the shipped general policy's MDP on a run of the tiny preset's size (12 iterations of
# 32), around the run's own initial lr as PolicyLR runs it: the user's lr is the peak
TINY_RUN = {
    "instances": None,
    "anchor_lr": None,
    "synthetic_train_size": 256,
    "synthetic_test_size": 64,
    "depth": 10,
    "widen_factor": 1,
    "batch_size": 32,
    "epochs": 2,
    "heldout_fraction": 0.25,
    "eval_every_epochs": 0,
    "device": "cpu",
}


def env_lrs(seed: int) -> list[float]:
    """The lr of every iteration of the env's episode, the policy acting greedily."""
    env = LRScheduleEnv(config=saved_env(POLICY, TINY_RUN))
    policy = SB3Policy.load(POLICY)
    observation, _ = env.reset(seed=seed)
    policy.reset(seed)
    lrs, done, step = [], False, 0
    while not done:
        observation, _, done, _, info = env.step(policy.act(observation, step))
        lrs += [info["lr"]] * (info["iteration"] - len(lrs))
        step += 1
    return lrs


def fresh_run(seed: int):
    """The trainer of the env's run for ``seed``, as reset left it (the same weights, data
    order and optimizer), to be trained by a plain loop."""
    env = LRScheduleEnv(config=saved_env(POLICY, TINY_RUN))
    env.reset(seed=seed)
    trainer = env.running_episode().trainer
    for group in trainer.optimizer.param_groups:  # as a user makes it: at the initial lr
        group["lr"] = env.config.initial_lr
    return env.total_iterations, trainer


def loop_lrs(trainer, scheduler: PolicyLR, iterations: int) -> list[float]:
    """A plain training loop with ``scheduler``: the lr of each update."""
    lrs = []
    for _ in range(iterations):
        trainer.model.train()
        images, labels = trainer.next_batch()  # normalised and augmented
        loss = torch.nn.functional.cross_entropy(trainer.model(images), labels)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        scheduler.step(loss)
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()
    return lrs


def scheduler_for(trainer, total: int) -> PolicyLR:
    return PolicyLR(trainer.optimizer, POLICY, total, heldout_loss=trainer.heldout_loss)


def test_a_plain_loop_with_policy_lr_gets_the_env_s_lr_at_every_iteration():
    total, trainer = fresh_run(seed=3)
    lrs = loop_lrs(trainer, scheduler_for(trainer, total), total)
    expected = env_lrs(seed=3)
    assert len(lrs) == len(expected) == total
    assert lrs == expected
    assert len(set(lrs)) > 1  # the policy moved the lr: the equality is not of constants


def test_an_ensemble_folder_schedules_as_its_members_do(tmp_path):
    """Two copies of one policy: the mean of equal Q-values takes the policy's own actions,
    through the ensemble folder's config and members."""
    write_ensemble(tmp_path / "ensemble", {"a": POLICY, "b": POLICY}, {})
    total, trainer = fresh_run(seed=3)
    ensemble = PolicyLR(trainer.optimizer, tmp_path / "ensemble", total, trainer.heldout_loss)
    assert len(ensemble.policy.networks) == 2
    assert loop_lrs(trainer, ensemble, total) == env_lrs(seed=3)


def test_a_state_saved_mid_run_continues_the_same_lrs(tmp_path):
    total, trainer = fresh_run(seed=4)
    whole = loop_lrs(trainer, scheduler_for(trainer, total), total)
    _, trainer = fresh_run(seed=4)
    scheduler = scheduler_for(trainer, total)
    first = loop_lrs(trainer, scheduler, total // 2 + 1)
    torch.save(
        {"scheduler": scheduler.state_dict(), "trainer": trainer.state_dict()}, tmp_path / "s.pt"
    )
    saved = torch.load(tmp_path / "s.pt", weights_only=True)
    _, trainer = fresh_run(seed=4)
    trainer.load_state_dict(saved["trainer"])
    resumed = scheduler_for(trainer, total)
    resumed.load_state_dict(saved["scheduler"])
    assert first + loop_lrs(trainer, resumed, total - len(first)) == whole


def model_and_data():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    inputs, labels = torch.randn(64, 8), torch.randint(0, 3, (64,))
    return model, inputs, labels


def train(model, optimizer, scheduler, inputs, labels, iterations):
    lrs = []
    for step in range(iterations):
        rows = slice(8 * (step % 8), 8 * (step % 8) + 8)
        loss = torch.nn.functional.cross_entropy(model(inputs[rows]), labels[rows])
        optimizer.zero_grad()
        loss.backward()
        scheduler.step(loss)
        lrs.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
    return lrs


def test_adamw_with_two_param_groups_keeps_their_ratio_and_stays_in_the_bounds():
    model, inputs, labels = model_and_data()
    first, second = model[0], model[2]
    optimizer = torch.optim.AdamW(
        [{"params": first.parameters(), "lr": 1e-3}, {"params": second.parameters(), "lr": 4e-3}]
    )

    def heldout():
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(model(inputs[:16]), labels[:16])

    with pytest.raises(ValueError, match="observes SGD's momentum"):  # AdamW has none
        PolicyLR(optimizer, "general", total_steps=40, heldout_loss=heldout)
    scheduler = PolicyLR(optimizer, "quick", total_steps=40, heldout_loss=heldout)
    lrs = train(model, optimizer, scheduler, inputs, labels, 40)
    assert all(math.isfinite(a) and b == pytest.approx(4 * a) for a, b in lrs)
    low, high = min(scheduler.config.anchor_factors), max(scheduler.config.anchor_factors)
    base = scheduler.actions.base  # the cosine from the first group's 1e-3
    for iteration, (lr, _) in enumerate(lrs):
        level = base(iteration // scheduler.every, scheduler.decisions)
        if level > 0:
            assert low * (1 - 1e-9) <= lr / level <= high * (1 + 1e-9)
    assert scheduler.get_last_lr() == [group["lr"] for group in optimizer.param_groups]


def test_a_non_finite_loss_backs_off_to_the_lowest_lr():
    model, inputs, labels = model_and_data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = PolicyLR(
        optimizer, "general", total_steps=32, heldout_loss=lambda: torch.tensor(1.0)
    )
    train(model, optimizer, scheduler, inputs, labels, 4)
    with pytest.warns(RuntimeWarning, match="diverged"):
        for _ in range(4):
            optimizer.zero_grad()
            scheduler.step(torch.tensor(float("nan")))
            optimizer.step()
    assert scheduler.diverged
    options = [scheduler.actions.next_lr(a, scheduler.lr, scheduler.decided) for a in range(3)]
    train(model, optimizer, scheduler, inputs, labels, 2)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(min(options))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"total_steps": 0}, "total_steps=0 is not allowed"),
        ({"total_steps": 2.5}, "total_steps=2.5 is not allowed"),
        ({"total_steps": 8, "heldout_loss": None}, "pass heldout_loss"),
        ({"total_steps": 8, "policy": "no-such-policy"}, "neither a run folder nor a shipped"),
        ({"total_steps": 8, "lr": 0.0}, "the optimizer's lr is 0.0"),
    ],
)
def test_bad_arguments_are_refused_naming_what_is_allowed(kwargs, message):
    model, *_ = model_and_data()
    lr = kwargs.pop("lr", 0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    arguments = {"policy": "general", "heldout_loss": lambda: torch.tensor(1.0), **kwargs}
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        PolicyLR(optimizer, **arguments)
    assert optimizer.param_groups[0]["lr"] == lr  # nothing changed


def test_stepping_after_the_update_or_past_the_budget_is_refused():
    model, inputs, labels = model_and_data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = PolicyLR(
        optimizer, "general", total_steps=16, heldout_loss=lambda: torch.tensor(1.0)
    )
    loss = torch.nn.functional.cross_entropy(model(inputs[:8]), labels[:8])
    loss.backward()
    with pytest.raises(RuntimeError, match=r"before optimizer\.step"):
        optimizer.step()  # the loss was not handed in first
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = PolicyLR(
        optimizer, "general", total_steps=16, heldout_loss=lambda: torch.tensor(1.0)
    )
    train(model, optimizer, scheduler, inputs, labels, 16)
    with pytest.raises(RuntimeError, match="total_steps=16"):
        scheduler.step(torch.tensor(1.0))


@pytest.fixture(scope="module")
def momentum_policy(tmp_path_factory):
    """A one-episode policy on the tiny instance set that observes the optimizer (its
    runs' momentum 0.9)."""
    folder = tmp_path_factory.mktemp("momentum_policy")
    args = ["--instances", "tiny", "--env", "observe_optimizer=True", "--episodes", "1"]
    result = run_script("agents/sb3_dqn.py", *args, "--output", str(folder))
    assert result.returncode == 0, result.stderr
    return folder


@pytest.mark.slow
def test_a_policy_that_observes_the_momentum_reads_it_from_the_user_s_optimizer(
    momentum_policy,
):
    run = {"instances": None, "momentum": 0.5, "eval_every_epochs": 0, "device": "cpu"}
    env = LRScheduleEnv(config=saved_env(momentum_policy, run))
    assert read_run_config(momentum_policy).env.momentum == 0.9 != env.config.momentum
    expected, _ = env.reset(seed=2)
    trainer = env.running_episode().trainer
    for group in trainer.optimizer.param_groups:
        group["lr"] = env.config.initial_lr
    scheduler = PolicyLR(
        trainer.optimizer, momentum_policy, env.total_iterations, trainer.heldout_loss
    )
    seen = []
    act = scheduler.policy.act
    scheduler.policy.act = lambda observation, step: (
        seen.append(observation) or act(observation, step)
    )
    loop_lrs(trainer, scheduler, 1)
    at = env.feature_names.index("log_effective_lr")
    assert seen[0][at] == pytest.approx(math.log(env.config.initial_lr / 0.5))
    assert seen[0] == pytest.approx(expected)  # what the env's episode saw, lr for lr
    model, *_ = model_and_data()
    with pytest.raises(ValueError, match="observes SGD's momentum"):
        PolicyLR(torch.optim.Adam(model.parameters()), momentum_policy, 64, lambda: 1.0)
