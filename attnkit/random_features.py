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

Sin/cos features are not positive: their normaliser ``Σ_j φ(q)·φ(k_j)`` can be ≤ 0, so RFA
divides by ``max(den, eps)`` (documented failure mode; positive features never need it).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .linear import (
    _acc_dtype,
    _align_causal,
    linear_attention_chunked,
    linear_attention_noncausal,
    mask_key_features,
)
from .mechanisms import check_mechanism_inputs, key_padding_from_mask

__all__ = [
    "gaussian_matrix",
    "orthogonal_matrix",
    "random_projection",
    "positive_log_features",
    "positive_features",
    "trig_features",
    "key_stabilizer",
    "performer_features",
    "performer_attention_naive",
    "performer_attention",
    "PerformerAttention",
    "rfa_attention_naive",
    "rfa_attention",
    "RFA",
]

MAX_KEY_LOG = 40.0
TRIG_MIN_NORMALISER = 1e-6  # sin/cos normalisers are clamped at max(eps, this)


# ----------------------------------------------------------------------------- projections
def gaussian_matrix(m: int, d: int, *, generator=None, device=None) -> torch.Tensor:
    """iid ``N(0, 1)`` entries: ``Ω (M, D)`` in float32."""
    return torch.randn(m, d, generator=generator).to(device)  # (M, D)


def orthogonal_matrix(m: int, d: int, *, generator=None, device=None) -> torch.Tensor:
    """Orthogonal random features ``Ω (M, D)``: blocks of ``D`` exactly orthogonal rows.

    Each ``D × D`` block is the Q of a Gaussian matrix's QR decomposition with signs
    corrected (``Q · sign(diag R)``, so Q is Haar-distributed, not biased by LAPACK's sign
    convention); the last block is cut to ``M mod D`` rows. Rows are then rescaled by the
    norms of fresh Gaussian vectors (chi distribution with ``D`` degrees of freedom), so
    each row has the length distribution of an iid Gaussian row.
    """
    if m < 1 or d < 1:
        raise ValueError(f"m and d must be positive, got m={m}, d={d}")
    g = torch.randn(math.ceil(m / d), d, d, generator=generator, dtype=torch.float64)  # (blocks, D, D)
    q, r = torch.linalg.qr(g)  # batched QR, one per block
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)  # sign-corrected columns
    omega = q.transpose(-2, -1).reshape(-1, d)[:m]  # (M, D) rows orthonormal within each block
    norms = torch.randn(m, d, generator=generator, dtype=torch.float64).norm(dim=1)  # (M,) ~ chi_D
    return (omega * norms.unsqueeze(1)).to(device=device, dtype=torch.float32)  # (M, D)


def random_projection(m: int, d: int, *, orthogonal: bool = True, seed: int = 0, device=None) -> torch.Tensor:
    """``Ω (M, D)`` drawn from ``torch.Generator().manual_seed(seed)`` (CPU, then moved)."""
    g = torch.Generator().manual_seed(int(seed))
    draw = orthogonal_matrix if orthogonal else gaussian_matrix
    return draw(m, d, generator=g, device=device)


# ----------------------------------------------------------------------------- feature maps
def positive_log_features(x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """``ωᵢᵀx − ‖x‖²/2`` for every row ``ωᵢ``: ``x (..., L, D)``, ``Ω (M, D)`` → ``(..., L, M)``."""
    x = x.to(_acc_dtype(x.dtype))
    proj = x @ omega.to(x.dtype).T  # (..., L, M)
    return proj.sub_(0.5 * (x * x).sum(dim=-1, keepdim=True))  # in place: saves one (..., L, M) buffer


def positive_features(x: torch.Tensor, omega: torch.Tensor, *, stabilizer=None) -> torch.Tensor:
    """FAVOR+ features ``exp(Ωx − ‖x‖²/2 − c)/√M``: ``(..., L, D)`` → ``(..., L, M)``.

    ``stabilizer`` ``c``: ``None`` (no shift), or a tensor broadcastable to ``(..., L, 1)``.
    Without a shift, ``φ(q)·φ(k)`` is an unbiased estimate of ``exp(q·k)``.
    """
    logits = positive_log_features(x, omega)  # (..., L, M)
    if stabilizer is not None:
        logits = logits - stabilizer
    return torch.exp(logits) / math.sqrt(omega.shape[0])  # (..., L, M)


def trig_features(x: torch.Tensor, omega: torch.Tensor, *, log_scale=None) -> torch.Tensor:
    """Random Fourier features ``[sin(Ωx), cos(Ωx)] · exp(a)/√M``: ``(..., L, D)`` → ``(..., L, 2M)``.

    ``log_scale`` ``a`` broadcastable to ``(..., L, 1)``; the default ``‖x‖²/2`` makes
    ``φ(q)·φ(k)`` an unbiased estimate of ``exp(q·k)``; ``0`` estimates the Gaussian
    kernel ``exp(−‖q − k‖²/2)`` (RFA on ℓ2-normalised inputs).
    """
    x = x.to(_acc_dtype(x.dtype))
    proj = x @ omega.to(x.dtype).T  # (..., L, M)
    if log_scale is None:
        log_scale = 0.5 * (x * x).sum(dim=-1, keepdim=True)  # (..., L, 1)
    feats = torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)  # (..., L, 2M)
    return feats * torch.exp(log_scale) / math.sqrt(omega.shape[0])  # (..., L, 2M)


def key_stabilizer(log_k: torch.Tensor, key_padding=None, *, causal: bool = False) -> torch.Tensor:
    """One detached constant per (batch, head) for all keys: ``log_k (..., S, M)`` → ``(..., 1, 1)``.

    Non-causal: max over real keys and features. Causal: max over the features of the first
    real key (every query sees it, so nothing from the future leaks in). No real key → 0.
    ``key_padding`` (True = real key) broadcasts to ``(..., S)``.
    """
    log_k = log_k.detach()
    if key_padding is None:
        key_padding = torch.ones(log_k.shape[-2], dtype=torch.bool, device=log_k.device)  # (S,)
    key_padding = key_padding.expand(log_k.shape[:-1])  # (..., S)
    per_key = log_k.amax(dim=-1)  # (..., S)
    if causal:
        first = (key_padding.cumsum(dim=-1) == 1) & key_padding  # (..., S) one-hot first real key
        per_key = per_key.masked_fill(~first, -math.inf)
    else:
        per_key = per_key.masked_fill(~key_padding, -math.inf)
    c = per_key.amax(dim=-1)  # (...)
    c = torch.where(torch.isfinite(c), c, torch.zeros_like(c))
    return c[..., None, None]  # (..., 1, 1)


def performer_features(q, k, omega, *, kind="positive", key_padding=None, causal=False):
    """Stabilised feature maps for softmax attention: ``(φ(Q) (..., L, M'), φ(K) (..., S, M'))``.

    ``q (..., L, D)``, ``k (..., S, D)`` are scaled by ``D^{-1/4}``; ``M' = M`` for
    ``kind="positive"``, ``2M`` for ``"trig"``. Per-row query stabiliser, shared detached key
    stabiliser (see :func:`key_stabilizer`); padded keys get zero features.
    """
    acc = _acc_dtype(q.dtype)
    scale = q.shape[-1] ** -0.25
    q, k = q.to(acc) * scale, k.to(acc) * scale
    if kind == "positive":
        log_q = positive_log_features(q, omega)  # (..., L, M)
        log_k = positive_log_features(k, omega)  # (..., S, M)
    elif kind == "trig":
        log_q = 0.5 * (q * q).sum(dim=-1, keepdim=True)  # (..., L, 1) the exp(‖q‖²/2) factor
        log_k = 0.5 * (k * k).sum(dim=-1, keepdim=True)  # (..., S, 1)
    else:
        raise ValueError(f"kind must be 'positive' or 'trig', got {kind!r}")
    c_q = log_q.detach().amax(dim=-1, keepdim=True)  # (..., L, 1)
    c_k = key_stabilizer(log_k, key_padding, causal=causal)  # (..., 1, 1)
    if kind == "positive":
        half_log_m = 0.5 * math.log(omega.shape[0])  # the 1/√M factor, folded into the exponent
        phi_q = (log_q - (c_q + half_log_m)).exp_()  # (..., L, M)
        phi_k = (log_k - (c_k + half_log_m)).clamp_(max=MAX_KEY_LOG - half_log_m).exp_()  # (..., S, M)
    else:
        log_k = (log_k - c_k).clamp(max=MAX_KEY_LOG)
        phi_q = trig_features(q, omega, log_scale=log_q - c_q)  # (..., L, 2M)
        phi_k = trig_features(k, omega, log_scale=log_k)  # (..., S, 2M)
    return phi_q, mask_key_features(phi_k, key_padding)


# ----------------------------------------------------------------------------- Performer
def performer_attention_naive(q, k, v, omega, *, kind="positive", key_padding=None, causal=False, eps=1e-30):
    """Dense reference: ``A = φ(Q)φ(K)ᵀ`` (``(..., L, S)``) built, masked and row-normalised.

    Shapes: ``q (..., L, D)``, ``k (..., S, D)``, ``v (..., S, Dv)``, ``Ω (M, D)`` → ``(..., L, Dv)``.
    """
    phi_q, phi_k = performer_features(q, k, omega, kind=kind, key_padding=key_padding, causal=causal)
    v_acc = v.to(phi_q.dtype)
    a = phi_q @ phi_k.transpose(-2, -1)  # (..., L, S)
    if causal:
        allowed = torch.ones(a.shape[-2], a.shape[-1], dtype=torch.bool, device=a.device).tril()  # (L, S)
        a = a.masked_fill(~allowed, 0.0)
    den = a.sum(dim=-1, keepdim=True)  # (..., L, 1)
    den = den + eps if kind == "positive" else den.clamp(min=max(eps, TRIG_MIN_NORMALISER))
    return ((a @ v_acc) / den).to(v.dtype)  # (..., L, Dv)


def performer_attention(q, k, v, omega, *, kind="positive", key_padding=None, causal=False,
                        chunk_size=64, eps=1e-30):
    """FAVOR+: features, then linear attention in O(n·M·Dv). Shapes as in the naive form.

    Positive features use :mod:`attnkit.linear`'s forms (non-causal, chunked causal);
    sin/cos features go through :func:`rfa_attention` (normaliser clamped at
    ``max(eps, TRIG_MIN_NORMALISER)``: the tiny ``eps`` that suits stabilised positive
    features would turn a negative sin/cos normaliser into an astronomically large output).
    """
    phi_q, phi_k = performer_features(q, k, omega, kind=kind, key_padding=key_padding, causal=causal)
    if kind == "trig":
        return rfa_attention(phi_q, phi_k, v, causal=causal, eps=max(eps, TRIG_MIN_NORMALISER))
    if causal:
        return linear_attention_chunked(phi_q, phi_k, v, chunk_size=chunk_size, eps=eps)
    return linear_attention_noncausal(phi_q, phi_k, v, eps=eps)


class _RandomFeatureModule(nn.Module):
    """Owns the seed and the current projection ``Ω``; draws a new one only in training."""

    def _check_settings(self, n_features, seed, eps):
        if not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"n_features must be a positive int, got {n_features!r}")
        if not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps}")

    def projection(self, d: int, device) -> torch.Tensor:
        """``Ω (M, D)``: fixed by ``seed`` in eval; in training with ``redraw=True`` a new
        draw (seed + number of draws so far) on every forward call."""
        if self.training and self.redraw:
            self.draws += 1
        key = (d, str(device), self.draws)
        if self._omega_key != key:
            self.omega = random_projection(self.n_features, d, orthogonal=self.orthogonal,
                                           seed=self.seed + self.draws, device=device)  # (M, D)
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
    """

    supports_causal = True
    content_dependent_grouping = False
    max_len = None

    def __init__(self, *, n_features: int = 256, orthogonal: bool = True, kind: str = "positive",
                 seed: int = 0, redraw: bool = True, chunk_size: int = 64, eps: float = 1e-30):
        super().__init__()
        self._check_settings(n_features, seed, eps)
        if kind not in ("positive", "trig"):
            raise ValueError(f"kind must be 'positive' or 'trig', got {kind!r}")
        self.n_features, self.orthogonal, self.kind, self.seed = n_features, orthogonal, kind, seed
        self.redraw, self.chunk_size, self.eps = redraw, chunk_size, eps
        self.draws = 0
        self.omega = None
        self._omega_key = None

    def forward(self, q, k, v, *, mask=None, causal=False):
        check_mechanism_inputs(q, k, v, mask)
        kp = key_padding_from_mask(mask, q.shape[0], k.shape[2], "performer")  # (B, S) or None
        omega = self.projection(q.shape[-1], q.device)  # (M, D)
        return performer_attention(
            q, k, v, omega, kind=self.kind, key_padding=None if kp is None else kp[:, None, :],  # (B, 1, S)
            causal=causal, chunk_size=self.chunk_size, eps=self.eps,
        )  # (B, H, L, Dv)


# ----------------------------------------------------------------------------- RFA
def _gate_weights(gate: torch.Tensor) -> torch.Tensor:
    """Dense decay weights of the gated recurrence: ``g (..., L)`` → ``W (..., L, L)``,
    ``W[t, j] = (1 − g_j) Π_{j<s≤t} g_s`` for ``j ≤ t`` and 0 above the diagonal."""
    log_g = torch.log(gate)  # (..., L)
    G = torch.cumsum(log_g, dim=-1)  # (..., L)
    L = gate.shape[-1]
    tril = torch.ones(L, L, dtype=torch.bool, device=gate.device).tril()  # (L, L)
    diff = (G.unsqueeze(-1) - G.unsqueeze(-2)).masked_fill(~tril, -math.inf)  # (..., L, L)
    return torch.exp(diff) * (1 - gate).unsqueeze(-2)  # (..., L, L)


def rfa_attention_naive(phi_q, phi_k, v, *, gate=None, causal=False, eps=1e-6):
    """Dense reference of (gated) RFA: ``φ(Q)φ(K)ᵀ`` times the decay weights, normalised by
    ``max(row sum, eps)``. ``phi_q (..., L, M)``, ``phi_k (..., S, M)``, ``v (..., S, Dv)``,
    ``gate (..., S)`` in (0, 1) (causal only, ``S = L``) → ``(..., L, Dv)``."""
    acc = _acc_dtype(phi_q.dtype)
    phi_q, phi_k, v_acc = phi_q.to(acc), phi_k.to(acc), v.to(acc)
    a = phi_q @ phi_k.transpose(-2, -1)  # (..., L, S)
    if gate is not None:
        a = a * _gate_weights(gate.to(acc))  # (..., L, L)
    elif causal:
        allowed = torch.ones(a.shape[-2], a.shape[-1], dtype=torch.bool, device=a.device).tril()  # (L, S)
        a = a.masked_fill(~allowed, 0.0)
    den = a.sum(dim=-1, keepdim=True).clamp(min=eps)  # (..., L, 1)
    return ((a @ v_acc) / den).to(v.dtype)  # (..., L, Dv)


def rfa_attention(phi_q, phi_k, v, *, gate=None, causal=False, eps=1e-6):
    """RFA on mapped features, normaliser clamped at ``eps`` (sin/cos can make it ≤ 0).

    Non-causal: ``φ(Q)(φ(K)ᵀV)``. Causal without gate: cumulative sums. Causal with gate:
    the recurrence ``S_t = g_t S_{t−1} + (1 − g_t) φ(k_t) v_tᵀ``, ``z_t = g_t z_{t−1} + (1 − g_t) φ(k_t)``.
    Shapes as in :func:`rfa_attention_naive`.
    """
    if gate is not None and not causal:
        raise ValueError("gate is a recency decay of the causal recurrence; pass causal=True")
    acc = _acc_dtype(phi_q.dtype)
    phi_q, phi_k, v_acc = phi_q.to(acc), phi_k.to(acc), v.to(acc)
    if not causal:
        kv = phi_k.transpose(-2, -1) @ v_acc  # (..., M, Dv)
        num = phi_q @ kv  # (..., L, Dv)
        den = phi_q @ phi_k.sum(dim=-2).unsqueeze(-1)  # (..., L, 1)
    elif gate is None:
        phi_k, v_acc = _align_causal(phi_k, v_acc, phi_q.shape[-2])  # (..., L, M), (..., L, Dv)
        kv = torch.cumsum(phi_k.unsqueeze(-1) * v_acc.unsqueeze(-2), dim=-3)  # (..., L, M, Dv)
        num = (phi_q.unsqueeze(-2) @ kv).squeeze(-2)  # (..., L, Dv)
        den = (phi_q * torch.cumsum(phi_k, dim=-2)).sum(dim=-1, keepdim=True)  # (..., L, 1)
    else:
        gate = gate.to(acc)
        batch = torch.broadcast_shapes(phi_q.shape[:-2], phi_k.shape[:-2], v_acc.shape[:-2])
        s = phi_q.new_zeros(*batch, phi_q.shape[-1], v_acc.shape[-1])  # (..., M, Dv)
        z = phi_q.new_zeros(*batch, phi_q.shape[-1])  # (..., M)
        nums, dens = [], []
        for t in range(phi_q.shape[-2]):
            g = gate[..., t, None]  # (..., 1)
            s = g[..., None] * s + (1 - g)[..., None] * phi_k[..., t, :, None] * v_acc[..., t, None, :]
            z = g * z + (1 - g) * phi_k[..., t, :]
            nums.append((phi_q[..., t, None, :] @ s).squeeze(-2))  # (..., Dv)
            dens.append((phi_q[..., t, :] * z).sum(-1, keepdim=True))  # (..., 1)
        num, den = torch.stack(nums, dim=-2), torch.stack(dens, dim=-2)  # (..., L, Dv), (..., L, 1)
    return (num / den.clamp(min=eps)).to(v.dtype)  # (..., L, Dv)


class RFA(_RandomFeatureModule):
    """Random Feature Attention (Peng et al., 2021): sin/cos features of ℓ2-normalised
    queries and keys, optionally with a learned recency gate in the causal recurrence.

    ``φ(x) = [sin(Ωx/σ), cos(Ωx/σ)]/√M`` on ``x/‖x‖`` estimates the Gaussian kernel
    ``exp(−‖q̂ − k̂‖²/(2σ²)) ∝ exp(q̂·k̂/σ²)``. The gate ``g_t = sigmoid(w_g·k_t + b_g)`` is
    computed from the key at step ``t`` (per head, ``w_g (D,)``), as the paper's token input.

    Args (keyword-only): n_features (M, default 128), sigma (default 1.0), gate (default
    False; needs ``causal=True``), orthogonal, seed, redraw, eps (normaliser clamp).
    """

    supports_causal = True
    content_dependent_grouping = False
    max_len = None

    def __init__(self, *, n_features: int = 128, sigma: float = 1.0, gate: bool = False,
                 orthogonal: bool = True, seed: int = 0, redraw: bool = True, eps: float = 1e-6):
        super().__init__()
        self._check_settings(n_features, seed, eps)
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.n_features, self.sigma, self.orthogonal, self.seed = n_features, sigma, orthogonal, seed
        self.redraw, self.eps = redraw, eps
        self.draws = 0
        self.omega = None
        self._omega_key = None
        self.gate_weight = nn.Parameter(torch.zeros(0)) if gate else None
        self.gate_bias = nn.Parameter(torch.tensor(2.0)) if gate else None

    def features(self, x, omega):
        """``x (..., L, D)`` → ``(..., L, 2M)`` on the unit sphere, scaled by ``1/σ``."""
        x = x.to(_acc_dtype(x.dtype))
        x = x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12) / self.sigma
        return trig_features(x, omega, log_scale=torch.zeros((), device=x.device))

    def gate(self, k):
        """``g (B, H, S)`` in (0, 1) from the keys ``(B, H, S, D)``."""
        if self.gate_weight.numel() != k.shape[-1]:
            with torch.no_grad():
                self.gate_weight.data = torch.zeros(k.shape[-1], device=k.device)
        return torch.sigmoid(k.to(_acc_dtype(k.dtype)) @ self.gate_weight + self.gate_bias)  # (B, H, S)

    def forward(self, q, k, v, *, mask=None, causal=False):
        check_mechanism_inputs(q, k, v, mask)
        kp = key_padding_from_mask(mask, q.shape[0], k.shape[2], "rfa")  # (B, S) or None
        if self.gate_weight is not None and not causal:
            raise ValueError("RFA(gate=True) is a causal recurrence; call it with causal=True")
        if self.gate_weight is not None and q.shape[2] != k.shape[2]:
            raise ValueError(f"gated RFA needs L == S, got q {tuple(q.shape)} and k {tuple(k.shape)}")
        omega = self.projection(q.shape[-1], q.device)  # (M, D)
        phi_q = self.features(q, omega)  # (B, H, L, 2M)
        phi_k = mask_key_features(self.features(k, omega), None if kp is None else kp[:, None, :])  # (B, H, S, 2M)
        g = self.gate(k) if self.gate_weight is not None else None  # (B, H, S)
        if g is not None and kp is not None:  # a padded key neither writes nor decays the state
            g = torch.where(kp[:, None, :], g, torch.ones_like(g))
        return rfa_attention(phi_q, phi_k, v, gate=g, causal=causal, eps=self.eps)  # (B, H, L, Dv)
