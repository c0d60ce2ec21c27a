"""Training and evaluating a model on a :class:`~attnkit.tasks.data.SequenceTask`."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .data import SequenceTask

__all__ = ["train", "evaluate"]


def _loss_and_hits(model, task: SequenceTask):
    logits = model(task.inputs)  # (N, T, V)
    picked = logits[task.scored]  # (n, V)
    wanted = task.targets[task.scored]  # (n,)
    loss = F.cross_entropy(picked, wanted)
    hits = (picked.argmax(-1) == wanted).sum()
    return loss, hits, wanted.numel()


def train(
    model: nn.Module,
    data: SequenceTask,
    *,
    steps: int = 1000,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train",
) -> list[float]:
    """Fit ``model`` on ``data`` with Adam on random mini-batches; returns the loss per step.

    Args:
        model: maps ``(N, T)`` ids to ``(N, T, V)`` logits.
        data: the training task.
        steps, lr, batch_size: optimisation settings (a cosine-decayed learning rate).
        seed: seeds the mini-batch order (and PyTorch's global RNG, for dropout and hashing).
        progress: show a tqdm progress bar with the running loss.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    model.train()
    losses = []
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        index = torch.randint(0, len(data), (batch_size,), generator=gen)
        batch = data.subset(index)
        batch = SequenceTask(
            batch.inputs.to(device),
            batch.targets.to(device),
            batch.scored.to(device),
            batch.vocab_size,
        )
        loss, _, _ = _loss_and_hits(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if len(losses) % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / 50:.3f}")
    model.eval()
    return losses


@torch.no_grad()
def evaluate(model: nn.Module, data: SequenceTask, *, batch_size: int = 256) -> dict:
    """Mean loss and accuracy of ``model`` on the scored positions of ``data`` (eval mode).

    Returns:
        ``{"loss": float, "accuracy": float}`` (accuracy in ``[0, 1]``, per scored token).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, total_hits, total = 0.0, 0, 0
    for start in range(0, len(data), batch_size):
        batch = data.subset(torch.arange(start, min(start + batch_size, len(data))))
        batch = SequenceTask(
            batch.inputs.to(device),
            batch.targets.to(device),
            batch.scored.to(device),
            batch.vocab_size,
        )
        loss, hits, n = _loss_and_hits(model, batch)
        total_loss += loss.item() * n
        total_hits += int(hits)
        total += n
    model.train(was_training)
    return {"loss": total_loss / total, "accuracy": total_hits / total}
