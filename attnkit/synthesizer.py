"""Synthesizer: attention weights that never compare a query with a key.

Standard self-attention builds its logits from query–key dot products,
``A = softmax(B)`` with ``B = X W_q W_kᵀ Xᵀ / √d_k``. Tay et al. (2021) *synthesise*
``B`` instead, over a fixed maximum length ``N`` (``max_len``):

* **Dense**: row ``i`` of ``B`` comes from token ``i`` alone,
  ``B_i = W₂ σ(W₁ x_i + b₁) + b₂`` (σ = ReLU), a vector of ``N`` logits.
* **Random**: ``B = R``, an ``N × N`` matrix shared by every input — learned, or
  frozen at its seeded random start ("fixed random").
* **Factorised random**: ``R = R₁ R₂ᵀ`` with ``R₁, R₂ ∈ ℝ^{N×k}`` (the paper uses k = 8).
* **Factorised dense**: two small heads give ``a_i ∈ ℝ^{n_a}`` and ``b_i ∈ ℝ^{n_b}``
  with ``n_a·n_b ≥ N``; logit ``j`` of row ``i`` is ``a_i[j // n_b] · b_i[j % n_b]``
  (the flattened outer product ``a_i b_iᵀ``, cut to ``N``).
* **Mixture**: ``softmax(α₁ B_synth + α₂ QKᵀ/√D)`` with learned ``α``.

For a sequence of ``n ≤ N`` positions the logits are cut to the first ``n`` rows and
columns, and padding and causal masks are applied to them exactly as to dot-product
scores (through :func:`attnkit.masking.masked_softmax`). ``n > N`` is an error.

As mechanisms (``forward(q, k, v, *, mask=None, causal=False)`` on ``(B, H, L, D)``)
they ignore ``q·k``: Random looks only at positions, and Dense reads each query
vector ``q_i`` — inside :class:`MultiHeadAttention` that is the head's projection
``x_i W_q``, not the raw token ``x_i`` of the paper (an extra linear map in front of
``W₁``, so the family of functions is the same). Keys are used only for their count.

Each public function checks its arguments in one call to :mod:`attnkit._checks`; the
modules check their constructor settings (and that a sequence fits ``max_len`` and
``num_heads``) and leave the inputs to the functions they call.
:func:`synthesizer_attention_naive` returns ``(out, weights)`` like every ``*_naive`` reference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from ._checks import (
    check_crop,
    check_int_in_range,
    check_length,
    check_low_rank_factors,
    check_mix_inputs,
    check_positive_int,
    check_positive_real,
    check_rank,
    check_synthesizer_inputs,
    check_synthesizer_mlp,
)
from .attention import attend
from .masking import masked_softmax
from .mechanisms import Mechanism
from .scoring import dot_product_scores

__all__ = [
    "dense_synthesizer_logits",
    "factorized_dense_logits",
    "factorized_random_logits",
    "crop_logits",
    "check_length",
    "mix_logits",
    "synthesizer_attention",
    "synthesizer_attention_naive",
    "DenseSynthesizer",
    "FactorizedDenseSynthesizer",
    "RandomSynthesizer",
    "FactorizedRandomSynthesizer",
    "SynthesizerMixture",
]


# ----------------------------------------------------------------------------- functions


def dense_synthesizer_logits(x, W1, b1, W2, b2):
    """Dense Synthesizer logits ``B_i = W₂ ReLU(W₁ x_i + b₁) + b₂`` for every position.

    Args:
        x: ``(..., L, D)`` token (or per-head query) vectors.
        W1: ``(Dh, D)`` and b1 ``(Dh,)``: first layer (``nn.Linear(D, Dh)`` layout).
        W2: ``(N, Dh)`` and b2 ``(N,)``: second layer, one output per key
            position (up to ``N``).

    Returns:
        ``(..., L, N)``: for query ``i``, row ``i`` scores the ``N`` possible key
        positions.
    """
    check_synthesizer_mlp(x, W1, b1, {"W2": (W2, b2)})
    hidden = F.relu(F.linear(x, W1, b1))  # (..., L, Dh)
    return F.linear(hidden, W2, b2)  # (..., L, N)


def factorized_dense_logits(x, W1, b1, Wa, ba, Wb, bb, max_len: int):
    """Factorised Dense Synthesizer logits: the outer product of two short vectors.

    ``h_i = ReLU(W₁ x_i + b₁)``, ``a_i = W_a h_i + b_a`` (``n_a`` values),
    ``b_i = W_b h_i + b_b`` (``n_b`` values), and logit ``j`` of row ``i`` is
    ``a_i[j // n_b] · b_i[j % n_b]`` for ``j < max_len ≤ n_a·n_b``.

    Args:
        x: ``(..., L, D)``; W1 ``(Dh, D)``, b1 ``(Dh,)``; Wa ``(n_a, Dh)``, ba
        ``(n_a,)``; Wb ``(n_b, Dh)``, bb ``(n_b,)``; max_len: N.

    Returns:
        ``(..., L, N)``.
    """
    check_synthesizer_mlp(x, W1, b1, {"Wa": (Wa, ba), "Wb": (Wb, bb)}, max_len=max_len)
    hidden = F.relu(F.linear(x, W1, b1))  # (..., L, Dh)
    a = F.linear(hidden, Wa, ba)  # (..., L, n_a)
    b = F.linear(hidden, Wb, bb)  # (..., L, n_b)
    outer = a.unsqueeze(-1) * b.unsqueeze(-2)  # (..., L, n_a, n_b)
    return outer.flatten(-2)[..., :max_len]  # (..., L, N)


def factorized_random_logits(R1, R2):
    """Low-rank random logits ``R = R₁ R₂ᵀ``.

    Args:
        R1: ``(..., L, k)`` (query positions); R2: ``(..., S, k)`` (key positions),
            usually both ``(..., N, k)``.

    Returns:
        ``(..., L, S)``, of rank at most ``k``.
    """
    check_low_rank_factors(R1, R2)
    return R1 @ R2.transpose(-2, -1)  # (..., L, S)


def crop_logits(logits, num_queries: int, num_keys: int):
    """Cut synthesised logits over ``N`` positions down to ``L`` queries and ``S`` keys.

    Args:
        logits: ``(..., N, N)`` (random: rows are query positions) or ``(..., L, N)``
            (dense: one row per query already).
        num_queries: L; num_keys: S.

    Returns:
        ``(..., L, S)`` — the top-left block: query ``i`` and key ``j`` keep their
        positions ``i`` and ``j``.

    Raises:
        ValueError: when ``L`` or ``S`` exceeds the maximum length ``N`` the
            logits cover.
    """
    check_crop(logits, num_queries, num_keys)
    return logits[..., :num_queries, :num_keys]  # (..., L, S)


def mix_logits(logits, alphas):
    """Weighted sum ``Σ_m α_m B_m`` of several logit tensors (the Synthesizer mixture).

    Args:
        logits: a sequence of tensors that broadcast to a common ``(..., L, S)``.
        alphas: ``(M,)`` weights, one per tensor (already normalised if wanted).

    Returns:
        ``(..., L, S)``.
    """
    check_mix_inputs(logits, alphas)
    out = alphas[0] * logits[0]
    for a, b in zip(alphas[1:], logits[1:]):
        out = out + a * b  # (..., L, S)
    return out


def synthesizer_attention(logits, v, *, mask=None, causal=False):
    """Attention with given (synthesised) logits: ``masked_softmax(B) V``.

    Args:
        logits: ``(B|1, H|1, L, S)``, already cropped to the sequence.
        v: ``(B, H, S, Dv)``.
        mask: boolean broadcastable to ``(B, H, L, S)`` (``True`` =
            allowed), or ``None``.
        causal: query ``i`` sees only keys ``j ≤ i`` (top-left aligned).

    Returns:
        ``(out (B, H, L, Dv), weights (B, H, L, S))``; fully masked rows give zeros.
    """
    check_synthesizer_inputs(logits, v, mask)
    B, H, S = v.shape[0], v.shape[1], v.shape[2]
    logits = logits.expand(B, H, logits.shape[-2], S)  # (B, H, L, S)
    weights = masked_softmax(logits, mask=mask, causal=causal)  # (B, H, L, S)
    return attend(weights, v), weights  # (B, H, L, Dv)


def synthesizer_attention_naive(logits, v, *, mask=None, causal=False):
    """Row-by-row reference of :func:`synthesizer_attention` (a Python loop over queries).

    For each query ``i`` it keeps the allowed keys (mask and ``j ≤ i`` when causal),
    takes an ordinary softmax of their logits and averages their values; a row with no
    allowed key is zero. Same arguments and returns: ``(out (B, H, L, Dv), weights (B, H, L, S))``.
    """
    check_synthesizer_inputs(logits, v, mask)
    B, H, S, Dv = v.shape
    L = logits.shape[-2]
    logits = logits.expand(B, H, L, S)  # (B, H, L, S)
    allowed = torch.ones(B, H, L, S, dtype=torch.bool, device=v.device)
    if mask is not None:
        allowed = allowed & mask
    if causal:
        allowed = allowed & torch.ones(L, S, dtype=torch.bool, device=v.device).tril()
    out = v.new_zeros(B, H, L, Dv)
    weights = v.new_zeros(B, H, L, S)
    for b in range(B):
        for h in range(H):
            for i in range(L):
                keep = allowed[b, h, i].nonzero().flatten()  # (S_i,)
                if keep.numel() == 0:
                    continue
                w = torch.softmax(logits[b, h, i, keep], dim=0)  # (S_i,)
                weights[b, h, i, keep] = w
                out[b, h, i] = w @ v[b, h, keep]  # (Dv,)
    return out, weights


# ----------------------------------------------------------------------------- modules


def _check_optional_positive_int(name: str, value) -> None:
    if value is not None:
        check_positive_int(name, value)


def _check_heads(num_heads, q) -> None:
    if num_heads is not None and q.shape[1] != num_heads:
        raise ValueError(
            f"this Synthesizer was built with num_heads={num_heads} but q has "
            f"{q.shape[1]} heads (shape {tuple(q.shape)})"
        )


class _SynthesizerBase(Mechanism):
    """Shared forward: ``logits(q, S)`` (subclasses) → masked softmax → ``@ v``.

    After each call ``attention_weights`` holds the weights ``(B, H, L, S)``. ``max_len``
    (an instance attribute, see :mod:`attnkit.mechanisms`) is the longest ``L`` and ``S`` accepted.
    """

    max_len: int

    def logits(self, q, num_keys: int):  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, q, k, v, *, mask=None, causal=False):
        """``q (B, H, L, D), k (B, H, S, D), v (B, H, S, Dv) → (B, H, L, Dv)``."""
        logits = self.logits(q, k.shape[-2]).to(v.dtype)  # (B|1, H|1, L, S)
        out, weights = synthesizer_attention(logits, v, mask=mask, causal=causal)
        self.attention_weights = weights
        return out  # (B, H, L, Dv)


class RandomSynthesizer(_SynthesizerBase):
    """Random Synthesizer: one ``N × N`` logit matrix per head, the same for every input.

    Args (keyword-only):
        max_len: N, the longest sequence it accepts.
        num_heads: ``None`` (one matrix shared by all heads) or H (one matrix per head).
        trainable: learn ``R`` (``True``) or keep it frozen at its random start (a buffer).
        init_std: standard deviation of the initial logits.
        seed: seed of the initial draw.
    """

    def __init__(
        self,
        *,
        max_len: int = 512,
        num_heads: int | None = None,
        trainable: bool = True,
        init_std: float = 1.0,
        seed: int = 0,
    ):
        super().__init__()
        check_positive_int("max_len", max_len)
        _check_optional_positive_int("num_heads", num_heads)
        check_positive_real("init_std", init_std)
        check_int_in_range("seed", seed, -(2**63))
        self.max_len, self.num_heads = max_len, num_heads
        g = torch.Generator().manual_seed(seed)
        R = init_std * torch.randn(
            num_heads or 1, max_len, max_len, generator=g
        )  # (H|1, N, N)
        if trainable:
            self.R = nn.Parameter(R)
        else:
            self.register_buffer("R", R)
        self.attention_weights = None

    def logits(self, q, num_keys: int):
        """``(1, H|1, L, S)``: the top-left block of ``R``; ``q`` gives only ``L``."""
        _check_heads(self.num_heads, q)
        return crop_logits(self.R, q.shape[2], num_keys).unsqueeze(0)  # (1, H|1, L, S)


class FactorizedRandomSynthesizer(_SynthesizerBase):
    """Factorised Random Synthesizer: ``R = R₁ R₂ᵀ`` of rank ``k``.

    It holds ``2Nk`` instead of ``N²`` numbers.

    Args (keyword-only): as :class:`RandomSynthesizer`, plus ``rank`` (k, default 8 as in
    the paper). ``init_std`` is the standard deviation of the initial product's entries.
    """

    def __init__(
        self,
        *,
        max_len: int = 512,
        rank: int = 8,
        num_heads: int | None = None,
        trainable: bool = True,
        init_std: float = 1.0,
        seed: int = 0,
    ):
        super().__init__()
        check_positive_int("max_len", max_len)
        check_positive_int("rank", rank)
        _check_optional_positive_int("num_heads", num_heads)
        check_positive_real("init_std", init_std)
        check_int_in_range("seed", seed, -(2**63))
        self.max_len, self.rank, self.num_heads = max_len, rank, num_heads
        g = torch.Generator().manual_seed(seed)
        std = math.sqrt(
            init_std / math.sqrt(rank)
        )  # entries of R₁R₂ᵀ then have std init_std
        R1 = std * torch.randn(
            num_heads or 1, max_len, rank, generator=g
        )  # (H|1, N, k)
        R2 = std * torch.randn(
            num_heads or 1, max_len, rank, generator=g
        )  # (H|1, N, k)
        if trainable:
            self.R1, self.R2 = nn.Parameter(R1), nn.Parameter(R2)
        else:
            self.register_buffer("R1", R1)
            self.register_buffer("R2", R2)
        self.attention_weights = None

    def logits(self, q, num_keys: int):
        """``(1, H|1, L, S)``: rows ``:L`` of ``R₁`` times rows ``:S`` of ``R₂``.

        No ``N × N`` matrix is built.
        """
        _check_heads(self.num_heads, q)
        L = q.shape[2]
        check_length(L, num_keys, self.max_len)
        return factorized_random_logits(
            self.R1[:, :L], self.R2[:, :num_keys]
        ).unsqueeze(0)  # (1, H|1, L, S)


class _LazyDenseBase(LazyModuleMixin, _SynthesizerBase):
    """What both Dense Synthesizers share: a first layer ``W1 (hidden, D)`` that may be sized
    lazily from the first query tensor, and ``nn.Linear``'s default initialisation of every
    ``(weight, bias)`` pair that :meth:`layers` lists."""

    cls_to_become = None
    W1: nn.Parameter
    hidden: int

    def layers(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """``nn.Linear``'s default initialisation for every layer."""
        for W, b in self.layers():
            bound = 1.0 / math.sqrt(W.shape[1])
            nn.init.uniform_(W, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def initialize_parameters(self, q, k, v, *, mask=None, causal=False) -> None:
        """Materialise ``W1`` as ``(hidden, D)`` from the first query tensor ``(B, H, L, D)``."""
        if self.has_uninitialized_params():
            check_rank("q", q, 4, "(B, H, L, D)")
            with torch.no_grad():
                self.W1.materialize((self.hidden, q.shape[-1]))
                self.reset_parameters()


class DenseSynthesizer(_LazyDenseBase):
    """Dense Synthesizer: each query vector predicts its own row of ``N`` logits.

    ``B_i = W₂ ReLU(W₁ q_i + b₁) + b₂``; the MLP is shared by all heads (heads differ
    through their query projections). With ``head_dim=None`` the input size D is taken
    from the first call (like ``nn.LazyLinear``: run one batch before building the
    optimiser), otherwise the parameters exist at once.

    Args (keyword-only):
        max_len: N; hidden: Dh, the MLP's hidden size; head_dim: D or ``None``.
    """

    def __init__(
        self, *, max_len: int = 512, hidden: int = 64, head_dim: int | None = None
    ):
        super().__init__()
        check_positive_int("max_len", max_len)
        check_positive_int("hidden", hidden)
        _check_optional_positive_int("head_dim", head_dim)
        self.max_len, self.hidden = max_len, hidden
        self.W1 = (
            nn.UninitializedParameter()
            if head_dim is None
            else nn.Parameter(torch.empty(hidden, head_dim))
        )
        self.b1 = nn.Parameter(torch.empty(hidden))
        self.W2 = nn.Parameter(torch.empty(max_len, hidden))
        self.b2 = nn.Parameter(torch.empty(max_len))
        self.attention_weights = None
        if head_dim is not None:
            self.reset_parameters()

    def layers(self):
        return ((self.W1, self.b1), (self.W2, self.b2))

    def logits(self, q, num_keys: int):
        """``(B, H, L, S)`` from the queries alone."""
        check_length(q.shape[2], num_keys, self.max_len)
        rows = dense_synthesizer_logits(
            q, self.W1, self.b1, self.W2, self.b2
        )  # (B, H, L, N)
        return rows[..., :num_keys]  # (B, H, L, S)


class FactorizedDenseSynthesizer(_LazyDenseBase):
    """Factorised Dense Synthesizer.

    Row ``i`` is the outer product of ``a_i`` (``n_a``) and ``b_i`` (``n_b``).

    The second layer shrinks from ``Dh × N`` to ``Dh × (n_a + n_b)`` numbers.

    Args (keyword-only):
        max_len: N; hidden: Dh; factors: ``(n_a, n_b)`` with ``n_a·n_b ≥ N``, default
        ``(⌈√N⌉, ⌈N/⌈√N⌉⌉)``; head_dim: D or ``None`` (lazy, as :class:`DenseSynthesizer`).
    """

    def __init__(
        self,
        *,
        max_len: int = 512,
        hidden: int = 64,
        factors: tuple[int, int] | None = None,
        head_dim: int | None = None,
    ):
        super().__init__()
        check_positive_int("max_len", max_len)
        check_positive_int("hidden", hidden)
        _check_optional_positive_int("head_dim", head_dim)
        if factors is None:
            na = math.ceil(math.sqrt(max_len))
            factors = (na, math.ceil(max_len / na))
        if len(factors) != 2:
            raise ValueError(f"factors must be a pair (n_a, n_b), got {factors!r}")
        check_positive_int("factors[0]", factors[0])
        check_positive_int("factors[1]", factors[1])
        if factors[0] * factors[1] < max_len:
            raise ValueError(
                f"factors {tuple(factors)} give fewer than max_len={max_len} logits per row"
            )
        self.max_len, self.hidden, self.factors = max_len, hidden, tuple(factors)
        self.W1 = (
            nn.UninitializedParameter()
            if head_dim is None
            else nn.Parameter(torch.empty(hidden, head_dim))
        )
        self.b1 = nn.Parameter(torch.empty(hidden))
        self.Wa = nn.Parameter(torch.empty(factors[0], hidden))
        self.ba = nn.Parameter(torch.empty(factors[0]))
        self.Wb = nn.Parameter(torch.empty(factors[1], hidden))
        self.bb = nn.Parameter(torch.empty(factors[1]))
        self.attention_weights = None
        if head_dim is not None:
            self.reset_parameters()

    def layers(self):
        return ((self.W1, self.b1), (self.Wa, self.ba), (self.Wb, self.bb))

    def logits(self, q, num_keys: int):
        """``(B, H, L, S)`` from the queries alone."""
        check_length(q.shape[2], num_keys, self.max_len)
        rows = factorized_dense_logits(
            q, self.W1, self.b1, self.Wa, self.ba, self.Wb, self.bb, self.max_len
        )  # (B, H, L, N)
        return rows[..., :num_keys]  # (B, H, L, S)


class SynthesizerMixture(Mechanism):
    """Mixture of a synthesised logit matrix and ordinary dot-product logits.

    ``weights = softmax(α₁ B_synth + α₂ q·k/√D)``. With ``mixing="softmax"`` (default,
    as in the paper: weights positive and summing to 1) ``α = softmax(θ)`` with θ
    learned and started at ``log(init_weights)``; with ``mixing="raw"`` ``α = θ``
    itself, free in sign and size, which allows exactly ``(1, 0)`` or ``(0, 1)``.
    ``alphas()`` returns the current ``α``.

    Args (keyword-only):
        synthesizer: the synthesising mechanism, one of this module's classes (default: a
            :class:`RandomSynthesizer` with ``max_len``, ``num_heads`` and ``seed``).
        init_weights: starting ``(α_synth, α_dot)``.
        mixing: ``"softmax"`` or ``"raw"``.
        max_len, num_heads, seed: for the default synthesizer.
    """

    def __init__(
        self,
        *,
        synthesizer: nn.Module | None = None,
        init_weights: tuple[float, float] = (0.5, 0.5),
        mixing: str = "softmax",
        max_len: int = 512,
        num_heads: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        if mixing not in ("softmax", "raw"):
            raise ValueError(f"mixing must be 'softmax' or 'raw', got {mixing!r}")
        w = torch.tensor(init_weights, dtype=torch.float32)
        if w.shape != (2,):
            raise ValueError(
                f"init_weights must be two numbers (synth, dot), got {init_weights!r}"
            )
        if mixing == "softmax":
            if (w <= 0).any():
                raise ValueError(
                    f"init_weights must be > 0 with mixing='softmax', got {init_weights!r}"
                )
            w = torch.log(w / w.sum())
        self.mixing = mixing
        self.theta = nn.Parameter(w)
        if synthesizer is None:
            synthesizer = RandomSynthesizer(
                max_len=max_len, num_heads=num_heads, seed=seed
            )
        self.synthesizer = synthesizer
        self.max_len = synthesizer.max_len  # the longest L and S accepted
        self.attention_weights = None

    def alphas(self):
        """``(2,)``: the current ``(α_synth, α_dot)``."""
        return (
            torch.softmax(self.theta, dim=0) if self.mixing == "softmax" else self.theta
        )

    def forward(self, q, k, v, *, mask=None, causal=False):
        """``q (B, H, L, D), k (B, H, S, D), v (B, H, S, Dv) → (B, H, L, Dv)``."""
        synth = self.synthesizer.logits(q, k.shape[-2]).to(v.dtype)  # (B|1, H|1, L, S)
        dot = dot_product_scores(q, k)  # (B, H, L, S)
        logits = mix_logits([synth, dot], self.alphas().to(v.dtype))  # (B, H, L, S)
        out, weights = synthesizer_attention(logits, v, mask=mask, causal=causal)
        self.attention_weights = weights
        return out  # (B, H, L, Dv)
