"""Attention-based fusion of several feature vectors (e.g. one per modality).

Given ``P`` feature vectors ``h_1 … h_P`` of one example (text, image, audio …, each
already of size ``Dh``), a small network scores each one against a learned
*attention vector* ``c``::

    s_p = cᵀ ReLU(W h_p + b)          β = softmax_p(s)          h = Σ_p β_p h_p

so the fused vector is a convex combination of the inputs, with weights that depend
on the inputs themselves. A mask can drop missing modalities.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_counts, check_fusion_inputs
from .masking import masked_softmax

__all__ = ["attention_fusion", "AttentionFusion"]


def attention_fusion(H, W, b, c, *, mask=None):
    """Fuse ``P`` feature vectors with an attention vector.

    Args:
        H: ``(B, P, Dh)`` the feature vectors to fuse.
        W: ``(A, Dh)``; b: ``(A,)``; c: ``(A,)`` the attention vector
            (A = attention size).
        mask: ``(B, P)`` boolean, ``True`` = present, or ``None``.

    Returns:
        ``(fused (B, Dh), weights (B, P))``; an example with nothing present (or
        ``P = 0``) fuses to zeros.
    """
    check_fusion_inputs(H, W, b, c, mask)
    hidden = torch.relu(H @ W.T + b)  # (B, P, A)
    scores = hidden @ c  # (B, P)
    weights = masked_softmax(scores, mask=mask)  # (B, P)
    fused = (weights[:, None, :] @ H)[:, 0]  # (B, Dh)
    return fused, weights


class AttentionFusion(nn.Module):
    """Learned attention fusion: owns ``W (A, Dh)``, ``b (A,)`` and ``c (A,)``.

    ``forward(H (B, P, Dh), mask=None) -> (B, Dh)``; the last weights ``(B, P)`` are
    kept in ``attention_weights``.
    """

    def __init__(self, feature_size: int, attention_size: int):
        super().__init__()
        check_counts(feature_size=(feature_size, 1), attention_size=(attention_size, 1))
        bound = 1.0 / math.sqrt(feature_size)
        self.W = nn.Parameter(
            torch.empty(attention_size, feature_size).uniform_(-bound, bound)
        )
        self.b = nn.Parameter(torch.zeros(attention_size))
        self.c = nn.Parameter(torch.empty(attention_size).uniform_(-bound, bound))
        self.attention_weights: torch.Tensor | None = None

    def forward(
        self, H: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        fused, self.attention_weights = attention_fusion(
            H, self.W, self.b, self.c, mask=mask
        )
        return fused  # (B, Dh)
