"""A small RNN encoder–decoder with additive (Bahdanau) attention, and a reversal task.

Chapter 1's *learned* alignment: a GRU encoder reads the source, a GRU decoder builds one
context vector per output step, ``C_i = Σ_j α_ij h_j``, with
:class:`~attnkit.attention.AdditiveAttention` scoring its previous state against every
encoder state (Bahdanau, Cho & Bengio, 2015). Trained to reverse a sequence, its weights
``α_ij`` (decoder step × source position) should put their mass on the anti-diagonal
``j = T − 1 − i``; :func:`antidiagonal_mass` measures how much they do.

Shapes: ``N`` sequences, ``T`` positions (source and target have the same length here),
``V`` tokens, ``Dh`` hidden size. Token 0 is the decoder's start token and never occurs in
a source, so the ``V − 1`` others are the task's symbols.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..attention import AdditiveAttention

__all__ = [
    "reversal_task",
    "Seq2SeqAttention",
    "train_seq2seq",
    "seq2seq_accuracy",
    "antidiagonal_mass",
]

START = 0  # the decoder's first input token


def reversal_task(n_samples: int, seq_len: int, vocab: int, *, seed: int = 0):
    """``n_samples`` random sources ``(N, T)`` over tokens ``1 … V−1`` and their reversals.

    Returns ``(source (N, T), target (N, T))`` with ``target = source.flip(1)``.
    """
    for name, value, low in (
        ("n_samples", n_samples, 1),
        ("seq_len", seq_len, 1),
        ("vocab", vocab, 3),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int ≥ {low}, got {value!r}")
    g = torch.Generator().manual_seed(seed)
    source = torch.randint(1, vocab, (n_samples, seq_len), generator=g)  # (N, T)
    return source, source.flip(1)


class Seq2SeqAttention(nn.Module):
    """Bidirectional GRU encoder, GRU decoder with additive attention over its states.

    At output step ``i`` the decoder's previous state ``s_{i−1}`` is the query, the
    encoder states ``h_j`` are keys and values: ``C_i = attention(s_{i−1}, h, h)``. The
    next state reads the previous token and ``C_i``; the logits read ``s_i`` and ``C_i``.

    ``forward(source (N, T), target (N, T') or None)`` returns
    ``(logits (N, T', V), weights (N, T', T))``: with a target, the decoder is fed the
    true previous tokens (teacher forcing); without, its own greedy guesses, ``T' = T``.
    """

    def __init__(self, vocab_size: int, hidden: int = 64, *, seed: int = 0):
        super().__init__()
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be an int ≥ 1, got {hidden!r}")
        if (
            isinstance(vocab_size, bool)
            or not isinstance(vocab_size, int)
            or vocab_size < 2
        ):
            raise ValueError(f"vocab_size must be an int ≥ 2, got {vocab_size!r}")
        torch.manual_seed(seed)  # the layers below draw their initial weights from it
        self.embed = nn.Embedding(vocab_size, hidden)
        # bidirectional, as in Bahdanau et al.: h_j = [h→_j; h←_j] is centred on x_j
        self.encoder = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.attention = AdditiveAttention(
            hidden, key_size=2 * hidden, query_size=hidden
        )
        self.decoder = nn.GRUCell(3 * hidden, hidden)
        self.out = nn.Linear(3 * hidden, vocab_size)

    def forward(self, source: torch.Tensor, target: torch.Tensor | None = None):
        h, _ = self.encoder(self.embed(source))  # (N, T, 2Dh)
        s = h.new_zeros(
            h.shape[0], h.shape[2] // 2
        )  # (N, Dh): no summary C, only the C_i
        token = torch.full_like(source[:, 0], START)  # (N,)
        steps = source.shape[1] if target is None else target.shape[1]
        logits, weights = [], []
        for i in range(steps):
            context = self.attention(s[:, None], h, h)[:, 0]  # (N, 2Dh): C_i
            weights.append(self.attention.attention_weights[:, 0])  # (N, T)
            s = self.decoder(torch.cat([self.embed(token), context], -1), s)  # (N, Dh)
            logits.append(self.out(torch.cat([s, context], -1)))  # (N, V)
            token = logits[-1].argmax(-1) if target is None else target[:, i]
        return torch.stack(logits, 1), torch.stack(weights, 1)  # (N, T', V), (N, T', T)


def train_seq2seq(
    model: Seq2SeqAttention,
    source: torch.Tensor,
    target: torch.Tensor,
    *,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-2,
    seed: int = 0,
) -> list[float]:
    """Fit ``model`` with Adam and teacher forcing on random mini-batches of
    ``(source (N, T), target (N, T))``; returns the cross-entropy per step."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(source), (batch_size,), generator=gen)
        logits, _ = model(source[index], target[index])  # (n, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), target[index].flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def seq2seq_accuracy(
    model: Seq2SeqAttention, source: torch.Tensor, target: torch.Tensor
) -> dict:
    """Greedy decoding (no teacher forcing) of ``source (N, T)`` against ``target (N, T)``.

    Returns ``{"token": fraction of tokens right, "sequence": fraction of sequences all
    right, "weights": (N, T, T) attention weights}``.
    """
    model.eval()
    logits, weights = model(source)
    right = logits.argmax(-1) == target  # (N, T)
    return {
        "token": right.float().mean().item(),
        "sequence": right.all(-1).float().mean().item(),
        "weights": weights,
    }


def antidiagonal_mass(weights: torch.Tensor, width: int = 0) -> float:
    """Mean weight that row ``i`` of ``weights (..., T, T)`` puts within ``width`` columns
    of the anti-diagonal ``j = T − 1 − i``.

    With ``width=0``: 1 for a perfect reversal alignment, ``1/T`` for uniform weights.
    """
    if (
        not isinstance(weights, torch.Tensor)
        or weights.dim() < 2
        or weights.shape[-1] != weights.shape[-2]
    ):
        shape = (
            tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights)
        )
        raise ValueError(f"weights must be a (..., T, T) tensor, got {shape}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 0:
        raise ValueError(f"width must be an int ≥ 0, got {width!r}")
    T = weights.shape[-1]
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    band = ((i + j - (T - 1)).abs() <= width).to(weights.device)  # (T, T)
    return (weights * band).sum(-1).mean().item()
