"""Mechanism names → classes: the registry ``MultiHeadAttention``, the benchmark and the
capstone use to swap one mechanism for another.

A plain dict, no decorators: each chapter's module adds its own line below. Every class
implements the interface described in :mod:`attnkit.mechanisms`:
``forward(q, k, v, *, mask=None, causal=False)`` on ``(B, H, L, D)`` tensors, with
keyword-only settings in its constructor and a usable default for each.
"""
from __future__ import annotations

from torch import nn

from .linear import LinearAttention
from .local import LocalAttention
from .lsh import LSHAttention
from .mechanisms import SoftmaxAttention
from .nystrom import NystromAttention
from .random_features import RFA, PerformerAttention
from .synthesizer import (
    DenseSynthesizer,
    FactorizedDenseSynthesizer,
    FactorizedRandomSynthesizer,
    RandomSynthesizer,
    SynthesizerMixture,
)

__all__ = ["MECHANISMS", "make_mechanism"]

MECHANISMS: dict[str, type[nn.Module]] = {
    "softmax": SoftmaxAttention,
    "linear": LinearAttention,
    "lsh": LSHAttention,
    "synthesizer_dense": DenseSynthesizer,
    "synthesizer_random": RandomSynthesizer,
    "synthesizer_factorized_dense": FactorizedDenseSynthesizer,
    "synthesizer_factorized_random": FactorizedRandomSynthesizer,
    "synthesizer_mixture": SynthesizerMixture,
    "local": LocalAttention,
    "performer": PerformerAttention,
    "rfa": RFA,
    "nystrom": NystromAttention,
}


def make_mechanism(name: str, **settings) -> nn.Module:
    """Build the mechanism registered under ``name`` with its keyword ``settings``."""
    if not isinstance(name, str) or name not in MECHANISMS:
        known = ", ".join(sorted(MECHANISMS))
        raise ValueError(f"unknown mechanism {name!r}; known mechanisms: {known}")
    return MECHANISMS[name](**settings)
