"""Chapter 4's multi-head experiment: a task that needs two relations, and which head learns which.

* :func:`two_offset_task`: the target at position ``t`` is ``(x[t-a] - x[t-b]) mod V`` for two
  offsets ``a ≠ b``, so a model must read two positions and tell them apart;
* :func:`offset_share`: how much of each head's attention falls on the key ``offset`` places back;
* :func:`heads_experiment`: train :class:`~attnkit.tasks.model.TinyAttentionModel` with
  several head counts at the same width and report accuracy and each head's offset shares.

Everything is seeded and runs on a laptop CPU in seconds.
"""

from __future__ import annotations

import torch

from .data import SequenceTask
from .model import TinyAttentionModel
from .training import evaluate, train

__all__ = ["two_offset_task", "offset_share", "heads_experiment"]


def two_offset_task(
    n_samples: int,
    seq_len: int,
    vocab: int,
    *,
    offsets: tuple[int, int] = (1, 3),
    seed: int = 0,
) -> SequenceTask:
    """Uniform tokens; the target at ``t`` is ``(x[t-a] - x[t-b]) mod vocab``, ``(a, b) = offsets``.

    The difference is not symmetric in the two tokens, so a model must know which token came
    from which offset. Positions ``t < max(a, b)`` have no target and are not scored.

    Returns:
        A :class:`SequenceTask` with ``T = seq_len``.
    """
    a, b = offsets
    if a < 1 or b < 1 or a == b:
        raise ValueError(f"offsets must be two different values ≥ 1, got {offsets}")
    first = max(a, b)
    if n_samples < 1 or seq_len <= first or vocab < 2:
        raise ValueError(
            f"need n_samples ≥ 1, seq_len > {first} and vocab ≥ 2; "
            f"got {n_samples}, {seq_len}, {vocab}"
        )
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (n_samples, seq_len), generator=gen)  # (N, T)
    t = torch.arange(first, seq_len)  # scored positions
    targets = torch.zeros_like(x)
    targets[:, t] = (x[:, t - a] - x[:, t - b]) % vocab
    scored = torch.zeros_like(x, dtype=torch.bool)
    scored[:, t] = True
    return SequenceTask(x, targets, scored, vocab)


def offset_share(weights: torch.Tensor, offset: int) -> torch.Tensor:
    """Mean weight each head puts on the key ``offset`` positions before the query.

    Args:
        weights: ``(B, H, L, S)`` attention weights with ``S = L``.
        offset: ``Δ ≥ 0``; only queries ``i ≥ Δ`` (those whose key ``i - Δ`` exists) count.

    Returns:
        ``(H,)``: for each head, the weight on key ``i - Δ`` averaged over batch and queries.
    """
    if weights.dim() != 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"weights must be (B, H, L, L), got {tuple(weights.shape)}")
    L = weights.shape[-1]
    if not 0 <= offset < L:
        raise ValueError(f"offset must lie in [0, {L}), got {offset}")
    diag = torch.diagonal(weights, offset=-offset, dim1=-2, dim2=-1)  # (B, H, L - Δ)
    return diag.mean(dim=(0, 2))  # (H,)


def heads_experiment(
    head_counts: tuple[int, ...] = (1, 2),
    *,
    seeds: tuple[int, ...] = (0, 1),
    d_model: int = 32,
    vocab: int = 5,
    seq_len: int = 12,
    offsets: tuple[int, int] = (1, 3),
    n_train: int = 2000,
    n_test: int = 500,
    steps: int = 400,
    lr: float = 1e-2,
) -> tuple[list[dict], dict]:
    """Train one causal block per (head count, seed) at the same width on :func:`two_offset_task`.

    Returns:
        ``(rows, models)``: one row per run, ``{"heads", "seed", "accuracy", "share_a",
        "share_b"}`` (accuracy on a held-out set; ``share_a``/``share_b`` lists, per head, of
        :func:`offset_share` at the two offsets on that set), and ``models[(heads, seed)]``
        the trained models (eval mode, ``need_weights`` on).
    """
    train_set = two_offset_task(n_train, seq_len, vocab, offsets=offsets, seed=0)
    test_set = two_offset_task(n_test, seq_len, vocab, offsets=offsets, seed=1)
    rows, models = [], {}
    for heads in head_counts:
        for seed in seeds:
            torch.manual_seed(seed)
            model = TinyAttentionModel(vocab, d_model, heads, max_len=seq_len)
            train(model, train_set, steps=steps, lr=lr, seed=seed, progress=False)
            accuracy = evaluate(model, test_set)["accuracy"]
            model.attention.attention.need_weights = True  # the softmax mechanism
            with torch.no_grad():
                model(test_set.inputs)
            weights = model.attention.attention_weights  # (N, H, T, T)
            rows.append(
                {
                    "heads": heads,
                    "seed": seed,
                    "accuracy": accuracy,
                    "share_a": offset_share(weights, offsets[0]).tolist(),
                    "share_b": offset_share(weights, offsets[1]).tolist(),
                }
            )
            models[(heads, seed)] = model
    return rows, models
