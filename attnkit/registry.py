"""Mechanism names → classes: the registry ``MultiHeadAttention``, the benchmark and the
capstone use to swap one mechanism for another.

A plain dict, no decorators: each chapter's module adds its own line below. Every class
implements the interface described in :mod:`attnkit.mechanisms`:
``forward(q, k, v, *, mask=None, causal=False)`` on ``(B, H, L, D)`` tensors, with
keyword-only settings in its constructor and a usable default for each.
"""

from __future__ import annotations

from .blocksparse import BigBirdAttention, LongformerAttention
from .gau import SquaredReLUAttention
from .linear import LinearAttention
from .local import LocalAttention
from .lsh import LSHAttention
from .mechanisms import Mechanism, SoftmaxAttention
from .nystrom import NystromAttention
from .random_features import RFA, PerformerAttention
from .strided import StridedAttention
from .synthesizer import (
    DenseSynthesizer,
    FactorizedDenseSynthesizer,
    FactorizedRandomSynthesizer,
    RandomSynthesizer,
    SynthesizerMixture,
)

__all__ = ["MECHANISMS", "get_mechanism_class", "make_mechanism"]

MECHANISMS: dict[str, type[Mechanism]] = {
    "softmax": SoftmaxAttention,
    "linear": LinearAttention,
    "lsh": LSHAttention,
    "synthesizer_dense": DenseSynthesizer,
    "synthesizer_random": RandomSynthesizer,
    "synthesizer_factorized_dense": FactorizedDenseSynthesizer,
    "synthesizer_factorized_random": FactorizedRandomSynthesizer,
    "synthesizer_mixture": SynthesizerMixture,
    "local": LocalAttention,
    "strided": StridedAttention,
    "bigbird": BigBirdAttention,
    "longformer": LongformerAttention,
    "performer": PerformerAttention,
    "rfa": RFA,
    "nystrom": NystromAttention,
    "squared_relu": SquaredReLUAttention,
}


def get_mechanism_class(name: str) -> type[Mechanism]:
    """The class registered under ``name``; the one place an unknown name is reported.

    Raises ``TypeError`` if ``name`` is not a string, ``ValueError`` (listing the known
    names) if it is not registered.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"a mechanism name must be a str, got {type(name).__name__} {name!r}"
        )
    if name not in MECHANISMS:
        known = ", ".join(sorted(MECHANISMS))
        raise ValueError(f"unknown mechanism {name!r}; known mechanisms: {known}")
    return MECHANISMS[name]


def make_mechanism(name: str, **settings) -> Mechanism:
    """Build the mechanism registered under ``name`` with its keyword ``settings``."""
    return get_mechanism_class(name)(**settings)
