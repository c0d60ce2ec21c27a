"""Argument checks shared by every public function.

Each helper raises ``ValueError`` or ``TypeError`` with a message that names the
argument and the shape (or dtype, or device) it saw, so a wrong call fails at
the line that made it rather than as a silent broadcast further down.
"""
from __future__ import annotations

import torch

__all__ = [
    "check_tensor",
    "check_rank",
    "check_min_rank",
    "check_floating",
    "check_same_device",
    "check_same_dtype",
    "check_dim",
]


def check_tensor(name: str, x) -> None:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")


def check_rank(name: str, x: torch.Tensor, ranks, legend: str = "") -> None:
    """Raise ``ValueError`` unless ``x.dim()`` is one of ``ranks``.

    ``legend`` describes the expected layout, e.g. ``"(B, L, D)"``.
    """
    check_tensor(name, x)
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if x.dim() not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        hint = f" {legend}" if legend else ""
        raise ValueError(f"{name} must be {want}{hint}, got shape {tuple(x.shape)}")


def check_min_rank(name: str, x: torch.Tensor, rank: int, legend: str = "") -> None:
    """Raise ``ValueError`` unless ``x`` has at least ``rank`` dimensions."""
    check_tensor(name, x)
    if x.dim() < rank:
        hint = f" {legend}" if legend else ""
        raise ValueError(
            f"{name} must have at least {rank} dimensions{hint}, got shape {tuple(x.shape)}"
        )


def check_floating(name: str, x: torch.Tensor) -> None:
    """Raise ``TypeError`` unless ``x`` has a floating-point dtype."""
    check_tensor(name, x)
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_same_device(**tensors: torch.Tensor) -> None:
    """Raise ``ValueError`` unless every given tensor is on the same device."""
    items = [(n, t) for n, t in tensors.items() if t is not None]
    if not items:
        return
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.device != first.device:
            raise ValueError(
                f"{name} is on {t.device} but {first_name} is on {first.device}; "
                "move them to the same device"
            )


def check_same_dtype(**tensors: torch.Tensor) -> None:
    """Raise ``TypeError`` unless every given tensor has the same dtype."""
    items = [(n, t) for n, t in tensors.items() if t is not None]
    if not items:
        return
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.dtype != first.dtype:
            raise TypeError(
                f"{name} has dtype {t.dtype} but {first_name} has dtype {first.dtype}"
            )


def check_dim(name: str, x: torch.Tensor, dim: int, size: int, other: str) -> None:
    """Raise ``ValueError`` unless ``x.shape[dim] == size``; ``other`` says where ``size`` came from."""
    if x.shape[dim] != size:
        raise ValueError(
            f"{name} has size {x.shape[dim]} in dimension {dim} (shape {tuple(x.shape)}), "
            f"but {other} is {size}"
        )


# --- linear, random features, Nyström, Synthesizer
# Validators of the functions in linear.py, random_features.py, nystrom.py and synthesizer.py.
# Each public function there makes one call to one of these, then reads like its equation.

__all__ += [
    "MAX_PINV_ITERATIONS",
    "check_int_in_range",
    "check_positive_int",
    "check_positive_real",
    "check_key_padding",
    "check_feature_inputs",
    "LINEAR_CAUSAL_FORMS",
    "check_linear_inputs",
    "check_step_inputs",
    "check_state_settings",
    "check_projection_size",
    "check_projection",
    "check_stabilizer_inputs",
    "check_performer_inputs",
    "check_rfa_feature_inputs",
    "check_gate_inputs",
    "check_rfa_inputs",
    "check_segment_inputs",
    "check_pinv_input",
    "check_nystrom_inputs",
    "check_synthesizer_mlp",
    "check_low_rank_factors",
    "check_length",
    "check_crop",
    "check_mix_inputs",
    "check_synthesizer_inputs",
]

# the iterative pseudo-inverse converges in ~10-30 steps; more is a mistake, not more accuracy
MAX_PINV_ITERATIONS = 100


def check_int_in_range(name: str, value, low: int, high: int | None = None) -> None:
    """Raise ``TypeError`` unless ``value`` is an ``int`` (``bool`` is not), ``ValueError``
    unless ``low ≤ value`` (and ``value ≤ high`` when ``high`` is given)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def check_positive_int(name: str, value, maximum: int | None = None) -> None:
    """Raise unless ``value`` is an ``int`` in ``[1, maximum]`` (no upper bound when ``None``)."""
    check_int_in_range(name, value, 1, maximum)


def check_positive_real(name: str, value) -> None:
    """Raise ``TypeError`` unless ``value`` is a Python number (not ``bool``), ``ValueError``
    unless it is finite and ``> 0`` (``nan`` and ``inf`` are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not (value > 0 and value != float("inf")):  # nan > 0 is False
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_floating_min_rank(name: str, x, rank: int, legend: str) -> None:
    check_floating(name, x)
    check_min_rank(name, x, rank, legend)


def check_key_padding(key_padding, k: torch.Tensor, name: str = "k") -> None:
    """``key_padding`` is ``None`` or a boolean ``(B, S)`` tensor (``True`` = real key) on
    ``k``'s device, where ``B = k.shape[0]`` and ``S = k.shape[-2]`` for ``k (B, ..., S, ·)``.

    One shape only: a ``(B, S)`` mask is broadcast over ``k``'s other leading axes by the
    function, never guessed from trailing-axis broadcasting.
    """
    if key_padding is None:
        return
    check_tensor("key_padding", key_padding)
    if key_padding.dtype != torch.bool:
        raise TypeError(
            "key_padding must be a boolean (B, S) tensor (True = real key), "
            f"got dtype {key_padding.dtype}"
        )
    if k.dim() < 3:
        raise ValueError(
            f"key_padding (B, S) needs {name} with a batch axis first, (B, ..., S, ·); "
            f"got {name} of shape {tuple(k.shape)}"
        )
    want = (k.shape[0], k.shape[-2])
    if tuple(key_padding.shape) != want:
        raise ValueError(
            f"key_padding must have shape (B, S) = {want} (B = {name}.shape[0], "
            f"S = {name}.shape[-2], {name} of shape {tuple(k.shape)}), "
            f"got shape {tuple(key_padding.shape)}"
        )
    if key_padding.device != k.device:
        raise ValueError(f"key_padding is on {key_padding.device} but {name} is on {k.device}")


def check_feature_inputs(phi_q, phi_k, v, *, key_padding=None, eps=None, chunk_size=None,
                         names=("phi_q", "phi_k", "v")) -> None:
    """Queries ``(..., L, M)``, keys ``(..., S, M)`` and values ``(..., S, Dv)`` (``v`` may be
    ``None``): real floating tensors on one device whose leading axes broadcast, with
    matching ``M`` and ``S``; then ``key_padding`` (:func:`check_key_padding`), ``eps > 0``
    and a positive int ``chunk_size`` when given. ``names`` are the arguments' names."""
    nq, nk, nv = names
    tensors = {nq: phi_q, nk: phi_k} if v is None else {nq: phi_q, nk: phi_k, nv: v}
    for name, t in tensors.items():
        _check_floating_min_rank(name, t, 2, "(..., n, features)")
    check_same_device(**tensors)
    if phi_q.shape[-1] != phi_k.shape[-1]:
        raise ValueError(
            f"{nq} has {phi_q.shape[-1]} features but {nk} has {phi_k.shape[-1]} "
            f"(shapes {tuple(phi_q.shape)} and {tuple(phi_k.shape)})"
        )
    if v is not None and phi_k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{nv} has {v.shape[-2]} positions but {nk} has {phi_k.shape[-2]} "
            f"(shapes {tuple(v.shape)} and {tuple(phi_k.shape)})"
        )
    try:
        torch.broadcast_shapes(*(t.shape[:-2] for t in tensors.values()))
    except RuntimeError:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in tensors.items())
        raise ValueError(
            f"the leading (batch) axes of {', '.join(tensors)} do not broadcast: {shapes}"
        ) from None
    check_key_padding(key_padding, phi_k, nk)
    if eps is not None:
        check_positive_real("eps", eps)
    if chunk_size is not None:
        check_positive_int("chunk_size", chunk_size)


LINEAR_CAUSAL_FORMS = ("chunked", "cumsum", "recurrent")


def check_linear_inputs(phi_q, phi_k, v, *, key_padding=None, causal_form="chunked",
                        chunk_size=None, eps=None) -> None:
    """As :func:`check_feature_inputs`, and ``causal_form`` one of ``LINEAR_CAUSAL_FORMS``."""
    check_feature_inputs(phi_q, phi_k, v, key_padding=key_padding, eps=eps, chunk_size=chunk_size)
    if causal_form not in LINEAR_CAUSAL_FORMS:
        raise ValueError(f"causal_form must be one of {LINEAR_CAUSAL_FORMS}, got {causal_form!r}")


def check_step_inputs(state, phi_q_i, phi_k_i, v_i, key_allowed=None, eps=None) -> None:
    """One decoding step: ``state.kv (..., M, Dv)``, ``state.z (..., M)``, ``phi_q_i``,
    ``phi_k_i (..., M)``, ``v_i (..., Dv)``, optional boolean ``key_allowed (...)``, ``eps > 0``."""
    if not (isinstance(state, tuple) and len(state) == 2):
        raise TypeError(f"state must be a LinearState (kv, z), got {type(state).__name__}")
    kv, z = state
    tensors = {"state.kv": kv, "state.z": z, "phi_q_i": phi_q_i, "phi_k_i": phi_k_i, "v_i": v_i}
    for name, t in tensors.items():
        _check_floating_min_rank(name, t, 2 if name == "state.kv" else 1, "")
    check_same_device(**tensors)
    M, Dv = kv.shape[-2], kv.shape[-1]
    for name, t, size, what in (("state.z", z, M, "M"), ("phi_q_i", phi_q_i, M, "M"),
                                ("phi_k_i", phi_k_i, M, "M"), ("v_i", v_i, Dv, "Dv")):
        if t.shape[-1] != size:
            raise ValueError(
                f"{name} has size {t.shape[-1]} in its last axis (shape {tuple(t.shape)}) "
                f"but the state has {what} = {size} (state.kv of shape {tuple(kv.shape)})"
            )
    if key_allowed is not None:
        check_tensor("key_allowed", key_allowed)
        if key_allowed.dtype != torch.bool:
            raise TypeError(
                f"key_allowed must be boolean (False = padding), got dtype {key_allowed.dtype}"
            )
        check_same_device(phi_k_i=phi_k_i, key_allowed=key_allowed)
    if eps is not None:
        check_positive_real("eps", eps)


def check_state_settings(batch_shape, num_features, value_dim, dtype) -> None:
    """``batch_shape`` a sequence of non-negative ints, ``num_features`` (M) and ``value_dim``
    (Dv) positive ints, ``dtype`` a real floating dtype."""
    if not isinstance(batch_shape, (tuple, list, torch.Size)):
        raise TypeError(f"batch_shape must be a tuple of ints, got {type(batch_shape).__name__}")
    for i, n in enumerate(batch_shape):
        check_int_in_range(f"batch_shape[{i}]", n, 0)
    check_positive_int("num_features", num_features)
    check_positive_int("value_dim", value_dim)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")


def check_projection_size(m, d, seed=None) -> None:
    """``m`` (M) and ``d`` (D) positive ints; ``seed`` an int when given."""
    check_positive_int("m", m)
    check_positive_int("d", d)
    if seed is not None:
        check_int_in_range("seed", seed, -(2**63))


def check_projection(x, omega, *, shift=None, shift_name="stabilizer", name="x") -> None:
    """``x (..., L, D)`` and ``omega (M, D)``: real floating, one device, same ``D``; ``shift``
    (``None`` or a floating tensor broadcastable to ``(..., L, 1)``) on that device too."""
    _check_floating_min_rank(name, x, 2, "(..., L, D)")
    check_floating("omega", omega)
    check_rank("omega", omega, 2, "(M, D)")
    check_same_device(**{name: x, "omega": omega})
    if omega.shape[1] != x.shape[-1]:
        raise ValueError(
            f"omega has D = {omega.shape[1]} columns (shape {tuple(omega.shape)}) but {name} has "
            f"D = {x.shape[-1]} (shape {tuple(x.shape)})"
        )
    if shift is not None:
        check_floating(shift_name, shift)
        check_same_device(**{name: x, shift_name: shift})
        target = (*x.shape[:-1], 1)
        try:
            ok = torch.broadcast_shapes(shift.shape, target) == target
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"{shift_name} of shape {tuple(shift.shape)} does not broadcast to "
                f"{target} (..., L, 1) for {name} of shape {tuple(x.shape)}"
            )


def check_stabilizer_inputs(log_k, key_padding=None) -> None:
    """``log_k (..., S, M)`` real floating; ``key_padding`` as in :func:`check_key_padding`."""
    _check_floating_min_rank("log_k", log_k, 2, "(..., S, M)")
    check_key_padding(key_padding, log_k, "log_k")


def check_performer_inputs(q, k, v, omega, *, kind, key_padding=None, eps=None,
                           chunk_size=None) -> None:
    """``q (..., L, D)``, ``k (..., S, D)``, ``v (..., S, Dv)`` (or ``None``) as in
    :func:`check_feature_inputs`, ``omega (M, D)`` on their device, ``kind`` ``"positive"``
    or ``"trig"``."""
    check_feature_inputs(q, k, v, key_padding=key_padding, eps=eps, chunk_size=chunk_size,
                         names=("q", "k", "v"))
    check_projection(q, omega, name="q")
    if kind not in ("positive", "trig"):
        raise ValueError(f"kind must be 'positive' or 'trig', got {kind!r}")


def check_rfa_feature_inputs(x, omega, sigma) -> None:
    """``x (..., L, D)`` and ``omega (M, D)`` as in :func:`check_projection`; ``sigma > 0``."""
    check_projection(x, omega)
    check_positive_real("sigma", sigma)


def check_gate_inputs(k, weight, bias) -> None:
    """``k (..., S, D)`` real floating; ``weight (D,)`` and ``bias ()`` real floating, on
    ``k``'s device."""
    _check_floating_min_rank("k", k, 1, "(..., S, D)")
    check_floating("weight", weight)
    check_rank("weight", weight, 1, "(D,)")
    check_floating("bias", bias)
    check_rank("bias", bias, 0, "(a scalar)")
    check_same_device(k=k, weight=weight, bias=bias)
    if weight.shape[0] != k.shape[-1]:
        raise ValueError(f"weight has {weight.shape[0]} entries but k has D = {k.shape[-1]} "
                         f"(shape {tuple(k.shape)})")


def check_rfa_inputs(phi_q, phi_k, v, *, gate=None, key_padding=None, causal=False,
                     eps=None) -> None:
    """Features and values as in :func:`check_feature_inputs`; ``gate`` (causal only) a real
    floating ``(..., S)`` tensor on their device, with ``L = S``."""
    check_feature_inputs(phi_q, phi_k, v, key_padding=key_padding, eps=eps)
    if gate is None:
        return
    if not causal:
        raise ValueError("gate is a recency decay of the causal recurrence; pass causal=True")
    check_floating("gate", gate)
    check_min_rank("gate", gate, 1, "(..., S)")
    check_same_device(phi_k=phi_k, gate=gate)
    if phi_q.shape[-2] != phi_k.shape[-2] or gate.shape[-1] != phi_k.shape[-2]:
        raise ValueError(
            f"the gated recurrence needs L = S and gate (..., S): got phi_q {tuple(phi_q.shape)}, "
            f"phi_k {tuple(phi_k.shape)} and gate {tuple(gate.shape)}"
        )
    try:
        torch.broadcast_shapes(gate.shape[:-1], phi_q.shape[:-2], phi_k.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"gate's leading axes {tuple(gate.shape[:-1])} do not broadcast with the features' "
            f"{tuple(phi_q.shape[:-2])} and {tuple(phi_k.shape[:-2])}"
        ) from None


def check_segment_inputs(x, num_landmarks, valid=None) -> None:
    """``x (..., n, D)`` real floating, ``num_landmarks`` (M) a positive int, ``valid`` ``None``
    or boolean broadcastable to ``(..., n)`` on ``x``'s device."""
    _check_floating_min_rank("x", x, 2, "(..., n, D)")
    check_positive_int("num_landmarks", num_landmarks)
    if valid is None:
        return
    check_tensor("valid", valid)
    if valid.dtype != torch.bool:
        raise TypeError(f"valid must be boolean (True = real position), got dtype {valid.dtype}")
    check_same_device(x=x, valid=valid)
    target = tuple(x.shape[:-1])
    try:
        ok = torch.broadcast_shapes(valid.shape, target) == target
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"valid of shape {tuple(valid.shape)} does not broadcast to {target} (..., n)"
        )


def check_pinv_input(a, iterations) -> None:
    """``a (..., M, M)`` real floating and square; ``iterations`` an int in
    ``[1, MAX_PINV_ITERATIONS]``."""
    _check_floating_min_rank("a", a, 2, "(..., M, M)")
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(
            f"a must be square in its last two axes (..., M, M), got shape {tuple(a.shape)}"
        )
    check_positive_int("iterations", iterations, MAX_PINV_ITERATIONS)


def check_nystrom_inputs(q, k, v, *, num_landmarks, pinv_iterations, key_padding=None) -> None:
    """``q``, ``k``, ``v`` and ``key_padding`` as in :func:`check_feature_inputs`;
    ``num_landmarks`` a positive int; ``pinv_iterations`` ``None`` (exact pinv) or an int in
    ``[1, MAX_PINV_ITERATIONS]``."""
    check_feature_inputs(q, k, v, key_padding=key_padding, names=("q", "k", "v"))
    check_positive_int("num_landmarks", num_landmarks)
    if pinv_iterations is not None:
        check_positive_int("pinv_iterations", pinv_iterations, MAX_PINV_ITERATIONS)


def check_synthesizer_mlp(x, W1, b1, heads: dict, *, max_len=None) -> None:
    """``x (..., L, D)``; first layer ``W1 (Dh, D)``, ``b1 (Dh,)``; each entry
    ``name → (W (n, Dh), b (n,))`` of ``heads`` a second layer. All real floating, one dtype,
    one device. With ``max_len`` (N), the heads' sizes must multiply to at least N."""
    _check_floating_min_rank("x", x, 2, "(..., L, D)")
    layers = [("W1", W1, "b1", b1, x.shape[-1], "x's D")]
    Dh = W1.shape[0] if isinstance(W1, torch.Tensor) and W1.dim() == 2 else None
    layers += [(wn, W, "b" + wn[1:], b, Dh, "W1's Dh") for wn, (W, b) in heads.items()]
    for wn, W, bn, b, fan_in, source in layers:
        check_rank(wn, W, 2, "(out, in)")
        check_rank(bn, b, 1, "(out,)")
        check_same_device(x=x, **{wn: W, bn: b})
        check_same_dtype(x=x, **{wn: W, bn: b})
        if W.shape[1] != fan_in:
            raise ValueError(
                f"{wn} has {W.shape[1]} inputs (shape {tuple(W.shape)}) but {source} is {fan_in}"
            )
        if b.shape[0] != W.shape[0]:
            raise ValueError(f"{bn} has {b.shape[0]} entries but {wn} has {W.shape[0]} outputs "
                             f"(shapes {tuple(b.shape)} and {tuple(W.shape)})")
    if max_len is not None:
        check_positive_int("max_len", max_len)
        sizes = [W.shape[0] for W, _ in heads.values()]
        total = 1
        for n in sizes:
            total *= n
        if total < max_len:
            raise ValueError(
                f"factors {' x '.join(map(str, sizes))} give only {total} logits per row, "
                f"fewer than max_len={max_len}"
            )


def check_low_rank_factors(R1, R2) -> None:
    """``R1 (..., L, k)`` and ``R2 (..., S, k)``: real floating, one dtype and device, equal
    leading axes and rank ``k``."""
    for name, t in (("R1", R1), ("R2", R2)):
        _check_floating_min_rank(name, t, 2, "(..., n, k)")
    check_same_device(R1=R1, R2=R2)
    check_same_dtype(R1=R1, R2=R2)
    if R1.shape[:-2] != R2.shape[:-2] or R1.shape[-1] != R2.shape[-1]:
        raise ValueError(
            "R1 and R2 must agree in leading dims and rank k, "
            f"got {tuple(R1.shape)} and {tuple(R2.shape)}"
        )


def check_length(num_queries: int, num_keys: int, max_len: int) -> None:
    """Raise ``ValueError`` when ``L`` or ``S`` exceeds a Synthesizer's ``max_len``."""
    if num_queries > max_len or num_keys > max_len:
        raise ValueError(
            f"sequence too long for this Synthesizer: {num_queries} queries and {num_keys} keys, "
            f"but max_len is {max_len}; build it with a larger max_len"
        )


def check_crop(logits, num_queries, num_keys) -> None:
    """``logits (..., N|L, N)`` floating; ``num_queries`` (L) and ``num_keys`` (S) non-negative
    ints within the logits' rows and ``N`` columns."""
    check_floating("logits", logits)
    check_rank("logits", logits, range(2, 9), "(..., N, N) or (..., L, N)")
    check_int_in_range("num_queries", num_queries, 0)
    check_int_in_range("num_keys", num_keys, 0)
    check_length(num_queries, num_keys, logits.shape[-1])
    if num_queries > logits.shape[-2]:
        raise ValueError(f"logits have {logits.shape[-2]} rows (shape {tuple(logits.shape)}) "
                         f"but there are {num_queries} queries")


def check_mix_inputs(logits, alphas) -> None:
    """``logits`` a non-empty list or tuple of floating tensors that broadcast to one shape;
    ``alphas (M,)`` floating with one weight per tensor; all on one device."""
    if not isinstance(logits, (list, tuple)) or len(logits) == 0:
        raise TypeError(
            f"logits must be a non-empty list or tuple of tensors, got {type(logits).__name__}"
        )
    for i, t in enumerate(logits):
        check_floating(f"logits[{i}]", t)
    check_floating("alphas", alphas)
    check_rank("alphas", alphas, 1, "(M,)")
    if len(logits) != alphas.shape[0]:
        raise ValueError(
            f"got {len(logits)} logit tensors but {alphas.shape[0]} mixing weights (alphas)"
        )
    check_same_device(alphas=alphas, **{f"logits[{i}]": t for i, t in enumerate(logits)})
    try:
        torch.broadcast_shapes(*(t.shape for t in logits))
    except RuntimeError:
        shapes = [tuple(t.shape) for t in logits]
        raise ValueError(f"logits of shapes {shapes} do not broadcast") from None


def check_synthesizer_inputs(logits, v, mask=None) -> None:
    """``logits (B|1, H|1, L, S)`` and ``v (B, H, S, Dv)``: real floating, one dtype and
    device; ``mask`` ``None`` or boolean broadcastable to ``(B, H, L, S)`` on that device."""
    check_floating("v", v)
    check_rank("v", v, 4, "(B, H, S, Dv)")
    check_floating("logits", logits)
    check_rank("logits", logits, 4, "(B|1, H|1, L, S)")
    check_same_device(logits=logits, v=v)
    check_same_dtype(logits=logits, v=v)
    B, H, S = v.shape[0], v.shape[1], v.shape[2]
    if logits.shape[0] not in (1, B) or logits.shape[1] not in (1, H) or logits.shape[3] != S:
        raise ValueError(
            f"logits of shape {tuple(logits.shape)} do not fit v of shape {tuple(v.shape)}: "
            f"need (B|1, H|1, L, S) with B={B} batches, H={H} heads, S={S} keys"
        )
    if mask is None:
        return
    check_tensor("mask", mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a boolean tensor (True = attend), got dtype {mask.dtype}")
    check_same_device(v=v, mask=mask)
    target = (B, H, logits.shape[2], S)
    pairs = zip(reversed(mask.shape), reversed(target))
    if mask.dim() > 4 or any(m not in (1, t) for m, t in pairs):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to (B, H, L, S) = {target}"
        )
