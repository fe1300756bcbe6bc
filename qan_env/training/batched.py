"""Many training runs of one config as one batched computation.

``train_together(trainers, iterations, lrs)`` trains ``N`` independent runs (each its own
``Trainer``: weights, momentum, batch-norm statistics, data order and augmentation) for
``iterations`` SGD iterations, run ``i`` at ``lrs[i]``, as if each had called
``trainer.train(iterations, lrs[i])``. Their parameters are stacked along a new first
dimension and the network runs once per iteration under ``torch.func.vmap`` (convolutions
become grouped convolutions, batch norm stays per run); SGD is applied with a per-run lr
broadcast over each run's slice (momentum, Nesterov and weight decay are elementwise, so
the update is each run's own). The results equal the runs' own ``train`` up to float
rounding (another order of summation): on a GPU, where a small network is bound by kernel
launches, ``N`` runs cost about as much as one. On a CPU, grouped convolutions are slower
than separate ones, and separate ``train`` calls are the faster way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.func import functional_call, vmap
from torch.nn import functional as F

from qan_env.training.trainer import Trainer


def batchable(trainers: Sequence[Trainer]) -> str | None:
    """Why these runs cannot be trained together, or None when they can."""
    if not trainers:
        return "there are no runs"
    if any(trainer.optimizer_name != "sgd" for trainer in trainers):
        return "the batched update is SGD's; other optimizers keep their own state"
    if any(trainer.dropout for trainer in trainers):
        return "dropout draws each run's masks from its own generator, which vmap cannot"
    if len({trainer.device for trainer in trainers}) > 1:
        return "the runs are on different devices"
    shapes = {
        (trainer.loader.batch_size, *(p.shape for p in trainer.model.parameters()))
        for trainer in trainers
    }
    if len(shapes) > 1:
        return "the runs' networks or batch sizes differ (instances of a set)"
    return None


def train_together(
    trainers: Sequence[Trainer], iterations: int, lrs: Sequence[float]
) -> torch.Tensor:
    """Train every run ``iterations`` iterations at its lr; their losses, ``(N, iterations)``."""
    reason = batchable(trainers)
    if reason is not None:
        raise ValueError(f"these runs cannot be trained together: {reason}")
    if iterations < 1:
        raise ValueError(f"iterations={iterations} is not allowed: train at least one")
    if len(lrs) != len(trainers):
        raise ValueError(f"{len(lrs)} learning rates were given for {len(trainers)} runs")
    template, device = trainers[0].model, trainers[0].device
    hyper = trainers[0].optimizer.param_groups[0]
    momentum, nesterov, weight_decay = hyper["momentum"], hyper["nesterov"], hyper["weight_decay"]
    names = [name for name, _ in template.named_parameters()]
    models = [trainer.model for trainer in trainers]
    # Contiguous: vmap has no batching rule for the strides of channels_last tensors.
    params = {
        name: torch.stack([model.get_parameter(name).detach() for model in models])
        .contiguous()
        .requires_grad_()
        for name in names
    }
    buffers = {
        name: torch.stack([model.get_buffer(name) for model in models])
        for name, _ in template.named_buffers()
    }
    velocity = {
        name: torch.stack(
            [_momentum_buffer(trainer, trainer.model.get_parameter(name)) for trainer in trainers]
        )
        for name in names
    }
    lr = torch.tensor(list(lrs), dtype=torch.float32, device=device)
    # each run's lr, shaped to broadcast over its slice of each stacked parameter
    run_lrs = {name: lr.view(-1, *[1] * (value.dim() - 1)) for name, value in params.items()}
    bf16 = trainers[0].bf16

    def loss_of(
        run_params: dict, run_buffers: dict, images: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = functional_call(template, (run_params, run_buffers), (images,))
        return F.cross_entropy(logits.float(), labels)

    batched_loss = vmap(loss_of)
    template.train()
    losses = torch.empty(len(trainers), iterations, device=device)
    for index in range(iterations):
        batches = [trainer.next_batch() for trainer in trainers]
        images = torch.stack([images for images, _ in batches])
        labels = torch.stack([labels for _, labels in batches])
        loss = batched_loss(params, buffers, images, labels)
        gradients = dict(
            zip(names, torch.autograd.grad(loss.sum(), list(params.values())), strict=True)
        )
        with torch.no_grad():
            for name in names:
                parameter = params[name]
                step = gradients[name].add(parameter, alpha=weight_decay)
                velocity[name].mul_(momentum).add_(step)
                step = step.add(velocity[name], alpha=momentum) if nesterov else velocity[name]
                parameter.sub_(step * run_lrs[name])
        losses[:, index] = loss.detach()
    with torch.no_grad():
        for run, trainer in enumerate(trainers):
            for name in names:
                parameter = trainer.model.get_parameter(name)
                parameter.copy_(params[name][run])
                # Copies, not views: a view would keep (and save) all N runs' tensors.
                parameter.grad = gradients[name][run].clone()
                if momentum:
                    state = trainer.optimizer.state[parameter]
                    state["momentum_buffer"] = velocity[name][run].clone()
            for name, value in buffers.items():
                trainer.model.get_buffer(name).copy_(value[run])
            trainer.iteration += iterations
    return losses


def _momentum_buffer(trainer: Trainer, parameter: torch.nn.Parameter) -> torch.Tensor:
    """The run's momentum for ``parameter``; zeros before its first step (SGD's first step
    sets the buffer to the step, the same as updating zeros)."""
    buffer = trainer.optimizer.state.get(parameter, {}).get("momentum_buffer")
    return torch.zeros_like(parameter) if buffer is None else buffer.detach()
