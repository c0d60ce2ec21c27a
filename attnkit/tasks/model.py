"""The small attention model the chapters train: ``(N, T)`` token ids → ``(N, T, V)`` logits."""

from __future__ import annotations

import torch
from torch import nn

from ..block import TransformerBlock
from ..multihead import MultiHeadAttention
from ..registry import make_mechanism

__all__ = ["TinyAttentionModel", "use_mechanism"]

# state_dict keys written before the model held a TransformerBlock, and where they live now
_OLD_KEYS = {
    "norm1.": "block.norm1.",
    "attention.": "block.attention.",
    "norm2.": "block.norm2.",
    "ff.0.": "block.ff.linear1.",
    "ff.2.": "block.ff.linear2.",
}


class TinyAttentionModel(nn.Module):
    """One pre-norm Transformer block over token embeddings: ``(N, T)`` ids → ``(N, T, V)`` logits.

    ``x = tok(ids) + pos(t)``; ``x = block(x)``, i.e. ``x = x + MHA(LN(x))`` and
    ``x = x + FF(LN(x))`` (:class:`attnkit.block.TransformerBlock`, ``norm_first=True``,
    GELU, hidden size ``4 · d_model``); ``logits = out(LN(x))``.

    Args:
        vocab_size: V.
        d_model: model width (``num_heads · D``).
        num_heads: H.
        mechanism: a registered mechanism name (``"softmax"``, ``"lsh"`` …).
        mechanism_settings: its keyword settings (a dict) or ``None``.
        max_len: longest sequence (size of the learned position table).
        causal: let position ``t`` see only positions ``≤ t`` (a left-to-right model).

    ``model.attention`` is the block's :class:`~attnkit.multihead.MultiHeadAttention`.
    A ``state_dict`` saved before the block existed (keys ``norm1.``, ``attention.``,
    ``norm2.``, ``ff.0.``, ``ff.2.``) still loads.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        num_heads: int = 4,
        *,
        mechanism: str = "softmax",
        mechanism_settings: dict | None = None,
        max_len: int = 512,
        causal: bool = True,
    ):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(
                f"d_model={d_model} must be a multiple of num_heads={num_heads}"
            )
        self.max_len = max_len
        self.causal = causal
        # parameters are created in this order (tok, pos, block, norm3, out): seeded models
        # and the chapters' stored results depend on it
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.block = TransformerBlock(
            d_model,
            num_heads,
            4 * d_model,
            norm_first=True,
            activation="gelu",
            mechanism=mechanism,
            mechanism_settings=mechanism_settings,
        )
        self.norm3 = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, vocab_size)
        self._register_load_state_dict_pre_hook(_rename_old_keys)

    @property
    def attention(self) -> MultiHeadAttention:
        """The block's multi-head attention (its mechanism is ``attention.attention``)."""
        return self.block.attention

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids (N, T)`` int64 → logits ``(N, T, V)``."""
        if ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(
                f"ids must be a (N, T) int64 tensor, got {tuple(ids.shape)} {ids.dtype}"
            )
        if ids.shape[1] > self.max_len:
            raise ValueError(
                f"sequence length {ids.shape[1]} exceeds max_len={self.max_len}"
            )
        t = torch.arange(ids.shape[1], device=ids.device)
        x = self.tok(ids) + self.pos(t)  # (N, T, d_model)
        x = self.block(x, causal=self.causal)  # (N, T, d_model)
        return self.out(self.norm3(x))  # (N, T, V)


def _rename_old_keys(state_dict, prefix, *args):
    """Load hook: move keys of the model's earlier layout to ``block.…`` (in place)."""
    for key in list(state_dict):
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        for old, new in _OLD_KEYS.items():
            if rest.startswith(old):
                state_dict[prefix + new + rest[len(old) :]] = state_dict.pop(key)
                break


def use_mechanism(
    model: TinyAttentionModel, mechanism: str, mechanism_settings: dict | None = None
):
    """Replace the attention mechanism of ``model`` (in place) and return the model.

    Mechanisms without parameters (softmax, LSH, …) can be swapped after training.
    """
    new = make_mechanism(mechanism, **(mechanism_settings or {}))
    new.train(model.training)
    model.block.attention.attention = new.to(next(model.parameters()).device)
    return model
