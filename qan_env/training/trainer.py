"""Trainer: a model, an SGD optimizer and device-resident data, driven a few iterations at a time.

``train(n, lr)`` runs ``n`` SGD iterations at ``lr`` and returns their losses as a tensor
that stays on the device: the caller decides when (and whether) to copy anything back.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from qan_env.training.config import TrainingConfig
from qan_env.training.images import ImageSet
from qan_env.training.loader import DeviceLoader, Normalizer
from qan_env.training.optimizers import (
    NO_STEP_AT_ZERO_LR,
    RECALIBRATION_BATCHES,
    EvaluationWeights,
    build_optimizer,
)

#: Images per forward pass when evaluating, by device type. On a 2-core CPU, 1,024 images
#: of the quick network took 0.54 s in one batch and 0.11 to 0.18 s in batches of 128 (the
#: activations stay in cache); a GPU wants large batches.
EVAL_BATCH_SIZES = {"cpu": 128, "cuda": 1000}


def gradient_norm(parameters: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of ``parameters``' gradients together, on their device; 0 where none has
    one yet (the env's runs and ``PolicyLR`` read it the same way)."""
    gradients = [p.grad for p in parameters if p.grad is not None]
    if not gradients:
        return torch.zeros((), device=parameters[0].device)
    return torch.nn.utils.get_total_norm(gradients)


class Trainer:
    """Trains ``model`` with SGD on ``loader``'s batches, as ``config`` says.

    From ``config``: momentum, Nesterov, weight decay, precision, memory layout and
    compilation. ``qan_env.training.run.build_trainer`` makes one, with its model and
    loader, from the config alone.
    """

    def __init__(
        self,
        config: TrainingConfig,
        model: nn.Module,
        loader: DeviceLoader,
        test_set: ImageSet,
        heldout_set: ImageSet | None = None,
        label_noise: float = 0.0,
    ) -> None:
        self.memory_format = (
            torch.channels_last if config.channels_last else torch.contiguous_format
        )
        self.model = model.to(memory_format=self.memory_format)
        self.forward = torch.compile(model) if config.compile_model else model
        self.bf16 = config.precision == "bf16"
        self.dropout = config.dropout
        self.loader = loader
        self.test_set = test_set
        self.heldout_set = heldout_set
        self.label_noise = label_noise
        """The share of this run's training labels that are noisy (drawn per run or not)."""
        self.optimizer_name = config.optimizer
        self.optimizer = build_optimizer(config, model)
        self.evaluation = EvaluationWeights(config, model, self.optimizer)
        self.iteration = 0
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def state_dict(self) -> dict:
        """Everything the rest of the run depends on, as tensors and plain values: weights
        and batch-norm statistics, the optimizer's momentum, the last gradient (a training
        signal reads its norm), the iteration, the batch drawn ahead, and the loader's."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "gradients": [p.grad for p in self.model.parameters()],
            "iteration": self.iteration,
            "pending": self._pending,
            "loader": self.loader.state_dict(),
            "evaluation": self.evaluation.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """``state_dict``'s inverse, on a trainer built for the same config and data."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for parameter, gradient in zip(self.model.parameters(), state["gradients"], strict=True):
            parameter.grad = None if gradient is None else gradient.to(parameter.device)
        self.iteration = state["iteration"]
        pending = state["pending"]
        self._pending = None if pending is None else tuple(t.to(self.device) for t in pending)
        self.loader.load_state_dict(state["loader"])
        self.evaluation.load_state_dict(state["evaluation"])

    def _loss(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        reduction: str = "mean",
        forward: nn.Module | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy (in float32) and logits of ``forward`` (default: the trained
        network), under bf16 autocast when asked for."""
        forward = self.forward if forward is None else forward
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = forward(images.contiguous(memory_format=self.memory_format))
        return F.cross_entropy(logits.float(), labels, reduction=reduction), logits

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next training batch: the one ``initial_loss`` drew ahead, or the loader's."""
        if self._pending is not None:
            batch, self._pending = self._pending, None
            return batch
        return self.loader.next_batch()

    def initial_loss(self, backward: bool = False) -> torch.Tensor:
        """Loss at the current weights on the next training batch, changing no weight.

        A forward pass in training mode (as the training losses are measured) with the
        batch-norm running statistics restored afterwards; the batch is the one the next
        ``train`` call starts with. With ``backward``, its gradient is left in the
        parameters' ``.grad`` for ``gradient_norm`` (the next ``train`` clears it).
        """
        if self._pending is None:
            self._pending = self.loader.next_batch()
        images, labels = self._pending
        buffers = {name: value.clone() for name, value in self.model.named_buffers()}
        self.model.train()
        with torch.set_grad_enabled(backward):
            loss, _ = self._loss(images, labels)
        if backward:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        for name, value in self.model.named_buffers():
            value.copy_(buffers[name])
        return loss.detach()

    def gradient_norm(self) -> torch.Tensor:
        """The L2 norm of the last backward pass's gradient (of the loss alone, without weight
        decay), over every parameter, on the device; 0 before any."""
        return gradient_norm(list(self.model.parameters()))

    def train(self, iterations: int, lr: float) -> torch.Tensor:
        """Run ``iterations`` SGD steps at ``lr``; their losses, on the device, float32."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.evaluation.before_training()
        steps = lr > 0 or self.optimizer_name not in NO_STEP_AT_ZERO_LR
        self.model.train()
        losses = torch.empty(iterations, device=self.device)
        for index in range(iterations):
            images, labels = self.next_batch()
            loss, _ = self._loss(images, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if steps:
                self.optimizer.step()
            self.evaluation.after_step()
            losses[index] = loss.detach()
        self.iteration += iterations
        return losses

    def _evaluate_on(self, images_set: ImageSet) -> torch.Tensor:
        """Summed cross-entropy and number of correct answers on ``images_set`` in eval
        mode, no augmentation, on the weights the optimizer evaluates: a tensor of two on
        the device."""
        normalizer: Normalizer = self.loader.normalizer
        total_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        batch = EVAL_BATCH_SIZES[self.device.type]
        with self.evaluation.weights(self._calibration()) as model:
            forward = self.forward if model is self.model else model
            model.eval()
            with torch.no_grad():
                for start in range(0, len(images_set), batch):
                    images = normalizer(images_set.images[start : start + batch])
                    labels = images_set.labels[start : start + batch]
                    loss, logits = self._loss(images, labels, reduction="sum", forward=forward)
                    total_loss += loss
                    correct += (logits.argmax(dim=1) == labels).sum()
        return torch.stack([total_loss, correct.float()])

    def _calibration(self) -> list[torch.Tensor] | None:
        """The first batches of the training split, normalised and not augmented: what
        re-estimates batch-norm statistics where the optimizer needs it (schedule-free)."""
        if not self.evaluation.schedule_free:
            return None
        images = self.loader.data.images[: RECALIBRATION_BATCHES * self.loader.batch_size]
        return [self.loader.normalizer(part) for part in images.split(self.loader.batch_size)]

    def evaluate(self) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on the whole test set (no augmentation)."""
        total_loss, correct = self._evaluate_on(self.test_set).tolist()
        return total_loss / len(self.test_set), correct / len(self.test_set)

    def heldout_loss(self) -> torch.Tensor:
        """Mean cross-entropy on the held-out part of the training split, on the device."""
        if self.heldout_set is None:
            raise RuntimeError("this run has no held-out set: build it with heldout_size > 0")
        return self._evaluate_on(self.heldout_set)[0] / len(self.heldout_set)
