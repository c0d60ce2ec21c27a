"""Random features for softmax attention: FAVOR+ (Performer) and RFA.

The softmax kernel ``exp(q·k)`` is an expectation over Gaussian directions ``ω ~ N(0, I_D)``:

    exp(q·k) = E[ exp(ωᵀq − ‖q‖²/2) · exp(ωᵀk − ‖k‖²/2) ]          (positive features)
    exp(q·k) = exp(‖q‖²/2 + ‖k‖²/2) · E[cos(ωᵀ(q − k))]              (trigonometric, Bochner)

Averaging over ``M`` draws (the rows of ``Ω (M, D)``) gives feature maps ``φ`` with
``φ(q)·φ(k) ≈ exp(q·k)``; linear attention (:mod:`attnkit.linear`) on ``φ(Q)``, ``φ(K)``
then costs O(n·M·Dv). Queries and keys are first scaled by ``D^{-1/4}`` so that
``exp(q'·k') = exp(q·k/√D)``, the softmax kernel.

Numerics. ``exp`` overflows for large norms, so every feature row is multiplied by a
*stabiliser* ``exp(−c)``: per query row (any per-row constant cancels in the normalised
output) and **one shared constant for all keys** of a (batch, head), detached from the
graph. Non-causal: the largest key log-feature. Causal: the largest log-feature of the
*first real key* — the only key every query sees — so no query's features depend on the
future and step-by-step decoding equals the parallel causal output. A later key whose
log-features exceed that constant by more than ``MAX_KEY_LOG`` (≈ e^40) is clipped there
(finite, no longer exact). Features are computed in at least float32.

A third family, RFA's arc-cosine variant: ``φ(x) = ReLU(Ωx)/√M`` estimates the order-1
arc-cosine kernel (Cho & Saul, 2009)

    k₁(x, y) = E[ReLU(ωᵀx) ReLU(ωᵀy)] = ‖x‖‖y‖ (sin θ + (π − θ) cos θ) / (2π),

``θ`` the angle between ``x`` and ``y``: non-negative features of a *different* kernel,
one that grows linearly, not exponentially, with the norms.

Sin/cos features are not positive: their normaliser ``Σ_j φ(q)·φ(k_j)`` can be ≤ 0, so RFA
divides by ``max(den, eps)`` (documented failure mode; positive features never need it).

Conventions: ``key_padding`` is a boolean ``(B, S)`` tensor (``True`` = real key), ``B`` the
first axis of the keys, broadcast over their other leading axes. Every public function
checks its arguments in one call to :mod:`attnkit._checks` (integer, boolean and complex
tensors, tensors on different devices, a projection whose ``D`` does not match raise);
every ``*_naive`` reference returns ``(out, weights)`` with the dense row-normalised
``(..., L, S)`` weights. Half precision: features and normalisers are computed in float32
and the output cast back; sin/cos features (``kind="trig"``, RFA) refuse float16 values with
a ``TypeError`` (a normaliser clamped near 0 can give outputs beyond float16's 65504) —
bfloat16 works. Empty ``B``, ``L`` or ``S`` give empty or zero outputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_arccos_inputs,
    check_gate_inputs,
    check_int_in_range,
    check_performer_inputs,
    check_positive_int,
    check_positive_real,
    check_projection,
    check_projection_size,
    check_query_key,
    check_rfa_feature_inputs,
    check_rfa_inputs,
    check_stabilizer_inputs,
)
from .linear import (
    accumulation_dtype,
    align_causal,
    key_padding_view,
    linear_attention_chunked,
    linear_attention_noncausal,
    mask_key_features,
)
from .mechanisms import Mechanism, key_padding_from_mask

__all__ = [
    "gaussian_matrix",
    "orthogonal_matrix",
    "random_projection",
    "positive_log_features",
    "positive_features",
    "trig_features",
    "key_stabilizer",
    "performer_features",
    "PositiveFeaturesFunction",
    "performer_attention_naive",
    "performer_attention",
    "PerformerAttention",
    "rfa_features",
    "rfa_gate",
    "rfa_attention_naive",
    "rfa_attention",
    "RFA",
    "arccos_features",
    "arccos_kernel",
    "arccos_attention_naive",
    "arccos_attention",
]

MAX_KEY_LOG = 40.0
TRIG_MIN_NORMALISER = 1e-6  # sin/cos normalisers are clamped at max(eps, this)


# ----------------------------------------------------------------------------- projections
def gaussian_matrix(m: int, d: int, *, generator=None, device=None) -> torch.Tensor:
    """iid ``N(0, 1)`` entries: ``Ω (M, D)`` in float32."""
    check_projection_size(m, d)
    return torch.randn(m, d, generator=generator).to(device)  # (M, D)


def orthogonal_matrix(m: int, d: int, *, generator=None, device=None) -> torch.Tensor:
    """Orthogonal random features ``Ω (M, D)``: blocks of ``D`` exactly orthogonal rows.

    Each ``D × D`` block is the Q of a Gaussian matrix's QR decomposition with signs
    corrected (``Q · sign(diag R)``, so Q is Haar-distributed, not biased by LAPACK's
    sign convention); the last block is cut to ``M mod D`` rows. Rows are then rescaled
    by the norms of fresh Gaussian vectors (chi distribution with ``D`` degrees of
    freedom), so each row has the length distribution of an iid Gaussian row.
    """
    check_projection_size(m, d)
    g = torch.randn(
        math.ceil(m / d), d, d, generator=generator, dtype=torch.float64
    )  # (blocks, D, D)
    q, r = torch.linalg.qr(g)  # batched QR, one per block
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(
        -2
    )  # sign-corrected columns
    omega = q.transpose(-2, -1).reshape(-1, d)[
        :m
    ]  # (M, D) rows orthonormal within each block
    norms = torch.randn(m, d, generator=generator, dtype=torch.float64).norm(
        dim=1
    )  # (M,) ~ chi_D
    return (omega * norms.unsqueeze(1)).to(device=device, dtype=torch.float32)  # (M, D)


def random_projection(
    m: int, d: int, *, orthogonal: bool = True, seed: int = 0, device=None
) -> torch.Tensor:
    """``Ω (M, D)`` drawn from ``torch.Generator().manual_seed(seed)`` (CPU, then moved)."""
    check_projection_size(m, d, seed)
    g = torch.Generator().manual_seed(seed)
    draw = orthogonal_matrix if orthogonal else gaussian_matrix
    return draw(m, d, generator=g, device=device)


# ----------------------------------------------------------------------------- feature maps
def positive_log_features(x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """``ωᵢᵀx − ‖x‖²/2`` for every row ``ωᵢ``.

    ``x (..., L, D)``, ``Ω (M, D)`` → ``(..., L, M)``.
    """
    check_projection(x, omega)
    x = x.to(accumulation_dtype(x.dtype))
    proj = x @ omega.to(x.dtype).T  # (..., L, M)
    return proj.sub_(
        0.5 * (x * x).sum(dim=-1, keepdim=True)
    )  # in place: saves one (..., L, M) buffer


def positive_features(
    x: torch.Tensor, omega: torch.Tensor, *, stabilizer=None
) -> torch.Tensor:
    """FAVOR+ features ``exp(Ωx − ‖x‖²/2 − c)/√M``: ``(..., L, D)`` → ``(..., L, M)``.

    ``stabilizer`` ``c``: ``None`` (no shift), or a tensor broadcastable to
    ``(..., L, 1)``. Without a shift, ``φ(q)·φ(k)`` is an unbiased estimate of
    ``exp(q·k)``.
    """
    check_projection(x, omega, shift=stabilizer, shift_name="stabilizer")
    logits = positive_log_features(x, omega)  # (..., L, M)
    if stabilizer is not None:
        logits = logits - stabilizer
    return torch.exp(logits) / math.sqrt(omega.shape[0])  # (..., L, M)


def trig_features(
    x: torch.Tensor, omega: torch.Tensor, *, log_scale=None
) -> torch.Tensor:
    """Random Fourier features ``[sin(Ωx), cos(Ωx)] · exp(a)/√M``.

    Shapes: ``(..., L, D)`` → ``(..., L, 2M)``.
    ``log_scale`` ``a`` broadcastable to ``(..., L, 1)``; the default ``‖x‖²/2`` makes
    ``φ(q)·φ(k)`` an unbiased estimate of ``exp(q·k)``; ``0`` estimates the Gaussian
    kernel ``exp(−‖q − k‖²/2)`` (RFA on ℓ2-normalised inputs).
    """
    check_projection(x, omega, shift=log_scale, shift_name="log_scale")
    x = x.to(accumulation_dtype(x.dtype))
    proj = x @ omega.to(x.dtype).T  # (..., L, M)
    if log_scale is None:
        log_scale = 0.5 * (x * x).sum(dim=-1, keepdim=True)  # (..., L, 1)
    feats = torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)  # (..., L, 2M)
    return feats * torch.exp(log_scale) / math.sqrt(omega.shape[0])  # (..., L, 2M)


def key_stabilizer(
    log_k: torch.Tensor, key_padding=None, *, causal: bool = False
) -> torch.Tensor:
    """One detached constant per (batch, head) for all keys.

    Shapes: ``log_k (..., S, M)`` → ``(..., 1, 1)``.
    Non-causal: max over real keys and features. Causal: max over the features of the
    first real key (every query sees it, so nothing from the future leaks in). No real
    key → 0.
    ``key_padding``: boolean ``(B, S)`` (True = real key), ``B = log_k.shape[0]``.
    """
    check_stabilizer_inputs(log_k, key_padding)
    log_k = log_k.detach()
    if key_padding is None:
        key_padding = torch.ones(
            log_k.shape[-2], dtype=torch.bool, device=log_k.device
        )  # (S,)
    else:
        key_padding = key_padding_view(key_padding, log_k.dim())  # (B, 1, ..., 1, S)
    key_padding = key_padding.expand(log_k.shape[:-1])  # (..., S)
    per_key = log_k.amax(dim=-1)  # (..., S)
    if causal:
        first = (
            key_padding.cumsum(dim=-1) == 1
        ) & key_padding  # (..., S) one-hot first real key
        per_key = per_key.masked_fill(~first, -math.inf)
    else:
        per_key = per_key.masked_fill(~key_padding, -math.inf)
    c = F.pad(per_key, (0, 1), value=-math.inf).amax(
        dim=-1
    )  # (...); S = 0 gives −inf, then 0
    c = torch.where(torch.isfinite(c), c, torch.zeros_like(c))
    return c[..., None, None]  # (..., 1, 1)


def performer_features(q, k, omega, *, kind="positive", key_padding=None, causal=False):
    """Stabilised feature maps for softmax attention: ``(φ(Q), φ(K))``.

    ``φ(Q) (..., L, M')`` and ``φ(K) (..., S, M')``. ``q (..., L, D)``,
    ``k (..., S, D)`` are scaled by ``D^{-1/4}``; ``M' = M`` for ``kind="positive"``,
    ``2M`` for ``"trig"``. Per-row query stabiliser, shared detached key stabiliser
    (see :func:`key_stabilizer`); padded keys (``key_padding (B, S)`` False) get zero
    features.
    """
    check_performer_inputs(q, k, None, omega, kind=kind, key_padding=key_padding)
    acc = accumulation_dtype(q.dtype)
    scale = q.shape[-1] ** -0.25
    if kind == "positive":
        return _positive_performer_features(
            q.to(acc), k.to(acc), omega, scale, key_padding, causal
        )
    q, k = q.to(acc) * scale, k.to(acc) * scale
    log_q = 0.5 * (q * q).sum(
        dim=-1, keepdim=True
    )  # (..., L, 1) the exp(‖q‖²/2) factor
    log_k = 0.5 * (k * k).sum(dim=-1, keepdim=True)  # (..., S, 1)
    c_q = log_q.detach().amax(dim=-1, keepdim=True)  # (..., L, 1)
    c_k = key_stabilizer(log_k, key_padding, causal=causal)  # (..., 1, 1)
    log_k = (log_k - c_k).clamp(max=MAX_KEY_LOG)
    phi_q = trig_features(q, omega, log_scale=log_q - c_q)  # (..., L, 2M)
    phi_k = trig_features(k, omega, log_scale=log_k)  # (..., S, 2M)
    return phi_q, mask_key_features(phi_k, key_padding)


def _positive_performer_features(q, k, omega, scale, key_padding, causal):
    """The positive branch of :func:`performer_features` (arguments already checked).

    The ``D^{-1/4}`` scaling is folded into ``Ω`` (``w = scale·Ω``) and the norms
    (``scale²``), so no scaled copy of ``q`` or ``k`` is made. Non-causal real keys sit
    at or below the shared stabiliser, so only causal or padded keys need the cap
    ``MAX_KEY_LOG``.
    """
    w = omega.to(q.dtype) * scale  # (M, D)
    half_log_m = 0.5 * math.log(omega.shape[0])  # the 1/√M factor, in the exponent

    def row_max(log_q):  # the per-query stabiliser (..., L, 1)
        return log_q.amax(dim=-1, keepdim=True) + half_log_m

    def shared(log_k):  # the per-(batch, head) key stabiliser (..., 1, 1)
        return key_stabilizer(log_k, key_padding, causal=causal) + half_log_m

    cap = MAX_KEY_LOG - half_log_m if causal or key_padding is not None else None
    phi_q = PositiveFeaturesFunction.apply(q, w, scale**2, row_max, None)
    phi_k = PositiveFeaturesFunction.apply(k, w, scale**2, shared, cap)
    return phi_q, mask_key_features(phi_k, key_padding)  # (..., L, M), (..., S, M)


class PositiveFeaturesFunction(torch.autograd.Function):
    """``φ = exp(min(x wᵀ − s‖x‖²/2 − c, cap))`` with its gradient written out.

    ``x (..., L, D)``, ``w (M, D)``, ``s`` a float → ``(..., L, M)``. The stabiliser
    ``c = shift(logits)`` (broadcastable to ``(..., L, M)``) is a constant, as if
    detached; ``cap=None``: no cap. The logits are made and exponentiated in one buffer,
    which backward reuses as ``φ``: with ``g = grad · φ`` (zero where capped),
    ``∂x = g w − s x Σ_m g`` and ``∂w = Σ gᵀ x``. Autograd's own backward of the
    subtraction, cap and exponential would make several ``(..., L, M)`` temporaries.
    """

    @staticmethod
    def forward(ctx, x, w, s, shift, cap):
        logits = (x @ w.T).sub_(0.5 * s * (x * x).sum(dim=-1, keepdim=True))
        phi = logits.sub_(shift(logits)).exp_()  # (..., L, M), in place
        if cap is not None:
            phi.clamp_(max=math.exp(cap))
        ctx.s, ctx.cap = s, cap
        ctx.save_for_backward(x, w, phi)
        return phi

    @staticmethod
    def backward(ctx, grad):
        x, w, phi = ctx.saved_tensors
        g = grad * phi  # (..., L, M): ∂/∂ logits
        if ctx.cap is not None:
            g.masked_fill_(phi >= math.exp(ctx.cap), 0.0)
        g_x = (g @ w).sub_(x * (ctx.s * g.sum(dim=-1, keepdim=True)))  # (..., L, D)
        g_w = None
        if ctx.needs_input_grad[1]:
            g_w = (g.transpose(-2, -1) @ x).sum_to_size(w.shape)  # (M, D)
        return g_x, g_w, None, None, None


# ----------------------------------------------------------------------------- Performer
def performer_attention_naive(
    q, k, v, omega, *, kind="positive", key_padding=None, causal=False, eps=1e-30
):
    """Dense reference: ``A = φ(Q)φ(K)ᵀ`` (``(..., L, S)``) built, masked and row-normalised.

    Shapes: ``q (..., L, D)``, ``k (..., S, D)``, ``v (..., S, Dv)``, ``Ω (M, D)``,
    ``key_padding (B, S)`` → ``(out (..., L, Dv), weights (..., L, S))``, both in ``v``'s dtype.
    """
    check_performer_inputs(q, k, v, omega, kind=kind, key_padding=key_padding, eps=eps)
    phi_q, phi_k = performer_features(
        q, k, omega, kind=kind, key_padding=key_padding, causal=causal
    )
    v_acc = v.to(phi_q.dtype)
    a = phi_q @ phi_k.transpose(-2, -1)  # (..., L, S)
    if causal:
        allowed = torch.ones(
            a.shape[-2], a.shape[-1], dtype=torch.bool, device=a.device
        ).tril()  # (L, S)
        a = a.masked_fill(~allowed, 0.0)
    den = a.sum(dim=-1, keepdim=True)  # (..., L, 1)
    den = (
        den + eps
        if kind == "positive"
        else den.clamp(min=max(eps, TRIG_MIN_NORMALISER))
    )
    weights = a / den  # (..., L, S)
    return (weights @ v_acc).to(v.dtype), weights.to(
        v.dtype
    )  # (..., L, Dv), (..., L, S)


def performer_attention(
    q,
    k,
    v,
    omega,
    *,
    kind="positive",
    key_padding=None,
    causal=False,
    chunk_size=64,
    eps=1e-30,
):
    """FAVOR+: features, then linear attention in O(n·M·Dv).

    Shapes as in the naive form. Positive features use :mod:`attnkit.linear`'s forms
    (non-causal, chunked causal); sin/cos features go through :func:`rfa_attention`
    (normaliser clamped at ``max(eps, TRIG_MIN_NORMALISER)``: the tiny ``eps`` that
    suits stabilised positive features would turn a negative sin/cos normaliser into an
    astronomically large output).
    """
    check_performer_inputs(
        q,
        k,
        v,
        omega,
        kind=kind,
        key_padding=key_padding,
        eps=eps,
        chunk_size=chunk_size,
    )
    phi_q, phi_k = performer_features(
        q, k, omega, kind=kind, key_padding=key_padding, causal=causal
    )
    if kind == "trig":
        return rfa_attention(
            phi_q, phi_k, v, causal=causal, eps=max(eps, TRIG_MIN_NORMALISER)
        )
    if causal:
        return linear_attention_chunked(phi_q, phi_k, v, chunk_size=chunk_size, eps=eps)
    return linear_attention_noncausal(phi_q, phi_k, v, eps=eps)


class _RandomFeatureModule(Mechanism):
    """Owns the seed and the current projection ``Ω``; draws a new one only in training."""

    def _check_settings(self, n_features, seed, eps):
        check_positive_int("n_features", n_features)
        check_int_in_range("seed", seed, -(2**63))
        check_positive_real("eps", eps)

    def projection(self, d: int, device) -> torch.Tensor:
        """``Ω (M, D)``: fixed by ``seed`` in eval; in training with ``redraw=True`` a new
        draw (seed + number of draws so far) on every forward call."""
        if self.training and self.redraw:
            self.draws += 1
        key = (d, str(device), self.draws)
        if self._omega_key != key:
            self.omega = random_projection(
                self.n_features,
                d,
                orthogonal=self.orthogonal,
                seed=self.seed + self.draws,
                device=device,
            )  # (M, D)
            self._omega_key = key
        return self.omega


class PerformerAttention(_RandomFeatureModule):
    """Performer (FAVOR+) attention as a mechanism (Choromanski et al., 2021).

    Args (keyword-only):
        n_features: ``M`` random features (default 256; the paper's rule of thumb is
            ``D·ln D`` ≈ 266 for ``D = 64``).
        orthogonal: orthogonal blocks (default) or iid Gaussian rows.
        kind: ``"positive"`` (FAVOR+, default) or ``"trig"`` (sin/cos).
        seed: seed of the projection in eval mode.
        redraw: draw new features on every training forward pass (never in eval).
        chunk_size: chunk of the causal chunked form; eps: added to the normaliser.

    ``forward(q (B, H, L, D), k (B, H, S, D), v (B, H, S, Dv), *, mask=None, causal=False)``
    → ``(B, H, L, Dv)``; ``mask`` must be a key-padding mask ``(B, 1, 1, S)`` or ``(B, S)``.
    The constructor checks its settings; :func:`performer_attention` checks the inputs.
    """

    def __init__(
        self,
        *,
        n_features: int = 256,
        orthogonal: bool = True,
        kind: str = "positive",
        seed: int = 0,
        redraw: bool = True,
        chunk_size: int = 64,
        eps: float = 1e-30,
    ):
        super().__init__()
        self._check_settings(n_features, seed, eps)
        if kind not in ("positive", "trig"):
            raise ValueError(f"kind must be 'positive' or 'trig', got {kind!r}")
        check_positive_int("chunk_size", chunk_size)
        self.n_features, self.orthogonal, self.kind, self.seed = (
            n_features,
            orthogonal,
            kind,
            seed,
        )
        self.redraw, self.chunk_size, self.eps = redraw, chunk_size, eps
        self.draws = 0
        self.omega = None
        self._omega_key = None

    def forward(self, q, k, v, *, mask=None, causal=False):
        kp = (
            None
            if mask is None
            else key_padding_from_mask(mask, k.shape[0], k.shape[-2], "performer")
        )
        omega = self.projection(q.shape[-1], q.device)  # (M, D)
        return performer_attention(
            q,
            k,
            v,
            omega,
            kind=self.kind,
            key_padding=kp,
            causal=causal,
            chunk_size=self.chunk_size,
            eps=self.eps,
        )  # (B, H, L, Dv)


# ----------------------------------------------------------------------------- RFA
def rfa_features(
    x: torch.Tensor, omega: torch.Tensor, *, sigma: float = 1.0
) -> torch.Tensor:
    """RFA's features of ℓ2-normalised inputs: ``φ(x) = [sin(Ωx̂/σ), cos(Ωx̂/σ)]/√M`` with
    ``x̂ = x/‖x‖``; ``x (..., L, D)``, ``Ω (M, D)`` → ``(..., L, 2M)`` in at least float32.

    ``φ(q)·φ(k)`` estimates the Gaussian kernel ``exp(−‖q̂ − k̂‖²/(2σ²)) ∝ exp(q̂·k̂/σ²)``.
    """
    check_rfa_feature_inputs(x, omega, sigma)
    x = x.to(accumulation_dtype(x.dtype))
    x = (
        x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12) / sigma
    )  # (..., L, D) on the sphere of radius 1/σ
    return trig_features(
        x, omega, log_scale=torch.zeros((), device=x.device)
    )  # (..., L, 2M)


def rfa_gate(k: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The recency gate ``g_t = σ(w·k_t + b)`` in (0, 1): ``k (..., S, D)``, ``weight (D,)``,
    ``bias ()`` → ``(..., S)``, in at least float32."""
    check_gate_inputs(k, weight, bias)
    acc = accumulation_dtype(k.dtype)
    return torch.sigmoid(k.to(acc) @ weight.to(acc) + bias.to(acc))  # (..., S)


def _gate_weights(gate: torch.Tensor) -> torch.Tensor:
    """Dense decay weights of the gated recurrence: ``g (..., L)`` → ``W (..., L, L)``,
    ``W[t, j] = (1 − g_j) Π_{j<s≤t} g_s`` for ``j ≤ t`` and 0 above the diagonal."""
    log_g = torch.log(gate)  # (..., L)
    G = torch.cumsum(log_g, dim=-1)  # (..., L)
    L = gate.shape[-1]
    tril = torch.ones(L, L, dtype=torch.bool, device=gate.device).tril()  # (L, L)
    diff = (G.unsqueeze(-1) - G.unsqueeze(-2)).masked_fill(
        ~tril, -math.inf
    )  # (..., L, L)
    return torch.exp(diff) * (1 - gate).unsqueeze(-2)  # (..., L, L)


def _rfa_prepare(phi_q, phi_k, v, gate, key_padding):
    """Accumulation dtype; padded keys get zero features and a gate of 1 (they neither write
    to nor decay the state). Arguments already checked."""
    acc = accumulation_dtype(phi_q.dtype)
    phi_k = mask_key_features(phi_k.to(acc), key_padding)  # (..., S, M)
    if gate is not None:
        gate = gate.to(acc)
        if key_padding is not None:
            keep = key_padding_view(key_padding, phi_k.dim())  # (B, 1, ..., 1, S)
            gate = torch.where(
                keep, gate, torch.ones((), dtype=acc, device=gate.device)
            )  # (..., S)
    return phi_q.to(acc), phi_k, v.to(acc), gate


def rfa_attention_naive(
    phi_q, phi_k, v, *, gate=None, key_padding=None, causal=False, eps=1e-6
):
    """Dense reference of (gated) RFA: ``φ(Q)φ(K)ᵀ`` times the decay weights, normalised by
    ``max(row sum, eps)``.

    Shapes: ``phi_q (..., L, M)``, ``phi_k (..., S, M)``, ``v (..., S, Dv)``, ``gate (..., S)``
    in (0, 1) (causal only, ``S = L``), ``key_padding (B, S)`` → ``(out (..., L, Dv),
    weights (..., L, S))``, both in ``v``'s dtype.
    """
    check_rfa_inputs(
        phi_q, phi_k, v, gate=gate, key_padding=key_padding, causal=causal, eps=eps
    )
    phi_q, phi_k, v_acc, gate = _rfa_prepare(phi_q, phi_k, v, gate, key_padding)
    a = phi_q @ phi_k.transpose(-2, -1)  # (..., L, S)
    if gate is not None:
        a = a * _gate_weights(gate)  # (..., L, L)
    elif causal:
        allowed = torch.ones(
            a.shape[-2], a.shape[-1], dtype=torch.bool, device=a.device
        ).tril()  # (L, S)
        a = a.masked_fill(~allowed, 0.0)
    weights = a / a.sum(dim=-1, keepdim=True).clamp(min=eps)  # (..., L, S)
    return (weights @ v_acc).to(v.dtype), weights.to(
        v.dtype
    )  # (..., L, Dv), (..., L, S)


def rfa_attention(
    phi_q, phi_k, v, *, gate=None, key_padding=None, causal=False, eps=1e-6
):
    """RFA on mapped features, normaliser clamped at ``eps`` (sin/cos can make it ≤ 0).

    Non-causal: ``φ(Q)(φ(K)ᵀV)``. Causal without gate: cumulative sums. Causal with
    gate: the recurrence of :func:`_rfa_gated_scan`. Shapes as in
    :func:`rfa_attention_naive`; returns ``(..., L, Dv)``.
    """
    check_rfa_inputs(
        phi_q, phi_k, v, gate=gate, key_padding=key_padding, causal=causal, eps=eps
    )
    phi_q, phi_k, v_acc, gate = _rfa_prepare(phi_q, phi_k, v, gate, key_padding)
    if not causal:
        kv = phi_k.transpose(-2, -1) @ v_acc  # (..., M, Dv)
        num = phi_q @ kv  # (..., L, Dv)
        den = phi_q @ phi_k.sum(dim=-2).unsqueeze(-1)  # (..., L, 1)
    elif gate is None:
        # (..., L, M), (..., L, Dv)
        phi_k, v_acc = align_causal(phi_k, v_acc, phi_q.shape[-2])
        # (..., L, M, Dv)
        kv = torch.cumsum(phi_k.unsqueeze(-1) * v_acc.unsqueeze(-2), dim=-3)
        num = (phi_q.unsqueeze(-2) @ kv).squeeze(-2)  # (..., L, Dv)
        # (..., L, 1)
        den = (phi_q * torch.cumsum(phi_k, dim=-2)).sum(dim=-1, keepdim=True)
    else:
        # (..., L, Dv), (..., L, 1)
        num, den = _rfa_gated_scan(phi_q, phi_k, v_acc, gate)
    return (num / den.clamp(min=eps)).to(v.dtype)  # (..., L, Dv)


def _rfa_gated_scan(phi_q, phi_k, v_acc, gate):
    """The gated causal recurrence of :func:`rfa_attention`, one position at a time.

    ``S_t = g_t S_{t−1} + (1 − g_t) φ(k_t) v_tᵀ`` and
    ``z_t = g_t z_{t−1} + (1 − g_t) φ(k_t)``; returns the numerators ``φ(q_t)ᵀS_t``
    ``(..., L, Dv)`` and the denominators ``φ(q_t)·z_t`` ``(..., L, 1)``.
    """
    batch = torch.broadcast_shapes(
        phi_q.shape[:-2], phi_k.shape[:-2], v_acc.shape[:-2], gate.shape[:-1]
    )
    s = phi_q.new_zeros(*batch, phi_q.shape[-1], v_acc.shape[-1])  # (..., M, Dv)
    z = phi_q.new_zeros(*batch, phi_q.shape[-1])  # (..., M)
    nums = [s.new_zeros(*batch, 0, v_acc.shape[-1])]  # L = 0: empty
    dens = [s.new_zeros(*batch, 0, 1)]
    for t in range(phi_q.shape[-2]):
        g = gate[..., t, None]  # (..., 1)
        s = (
            g[..., None] * s
            + (1 - g)[..., None] * phi_k[..., t, :, None] * v_acc[..., t, None, :]
        )
        z = g * z + (1 - g) * phi_k[..., t, :]
        nums.append((phi_q[..., t, None, :] @ s))  # (..., 1, Dv)
        # (..., 1, 1)
        dens.append((phi_q[..., t, :] * z).sum(-1, keepdim=True)[..., None])
    return torch.cat(nums, dim=-2), torch.cat(dens, dim=-2)


class RFA(_RandomFeatureModule):
    """Random Feature Attention (Peng et al., 2021): sin/cos features of ℓ2-normalised
    queries and keys (:func:`rfa_features`), optionally with a learned recency gate in the
    causal recurrence.

    ``φ(x) = [sin(Ωx̂/σ), cos(Ωx̂/σ)]/√M`` on ``x̂ = x/‖x‖`` estimates the Gaussian kernel
    ``exp(−‖q̂ − k̂‖²/(2σ²)) ∝ exp(q̂·k̂/σ²)``. The gate ``g_t = σ(w_g·k_t + b_g)``
    (:func:`rfa_gate`) is computed from this head's **key** ``k_t`` (``w_g (D,)``, one scalar
    bias), i.e. from the token after the head's key projection. The paper instead gates on
    the token representation ``x_t`` itself, ``g_t = σ(w_g·x_t + b_g)``; inside
    :class:`MultiHeadAttention` that differs by the key projection in front of ``w_g``.

    Args (keyword-only): n_features (M, default 128), sigma (default 1.0), gate (default
    False; needs ``causal=True``), orthogonal, seed, redraw, eps (normaliser clamp).
    The constructor checks its settings; the functions it calls check the inputs.
    """

    def __init__(
        self,
        *,
        n_features: int = 128,
        sigma: float = 1.0,
        gate: bool = False,
        orthogonal: bool = True,
        seed: int = 0,
        redraw: bool = True,
        eps: float = 1e-6,
    ):
        super().__init__()
        self._check_settings(n_features, seed, eps)
        check_positive_real("sigma", sigma)
        self.n_features, self.sigma, self.orthogonal, self.seed = (
            n_features,
            sigma,
            orthogonal,
            seed,
        )
        self.redraw, self.eps = redraw, eps
        self.draws = 0
        self.omega = None
        self._omega_key = None
        self.gate_weight = nn.Parameter(torch.zeros(0)) if gate else None
        self.gate_bias = nn.Parameter(torch.tensor(2.0)) if gate else None

    def features(self, x, omega):
        """``x (..., L, D)`` → ``(..., L, 2M)``: :func:`rfa_features` with this module's ``σ``."""
        return rfa_features(x, omega, sigma=self.sigma)

    def gate(self, k):
        """``g (B, H, S)`` in (0, 1) from the keys ``(B, H, S, D)`` (:func:`rfa_gate`); the gate
        weight ``w_g (D,)`` is created (zeros) on the first call."""
        if self.gate_weight.numel() != k.shape[-1]:
            with torch.no_grad():
                self.gate_weight.data = torch.zeros(k.shape[-1], device=k.device)
        return rfa_gate(k, self.gate_weight, self.gate_bias)  # (B, H, S)

    def forward(self, q, k, v, *, mask=None, causal=False):
        if self.gate_weight is not None and not causal:
            raise ValueError(
                "RFA(gate=True) is a causal recurrence; call it with causal=True"
            )
        kp = (
            None
            if mask is None
            else key_padding_from_mask(mask, k.shape[0], k.shape[-2], "rfa")
        )
        omega = self.projection(q.shape[-1], q.device)  # (M, D)
        g = self.gate(k) if self.gate_weight is not None else None  # (B, H, S)
        return rfa_attention(
            self.features(q, omega),
            self.features(k, omega),
            v,
            gate=g,
            key_padding=kp,
            causal=causal,
            eps=self.eps,
        )  # (B, H, L, Dv)


# ----------------------------------------------------------------------------- arc-cosine
def arccos_features(x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Arc-cosine features ``ReLU(Ωx)/√M``: ``x (..., L, D)``, ``Ω (M, D)`` →
    ``(..., L, M)``. With Gaussian rows ``ω``, ``φ(x)·φ(y)`` is an unbiased estimate of
    :func:`arccos_kernel`."""
    check_projection(x, omega)
    x = x.to(accumulation_dtype(x.dtype))
    m = omega.shape[0]
    return torch.relu(x @ omega.to(x.dtype).T) / math.sqrt(m)  # (..., L, M)


def arccos_kernel(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The order-1 arc-cosine kernel in closed form, ``q (..., L, D)``,
    ``k (..., S, D)`` → ``(..., L, S)``:
    ``k₁ = ‖q‖‖k‖ (sin θ + (π − θ) cos θ) / (2π)``, θ the angle between q and k."""
    check_query_key(q, k)
    norms = q.norm(dim=-1).unsqueeze(-1) * k.norm(dim=-1).unsqueeze(-2)  # (..., L, S)
    tiny = torch.finfo(norms.dtype).tiny
    cos = q @ k.transpose(-2, -1) / norms.clamp(min=tiny)  # (..., L, S)
    theta = torch.arccos(cos.clamp(-1.0, 1.0))  # (..., L, S) in [0, π]
    j = torch.sin(theta) + (math.pi - theta) * torch.cos(theta)  # (..., L, S)
    return norms * j / (2 * math.pi)  # (..., L, S)


def arccos_attention_naive(q, k, v, omega, *, key_padding=None, causal=False, eps=1e-6):
    """Dense reference: ``A = φ(Q)φ(K)ᵀ`` with arc-cosine features, masked, rows divided
    by ``Σ_j A_ij + eps``.

    Shapes: ``q (..., L, D)``, ``k (..., S, D)``, ``v (..., S, Dv)``, ``Ω (M, D)``,
    ``key_padding (B, S)`` → ``(out (..., L, Dv), weights (..., L, S))`` in ``v``'s
    dtype.
    """
    check_arccos_inputs(q, k, v, omega, key_padding=key_padding, eps=eps)
    a = arccos_features(q, omega) @ arccos_features(k, omega).transpose(
        -2, -1
    )  # (..., L, S)
    if key_padding is not None:
        keep = key_padding_view(key_padding, a.dim()).unsqueeze(-2)  # (B, 1, ..., 1, S)
        a = a * keep
    if causal:
        ones = torch.ones(a.shape[-2], a.shape[-1], dtype=torch.bool, device=a.device)
        a = a.masked_fill(~ones.tril(), 0.0)  # (L, S) top-left causal
    weights = a / (a.sum(dim=-1, keepdim=True) + eps)  # (..., L, S)
    out = weights @ v.to(a.dtype)  # (..., L, Dv)
    return out.to(v.dtype), weights.to(v.dtype)


def arccos_attention(
    q, k, v, omega, *, key_padding=None, causal=False, chunk_size=64, eps=1e-6
):
    """Attention with arc-cosine features in O(n·M·Dv): chapter 7's linear attention on
    ``ReLU(ΩQ)/√M`` and ``ReLU(ΩK)/√M`` (non-negative: the normaliser is never < 0).

    No ``D^{-1/4}`` scaling: ``k₁`` is linear in each norm, so the weights do not depend
    on ``‖q‖`` at all and grow only linearly with ``‖k_j‖``. Shapes as in the naive
    form; returns ``(..., L, Dv)``.
    """
    check_arccos_inputs(
        q, k, v, omega, key_padding=key_padding, eps=eps, chunk_size=chunk_size
    )
    phi_q = arccos_features(q, omega)  # (..., L, M)
    phi_k = arccos_features(k, omega)  # (..., S, M)
    if causal:
        return linear_attention_chunked(
            phi_q, phi_k, v, key_padding=key_padding, chunk_size=chunk_size, eps=eps
        )
    return linear_attention_noncausal(phi_q, phi_k, v, key_padding=key_padding, eps=eps)
