"""Chapter 4's multi-head experiment: a task that needs two relations at once.

* :func:`pair_task`: at position ``t`` the model must name the **pair**
  ``(x[t-a], x[t-b])``, the tokens ``a`` and ``b`` places back, in that order;
* :class:`PositionalHeadsModel`: one attention layer and nothing else. Its queries and
  keys are learned position vectors, its values the token embeddings, so a head can only
  choose *where* to look; a linear read-out per slot names the two tokens;
* :func:`offset_share`: how much of each head's attention falls on the key ``Δ`` back;
* :func:`heads_experiment`: train the model with several head counts at the same width
  and report accuracy and each head's offset shares.

Why one head cannot do it: a head's output at ``t`` is one weighted average of the
values, ``α v(x[t-a]) + β v(x[t-b]) + …``, with weights that do not depend on the
tokens. A linear read-out of one such sum cannot name both tokens in order for every
pair (summing the conditions for ``(k, m)`` and ``(m, k)`` asks for ``α > β`` in one
slot and ``α < β`` in the other). Two heads can each fetch one token.

Everything is seeded and trains on one CPU thread in about a second per model.
"""

from __future__ import annotations

import torch
from torch import nn

from ..multihead import MultiHeadAttention
from .data import SequenceTask
from .training import evaluate, train

__all__ = [
    "pair_task",
    "split_pair",
    "PositionalHeadsModel",
    "offset_share",
    "heads_experiment",
]


def _check_pair_settings(seq_len: int, vocab: int, offsets) -> None:
    """Raise ``ValueError`` unless ``offsets`` are two different ints ≥ 1, ``vocab ≥ 2``
    and ``seq_len > max(offsets)``."""
    if (
        len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or min(offsets) < 1
        or offsets[0] == offsets[1]
    ):
        raise ValueError(f"offsets must be two different ints ≥ 1, got {offsets}")
    if vocab < 2:
        raise ValueError(f"vocab must be at least 2, got {vocab}")
    if seq_len <= max(offsets):
        raise ValueError(
            f"seq_len must exceed the largest offset {max(offsets)}, got {seq_len}"
        )


def pair_task(
    n_samples: int,
    seq_len: int,
    vocab: int,
    *,
    offsets: tuple[int, int] = (1, 3),
    seed: int = 0,
) -> SequenceTask:
    """Uniform tokens; the target at ``t`` is the ordered pair ``(x[t-a], x[t-b])``.

    The pair is stored as one id, ``x[t-a] · V + x[t-b]`` with ``V = vocab`` (undo it
    with :func:`split_pair`), so the returned task has ``vocab_size = V²``: inputs use
    the ids ``< V``, targets all ``V²``. Positions ``t < max(a, b)`` have no target
    and are not scored.

    Args:
        n_samples: N ≥ 1 sequences.
        seq_len: T > max(a, b).
        vocab: V ≥ 2 input tokens.
        offsets: ``(a, b)``, two different ints ≥ 1.
        seed: seeds the tokens.

    Returns:
        A :class:`SequenceTask`; ``inputs``, ``targets``, ``scored`` are ``(N, T)``.
    """
    _check_pair_settings(seq_len, vocab, offsets)
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    a, b = offsets
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (n_samples, seq_len), generator=gen)  # (N, T)
    t = torch.arange(max(a, b), seq_len)  # the scored positions
    targets = torch.zeros_like(x)
    targets[:, t] = x[:, t - a] * vocab + x[:, t - b]
    scored = torch.zeros_like(x, dtype=torch.bool)
    scored[:, t] = True
    return SequenceTask(x, targets, scored, vocab * vocab)


def split_pair(ids: torch.Tensor, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Undo :func:`pair_task`'s encoding: pair ids ``(...)`` → ``(first, second)``.

    ``first = ids // vocab`` and ``second = ids % vocab``, each of the shape of ``ids``.
    """
    if vocab < 2:
        raise ValueError(f"vocab must be at least 2, got {vocab}")
    return ids // vocab, ids % vocab


class PositionalHeadsModel(nn.Module):
    """One causal attention layer whose heads can only choose *where* to look.

    ``p_t = pos(t)`` (learned), ``e_s = tok(ids_s)``;
    ``h = MHA(queries = p, keys = p, values = e)`` (causal, ``H`` heads of size
    ``D = d_model / H``); two linear read-outs score the first and the second token of
    the pair, ``f = W_1 h`` and ``g = W_2 h`` (each ``(N, T, V)``), and the logit of the
    pair ``(i, j)`` is ``f_i + g_j`` — so the softmax over the ``V²`` pairs is the
    product of one softmax per slot.

    Args:
        vocab: V input tokens.
        d_model: total width ``H · D``, the same for every head count compared.
        num_heads: H.
        max_len: longest sequence (size of the position table).

    ``model.attention`` is the :class:`~attnkit.multihead.MultiHeadAttention`; it keeps
    its last weights ``(N, H, T, T)`` in ``attention_weights``.
    """

    def __init__(self, vocab: int, d_model: int, num_heads: int, *, max_len: int):
        super().__init__()
        if vocab < 2 or max_len < 1:
            raise ValueError(f"need vocab ≥ 2 and max_len ≥ 1, got {vocab}, {max_len}")
        if num_heads < 1 or d_model % num_heads != 0:
            raise ValueError(
                f"d_model={d_model} must be a positive multiple of "
                f"num_heads={num_heads}"
            )
        self.vocab = vocab
        self.max_len = max_len
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.attention = MultiHeadAttention(
            d_model,
            num_heads,
            0.0,
            need_weights=True,
            query_size=d_model,
            key_size=d_model,
            value_size=d_model,
        )
        self.out = nn.Linear(d_model, 2 * vocab)  # W_1 and W_2, stacked

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids (N, T)`` int64 in ``[0, V)`` → pair logits ``(N, T, V²)``."""
        if ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(
                f"ids must be a (N, T) int64 tensor, got {tuple(ids.shape)} {ids.dtype}"
            )
        N, T = ids.shape
        if T > self.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len={self.max_len}")
        p = self.pos(torch.arange(T, device=ids.device)).expand(N, T, -1)  # (N, T, E)
        e = self.tok(ids)  # (N, T, E)
        h = self.attention(p, p, e, causal=True)  # (N, T, E)
        first, second = self.out(h).chunk(2, dim=-1)  # (N, T, V) each
        return (first[..., :, None] + second[..., None, :]).flatten(-2)  # (N, T, V²)


def offset_share(
    weights: torch.Tensor, offset: int, *, first_query: int | None = None
) -> torch.Tensor:
    """Mean weight each head puts on the key ``offset`` positions before the query.

    Args:
        weights: ``(B, H, L, S)`` attention weights with ``S = L``.
        offset: ``Δ ≥ 0``.
        first_query: only queries ``i ≥ first_query`` count; ``None`` means ``Δ`` (every
            query whose key ``i - Δ`` exists). It must lie in ``[Δ, L)``.

    Returns:
        ``(H,)``: for each head, the weight on key ``i - Δ``, averaged over the batch
        and the queries counted.
    """
    if weights.dim() != 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"weights must be (B, H, L, L), got {tuple(weights.shape)}")
    L = weights.shape[-1]
    if not 0 <= offset < L:
        raise ValueError(f"offset must lie in [0, {L}), got {offset}")
    start = offset if first_query is None else first_query
    if not offset <= start < L:
        raise ValueError(f"first_query must lie in [{offset}, {L}), got {first_query}")
    diag = torch.diagonal(weights, offset=-offset, dim1=-2, dim2=-1)  # (B, H, L - Δ)
    return diag[..., start - offset :].mean(dim=(0, 2))  # (H,)


def heads_experiment(
    head_counts: tuple[int, ...] = (1, 2),
    *,
    seeds: tuple[int, ...] = (0, 1),
    d_model: int = 16,
    vocab: int = 5,
    seq_len: int = 8,
    offsets: tuple[int, int] = (1, 3),
    n_train: int = 2000,
    n_test: int = 500,
    steps: int = 150,
    lr: float = 1e-2,
) -> tuple[list[dict], dict]:
    """Train a :class:`PositionalHeadsModel` per (heads, seed) on :func:`pair_task`.

    Every model has the same width ``d_model``; the training and test sets are the same
    for all (seeds 0 and 1 of :func:`pair_task`), ``seed`` seeds the initial weights and
    the mini-batches.

    Returns:
        ``(rows, models)``: one row per run, ``{"heads", "seed", "accuracy",
        "first_accuracy", "second_accuracy", "share_a", "share_b"}`` — on the test set,
        the share of scored positions where the whole pair, its first token and its
        second token are right, and (lists, one value per head) :func:`offset_share` at
        ``a`` and at ``b`` over the scored queries — and ``models[(heads, seed)]``,
        the trained models (eval mode).
    """
    _check_pair_settings(seq_len, vocab, offsets)
    if not head_counts or not seeds:
        raise ValueError(
            f"need at least one head count and one seed, got {head_counts}, {seeds}"
        )
    for heads in head_counts:
        if heads < 1 or d_model % heads != 0:
            raise ValueError(
                f"every head count must divide d_model={d_model}, got {head_counts}"
            )
    train_set = pair_task(n_train, seq_len, vocab, offsets=offsets, seed=0)
    test_set = pair_task(n_test, seq_len, vocab, offsets=offsets, seed=1)
    a, b = offsets
    scored = max(a, b)  # the first scored query
    wanted = split_pair(test_set.targets[test_set.scored], vocab)  # 2 × (n,)
    rows, models = [], {}
    for heads in head_counts:
        for seed in seeds:
            torch.manual_seed(seed)
            model = PositionalHeadsModel(vocab, d_model, heads, max_len=seq_len)
            train(model, train_set, steps=steps, lr=lr, seed=seed, progress=False)
            accuracy = evaluate(model, test_set)["accuracy"]
            with torch.no_grad():
                logits = model(test_set.inputs)  # (N, T, V²)
            weights = model.attention.attention_weights  # (N, H, T, T)
            got = split_pair(logits[test_set.scored].argmax(-1), vocab)  # 2 × (n,)
            first, second = (
                (g == w).float().mean().item() for g, w in zip(got, wanted)
            )
            rows.append(
                {
                    "heads": heads,
                    "seed": seed,
                    "accuracy": accuracy,
                    "first_accuracy": first,
                    "second_accuracy": second,
                    "share_a": offset_share(weights, a, first_query=scored).tolist(),
                    "share_b": offset_share(weights, b, first_query=scored).tolist(),
                }
            )
            models[(heads, seed)] = model
    return rows, models
