"""Multi-head attention built around a pluggable mechanism.

Multi-head attention does four things, and this module keeps them apart:

1. project queries, keys and values with ``W_q``, ``W_k``, ``W_v`` (``(B, L, ·) → (B, L, H·D)``);
2. split the last axis into ``H`` heads (:func:`split_heads`: ``(B, L, H·D) → (B, H, L, D)``);
3. let a **mechanism** (see :mod:`attnkit.mechanisms`) map ``(B, H, L, D)`` queries,
   keys and values to ``(B, H, L, Dv)`` outputs — exact softmax attention by default,
   or any name in :data:`attnkit.registry.MECHANISMS`;
4. merge the heads back (:func:`merge_heads`) and mix them with ``W_o``.

:func:`multi_head_attention` writes the whole computation out with explicit weight
matrices (the reference); :class:`MultiHeadAttention` owns the projections and has
d2l 1.0.3's signature. With the softmax mechanism and no weights requested its
mechanism calls PyTorch's fused ``scaled_dot_product_attention`` (the fast path).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import (
    check_counts,
    check_lengths,
    check_multi_head_inputs,
    check_projection_inputs,
    check_rank,
    check_split_heads,
)
from .masking import combine_masks, lengths_to_mask, masked_softmax
from .registry import get_mechanism_class

__all__ = [
    "split_heads",
    "merge_heads",
    "valid_lens_to_mask",
    "multi_head_attention",
    "MultiHeadAttention",
]


def split_heads(X: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Split the feature axis into heads: ``(B, L, H·D) → (B, H, L, D)``.

    Head ``h`` gets features ``h·D … (h+1)·D − 1``. The result is a view (no copy).
    """
    check_split_heads(X, num_heads)
    B, L, HD = X.shape
    return X.reshape(B, L, num_heads, HD // num_heads).transpose(1, 2)  # (B, H, L, D)


def merge_heads(X: torch.Tensor) -> torch.Tensor:
    """Undo :func:`split_heads`: ``(B, H, L, D) → (B, L, H·D)``."""
    check_rank("X", X, 4, "(B, H, L, D)")
    B, H, L, D = X.shape
    return X.transpose(1, 2).reshape(B, L, H * D)  # (B, L, H*D)


def valid_lens_to_mask(
    valid_lens: torch.Tensor, num_queries: int, num_keys: int
) -> torch.Tensor:
    """d2l-style valid lengths as a boolean mask with a head axis (``True`` = allowed).

    Args:
        valid_lens: ``(B,)`` or ``(B, L)`` integer lengths in ``[0, S]``.

    Returns:
        ``(B, 1, 1, S)`` for ``(B,)`` lengths (a key-padding mask, which every mechanism
        accepts) or ``(B, 1, L, S)`` for ``(B, L)`` lengths.
    """
    check_lengths(valid_lens, num_keys, num_queries)
    if valid_lens.dim() == 1:
        return lengths_to_mask(valid_lens, 1, num_keys)[:, None]  # (B, 1, 1, S)
    return lengths_to_mask(valid_lens, num_queries, num_keys)[:, None]  # (B, 1, L, S)


def _project(X, W, b):
    return F.linear(X, W, b)  # (B, L, rows of W)


def multi_head_attention(
    queries,
    keys,
    values,
    W_q,
    W_k,
    W_v,
    W_o,
    num_heads: int,
    *,
    b_q=None,
    b_k=None,
    b_v=None,
    b_o=None,
    mask=None,
    causal: bool = False,
):
    """Multi-head scaled dot-product attention, written out (the reference).

    Weight matrices use ``nn.Linear``'s layout ``(out_features, in_features)``.

    Args:
        queries: ``(B, L, Dq)``; keys: ``(B, S, Dk)``; values: ``(B, S, Dvin)``.
        W_q, W_k: ``(H·D, Dq)``, ``(H·D, Dk)``; W_v: ``(H·Dv, Dvin)``;
            W_o: ``(E, H·Dv)``.
        num_heads: H. Each head's scores are scaled by ``1/√D`` (the head size, not
            ``H·D``).
        b_q, b_k, b_v, b_o: optional biases.
        mask: boolean broadcastable to ``(B, H, L, S)``, ``True`` = allowed.
        causal: query ``i`` sees keys ``j ≤ i``.

    Returns:
        ``(output (B, L, E), weights (B, H, L, S))``; with no keys (``S = 0``) every
        head gives zeros, so the output is ``b_o`` (or zeros).
    """
    biases = {"b_q": b_q, "b_k": b_k, "b_v": b_v, "b_o": b_o}
    check_multi_head_inputs(
        queries, keys, values, W_q, W_k, W_v, W_o, num_heads, biases, mask
    )
    q = split_heads(_project(queries, W_q, b_q), num_heads)  # (B, H, L, D)
    k = split_heads(_project(keys, W_k, b_k), num_heads)  # (B, H, S, D)
    v = split_heads(_project(values, W_v, b_v), num_heads)  # (B, H, S, Dv)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, L, S)
    weights = masked_softmax(scores, mask=mask, causal=causal)  # (B, H, L, S)
    heads = weights @ v  # (B, H, L, Dv)
    return _project(merge_heads(heads), W_o, b_o), weights  # (B, L, E)


def _linear(in_features: int | None, out_features: int, bias: bool) -> nn.Module:
    """``nn.LazyLinear`` (d2l 1.0.3) when the input size is not given, else ``nn.Linear``."""
    if in_features is None:
        return nn.LazyLinear(out_features, bias=bias)
    return nn.Linear(in_features, out_features, bias=bias)


def _in_features(layer: nn.Module) -> int | None:
    """The input size of a projection, or ``None`` while a lazy one is not yet sized."""
    if (
        isinstance(layer, nn.modules.lazy.LazyModuleMixin)
        and layer.has_uninitialized_params()
    ):
        return None
    return layer.in_features


class MultiHeadAttention(nn.Module):
    """Multi-head attention with d2l 1.0.3's signature and a pluggable mechanism.

    ``MultiHeadAttention(num_hiddens, num_heads, dropout, bias=False)`` builds ``W_q``,
    ``W_k``, ``W_v`` as ``nn.LazyLinear(num_hiddens)`` (input sizes inferred on the first
    call, as in d2l) unless ``query_size=``/``key_size=``/``value_size=`` are given, and
    ``W_o`` as ``nn.Linear(num_hiddens, num_hiddens)``. Each head has size
    ``D = num_hiddens // num_heads``.

    Args (keyword-only):
        mechanism: a name in :data:`attnkit.registry.MECHANISMS` (``"softmax"``,
            ``"local"``, …) or a mechanism module (``forward(q, k, v, *, mask, causal)``).
        mechanism_settings: keyword settings for a named mechanism, e.g.
            ``{"window": 16}``, or ``{"fast": False}`` to take softmax's explicit path.
        need_weights: keep the attention weights ``(B, H, L, S)`` in ``attention_weights``
            (softmax only; forces the explicit path).
        query_size, key_size, value_size: input sizes; ``None`` = lazy.

    ``dropout`` (on the attention weights, while training) and ``need_weights`` are
    passed to the mechanism as settings; a mechanism that has no such setting rejects them.
    With a mechanism *module*, configure it directly and leave both at their defaults.

    ``forward(queries (B, L, Dq), keys (B, S, Dk), values (B, S, Dvin), valid_lens=None,
    *, mask=None, causal=False)`` returns ``(B, L, num_hiddens)``. ``valid_lens`` is d2l's
    ``(B,)`` or ``(B, L)``; ``mask`` is boolean, ``True`` = allowed, broadcastable to
    ``(B, H, L, S)`` (a key-padding mask is ``(B, 1, 1, S)``).
    """

    def __init__(
        self,
        num_hiddens: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = False,
        *,
        mechanism="softmax",
        mechanism_settings: dict | None = None,
        need_weights: bool = False,
        query_size: int | None = None,
        key_size: int | None = None,
        value_size: int | None = None,
    ):
        super().__init__()
        check_counts(num_hiddens=(num_hiddens, 1), num_heads=(num_heads, 1))
        if num_hiddens % num_heads != 0:
            raise ValueError(
                f"num_hiddens={num_hiddens} must be a positive multiple of num_heads={num_heads}"
            )
        self.num_hiddens = num_hiddens
        self.num_heads = num_heads
        self.attention = self._build_mechanism(
            mechanism, mechanism_settings, dropout, need_weights
        )
        self.W_q = _linear(query_size, num_hiddens, bias)
        self.W_k = _linear(key_size, num_hiddens, bias)
        self.W_v = _linear(value_size, num_hiddens, bias)
        self.W_o = nn.Linear(
            num_hiddens, num_hiddens, bias=bias
        )  # its input size is known

    @staticmethod
    def _build_mechanism(mechanism, settings, dropout, need_weights) -> nn.Module:
        if isinstance(mechanism, nn.Module):
            if settings is not None or dropout != 0.0 or need_weights:
                raise ValueError(
                    "with a mechanism module, configure the module itself: mechanism_settings, "
                    "dropout and need_weights must keep their defaults"
                )
            return mechanism
        if not isinstance(mechanism, str):
            raise TypeError(
                f"mechanism must be a name or an nn.Module, got {type(mechanism).__name__}"
            )
        mechanism_class = get_mechanism_class(mechanism)
        settings = dict(settings or {})
        for key, value, default in (
            ("dropout", dropout, 0.0),
            ("need_weights", need_weights, False),
        ):
            if value != default:
                if key in settings:
                    raise ValueError(
                        f"{key} is given both as an argument and in mechanism_settings"
                    )
                settings[key] = value
        try:
            return mechanism_class(**settings)
        except TypeError as err:
            raise TypeError(
                f"mechanism {mechanism!r} rejected the settings {sorted(settings)}: {err}"
            ) from err

    @property
    def attention_weights(self) -> torch.Tensor | None:
        """The last weights ``(B, H, L, S)`` when the mechanism keeps them, else ``None``."""
        return getattr(self.attention, "attention_weights", None)

    def forward(
        self, queries, keys, values, valid_lens=None, *, mask=None, causal=False
    ):
        # the projections come first, so the inputs are checked before they meet them
        sizes = (_in_features(self.W_q), _in_features(self.W_k), _in_features(self.W_v))
        check_projection_inputs(
            queries, keys, values, sizes, self.num_heads, valid_lens, mask
        )
        if valid_lens is not None:
            L, S = queries.shape[1], keys.shape[1]
            mask = combine_masks(
                mask, valid_lens_to_mask(valid_lens, L, S)
            )  # (B, 1, L|1, S)
        q = split_heads(self.W_q(queries), self.num_heads)  # (B, H, L, D)
        k = split_heads(self.W_k(keys), self.num_heads)  # (B, H, S, D)
        v = split_heads(self.W_v(values), self.num_heads)  # (B, H, S, D)
        out = self.attention(q, k, v, mask=mask, causal=causal)  # (B, H, L, D)
        return self.W_o(merge_heads(out))  # (B, L, num_hiddens)
