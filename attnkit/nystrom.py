"""Nyströmformer (Xiong et al., 2021): a deterministic low-rank approximation of softmax attention.

Pick ``M`` *landmarks* — the means of ``M`` consecutive segments of the queries
(``Q̃ (..., M, D)``) and of the keys (``K̃``). With ``softmax`` taken row-wise on scores
scaled by ``1/√D``,

    F = softmax(Q K̃ᵀ) (L × M),   A = softmax(Q̃ K̃ᵀ) (M × M),   Bm = softmax(Q̃ Kᵀ) (M × S),
    softmax(Q Kᵀ) ≈ F A⁺ Bm,     out = F (A⁺ (Bm V)),

which costs O(n·M) instead of O(n²). ``A⁺`` is the Moore–Penrose pseudo-inverse, computed
by an iteration that uses only matrix products (6 steps by default), started from
``Z₀ = Aᵀ / (‖A‖₁ ‖A‖∞)``.

* If ``n`` is not a multiple of ``M``, the sequence is padded and each segment mean is
  taken over its real positions only (padded keys count as absent too).
* With ``M ≥ n`` there is nothing to compress: the exact softmax attention is returned.
* Not causal: a landmark averages a whole segment, future included. ``causal=True`` raises.
* ``key_padding`` is a boolean ``(B, S)`` tensor (``True`` = real key), ``B = k.shape[0]``,
  broadcast over the other leading axes. A batch item with no real key (or ``S = 0``) gets
  zeros; ``L = 0`` or an empty batch gives an empty output.
* Each public function checks its arguments in one call to :mod:`attnkit._checks`:
  integer, boolean and complex tensors, tensors on different devices, ``num_landmarks < 1``
  and ``pinv_iterations`` outside ``[1, MAX_PINV_ITERATIONS]`` (100) raise.
"""

from __future__ import annotations

import math

import torch

from ._checks import (
    MAX_PINV_ITERATIONS,
    check_int_in_range,
    check_nystrom_inputs,
    check_pinv_input,
    check_positive_int,
    check_segment_inputs,
)
from .linear import accumulation_dtype, key_padding_view
from .masking import masked_softmax
from .mechanisms import Mechanism, key_padding_from_mask

__all__ = [
    "segment_means",
    "iterative_pinv",
    "nystrom_matrices",
    "nystrom_attention_naive",
    "nystrom_attention",
    "NystromAttention",
]


def segment_means(x: torch.Tensor, num_landmarks: int, valid=None) -> torch.Tensor:
    """Means of ``M`` consecutive segments: ``x (..., n, D)`` → ``(..., M, D)``.

    ``n`` is zero-padded to a multiple of ``M``; ``valid`` (boolean, broadcastable to
    ``(..., n)``, True = real position) excludes positions from the means; a segment with
    no real position gets the zero vector.
    """
    check_segment_inputs(x, num_landmarks, valid)
    n = x.shape[-2]
    size = max(math.ceil(n / num_landmarks), 1)  # n = 0: M empty segments of size 1
    pad = size * num_landmarks - n
    w = torch.ones(x.shape[:-1], dtype=x.dtype, device=x.device)  # (..., n)
    if valid is not None:
        w = w * valid.to(x.dtype)
    xw = torch.nn.functional.pad(
        x * w.unsqueeze(-1), (0, 0, 0, pad)
    )  # (..., M·size, D)
    w = torch.nn.functional.pad(w, (0, pad))  # (..., M·size)
    sums = xw.reshape(*x.shape[:-2], num_landmarks, size, x.shape[-1]).sum(
        dim=-2
    )  # (..., M, D)
    counts = w.reshape(*w.shape[:-1], num_landmarks, size).sum(dim=-1)  # (..., M)
    return sums / counts.clamp(min=1).unsqueeze(-1)  # (..., M, D)


def iterative_pinv(a: torch.Tensor, iterations: int = 6) -> torch.Tensor:
    """Approximate Moore–Penrose inverse of ``a (..., M, M)`` by matrix products only.

    ``Z ← ¼ Z (13I − AZ (15I − AZ (7I − AZ)))`` from ``Z₀ = Aᵀ/(‖A‖₁‖A‖∞)`` (norms per
    matrix, so batch items stay independent). ``iterations`` is an int in
    ``[1, MAX_PINV_ITERATIONS]``.
    """
    check_pinv_input(a, iterations)
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)  # (M, M)
    norm1 = a.abs().sum(dim=-2).amax(dim=-1)  # (...) largest column sum
    norm_inf = a.abs().sum(dim=-1).amax(dim=-1)  # (...) largest row sum
    z = (
        a.transpose(-2, -1)
        / (norm1 * norm_inf).clamp(min=torch.finfo(a.dtype).tiny)[..., None, None]
    )  # (..., M, M)
    for _ in range(iterations):
        az = a @ z  # (..., M, M)
        z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))  # (..., M, M)
    return z


def _parts(q, k, num_landmarks, key_padding):
    """The three softmax kernels ``F (..., L, M)``, ``A (..., M, M)``, ``Bm (..., M, S)``;
    ``key_padding`` already viewed as ``(B, 1, ..., 1, S)``."""
    scale = q.shape[-1] ** -0.5
    q_l = segment_means(q, num_landmarks)  # (..., M, D)
    k_l = segment_means(k, num_landmarks, key_padding)  # (..., M, D)
    kp = None if key_padding is None else key_padding.unsqueeze(-2)  # (B, 1, ..., 1, S)
    f = torch.softmax(q @ k_l.transpose(-2, -1) * scale, dim=-1)  # (..., L, M)
    a = torch.softmax(q_l @ k_l.transpose(-2, -1) * scale, dim=-1)  # (..., M, M)
    b = masked_softmax(q_l @ k.transpose(-2, -1) * scale, mask=kp)  # (..., M, S)
    return f, a, b


def nystrom_matrices(q, k, *, num_landmarks=64, key_padding=None):
    """The three softmax matrices of the approximation ``F A⁺ Bm``, for looking at them.

    ``q (..., L, D)``, ``k (..., S, D)``, ``key_padding (B, S)`` → ``(F (..., L, M),
    A (..., M, M), Bm (..., M, S))`` in at least float32; every row sums to 1 (a ``Bm``
    row whose segment has no real key: 0).
    """
    check_nystrom_inputs(
        q,
        k,
        None,
        num_landmarks=num_landmarks,
        pinv_iterations=None,
        key_padding=key_padding,
    )
    acc = accumulation_dtype(q.dtype)
    kp = key_padding_view(key_padding, k.dim())  # (B, 1, ..., 1, S) or None
    return _parts(q.to(acc), k.to(acc), num_landmarks, kp)


def nystrom_attention_naive(
    q, k, v, *, num_landmarks=64, pinv_iterations=6, key_padding=None
):
    """Reference: build the ``L × S`` Nyström matrix ``F A⁺ Bm`` explicitly, then multiply V.

    ``q (..., L, D)``, ``k (..., S, D)``, ``v (..., S, Dv)``, ``key_padding (B, S)`` →
    ``(out (..., L, Dv), weights (..., L, S))`` in ``v``'s dtype; ``weights`` is the Nyström
    approximation of the softmax weights (rows sum to about 1). ``pinv_iterations=None``
    uses the exact ``torch.linalg.pinv``.
    """
    check_nystrom_inputs(
        q,
        k,
        v,
        num_landmarks=num_landmarks,
        pinv_iterations=pinv_iterations,
        key_padding=key_padding,
    )
    acc = accumulation_dtype(q.dtype)
    q, k, vv = q.to(acc), k.to(acc), v.to(acc)
    kp = key_padding_view(key_padding, k.dim())  # (B, 1, ..., 1, S) or None
    f, a, b = _parts(q, k, num_landmarks, kp)
    a_pinv = (
        torch.linalg.pinv(a)
        if pinv_iterations is None
        else iterative_pinv(a, pinv_iterations)
    )
    weights = f @ a_pinv @ b  # (..., L, S)
    return (weights @ vv).to(v.dtype), weights.to(v.dtype)  # (..., L, Dv), (..., L, S)


def nystrom_attention(
    q, k, v, *, num_landmarks=64, pinv_iterations=6, key_padding=None
):
    """Nyström attention in O(n·M): ``F (A⁺ (Bm V))``.

    Exact softmax attention when ``M ≥ max(L, S)``.
    Shapes as in :func:`nystrom_attention_naive`; returns ``(..., L, Dv)``.
    """
    check_nystrom_inputs(
        q,
        k,
        v,
        num_landmarks=num_landmarks,
        pinv_iterations=pinv_iterations,
        key_padding=key_padding,
    )
    acc = accumulation_dtype(q.dtype)
    q, k, v_acc = q.to(acc), k.to(acc), v.to(acc)
    kp = key_padding_view(key_padding, k.dim())  # (B, 1, ..., 1, S) or None
    if num_landmarks >= max(
        q.shape[-2], k.shape[-2]
    ):  # nothing to compress: exact softmax attention
        scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5  # (..., L, S)
        mask = None if kp is None else kp.unsqueeze(-2)  # (B, 1, ..., 1, S)
        return (masked_softmax(scores, mask=mask) @ v_acc).to(v.dtype)  # (..., L, Dv)
    f, a, b = _parts(q, k, num_landmarks, kp)
    a_pinv = (
        torch.linalg.pinv(a)
        if pinv_iterations is None
        else iterative_pinv(a, pinv_iterations)
    )
    out = f @ (a_pinv @ (b @ v_acc))  # (..., L, Dv)
    if kp is not None:  # a batch item without any real key gets zeros
        any_key = kp.any(dim=-1)[..., None, None]  # (B, 1, ..., 1, 1, 1)
        out = torch.where(
            any_key, out, torch.zeros((), dtype=out.dtype, device=out.device)
        )
    return out.to(v.dtype)


class NystromAttention(Mechanism):
    """Nyströmformer attention as a mechanism (non-causal only).

    Args (keyword-only):
        num_landmarks: ``M`` segment-mean landmarks (default 64, as in the paper's LRA runs).
        pinv_iterations: steps of the iterative pseudo-inverse (default 6; ``None`` = exact pinv).

    ``forward(q (B, H, L, D), k (B, H, S, D), v (B, H, S, Dv), *, mask=None, causal=False)``
    → ``(B, H, L, Dv)``; ``mask``: key padding ``(B, 1, 1, S)`` or ``(B, S)``; ``causal=True``
    raises ``ValueError``. The constructor checks its settings; :func:`nystrom_attention` checks
    the inputs.
    """

    supports_causal = False

    def __init__(self, *, num_landmarks: int = 64, pinv_iterations: int | None = 6):
        super().__init__()
        check_positive_int("num_landmarks", num_landmarks)
        if pinv_iterations is not None:
            check_int_in_range(
                "pinv_iterations", pinv_iterations, 1, MAX_PINV_ITERATIONS
            )
        self.num_landmarks = num_landmarks
        self.pinv_iterations = pinv_iterations

    def forward(self, q, k, v, *, mask=None, causal=False):
        if causal:
            raise ValueError(
                "the 'nystrom' mechanism is not causal: its landmarks average whole "
                "segments, future positions included; use causal=False"
            )
        kp = (
            None
            if mask is None
            else key_padding_from_mask(mask, k.shape[0], k.shape[-2], "nystrom")
        )
        return nystrom_attention(
            q,
            k,
            v,
            num_landmarks=self.num_landmarks,
            pinv_iterations=self.pinv_iterations,
            key_padding=kp,
        )  # (B, H, L, Dv)
