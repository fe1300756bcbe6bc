"""``PolicyLR``: a trained policy as a PyTorch learning-rate scheduler, in any training loop.

    scheduler = PolicyLR(optimizer, "general", total_steps=epochs * len(loader),
                         heldout_loss=heldout)   # needed when the policy observes it
    for images, labels in loader:                # total_steps iterations in all
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        scheduler.step(loss)                     # sets the lr of the update below
        optimizer.step()

The scheduler observes the run with the env's own code (``RunObserver``, the observation
layout, the action set), so the policy sees what it saw in training: at the start the first
batch's loss and gradient at the initial weights and the held-out loss there; after each
decision interval the interval's losses, its last gradient, the held-out loss after its
last update and how far it moved the weights. That fixes where ``step(loss)`` goes: after
``backward()`` (the first decision needs the first loss and gradient before any update)
and before ``optimizer.step()``; the later decisions are taken right after the update
that ends an interval (an optimizer step hook), before the next forward pass. A loop with
``PolicyLR`` then makes the env's decisions on the same run, lr for lr.

Each param group keeps its ratio to the first group's initial lr, as torch schedulers do.
A run whose interval loss is not finite (or above the policy's ``max_loss``) has diverged,
where the env would end the episode: from then on every decision is the action that gives
the lowest lr, and ``diverged`` says so.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from qan_env.config import with_overrides
from qan_env.episode import make_actions
from qan_env.observation import RunObserver
from qan_env.run_folder import read_run_config
from qan_env.sb3.policy import SB3Policy
from qan_env.training.trainer import gradient_norm

#: Where the shipped policies live, by the short names ``PolicyLR`` takes.
PRETRAINED = Path(__file__).resolve().parents[2] / "agents" / "pretrained"


def policy_folder(policy: str | Path) -> Path:
    """``policy`` as a run folder: a path, or a shipped policy's short name."""
    folder = Path(policy)
    if not folder.is_dir() and isinstance(policy, str) and (PRETRAINED / policy).is_dir():
        folder = PRETRAINED / policy
    if not folder.is_dir():
        shipped = sorted(p.name for p in PRETRAINED.iterdir()) if PRETRAINED.is_dir() else []
        raise FileNotFoundError(
            f"policy={str(policy)!r} is neither a run folder nor a shipped policy: give the "
            f"folder an agent wrote, or one of {shipped} (in {PRETRAINED})"
        )
    return folder


class PolicyLR(LRScheduler):
    """A learning-rate scheduler whose every decision is a trained policy's, acting greedily.

    Args:
        optimizer: any optimizer with param groups (SGD, AdamW, ...; SGD or one whose
            groups hold a ``momentum`` for a policy that observes it, as "general" does);
            its lr at construction is the peak the policy's decisions are relative to
            (holding throughout gives the cosine from it), also for a policy trained around
            a peak of its own.
        policy: a run folder of ``agents/sb3_dqn.py`` or a shipped policy's name ("general",
            "quick"), loaded without pickle; its ``config.json`` gives the decision rule,
            the action set and the observation.
        total_steps: the run's training iterations (``step`` calls): decisions are spaced
            as the env spaces them for a run this long.
        heldout_loss: a callable returning the mean loss on held-out training data, called
            at decision points only; required when the policy observes it.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        policy: str | Path,
        total_steps: int,
        heldout_loss: Any = None,
    ) -> None:
        folder = policy_folder(policy)
        saved = read_run_config(folder).env
        if "paper" in saved.observation.split("+"):
            raise ValueError(
                f"{folder} observes the weight statistics of the env's Wide ResNet layers "
                f"(observation={saved.observation!r}), which another model does not have: "
                f"PolicyLR runs policies of the training observation"
            )
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps={total_steps!r} is not allowed: an int >= 1")
        every = saved.iterations_per_step
        if saved.decisions > 0:  # the env's rule: the interval follows the budget
            every = max(1, -(-total_steps // saved.decisions))
        if total_steps < every:
            raise ValueError(
                f"total_steps={total_steps} is shorter than one decision interval of this "
                f"policy ({every} iterations): at least {every}"
            )
        if saved.uses_heldout_loss and not callable(heldout_loss):
            raise ValueError(
                f"{folder} observes the loss on held-out training data: pass heldout_loss, "
                f"a callable that returns it (say, the mean loss on a fifth of the training "
                f"set kept out of training, in eval mode)"
            )
        groups = optimizer.param_groups
        if not groups or any("lr" not in group for group in groups):
            raise ValueError("the optimizer has no param group with an 'lr': nothing to set")
        initial_lr = float(groups[0].get("initial_lr", groups[0]["lr"]))
        if not (math.isfinite(initial_lr) and initial_lr > 0):
            raise ValueError(
                f"the optimizer's lr is {initial_lr}: the policy's decisions are relative to "
                f"the initial lr, which must be a finite number > 0"
            )
        # The optimizer's lr is the peak the policy corrects, where its training runs had
        # one of their own (``anchor_lr``: the cosine tuned once on them, for SGD there).
        run = {"initial_lr": initial_lr, "anchor_lr": None}
        if saved.observe_optimizer:  # the policy observes the momentum: this optimizer's
            if not isinstance(groups[0].get("momentum"), (int, float)):
                raise ValueError(
                    f"{folder} observes SGD's momentum (observe_optimizer=True), and this "
                    f"optimizer's param groups have none: PolicyLR runs it with "
                    f"torch.optim.SGD (or an optimizer whose groups hold a 'momentum')"
                )
            run["momentum"] = float(groups[0]["momentum"])
            run["nesterov"] = bool(groups[0].get("nesterov", False))  # with it, a valid SGD
        self.config = with_overrides(saved, run)
        self.every, self.total_steps = every, total_steps
        self.decisions = -(-total_steps // every)
        self.actions = make_actions(self.config, self.decisions)
        self.parameters = [p for group in groups for p in group["params"]]
        self.observer = RunObserver(self.config, self.actions, self.parameters, (), total_steps)
        self.policy = SB3Policy.load(folder)
        self.policy.reset(0)
        self.heldout_loss = heldout_loss if saved.uses_heldout_loss else None
        self.lr, self.iteration, self.updates, self.decided = initial_lr, 0, 0, 0
        self.diverged = False
        self._losses: list[torch.Tensor] = []
        self._action: int | None = None
        # the held-out loss at the initial weights, as the env's reset measures it: before
        # the first forward pass moves the batch-norm statistics
        self._start_heldout = self._heldout()
        self.observer.mark()
        super().__init__(optimizer)
        self._hook = optimizer.register_step_post_hook(self._after_update)

    def _heldout(self) -> torch.Tensor | None:
        if self.heldout_loss is None:
            return None
        value = self.heldout_loss()
        return torch.as_tensor(value, dtype=torch.float32).detach().reshape(())

    def get_lr(self) -> list[float]:
        """Every group's lr: the policy's, times the group's ratio to the first group."""
        first = self.base_lrs[0]
        return [self.lr * (base / first) for base in self.base_lrs]

    def step(self, loss: torch.Tensor | float | None = None) -> None:
        """Take in an iteration's training loss, after ``backward()`` and before
        ``optimizer.step()``; at the first, the policy's first decision sets the lr."""
        if loss is None:
            if self._step_count == 0:  # the base class's initial step: the initial lr
                self._step_count = 1
                self._set_lrs()
                return
            raise TypeError("PolicyLR.step(loss): give the iteration's training loss")
        if self.updates != self.iteration:
            raise RuntimeError(
                "PolicyLR.step(loss) goes after loss.backward() and before optimizer.step(): "
                f"the optimizer has stepped {self.updates} times for {self.iteration} losses"
            )
        if self.iteration >= self.total_steps:
            raise RuntimeError(
                f"PolicyLR was made for total_steps={self.total_steps} iterations: this is "
                f"iteration {self.iteration + 1}"
            )
        loss = torch.as_tensor(loss).detach().float().reshape(1)
        self._losses.append(loss)
        self.iteration += 1
        if self.iteration == 1:
            observation, value, heldout = self.observer.observe(
                loss, self._gradient_norm, self._start_heldout, 0, self.lr, None, starting=True
            )
            self._decide(observation, value, heldout)
        if self.iteration % self.every == 0 and self.iteration < self.total_steps:
            # the interval's last gradient, read before the next backward replaces it
            self._last_gradient = self._gradient_norm()

    def _gradient_norm(self) -> torch.Tensor:
        if not self.observer.needs_gradient:
            return torch.zeros(())
        return gradient_norm(self.parameters).float()

    def _after_update(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        """After an update: at an interval's end, the next decision."""
        self.updates += 1
        if self.updates != self.iteration:
            raise RuntimeError(
                "PolicyLR.step(loss) goes after loss.backward() and before optimizer.step(): "
                f"the optimizer stepped without it (update {self.updates})"
            )
        if self.iteration == self.total_steps:
            self._hook.remove()  # the run is over: the optimizer is the user's again
            return
        if self.iteration % self.every:
            return  # inside an interval
        losses = torch.cat(self._losses)
        self._losses = []
        last_gradient = self._last_gradient
        observation, value, heldout = self.observer.observe(
            losses,
            lambda: last_gradient,
            self._heldout(),
            self.iteration,
            self.lr,
            self._action,
            starting=False,
        )
        self._decide(observation, value, heldout)

    def _decide(self, observation: np.ndarray, loss: float, heldout: float | None) -> None:
        """The policy's action on ``observation``, or, once the run has diverged (where the
        env would end the episode), the action that gives the lowest lr."""
        limit = self.config.max_loss
        measured = [loss] if heldout is None else [loss, heldout]
        finite = all(math.isfinite(v) and v <= limit for v in measured)
        if not (finite and np.isfinite(observation).all()) and not self.diverged:
            self.diverged = True
            warnings.warn(
                f"PolicyLR: the run diverged by iteration {self.iteration} (loss {loss:.4g}): "
                f"every later decision takes the lowest lr",
                RuntimeWarning,
                stacklevel=3,
            )
        if self.diverged:
            lrs = [self.actions.next_lr(a, self.lr, self.decided) for a in range(len(self.actions))]
            action = int(np.argmin(lrs))
        else:
            action = self.policy.act(observation, self.decided)
        self.lr = self.actions.next_lr(action, self.lr, self.decided)
        self._action = action
        self.decided += 1
        self.observer.mark()
        self._set_lrs()

    def _set_lrs(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """What continues the same decisions: the counters, the lr, the last action, the
        interval's losses so far and the observer's running averages (tensors, plain
        values: ``torch.save`` it beside the optimizer's state)."""
        frames = self.policy.frames
        return {
            "lr": self.lr,
            "iteration": self.iteration,
            "updates": self.updates,
            "decided": self.decided,
            "action": self._action,
            "diverged": self.diverged,
            "losses": [loss.clone() for loss in self._losses],
            "last_gradient": getattr(self, "_last_gradient", None),
            "observer": self.observer.state_dict(),
            "frames": None if frames is None else torch.from_numpy(frames.stacked_obs.copy()),
            "base_lrs": list(self.base_lrs),
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["total_steps"] != self.total_steps:
            raise ValueError(
                f"the state is of a run of total_steps={state['total_steps']}, this "
                f"scheduler's is {self.total_steps}"
            )
        device = self.parameters[0].device
        self.observer.load_state_dict(state["observer"], device)
        self.lr, self.iteration, self.updates = state["lr"], state["iteration"], state["updates"]
        self.decided, self._action = state["decided"], state["action"]
        self.diverged = state["diverged"]
        self._losses = [loss.to(device) for loss in state["losses"]]
        if state["last_gradient"] is not None:
            self._last_gradient = state["last_gradient"].to(device)
        self.base_lrs = list(state["base_lrs"])
        if state["frames"] is not None:  # make the history, then put the saved one in it
            self.policy.stack(np.zeros(len(self.observer.layout), np.float32))
            self.policy.frames.stacked_obs[...] = state["frames"].numpy()
        self.policy.episode_started = self.decided > 0
        self._set_lrs()
