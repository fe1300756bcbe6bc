"""The optimizers a run can train with: SGD (the paper's) and the tuning-free ones, each from
its own package (the ``baselines`` extra), at the settings its authors recommend.

The lr that drives a run (``Trainer.train(n, lr)``, set by an action or a schedule) is the
optimizer's ``lr``: SGD's step size; schedule-free SGD's step size (its authors: 10 to 50
times a classical lr, with a warm-up); a multiplier of the learning rate that D-Adaptation,
Prodigy and DoG estimate themselves (their authors: 1.0, with the schedule one would use
anyway for D-Adaptation and Prodigy, a cosine; constant for DoG).

- ``sgd`` (torch): the config's momentum, Nesterov and weight decay.
- ``schedulefree_sgd`` (``schedulefree.SGDScheduleFree``): the config's momentum (its
  interpolation between the iterate and the average; where the config's is 0, which the
  library refuses, its default 0.9) and weight decay, warm-up over the first 5% of the run;
  evaluated at its average ``x``, with the batch-norm statistics re-estimated there (its
  README's caveat for batch norm).
- ``dadapt_sgd`` (``dadaptation.DAdaptSGD``): the config's momentum and weight decay.
- ``prodigy`` (``prodigyopt.Prodigy``): its defaults (Adam betas, decoupled weight decay),
  weight decay 0.01, AdamW's usual value (its README's list: 0, 0.001, 0.01, 0.1).
- ``dog``, ``ldog`` (``dog-optimizer``'s ``DoG`` / ``LDoG``): ``reps_rel=1e-4``, its README's
  value for networks with batch norm, and the config's weight decay; evaluated on its
  polynomial-decay average of the weights, which its authors require for a fair result.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from qan_env.training.config import TrainingConfig

#: Schedule-free SGD warms up over this share of the run's iterations.
WARMUP_SHARE = 0.05
#: Batches of the training split (no augmentation) that re-estimate the batch-norm
#: statistics at schedule-free SGD's average, as cumulative averages (PreciseBN's way).
RECALIBRATION_BATCHES = 8
PRODIGY_WEIGHT_DECAY = 0.01
DOG_REPS_REL = 1e-4
#: Schedule-free SGD's own default momentum, for a run whose SGD has none.
SCHEDULEFREE_MOMENTUM = 0.9
#: Optimizers whose step fails at lr 0 (D-Adaptation's reads a sum it only makes when
#: lr > 0); at lr 0 the trainer skips their step, which would not move the weights anyway.
NO_STEP_AT_ZERO_LR = ("dadapt_sgd",)


def _need(package: str, module: str):
    """The module of an optional package, or an ImportError that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"optimizer needs the {package} package: pip install 'qan_env[baselines]' "
            f"(or pip install {package})"
        ) from error


def build_optimizer(config: TrainingConfig, model: nn.Module) -> torch.optim.Optimizer:
    """``config.optimizer`` over ``model``'s parameters. Each run sets the lr before every
    step; the libraries refuse 0 at construction, so they start at 1."""
    params = model.parameters()
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=0.0,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "schedulefree_sgd":
        schedulefree = _need("schedulefree", "schedulefree")
        warmup = max(1, round(WARMUP_SHARE * config.total_iterations))
        return schedulefree.SGDScheduleFree(
            params,
            lr=1.0,
            momentum=config.momentum or SCHEDULEFREE_MOMENTUM,
            weight_decay=config.weight_decay,
            warmup_steps=warmup,
        )
    if config.optimizer == "dadapt_sgd":
        dadaptation = _need("dadaptation", "dadaptation")
        return dadaptation.DAdaptSGD(
            params, lr=1.0, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "prodigy":
        prodigyopt = _need("prodigyopt", "prodigyopt")
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its weight decay's kind
            return prodigyopt.Prodigy(params, lr=1.0, weight_decay=PRODIGY_WEIGHT_DECAY)
    dog = _need("dog-optimizer", "dog")
    kind = dog.LDoG if config.optimizer == "ldog" else dog.DoG
    return kind(params, reps_rel=DOG_REPS_REL, lr=1.0, weight_decay=config.weight_decay)


class EvaluationWeights:
    """What an evaluation (test set, held-out loss) runs: the trained weights themselves,
    or the ones the optimizer's authors evaluate, kept beside them.

    SGD, D-Adaptation and Prodigy: the model as it is. Schedule-free SGD: its average ``x``
    (``optimizer.eval()``), with batch-norm statistics re-estimated at ``x``; the training
    state (``y``, running statistics) is put back afterwards, exactly. DoG: its polynomial-decay
    average of the weights (``PolynomialDecayAverager``), updated after every step.
    """

    def __init__(self, config: TrainingConfig, model: nn.Module, optimizer) -> None:
        self.model, self.optimizer = model, optimizer
        self.schedule_free = config.optimizer == "schedulefree_sgd"
        self.averager = None
        if config.optimizer in ("dog", "ldog"):
            dog = _need("dog-optimizer", "dog")
            self.averager = dog.PolynomialDecayAverager(model)  # keeps a deep copy

    def after_step(self) -> None:
        if self.averager is not None:
            self.averager.step()

    def before_training(self) -> None:
        if self.schedule_free:
            self.optimizer.train()

    @contextmanager
    def weights(self, calibration: torch.Tensor | None) -> Iterator[nn.Module]:
        """The model to evaluate; ``calibration``: normalised training images, for the
        batch-norm statistics of schedule-free SGD's average."""
        if self.averager is not None:
            yield self.averager.averaged_model
            return
        if not self.schedule_free:
            yield self.model
            return
        # The training state is put back exactly: the optimizer's swap back from x to y
        # (a lerp) would round, and an evaluation must not change the run.
        state = {name: value.clone() for name, value in self.model.state_dict().items()}
        self.optimizer.eval()
        try:
            _reestimate_batch_norm(self.model, calibration)
            yield self.model
        finally:
            self.optimizer.train()
            self.model.load_state_dict(state)

    def state_dict(self) -> dict:
        if self.averager is None:
            return {}
        return {"t": self.averager.t, "model": self.averager.averaged_model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.averager is not None:
            self.averager.t = state["t"]
            self.averager.averaged_model.load_state_dict(state["model"])


def _reestimate_batch_norm(model: nn.Module, images: torch.Tensor | None) -> None:
    """Batch-norm running statistics as the cumulative average over ``images`` at the
    current weights (momentum None), in training mode without gradients."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or images is None:
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    with torch.no_grad():
        for batch in images:
            model(batch)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
