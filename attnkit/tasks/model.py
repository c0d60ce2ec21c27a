"""The small attention model the chapters train: ``(N, T)`` token ids → ``(N, T, V)`` logits."""
from __future__ import annotations

import torch
from torch import nn

from ..multihead import MultiHeadAttention
from ..registry import make_mechanism

__all__ = ["TinyAttentionModel", "use_mechanism"]


class TinyAttentionModel(nn.Module):
    """One attention block over token embeddings: ``(N, T)`` ids → ``(N, T, V)`` logits.

    ``x = tok(ids) + pos(t)``; ``x = x + MHA(LN(x))``; ``x = x + FF(LN(x))``; ``logits = out(LN(x))``.

    Args:
        vocab_size: V.
        d_model: model width (``num_heads · D``).
        num_heads: H.
        mechanism: a registered mechanism name (``"softmax"``, ``"lsh"`` …).
        mechanism_settings: its keyword settings (a dict) or ``None``.
        max_len: longest sequence (size of the learned position table).
        causal: let position ``t`` see only positions ``≤ t`` (a left-to-right model).
    """

    def __init__(self, vocab_size: int, d_model: int = 64, num_heads: int = 4, *,
                 mechanism: str = "softmax", mechanism_settings: dict | None = None,
                 max_len: int = 512, causal: bool = True):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} must be a multiple of num_heads={num_heads}")
        self.max_len = max_len
        self.causal = causal
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = MultiHeadAttention(
            d_model, num_heads, mechanism=mechanism, mechanism_settings=mechanism_settings,
            query_size=d_model, key_size=d_model, value_size=d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.norm3 = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids (N, T)`` int64 → logits ``(N, T, V)``."""
        if ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(f"ids must be a (N, T) int64 tensor, got {tuple(ids.shape)} {ids.dtype}")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"sequence length {ids.shape[1]} exceeds max_len={self.max_len}")
        t = torch.arange(ids.shape[1], device=ids.device)
        x = self.tok(ids) + self.pos(t)  # (N, T, d_model)
        h = self.norm1(x)
        x = x + self.attention(h, h, h, causal=self.causal)  # (N, T, d_model)
        x = x + self.ff(self.norm2(x))
        return self.out(self.norm3(x))  # (N, T, V)


def use_mechanism(model: TinyAttentionModel, mechanism: str, mechanism_settings: dict | None = None):
    """Replace the attention mechanism of ``model`` (in place) and return the model.

    Mechanisms without parameters (softmax, LSH, …) can be swapped after training.
    """
    new = make_mechanism(mechanism, **(mechanism_settings or {}))
    new.train(model.training)
    model.attention.attention = new.to(next(model.parameters()).device)
    return model
