"""Argument checks shared by every public function.

Each helper raises ``ValueError`` or ``TypeError`` with a message that names the
argument and the shape (or dtype, or device) it saw, so a wrong call fails at
the line that made it rather than as a silent broadcast further down.

The rule, in every module: **the public function checks its arguments** (it is what
chapters, students and tests call), with one call to one validator here, named after
what it checks, and then reads like its equation. **A module** (``nn.Module``) **checks
only its own constructor settings, and its** ``forward`` **calls the function without
checking again.** Where a ``forward`` must compute with its inputs before it reaches a
function (projecting them, sizing lazy weights, hashing them), it makes that one call
itself, to the validator of the function it stands for.
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
    """Raise ``ValueError`` unless ``x.shape[dim] == size``.

    ``other`` says where ``size`` came from.
    """
    if x.shape[dim] != size:
        raise ValueError(
            f"{name} has size {x.shape[dim]} in dimension {dim} (shape {tuple(x.shape)}), "
            f"but {other} is {size}"
        )


# --- masks, scores, attention, heads, positions, sparse/local, hashing, LSH
# Validators of the functions in masking, scoring, attention, pooling, positional, fusion,
# mechanisms, multihead, sparse, local, hashing and lsh (one call each, then the maths).

__all__ += [
    "check_float_tensors",
    "check_batch_dims",
    "check_counts",
    "check_global_tokens",
    "check_lengths",
    "check_mask",
    "check_combine_masks",
    "check_build_mask_args",
    "check_softmax_inputs",
    "check_sequence_mask_inputs",
    "check_causal_mask_args",
    "check_query_key",
    "check_additive_inputs",
    "check_bilinear_inputs",
    "check_attention_inputs",
    "check_attend_inputs",
    "check_mechanism_inputs",
    "check_bool",
    "check_nonempty_bool",
    "check_lookup_inputs",
    "check_pooling_inputs",
    "check_positional_inputs",
    "check_fusion_inputs",
    "check_split_heads",
    "check_multi_head_inputs",
    "check_projection_inputs",
    "check_pattern_inputs",
    "check_local_inputs",
    "check_block_inputs",
    "check_random_source",
    "check_hash_settings",
    "check_n_buckets",
    "check_hash_projection",
    "check_angle",
    "check_buckets",
    "check_sort_inputs",
    "check_lsh_inputs",
    "check_lsh_settings",
]


def check_float_tensors(**tensors: torch.Tensor) -> None:
    """Raise unless every given tensor is a floating-point tensor, all on one device, one dtype.

    The keywords name the arguments in the messages; the first one is the reference.
    """
    for name, t in tensors.items():
        check_floating(name, t)
    check_same_device(**tensors)
    check_same_dtype(**tensors)


def check_batch_dims(**tensors: torch.Tensor) -> None:
    """Raise ``ValueError`` unless all tensors share their leading (batch) dimensions.

    Leading dimensions are everything but the last two; they must be equal, not
    merely broadcastable, so a batch-size mistake never broadcasts silently.
    """
    items = list(tensors.items())
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.shape[:-2] != first.shape[:-2]:
            raise ValueError(
                f"{name} has leading (batch) shape {tuple(t.shape[:-2])} but {first_name} has "
                f"{tuple(first.shape[:-2])} (shapes {tuple(t.shape)} and {tuple(first.shape)})"
            )


# --- settings: whole numbers, positions


def check_counts(**counts) -> None:
    """:func:`check_int_in_range` on each keyword, given as ``name=(value, minimum)``."""
    for name, (value, minimum) in counts.items():
        check_int_in_range(name, value, minimum)


def check_global_tokens(global_tokens, n: int, device=None) -> torch.Tensor:
    """Global token positions (``None``, ints, or a 1-D integer tensor) in ``[0, n)``.

    Returns them as a sorted ``(G,)`` int64 tensor on ``device``, without repeats.
    """
    if global_tokens is None:
        return torch.zeros(0, dtype=torch.long, device=device)
    if isinstance(global_tokens, torch.Tensor):
        if (
            global_tokens.dtype == torch.bool
            or global_tokens.is_floating_point()
            or global_tokens.is_complex()
        ):
            raise TypeError(
                f"global_tokens must hold integer positions, got dtype {global_tokens.dtype}"
            )
        check_rank("global_tokens", global_tokens, (0, 1), "(G,)")
        positions = global_tokens.reshape(-1).tolist()
    else:
        try:
            positions = list(global_tokens)
        except TypeError:
            raise TypeError(
                "global_tokens must be a sequence of int positions, "
                f"got {type(global_tokens).__name__}"
            ) from None
        for p in positions:
            if isinstance(p, bool) or not isinstance(p, int):
                raise TypeError(
                    f"global_tokens must hold int positions, got {p!r} in {positions}"
                )
    if any(p < 0 or p >= n for p in positions):
        raise ValueError(
            f"global_tokens must be positions in [0, {n - 1}] for length {n}, got {positions}"
        )
    return torch.tensor(sorted(set(positions)), dtype=torch.long, device=device)  # (G,)


# --- lengths and masks


def check_lengths(
    valid_lens, max_len: int, num_queries: int | None = None, name: str = "valid_lens"
) -> torch.Tensor:
    """Validate d2l-style lengths ``(B,)`` (or ``(B, L)`` with ``L = num_queries``); return int64.

    Whole-valued float lengths are accepted (d2l passes them at times); every length must
    lie in ``[0, max_len]``, ``max_len`` being the number of keys.
    """
    check_int_in_range("num_keys", max_len, 0)
    check_rank(
        name,
        valid_lens,
        (1, 2) if num_queries is not None else 1,
        "(B,) or (B, L)" if num_queries is not None else "(N,)",
    )
    if num_queries is not None:
        check_int_in_range("num_queries", num_queries, 0)
        if valid_lens.dim() == 2 and valid_lens.shape[1] != num_queries:
            raise ValueError(
                f"{name} has shape {tuple(valid_lens.shape)}, but there are {num_queries} "
                f"queries: a 2-D {name} needs one length per query, shape (B, L)"
            )
    if valid_lens.is_floating_point():
        if not (
            torch.isfinite(valid_lens).all()
            and torch.equal(valid_lens, valid_lens.round())
        ):
            raise ValueError(
                f"{name} must hold whole numbers, got {valid_lens.tolist()}"
            )
    elif valid_lens.dtype == torch.bool or valid_lens.is_complex():
        raise TypeError(
            f"{name} must be an integer tensor, got dtype {valid_lens.dtype}"
        )
    lens = valid_lens.long()
    if lens.numel() and (lens.min() < 0 or lens.max() > max_len):
        raise ValueError(
            f"{name} must lie in [0, {max_len}] (the number of keys), "
            f"got values from {int(lens.min())} to {int(lens.max())}"
        )
    return lens


def check_mask(mask, scores_shape, name: str = "mask") -> None:
    """Check that ``mask`` is boolean and broadcasts to ``scores_shape`` without guessing.

    Each of the mask's trailing dimensions must be 1 or equal to the scores' size,
    and the mask may not have more dimensions than the scores.
    """
    check_tensor(name, mask)
    if mask.dtype != torch.bool:
        raise TypeError(
            f"{name} must be a boolean tensor (True = attend), got dtype {mask.dtype}"
        )
    target = tuple(scores_shape)
    if mask.dim() > len(target) or any(
        m not in (1, t) for m, t in zip(reversed(mask.shape), reversed(target))
    ):
        raise ValueError(
            f"{name} of shape {tuple(mask.shape)} does not broadcast to the scores' shape {target}"
        )


def check_combine_masks(masks) -> None:
    """``masks``, each ``None`` or a boolean tensor, on one device and broadcasting together
    (``masks[i]`` names the culprit)."""
    shape, first = (), None
    for i, m in enumerate(masks):
        if m is None:
            continue
        name = f"masks[{i}]"
        check_tensor(name, m)
        if m.dtype != torch.bool:
            raise TypeError(
                f"{name} must be a boolean tensor (True = attend), got dtype {m.dtype}"
            )
        if first is None:
            first = (name, m)
        else:
            check_same_device(**{first[0]: first[1], name: m})
        try:
            shape = torch.broadcast_shapes(shape, m.shape)
        except RuntimeError:
            raise ValueError(
                f"{name} of shape {tuple(m.shape)} does not broadcast with the masks before it "
                f"(together of shape {tuple(shape)})"
            ) from None


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (
        a.index is None or b.index is None or a.index == b.index
    )


def check_build_mask_args(
    num_queries, num_keys, mask=None, valid_lens=None, causal=False, device=None
) -> None:
    """Sizes ``L, S ≥ 0`` (ints), ``causal`` a bool, ``device`` ``None`` or a device; ``mask``
    boolean, broadcasting to ``(..., L, S)`` — to ``(B, L, S)`` when ``valid_lens`` (``(B,)``
    or ``(B, L)``; its values are checked by ``lengths_to_mask``) is given. Every part lies on
    one device: ``mask`` where it is, the lengths' and causal parts on ``device`` (``None``:
    the lengths' own device and the default device)."""
    check_counts(num_queries=(num_queries, 0), num_keys=(num_keys, 0))
    check_bool("causal", causal)
    here = None
    if device is not None:
        if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
            raise TypeError(
                f"device must be a torch.device, str, int or None, got {type(device).__name__}"
            )
        try:
            here = torch.device(device)
        except RuntimeError as e:
            raise ValueError(f"device {device!r} is not a device: {e}") from None
    if valid_lens is not None:
        check_rank("valid_lens", valid_lens, (1, 2), "(B,) or (B, L)")
    if mask is not None:
        check_tensor("mask", mask)
        if valid_lens is not None:
            target = (valid_lens.shape[0], num_queries, num_keys)
        else:
            target = (*mask.shape[:-2], num_queries, num_keys)
        check_mask(mask, target)
    # where each part of the result is made: mask where it is, the rest on device (if given)
    parts = [] if here is None else [("device", here)]
    if mask is not None:
        parts.append(("mask", mask.device))
    if valid_lens is not None:
        parts.append(("valid_lens", valid_lens.device if here is None else here))
    if causal and here is None:
        parts.append(
            (
                "the causal mask (on the default device: device=None)",
                torch.get_default_device(),
            )
        )
    (first, d0), verb = (
        parts[0] if parts else (None, None),
        "is" if here is not None else "is on",
    )
    for name, d in parts[1:]:
        if not _same_device(d, d0):
            raise ValueError(
                f"{name} is on {d} but {first} {verb} {d0}; pass device= or move them "
                "to one device"
            )


def check_softmax_inputs(
    X, valid_lens=None, mask=None, causal: bool = False, name: str = "X"
) -> None:
    """Scores ``X`` (floating point), optional d2l ``valid_lens`` and boolean ``mask``.

    With ``valid_lens``, ``X`` is ``(B, L, S)`` and ``valid_lens`` is ``(B,)`` or ``(B, L)``
    on the same device; otherwise ``X`` is ``(..., L, S)`` (``(..., S)`` when not causal).
    """
    check_floating(name, X)
    if valid_lens is not None:
        check_rank(name, X, 3, "(B, L, S) when valid_lens is given")
        check_rank("valid_lens", valid_lens, (1, 2), "(B,) or (B, L)")
        if valid_lens.shape[0] != X.shape[0]:
            raise ValueError(
                f"valid_lens has shape {tuple(valid_lens.shape)} but {name} has batch size "
                f"{X.shape[0]} ({name} shape {tuple(X.shape)})"
            )
        check_same_device(**{name: X, "valid_lens": valid_lens})
        check_lengths(valid_lens, X.shape[-1], X.shape[-2])
    else:
        check_min_rank(name, X, 1, "(..., L, S)")
    if causal and X.dim() < 2:
        raise ValueError(
            f"causal=True needs {name} of shape (..., L, S), got {tuple(X.shape)}"
        )
    if mask is not None:
        check_mask(mask, X.shape)
        check_same_device(**{name: X, "mask": mask})


def check_sequence_mask_inputs(X, valid_len) -> torch.Tensor:
    """``X (N, S)`` and ``valid_len (N,)`` on one device; returns the lengths as int64."""
    check_rank("X", X, 2, "(N, S)")
    check_rank("valid_len", valid_len, 1, "(N,)")
    if valid_len.shape[0] != X.shape[0]:
        raise ValueError(
            f"valid_len has {valid_len.shape[0]} entries but X has {X.shape[0]} rows "
            f"(X shape {tuple(X.shape)})"
        )
    check_same_device(X=X, valid_len=valid_len)
    return check_lengths(valid_len, X.shape[1], name="valid_len")


def check_causal_mask_args(num_queries, num_keys, align: str) -> None:
    """Sizes ``L, S ≥ 0`` (ints) and an alignment, ``"top-left"`` or ``"bottom-right"``."""
    check_counts(num_queries=(num_queries, 0), num_keys=(num_keys, 0))
    if align not in ("top-left", "bottom-right"):
        raise ValueError(f"align must be 'top-left' or 'bottom-right', got {align!r}")


# --- scores and attention


def check_query_key(queries, keys) -> None:
    """``queries (..., L, D)`` and ``keys (..., S, D)``: floats, one device and dtype.

    Both have the same D and the same batch dimensions.
    """
    check_min_rank("queries", queries, 2, "(..., L, D)")
    check_min_rank("keys", keys, 2, "(..., S, D)")
    check_float_tensors(queries=queries, keys=keys)
    check_dim("keys", keys, -1, queries.shape[-1], "the queries' feature size D")
    check_batch_dims(queries=queries, keys=keys)


def check_additive_inputs(queries, keys, W_q, W_k, w_v, values=None) -> None:
    """Additive scoring: ``queries (..., L, Dq)``, ``keys (..., S, Dk)``, ``W_q (h, Dq)``,
    ``W_k (h, Dk)``, ``w_v (h,)|(1, h)`` and, for attention, ``values (..., S, Dv)``."""
    check_min_rank("queries", queries, 2, "(..., L, Dq)")
    check_min_rank("keys", keys, 2, "(..., S, Dk)")
    if values is not None:
        check_min_rank("values", values, 2, "(..., S, Dv)")
    check_rank("W_q", W_q, 2, "(h, Dq)")
    check_rank("W_k", W_k, 2, "(h, Dk)")
    check_rank("w_v", w_v, (1, 2), "(h,) or (1, h)")
    check_float_tensors(
        queries=queries,
        keys=keys,
        W_q=W_q,
        W_k=W_k,
        w_v=w_v,
        **({} if values is None else {"values": values}),
    )
    check_batch_dims(
        queries=queries, keys=keys, **({} if values is None else {"values": values})
    )
    if values is not None:
        check_dim("values", values, -2, keys.shape[-2], "the number of keys S")
    check_dim("W_q", W_q, 1, queries.shape[-1], "the queries' feature size Dq")
    check_dim("W_k", W_k, 1, keys.shape[-1], "the keys' feature size Dk")
    check_dim("W_k", W_k, 0, W_q.shape[0], "W_q's hidden size h")
    if w_v.dim() == 2:
        check_dim("w_v", w_v, 0, 1, "1 (a row vector)")
    check_dim("w_v", w_v, -1, W_q.shape[0], "W_q's hidden size h")


def check_bilinear_inputs(queries, keys, W, values=None) -> None:
    """Bilinear scoring: ``queries (..., L, Dq)``, ``keys (..., S, Dk)``, ``W (Dq, Dk)`` and,
    for attention, ``values (..., S, Dv)``: floats on one device, one dtype, the same batch."""
    check_min_rank("queries", queries, 2, "(..., L, Dq)")
    check_min_rank("keys", keys, 2, "(..., S, Dk)")
    check_rank("W", W, 2, "(Dq, Dk)")
    extra = {} if values is None else {"values": values}
    if values is not None:
        check_min_rank("values", values, 2, "(..., S, Dv)")
    check_float_tensors(queries=queries, keys=keys, W=W, **extra)
    check_batch_dims(queries=queries, keys=keys, **extra)
    if values is not None:
        check_dim("values", values, -2, keys.shape[-2], "the number of keys S")
    check_dim("W", W, 0, queries.shape[-1], "the queries' feature size Dq")
    check_dim("W", W, 1, keys.shape[-1], "the keys' feature size Dk")


def check_attention_inputs(
    queries, keys, values, *, valid_lens=None, mask=None, same_size: bool = True
) -> None:
    """``queries (..., L, D)``, ``keys (..., S, D)``, ``values (..., S, Dv)``: floats on one
    device, one dtype, the same batch dims and S (and D, unless ``same_size=False``, as for
    additive scores); plus the masking arguments."""
    check_min_rank("queries", queries, 2, "(..., L, D)")
    check_min_rank("keys", keys, 2, "(..., S, D)")
    check_min_rank("values", values, 2, "(..., S, Dv)")
    check_float_tensors(queries=queries, keys=keys, values=values)
    check_batch_dims(queries=queries, keys=keys, values=values)
    if same_size:
        check_dim("keys", keys, -1, queries.shape[-1], "the queries' feature size D")
    check_dim("values", values, -2, keys.shape[-2], "the number of keys S")
    if valid_lens is not None:
        check_rank("queries", queries, 3, "(B, L, D) when valid_lens is given")
        check_rank("valid_lens", valid_lens, (1, 2), "(B,) or (B, L)")
        if valid_lens.shape[0] != queries.shape[0]:
            raise ValueError(
                f"valid_lens has shape {tuple(valid_lens.shape)} but the batch size is "
                f"{queries.shape[0]} (queries shape {tuple(queries.shape)})"
            )
        check_same_device(queries=queries, valid_lens=valid_lens)
        check_lengths(valid_lens, keys.shape[-2], queries.shape[-2])
    if mask is not None:
        check_mask(mask, (*queries.shape[:-1], keys.shape[-2]))
        check_same_device(queries=queries, mask=mask)


def check_attend_inputs(weights, values) -> None:
    """``weights (..., L, S)`` and ``values (..., S, Dv)``: floats, one device and dtype.

    Both have the same batch dimensions.
    """
    check_min_rank("weights", weights, 2, "(..., L, S)")
    check_min_rank("values", values, 2, "(..., S, Dv)")
    check_float_tensors(weights=weights, values=values)
    check_batch_dims(weights=weights, values=values)
    check_dim("values", values, -2, weights.shape[-1], "the weights' key axis S")


def check_mechanism_inputs(q, k, v, mask=None) -> None:
    """Validate ``(B, H, L, D)``/``(B, H, S, D)``/``(B, H, S, Dv)`` inputs and the mask.

    Raises ``ValueError``/``TypeError`` naming the argument and the shapes seen.
    """
    check_rank("q", q, 4, "(B, H, L, D)")
    check_rank("k", k, 4, "(B, H, S, D)")
    check_rank("v", v, 4, "(B, H, S, Dv)")
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_floating(name, t)
    check_same_device(q=q, k=k, v=v)
    if q.dtype != k.dtype or k.dtype != v.dtype:
        raise TypeError(
            f"q, k and v must share a dtype, got {q.dtype}, {k.dtype} and {v.dtype}"
        )
    if k.shape[:2] != q.shape[:2] or v.shape[:2] != q.shape[:2]:
        raise ValueError(
            "q, k and v must agree in (B, H); got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)} and {tuple(v.shape)}"
        )
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"k has feature size {k.shape[-1]} but q has {q.shape[-1]} "
            f"(shapes {tuple(k.shape)} and {tuple(q.shape)})"
        )
    if v.shape[2] != k.shape[2]:
        raise ValueError(
            f"v has {v.shape[2]} positions but k has {k.shape[2]} "
            f"(shapes {tuple(v.shape)} and {tuple(k.shape)})"
        )
    if mask is not None:
        check_mask(mask, (q.shape[0], q.shape[1], q.shape[2], k.shape[2]))
        if mask.device != q.device:
            raise ValueError(f"mask is on {mask.device} but q is on {q.device}")


def check_bool(name: str, value) -> None:
    """Raise ``TypeError`` unless ``value`` is a ``bool`` (an on/off setting)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")


def check_nonempty_bool(name: str, x) -> None:
    """Raise unless ``x`` is a boolean tensor with at least one entry."""
    check_tensor(name, x)
    if x.dtype != torch.bool:
        raise TypeError(f"{name} must be a boolean tensor, got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")


# --- soft lookup (pooling)


def check_lookup_inputs(
    queries, keys, values=None, bandwidth=None, *, min_keys: int = 0
) -> None:
    """``queries (L,)|(L, D)``, ``keys (S,)|(S, D)``, ``values (S,)|(S, Dv)``: floats on one
    device, one dtype, the same D and S; at least ``min_keys`` keys; ``bandwidth > 0``."""
    check_rank("queries", queries, (1, 2), "(L,) or (L, D)")
    check_rank("keys", keys, (1, 2), "(S,) or (S, D)")
    named = {"queries": queries, "keys": keys}
    if values is not None:
        check_rank("values", values, (1, 2), "(S,) or (S, Dv)")
        named["values"] = values
    if isinstance(
        bandwidth, torch.Tensor
    ):  # e.g. a learned parameter, in any float dtype
        check_rank("bandwidth", bandwidth, 0, "(a scalar tensor)")
        check_floating("bandwidth", bandwidth)
        check_same_device(queries=queries, bandwidth=bandwidth)
    elif bandwidth is not None:
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)):
            raise TypeError(
                f"bandwidth must be a number or a 0-D tensor, got {type(bandwidth).__name__}"
            )
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    check_float_tensors(**named)
    q2 = queries[:, None] if queries.dim() == 1 else queries  # (L, D)
    k2 = keys[:, None] if keys.dim() == 1 else keys  # (S, D)
    check_dim("keys", k2, 1, q2.shape[1], "the queries' feature size D")
    if values is not None:
        check_dim("values", values, 0, keys.shape[0], "the number of keys S")
    if keys.shape[0] < min_keys:
        raise ValueError(
            f"keys must hold at least {min_keys} key, got shape {tuple(keys.shape)}"
        )


def check_pooling_inputs(values, num_queries) -> None:
    """``values (S,)|(S, Dv)``, floating point, ``S ≥ 1``; ``L ≥ 0``.

    ``S ≥ 1`` because a mean of nothing is undefined.
    """
    check_rank("values", values, (1, 2), "(S,) or (S, Dv)")
    check_floating("values", values)
    if values.shape[0] == 0:
        raise ValueError(
            f"values must hold at least one value to average, got shape {tuple(values.shape)}"
        )
    check_int_in_range("num_queries", num_queries, 0)


# --- positions and fusion


def check_positional_inputs(X, P) -> None:
    """``X (B, L, d)`` and a table ``P (N, d)``: floats on one device, ``L ≤ N``."""
    check_rank("X", X, 3, "(B, L, num_hiddens)")
    check_rank("P", P, 2, "(max_len, num_hiddens)")
    check_floating("X", X)
    check_floating("P", P)
    check_same_device(X=X, P=P)
    if X.shape[-1] != P.shape[-1]:
        raise ValueError(
            f"X has feature size {X.shape[-1]} (shape {tuple(X.shape)}) but the encoding "
            f"has num_hiddens={P.shape[-1]}"
        )
    if X.shape[1] > P.shape[0]:
        raise ValueError(
            f"X has length {X.shape[1]} but max_len is {P.shape[0]} (the rows of P)"
        )


def check_fusion_inputs(H, W, b, c, mask=None) -> None:
    """``H (B, P, Dh)``, ``W (A, Dh)``, ``b (A,)``, ``c (A,)``: floats on one device, one
    dtype; ``mask`` boolean ``(B, P)`` on the same device, or ``None``."""
    check_rank("H", H, 3, "(B, P, Dh)")
    check_rank("W", W, 2, "(A, Dh)")
    check_rank("b", b, 1, "(A,)")
    check_rank("c", c, 1, "(A,)")
    check_float_tensors(H=H, W=W, b=b, c=c)
    check_dim("W", W, 1, H.shape[-1], "the feature size Dh of H")
    check_dim("b", b, 0, W.shape[0], "the attention size A (rows of W)")
    check_dim("c", c, 0, W.shape[0], "the attention size A (rows of W)")
    if mask is not None:
        check_rank("mask", mask, 2, "(B, P)")
        if mask.dtype != torch.bool:
            raise TypeError(
                f"mask must be a boolean tensor (True = present), got dtype {mask.dtype}"
            )
        if tuple(mask.shape) != tuple(H.shape[:2]):
            raise ValueError(
                f"mask has shape {tuple(mask.shape)} but H has (B, P) = {tuple(H.shape[:2])}"
            )
        check_same_device(H=H, mask=mask)


# --- heads


def check_split_heads(X, num_heads) -> None:
    """``X (B, L, H·D)`` with a feature size divisible by ``num_heads ≥ 1``."""
    check_rank("X", X, 3, "(B, L, H*D)")
    check_int_in_range("num_heads", num_heads, 1)
    if X.shape[-1] % num_heads != 0:
        raise ValueError(
            f"the feature size {X.shape[-1]} of X (shape {tuple(X.shape)}) is not divisible "
            f"by num_heads={num_heads}"
        )


def _check_sequences(queries, keys, values) -> None:
    """``queries (B, L, Dq)``, ``keys (B, S, Dk)``, ``values (B, S, Dvin)``: same B and S."""
    check_rank("queries", queries, 3, "(B, L, Dq)")
    check_rank("keys", keys, 3, "(B, S, Dk)")
    check_rank("values", values, 3, "(B, S, Dvin)")
    if keys.shape[0] != queries.shape[0] or values.shape[0] != queries.shape[0]:
        raise ValueError(
            "queries, keys and values must have the same batch size, got shapes "
            f"{tuple(queries.shape)}, {tuple(keys.shape)} and {tuple(values.shape)}"
        )
    if values.shape[1] != keys.shape[1]:
        raise ValueError(
            f"keys and values must have the same length S, got shapes "
            f"{tuple(keys.shape)} and {tuple(values.shape)}"
        )


def _check_head_masks(queries, keys, num_heads, valid_lens, mask) -> None:
    B, L, S = queries.shape[0], queries.shape[1], keys.shape[1]
    if valid_lens is not None:
        check_rank("valid_lens", valid_lens, (1, 2), "(B,) or (B, L)")
        if valid_lens.shape[0] != B:
            raise ValueError(
                f"valid_lens has shape {tuple(valid_lens.shape)} but the batch size is {B}"
            )
        check_same_device(queries=queries, valid_lens=valid_lens)
        check_lengths(valid_lens, S, L)
    if mask is not None:
        check_mask(mask, (B, num_heads, L, S))
        check_same_device(queries=queries, mask=mask)


def check_multi_head_inputs(
    queries, keys, values, W_q, W_k, W_v, W_o, num_heads, biases=None, mask=None
) -> None:
    """The explicit multi-head computation: inputs ``(B, L, Dq)``, ``(B, S, Dk)``, ``(B, S, Dvin)``;
    weights in ``nn.Linear`` layout ``W_q (H·D, Dq)``, ``W_k (H·D, Dk)``, ``W_v (H·Dv, Dvin)``,
    ``W_o (E, H·Dv)``; ``biases`` a dict ``{"b_q": (H·D,) or None, …}``; ``mask`` broadcastable
    to ``(B, H, L, S)``. All floating point, on one device, one dtype."""
    _check_sequences(queries, keys, values)
    for name, W, legend in (
        ("W_q", W_q, "(H*D, Dq)"),
        ("W_k", W_k, "(H*D, Dk)"),
        ("W_v", W_v, "(H*Dv, Dvin)"),
        ("W_o", W_o, "(E, H*Dv)"),
    ):
        check_rank(name, W, 2, legend)
    biases = {n: b for n, b in (biases or {}).items() if b is not None}
    for name, b in biases.items():
        check_rank(name, b, 1, f"(rows of W_{name[-1]},)")
    check_float_tensors(
        queries=queries,
        keys=keys,
        values=values,
        W_q=W_q,
        W_k=W_k,
        W_v=W_v,
        W_o=W_o,
        **biases,
    )
    check_dim("W_q", W_q, 1, queries.shape[-1], "the queries' feature size Dq")
    check_dim("W_k", W_k, 1, keys.shape[-1], "the keys' feature size Dk")
    check_dim("W_v", W_v, 1, values.shape[-1], "the values' feature size Dvin")
    check_dim("W_k", W_k, 0, W_q.shape[0], "W_q's output size H*D")
    check_dim("W_o", W_o, 1, W_v.shape[0], "W_v's output size H*Dv")
    for name, b in biases.items():
        W = {"b_q": W_q, "b_k": W_k, "b_v": W_v, "b_o": W_o}[name]
        check_dim(name, b, 0, W.shape[0], f"the output size of W_{name[-1]}")
    check_int_in_range("num_heads", num_heads, 1)
    for name, W in (("W_q", W_q), ("W_v", W_v)):
        if W.shape[0] % num_heads != 0:
            raise ValueError(
                f"{name} has {W.shape[0]} rows (shape {tuple(W.shape)}), not divisible by "
                f"num_heads={num_heads}"
            )
    _check_head_masks(queries, keys, num_heads, None, mask)


def check_projection_inputs(
    queries, keys, values, in_features, num_heads, valid_lens=None, mask=None
) -> None:
    """What :class:`~attnkit.multihead.MultiHeadAttention` needs before it projects: three
    float ``(B, ·, ·)`` sequences on one device with the sizes its projections expect
    (``in_features``: ``(Dq, Dk, Dvin)``, ``None`` where still lazy), lengths and a mask."""
    _check_sequences(queries, keys, values)
    for name, t in (("queries", queries), ("keys", keys), ("values", values)):
        check_floating(name, t)
    check_same_device(queries=queries, keys=keys, values=values)
    for name, x, size in zip(
        ("queries", "keys", "values"), (queries, keys, values), in_features
    ):
        if size is not None and x.shape[-1] != size:
            raise ValueError(
                f"{name} has feature size {x.shape[-1]} (shape {tuple(x.shape)}) but its "
                f"projection expects {size}"
            )
    _check_head_masks(queries, keys, num_heads, valid_lens, mask)


# --- sparse and local attention


def check_pattern_inputs(q, k, v, pattern, mask=None) -> None:
    """Mechanism inputs plus a boolean ``(L, S)`` pattern on ``q``'s device."""
    check_mechanism_inputs(q, k, v, mask)
    check_tensor("pattern", pattern)
    if pattern.dtype != torch.bool:
        raise TypeError(
            f"pattern must be a boolean (L, S) tensor (True = allowed), got dtype {pattern.dtype}"
        )
    check_rank("pattern", pattern, 2, "(L, S)")
    if tuple(pattern.shape) != (q.shape[-2], k.shape[-2]):
        raise ValueError(
            f"pattern has shape {tuple(pattern.shape)} but q and k give (L, S) = "
            f"({q.shape[-2]}, {k.shape[-2]})"
        )
    check_same_device(q=q, pattern=pattern)


def check_local_inputs(
    q, k, v, window, global_tokens=None, key_padding=None
) -> torch.Tensor:
    """Mechanism inputs, an int ``window ≥ 0``, a ``(B, S)`` key padding and global tokens in
    ``[0, min(L, S))``; returns the global positions as a sorted ``(G,)`` int64 tensor."""
    check_mechanism_inputs(q, k, v)
    check_int_in_range("window", window, 0)
    check_key_padding(key_padding, k)
    return check_global_tokens(global_tokens, min(q.shape[2], k.shape[2]), q.device)


def check_block_inputs(
    q_blk, k_win, v_win, tile_mask, k_glob=None, v_glob=None, glob_mask=None
) -> None:
    """Blocked attention: ``q_blk (B, H, C, b, D)``, ``k_win (B, H, C, W, D)``,
    ``v_win (B, H, C, W, Dv)``, a tile mask broadcastable to ``(B, H, C, b, W)``; and either no
    global keys or ``k_glob (B, H, G, D)``, ``v_glob (B, H, G, Dv)`` with a mask
    broadcastable to ``(B, H, C, b, G)``."""
    check_rank("q_blk", q_blk, 5, "(B, H, C, b, D)")
    check_rank("k_win", k_win, 5, "(B, H, C, W, D)")
    check_rank("v_win", v_win, 5, "(B, H, C, W, Dv)")
    glob = {"k_glob": k_glob, "v_glob": v_glob, "glob_mask": glob_mask}
    given = [n for n, t in glob.items() if t is not None]
    if given and len(given) != 3:
        raise ValueError(
            f"k_glob, v_glob and glob_mask go together, got only {', '.join(given)}"
        )
    if given:
        check_rank("k_glob", k_glob, 4, "(B, H, G, D)")
        check_rank("v_glob", v_glob, 4, "(B, H, G, Dv)")
    tensors = {"q_blk": q_blk, "k_win": k_win, "v_win": v_win}
    if given:
        tensors.update(k_glob=k_glob, v_glob=v_glob)
    check_float_tensors(**tensors)
    for name, t in list(tensors.items())[1:]:
        if t.shape[:2] != q_blk.shape[:2]:
            raise ValueError(
                f"{name} has (B, H) = {tuple(t.shape[:2])} but q_blk has {tuple(q_blk.shape[:2])}"
            )
    check_dim("k_win", k_win, 2, q_blk.shape[2], "the number of query blocks C")
    check_dim("v_win", v_win, 2, q_blk.shape[2], "the number of query blocks C")
    check_dim("k_win", k_win, -1, q_blk.shape[-1], "the queries' feature size D")
    check_dim("v_win", v_win, 3, k_win.shape[3], "the window size W of k_win")
    check_mask(tile_mask, (*q_blk.shape[:-1], k_win.shape[3]), name="tile_mask")
    check_same_device(q_blk=q_blk, tile_mask=tile_mask)
    if given:
        check_dim("k_glob", k_glob, -1, q_blk.shape[-1], "the queries' feature size D")
        check_dim("v_glob", v_glob, 2, k_glob.shape[2], "the number of global keys G")
        check_dim("v_glob", v_glob, -1, v_win.shape[-1], "the value size Dv of v_win")
        check_mask(glob_mask, (*q_blk.shape[:-1], k_glob.shape[2]), name="glob_mask")
        check_same_device(q_blk=q_blk, glob_mask=glob_mask)


__all__ += ["check_sparse_settings", "check_block_sparse_inputs"]


def check_sparse_settings(
    q, k, v, key_padding=None, global_tokens=None, **counts
) -> torch.Tensor:
    """Mechanism inputs, a ``(B, S)`` key padding, int settings given as ``name=(value, minimum)``
    and global tokens in ``[0, min(L, S))``; returns those as a sorted ``(G,)`` int64 tensor."""
    check_mechanism_inputs(q, k, v)
    check_counts(**counts)
    check_key_padding(key_padding, k)
    return check_global_tokens(global_tokens, min(q.shape[2], k.shape[2]), q.device)


def check_block_sparse_inputs(
    q, k, v, q_pos, k_pos, allowed, global_tokens=None, key_padding=None
) -> torch.Tensor:
    """:func:`check_sparse_settings` plus a block layout: integer ``q_pos (C, b)`` and
    ``k_pos (C, W)`` (positions, ``−1`` = none) and a boolean ``allowed (C, b, W)``, all on
    ``q``'s device; returns the global positions as a sorted ``(G,)`` int64 tensor."""
    for name, t in (("q_pos", q_pos), ("k_pos", k_pos)):
        check_rank(name, t, 2, "(C, b)" if name == "q_pos" else "(C, W)")
        if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
            raise TypeError(f"{name} must hold integer positions, got dtype {t.dtype}")
    check_rank("allowed", allowed, 3, "(C, b, W)")
    if allowed.dtype != torch.bool:
        raise TypeError(
            f"allowed must be a boolean (C, b, W) tensor, got dtype {allowed.dtype}"
        )
    want = (q_pos.shape[0], q_pos.shape[1], k_pos.shape[1])
    if k_pos.shape[0] != q_pos.shape[0] or tuple(allowed.shape) != want:
        raise ValueError(
            f"q_pos {tuple(q_pos.shape)}, k_pos {tuple(k_pos.shape)} and allowed "
            f"{tuple(allowed.shape)} do not describe one layout (C, b), (C, W), (C, b, W)"
        )
    check_same_device(q=q, q_pos=q_pos, k_pos=k_pos, allowed=allowed)
    return check_sparse_settings(q, k, v, key_padding, global_tokens)


# --- hashing and LSH attention


def check_random_source(seed, generator) -> None:
    """``seed`` an int or ``None``; ``generator`` a ``torch.Generator`` or ``None``."""
    if seed is not None:
        check_int_in_range("seed", seed, -(2**63))
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator, got {type(generator).__name__}"
        )


def check_hash_settings(seed=None, generator=None, n_buckets=None, **counts) -> None:
    """Whole-number settings given as ``name=(value, minimum)``, a random source and, when
    given, a number of angular-LSH buckets."""
    check_counts(**counts)
    check_random_source(seed, generator)
    if n_buckets is not None:
        check_n_buckets(n_buckets)


def check_n_buckets(n_buckets, allow_one: bool = False) -> None:
    """Angular LSH needs an even number of buckets ``M ≥ 2`` (or 1, "no hashing", if allowed)."""
    if isinstance(n_buckets, bool) or not isinstance(n_buckets, int):
        raise TypeError(
            f"n_buckets must be an int, got {type(n_buckets).__name__} {n_buckets!r}"
        )
    if not ((n_buckets >= 2 and n_buckets % 2 == 0) or (allow_one and n_buckets == 1)):
        one = "1 or " if allow_one else ""
        raise ValueError(
            f"n_buckets must be {one}an even number ≥ 2 for angular LSH, got {n_buckets}"
        )


def check_hash_projection(x, proj, name: str, rank: int, legend: str) -> None:
    """``x`` floating point and a floating projection ``proj`` whose second-to-last axis is D,
    on the same device: ``x (..., D)`` with ``(D, n_bits)`` planes, ``x (..., L, D)`` with
    ``(R, D, M/2)`` rotations."""
    check_floating("x", x)
    check_min_rank("x", x, rank - 1, "(..., D)" if rank == 2 else "(..., L, D)")
    check_rank(name, proj, rank, legend)
    check_floating(name, proj)
    check_same_device(x=x, **{name: proj})
    check_dim(name, proj, -2, x.shape[-1], "the feature size D of x")


def check_angle(theta, n_bits) -> None:
    """An angle in radians (a real number or a floating tensor) and ``n_bits ≥ 0``."""
    if isinstance(theta, torch.Tensor):
        check_floating("theta", theta)
    elif isinstance(theta, bool) or not isinstance(theta, (int, float)):
        raise TypeError(
            f"theta must be a number or a floating tensor, got {type(theta).__name__}"
        )
    check_int_in_range("n_bits", n_bits, 0)


def check_buckets(
    name: str, buckets, shape=None, device=None, limit: int | None = None
) -> None:
    """Integer bucket ids (not bool), of ``shape`` when given, in ``[0, limit)`` when given."""
    check_tensor(name, buckets)
    if (
        buckets.dtype == torch.bool
        or buckets.is_floating_point()
        or buckets.is_complex()
    ):
        raise TypeError(
            f"{name} must be an integer tensor of bucket ids, got dtype {buckets.dtype}"
        )
    check_min_rank(name, buckets, 1, "(..., N)")
    if shape is not None and tuple(buckets.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)}, got {tuple(buckets.shape)}"
        )
    if device is not None and buckets.device != device:
        raise ValueError(f"{name} is on {buckets.device} but q is on {device}")
    if (
        limit is not None
        and buckets.numel()
        and (buckets.min() < 0 or buckets.max() >= limit)
    ):
        raise ValueError(
            f"{name} must lie in [0, {limit - 1}], got values from {int(buckets.min())} "
            f"to {int(buckets.max())}"
        )


def check_sort_inputs(buckets, padded_len) -> None:
    """Integer ``buckets (..., N)`` and ``padded_len ≥ N`` (or ``None``)."""
    check_buckets("buckets", buckets)
    if padded_len is not None:
        check_int_in_range("padded_len", padded_len, buckets.shape[-1])


def check_lsh_inputs(
    q, k, v, q_buckets, k_buckets, bucket_size, key_padding=None
) -> None:
    """Mechanism inputs with ``L, S ≥ 1``, an int ``bucket_size ≥ 1``, integer buckets
    ``q_buckets (B, H, R, L)`` and ``k_buckets (B, H, R, S)`` (``R ≥ 1``, ids ≥ 0, small
    enough that ``bucket · (L + 1)`` fits in 32 bits) and a ``(B, S)`` key padding."""
    check_mechanism_inputs(q, k, v)
    check_int_in_range("bucket_size", bucket_size, 1)
    B, H, L, S = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
    if L < 1 or S < 1:
        raise ValueError(
            "LSH attention needs at least one query and one key, "
            f"got q {tuple(q.shape)} and k {tuple(k.shape)}"
        )
    check_rank("q_buckets", q_buckets, 4, "(B, H, R, L)")
    R = q_buckets.shape[2]
    if R < 1:
        raise ValueError(
            f"q_buckets must hold at least one hash round, got shape {tuple(q_buckets.shape)}"
        )
    limit = 2**31 // (max(L, S) + 1)
    check_buckets("q_buckets", q_buckets, (B, H, R, L), q.device, limit)
    check_buckets("k_buckets", k_buckets, (B, H, R, S), q.device, limit)
    check_key_padding(key_padding, k)


def check_lsh_settings(
    bucket_size, n_hashes, n_buckets, seed, shared_qk, redraw
) -> None:
    """:class:`~attnkit.lsh.LSHAttention`'s constructor settings."""
    check_counts(bucket_size=(bucket_size, 1), n_hashes=(n_hashes, 1))
    if n_buckets is not None:
        check_n_buckets(n_buckets, allow_one=True)
    check_random_source(seed, None)
    check_bool("shared_qk", shared_qk)
    check_bool("redraw", redraw)


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
    "check_key_features",
    "check_stabilizer_inputs",
    "check_performer_inputs",
    "check_rfa_feature_inputs",
    "check_arccos_inputs",
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
        raise TypeError(
            f"{name} must be a number, got {type(value).__name__} {value!r}"
        )
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
        raise ValueError(
            f"key_padding is on {key_padding.device} but {name} is on {k.device}"
        )


def check_feature_inputs(
    phi_q,
    phi_k,
    v,
    *,
    key_padding=None,
    eps=None,
    chunk_size=None,
    names=("phi_q", "phi_k", "v"),
) -> None:
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


def check_linear_inputs(
    phi_q,
    phi_k,
    v,
    *,
    key_padding=None,
    causal_form="chunked",
    chunk_size=None,
    eps=None,
) -> None:
    """As :func:`check_feature_inputs`, and ``causal_form`` one of ``LINEAR_CAUSAL_FORMS``."""
    check_feature_inputs(
        phi_q, phi_k, v, key_padding=key_padding, eps=eps, chunk_size=chunk_size
    )
    if causal_form not in LINEAR_CAUSAL_FORMS:
        raise ValueError(
            f"causal_form must be one of {LINEAR_CAUSAL_FORMS}, got {causal_form!r}"
        )


def check_step_inputs(state, phi_q_i, phi_k_i, v_i, key_allowed=None, eps=None) -> None:
    """One decoding step: ``state.kv (..., M, Dv)``, ``state.z (..., M)``, ``phi_q_i``,
    ``phi_k_i (..., M)``, ``v_i (..., Dv)``, optional boolean ``key_allowed (...)``, ``eps > 0``."""
    if not (isinstance(state, tuple) and len(state) == 2):
        raise TypeError(
            f"state must be a LinearState (kv, z), got {type(state).__name__}"
        )
    kv, z = state
    tensors = {
        "state.kv": kv,
        "state.z": z,
        "phi_q_i": phi_q_i,
        "phi_k_i": phi_k_i,
        "v_i": v_i,
    }
    for name, t in tensors.items():
        _check_floating_min_rank(name, t, 2 if name == "state.kv" else 1, "")
    check_same_device(**tensors)
    M, Dv = kv.shape[-2], kv.shape[-1]
    for name, t, size, what in (
        ("state.z", z, M, "M"),
        ("phi_q_i", phi_q_i, M, "M"),
        ("phi_k_i", phi_k_i, M, "M"),
        ("v_i", v_i, Dv, "Dv"),
    ):
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
        raise TypeError(
            f"batch_shape must be a tuple of ints, got {type(batch_shape).__name__}"
        )
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


def check_projection(
    x, omega, *, shift=None, shift_name="stabilizer", name="x"
) -> None:
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


def check_key_features(phi_k, key_padding=None, name: str = "phi_k") -> None:
    """``phi_k (..., S, M)`` real floating; ``key_padding`` as in :func:`check_key_padding`."""
    _check_floating_min_rank(name, phi_k, 2, "(..., S, M)")
    check_key_padding(key_padding, phi_k, name)


def check_stabilizer_inputs(log_k, key_padding=None) -> None:
    """``log_k (..., S, M)`` real floating; ``key_padding`` as in :func:`check_key_padding`."""
    check_key_features(log_k, key_padding, "log_k")


def check_performer_inputs(
    q, k, v, omega, *, kind, key_padding=None, eps=None, chunk_size=None
) -> None:
    """``q (..., L, D)``, ``k (..., S, D)``, ``v (..., S, Dv)`` (or ``None``) as in
    :func:`check_feature_inputs`, ``omega (M, D)`` on their device, ``kind`` ``"positive"``
    or ``"trig"``."""
    check_feature_inputs(
        q,
        k,
        v,
        key_padding=key_padding,
        eps=eps,
        chunk_size=chunk_size,
        names=("q", "k", "v"),
    )
    check_projection(q, omega, name="q")
    if kind not in ("positive", "trig"):
        raise ValueError(f"kind must be 'positive' or 'trig', got {kind!r}")
    if kind == "trig" and v is not None:
        _refuse_float16_trig("v", v)


def _refuse_float16_trig(name: str, v) -> None:
    """Sin/cos normalisers can come arbitrarily close to 0 (they are clamped at a small
    ``eps``), so an output computed in float32 can exceed float16's range (65504): refuse."""
    if v.dtype == torch.float16:
        raise TypeError(
            f"{name} has dtype float16, which sin/cos (trigonometric) random features do not "
            "support: their clamped normaliser can make outputs larger than float16's maximum "
            "(65504); use bfloat16, float32 or float64"
        )


def check_rfa_feature_inputs(x, omega, sigma) -> None:
    """``x (..., L, D)`` and ``omega (M, D)`` as in :func:`check_projection`; ``sigma > 0``."""
    check_projection(x, omega)
    check_positive_real("sigma", sigma)


def check_arccos_inputs(
    q, k, v, omega, *, key_padding=None, eps=None, chunk_size=None
) -> None:
    """Arc-cosine random-feature attention: ``q (..., L, D)``, ``k (..., S, D)``,
    ``v (..., S, Dv)`` and ``key_padding`` as in :func:`check_feature_inputs`, ``omega (M, D)``
    on their device with the same ``D``."""
    check_feature_inputs(
        q,
        k,
        v,
        key_padding=key_padding,
        eps=eps,
        chunk_size=chunk_size,
        names=("q", "k", "v"),
    )
    check_projection(q, omega, name="q")


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
        raise ValueError(
            f"weight has {weight.shape[0]} entries but k has D = {k.shape[-1]} "
            f"(shape {tuple(k.shape)})"
        )


def check_rfa_inputs(
    phi_q, phi_k, v, *, gate=None, key_padding=None, causal=False, eps=None
) -> None:
    """Features and values as in :func:`check_feature_inputs`; ``gate`` (causal only) a real
    floating ``(..., S)`` tensor on their device, with ``L = S``."""
    check_feature_inputs(phi_q, phi_k, v, key_padding=key_padding, eps=eps)
    _refuse_float16_trig("v", v)
    if gate is None:
        return
    if not causal:
        raise ValueError(
            "gate is a recency decay of the causal recurrence; pass causal=True"
        )
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
        raise TypeError(
            f"valid must be boolean (True = real position), got dtype {valid.dtype}"
        )
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


def check_nystrom_inputs(
    q, k, v, *, num_landmarks, pinv_iterations, key_padding=None
) -> None:
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
            raise ValueError(
                f"{bn} has {b.shape[0]} entries but {wn} has {W.shape[0]} outputs "
                f"(shapes {tuple(b.shape)} and {tuple(W.shape)})"
            )
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
        raise ValueError(
            f"logits have {logits.shape[-2]} rows (shape {tuple(logits.shape)}) "
            f"but there are {num_queries} queries"
        )


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
    check_same_device(
        alphas=alphas, **{f"logits[{i}]": t for i, t in enumerate(logits)}
    )
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
    if (
        logits.shape[0] not in (1, B)
        or logits.shape[1] not in (1, H)
        or logits.shape[3] != S
    ):
        raise ValueError(
            f"logits of shape {tuple(logits.shape)} do not fit v of shape {tuple(v.shape)}: "
            f"need (B|1, H|1, L, S) with B={B} batches, H={H} heads, S={S} keys"
        )
    if mask is None:
        return
    check_tensor("mask", mask)
    if mask.dtype != torch.bool:
        raise TypeError(
            f"mask must be a boolean tensor (True = attend), got dtype {mask.dtype}"
        )
    check_same_device(v=v, mask=mask)
    target = (B, H, logits.shape[2], S)
    pairs = zip(reversed(mask.shape), reversed(target))
    if mask.dim() > 4 or any(m not in (1, t) for m, t in pairs):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to (B, H, L, S) = {target}"
        )


# --- block, convolution, reversible, GAU, VQ, SSM, alternatives, block-sparse
# Validators of the functions in block.py, convolution.py, reversible.py, gau.py, vq.py,
# ssm.py and alternatives.py (blocksparse.py and strided.py use the sparse/local ones
# above). Settings reuse check_positive_int, check_int_in_range and check_bool.

__all__ += [
    "check_width",
    "check_choice",
    "check_callables",
    "check_real",
    "check_ffn_inputs",
    "check_transformer_block_inputs",
    "check_kernel_size",
    "check_offset_weights_args",
    "check_convolution_attention_inputs",
    "check_conv1d_weight",
    "check_parameter_count_args",
    "check_reversible_inputs",
    "check_chunked_ffn_inputs",
    "check_scale_offset",
    "check_real_or_none",
    "check_squared_relu_inputs",
    "check_gau_inputs",
    "check_mixed_chunk_inputs",
    "check_vq_inputs",
    "check_vq_quantize_inputs",
    "check_ssm_inputs",
    "check_ssm_attention_inputs",
    "check_weight_function_inputs",
]


def check_width(name: str, x, width: int | None = None) -> None:
    """Raise unless ``x`` is a floating ``(B, L, E)`` tensor (with ``E == width`` if
    given)."""
    check_floating(name, x)
    check_rank(name, x, 3, "(B, L, E)")
    if width is not None and x.shape[-1] != width:
        raise ValueError(
            f"{name} must have E = {width} features, got shape {tuple(x.shape)}"
        )


def check_choice(name: str, value, choices) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (e.g. a dict's keys)."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def check_callables(**functions) -> None:
    """Raise ``TypeError`` unless every keyword's value is callable."""
    for name, fn in functions.items():
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")


def check_real(name: str, value) -> None:
    """Raise ``TypeError`` unless ``value`` is a real Python number (not a ``bool``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")


def check_ffn_inputs(x, W1, W2, activation, activations) -> None:
    """``x (..., L, E)`` floating, ``activation`` one of ``activations``, ``W1 (Dh, E)``
    and ``W2 (E, Dh)`` (``nn.Linear``'s layout)."""
    check_floating("x", x)
    check_choice("activation", activation, activations)
    if W1.dim() != 2 or W2.shape != W1.shape[::-1] or x.shape[-1] != W1.shape[1]:
        raise ValueError(
            f"need W1 (Dh, E), W2 (E, Dh) and x (..., E); got W1 "
            f"{tuple(W1.shape)}, W2 {tuple(W2.shape)}, x {tuple(x.shape)}"
        )


def check_transformer_block_inputs(
    x, attend, feed_forward, norm1, norm2, norm_first
) -> None:
    """``x (B, L, E)`` floating, four callables, a bool ``norm_first``."""
    check_width("x", x)
    check_callables(attend=attend, feed_forward=feed_forward, norm1=norm1, norm2=norm2)
    check_bool("norm_first", norm_first)


def check_kernel_size(kernel_size) -> None:
    """Raise unless ``kernel_size`` is an odd positive int (padding ``K//2`` keeps the
    length)."""
    check_positive_int("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size must be odd (padding K//2 keeps the length), "
            f"got {kernel_size}"
        )


def check_offset_weights_args(num_positions, offsets, alpha) -> None:
    """A positive int ``num_positions``, ``offsets (H,)``, ``alpha`` ``None`` or ``> 0``."""
    check_positive_int("num_positions", num_positions)
    check_rank("offsets", offsets, 1, "(H,)")
    if alpha is not None and not (isinstance(alpha, (int, float)) and alpha > 0):
        raise ValueError(f"alpha must be None or a number > 0, got {alpha!r}")


def check_convolution_attention_inputs(x, W_v, W_o, offsets) -> None:
    """``x (B, L, Dvin)`` floating, ``offsets (H,)``, ``W_v (H·Dv, Dvin)``,
    ``W_o (E, H·Dv)``."""
    check_floating("x", x)
    check_rank("x", x, 3, "(B, L, Dvin)")
    check_rank("offsets", offsets, 1, "(H,)")
    H = offsets.shape[0]
    if W_v.dim() != 2 or W_v.shape[1] != x.shape[-1] or W_v.shape[0] % H != 0:
        raise ValueError(
            f"W_v must be (H·Dv, Dvin) with H = {H}, "
            f"Dvin = {x.shape[-1]}; got {tuple(W_v.shape)}"
        )
    if W_o.dim() != 2 or W_o.shape[1] != W_v.shape[0]:
        raise ValueError(
            f"W_o must be (E, H·Dv = {W_v.shape[0]}), got {tuple(W_o.shape)}"
        )


def check_conv1d_weight(weight) -> None:
    """``nn.Conv1d``'s weight ``(E, Dvin, H)``, floating, with an odd kernel size ``H``."""
    check_floating("weight", weight)
    check_rank("weight", weight, 3, "(E, Dvin, H)")
    check_kernel_size(weight.shape[-1])


def check_parameter_count_args(width, kernel_size, bias) -> None:
    """Positive ints ``width`` and ``kernel_size``, a bool ``bias``."""
    check_positive_int("width", width)
    check_positive_int("kernel_size", kernel_size)
    check_bool("bias", bias)


def check_reversible_inputs(x1, x2, layers) -> None:
    """``x1``, ``x2`` floating ``(B, L, E)`` of one shape; ``layers`` a non-empty
    sequence of ``(F, G)`` pairs of ``nn.Module`` s."""
    check_width("x1", x1)
    check_width("x2", x2)
    if x1.shape != x2.shape:
        raise ValueError(
            f"x1 and x2 must have the same shape, got {tuple(x1.shape)} "
            f"and {tuple(x2.shape)}"
        )
    if len(layers) == 0:
        raise ValueError("layers must hold at least one (F, G) pair")
    for i, pair in enumerate(layers):
        if not (
            isinstance(pair, (tuple, list))
            and len(pair) == 2
            and all(isinstance(fn, torch.nn.Module) for fn in pair)
        ):
            raise TypeError(
                f"layers[{i}] must be a pair (F, G) of nn.Modules, got {pair!r}"
            )


def check_chunked_ffn_inputs(x, chunk_size) -> None:
    """``x (B, L, E)`` floating and a positive int ``chunk_size``."""
    check_width("x", x)
    check_positive_int("chunk_size", chunk_size)


def check_scale_offset(z, gamma, beta) -> None:
    """``z (..., L, D)``; ``gamma``, ``beta`` ``(D,)``: real floating, one device."""
    for name, t in (("z", z), ("gamma", gamma), ("beta", beta)):
        check_floating(name, t)
    check_rank("gamma", gamma, 1, "(D,)")
    check_rank("beta", beta, 1, "(D,)")
    check_same_device(z=z, gamma=gamma, beta=beta)
    if z.dim() < 1 or gamma.shape[0] != z.shape[-1] or beta.shape[0] != z.shape[-1]:
        raise ValueError(
            f"gamma {tuple(gamma.shape)} and beta {tuple(beta.shape)} "
            f"need D entries for z of shape {tuple(z.shape)} (..., L, D)"
        )


def check_real_or_none(name: str, value) -> None:
    """``TypeError`` unless ``value`` is ``None`` or a real number (not a bool)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a real number or None, got {type(value).__name__}"
        )


def check_squared_relu_inputs(q, k, v, mask=None, scale=None, bias=None) -> None:
    """``q (..., L, D)``, ``k (..., S, D)``, ``v (..., S, Dv)`` as in
    :func:`check_feature_inputs`; ``mask`` boolean and ``bias`` floating, both
    broadcastable to ``(..., L, S)``; ``scale`` ``None`` or a real."""
    check_feature_inputs(q, k, v, names=("q", "k", "v"))
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    scores_shape = (*batch, q.shape[-2], k.shape[-2])
    if mask is not None:
        check_mask(mask, scores_shape)
        check_same_device(q=q, mask=mask)
    if bias is not None:
        check_floating("bias", bias)
        check_same_device(q=q, bias=bias)
        pairs = zip(reversed(bias.shape), reversed(scores_shape))
        if bias.dim() > len(scores_shape) or any(b not in (1, t) for b, t in pairs):
            raise ValueError(
                f"bias of shape {tuple(bias.shape)} does not broadcast to "
                f"the scores' shape {scores_shape} (..., L, S)"
            )
    check_real_or_none("scale", scale)


def check_gau_inputs(x, weights: dict, pairs: int, key_padding=None) -> None:
    """``x (B, L, E)``; ``w_u``, ``w_v (Dh, E)``, ``w_z (D, E)``, ``gamma``, ``beta``
    ``(pairs, D)``, ``w_o (E, Dh)``: real floating, one dtype and device."""
    check_floating("x", x)
    check_rank("x", x, 3, "(B, L, E)")
    for name, t in weights.items():
        check_floating(name, t)
        check_rank(name, t, 2, "")
    check_same_device(x=x, **weights)
    check_same_dtype(x=x, **weights)
    E, Dh, D = x.shape[-1], weights["w_u"].shape[0], weights["w_z"].shape[0]
    want = {
        "w_u": (Dh, E),
        "w_v": (Dh, E),
        "w_z": (D, E),
        "gamma": (pairs, D),
        "beta": (pairs, D),
        "w_o": (E, Dh),
    }
    for name, shape in want.items():
        if tuple(weights[name].shape) != shape:
            raise ValueError(
                f"{name} must have shape {shape} for x of shape {tuple(x.shape)} "
                f"(E={E}, Dh={Dh}, D={D}), got {tuple(weights[name].shape)}"
            )
    check_key_padding(key_padding, x, "x")


def check_mixed_chunk_inputs(
    q_quad, k_quad, q_lin, k_lin, v, chunk_size, key_padding=None
) -> None:
    """Four ``(..., n, D)`` queries and keys, ``v (..., n, Dv)``, one length ``n``."""
    check_feature_inputs(
        q_quad,
        k_quad,
        v,
        key_padding=key_padding,
        chunk_size=chunk_size,
        names=("q_quad", "k_quad", "v"),
    )
    check_feature_inputs(q_lin, k_lin, v, names=("q_lin", "k_lin", "v"))
    n = v.shape[-2]
    for name, t in (("q_quad", q_quad), ("k_quad", k_quad), ("q_lin", q_lin)):
        if t.shape[-2] != n:
            raise ValueError(
                f"mixed-chunk attention is self-attention: {name} has "
                f"{t.shape[-2]} positions (shape {tuple(t.shape)}), "
                f"v has {n}"
            )
    check_same_dtype(q_quad=q_quad, k_quad=k_quad, q_lin=q_lin, k_lin=k_lin, v=v)


def check_vq_inputs(q, k, v, codebook, *, key_padding=None, causal=False) -> None:
    """``q``, ``k``, ``v``, ``key_padding`` as in :func:`check_feature_inputs` (``q``
    may be ``None``), a real floating ``codebook (M, D)`` with ``M ≥ 1`` on their device
    and dtype; causal needs ``L = S``."""
    check_feature_inputs(
        k if q is None else q,
        k,
        v,
        key_padding=key_padding,
        names=("k" if q is None else "q", "k", "v"),
    )
    check_floating("codebook", codebook)
    check_rank("codebook", codebook, 2, "(M, D)")
    check_same_device(k=k, codebook=codebook)
    tensors = (
        {"k": k, "v": v, "codebook": codebook}
        if q is None
        else {"q": q, "k": k, "v": v, "codebook": codebook}
    )
    check_same_dtype(**tensors)
    if codebook.shape[0] == 0 or codebook.shape[1] != k.shape[-1]:
        raise ValueError(
            f"codebook must be (M, D) with M >= 1 and D = {k.shape[-1]} "
            f"(k of shape {tuple(k.shape)}), got {tuple(codebook.shape)}"
        )
    if causal and q is not None and q.shape[-2] != k.shape[-2]:
        raise ValueError(
            f"causal VQ attention needs L = S, got q {tuple(q.shape)} "
            f"and k {tuple(k.shape)}"
        )


def check_vq_quantize_inputs(k, codebook) -> None:
    """Keys ``k (..., S, D)`` (1 to 8 dimensions) and a ``codebook (M, D)``, as in
    :func:`check_vq_inputs`."""
    check_floating("k", k)
    check_rank("k", k, range(1, 9), "(..., S, D)")
    check_vq_inputs(None, k, k, codebook)


def check_ssm_inputs(a, b, c, x=None) -> None:
    """``a``, ``b``, ``c`` ``(..., L, M)`` and ``x (..., L, Dv)``: real floating, one
    device, same ``L`` (and ``M``), leading axes that broadcast."""
    names = {"a": a, "b": b, "c": c} if x is None else {"a": a, "b": b, "c": c, "x": x}
    for name, t in names.items():
        check_floating(name, t)
        check_min_rank(name, t, 2, "(..., L, M)" if name != "x" else "(..., L, Dv)")
    for name, t in (("a", a), ("c", c)):
        if t.shape[-2:] != b.shape[-2:]:
            raise ValueError(
                f"{name} has shape {tuple(t.shape)} but b has "
                f"{tuple(b.shape)}: both must end in (L, M)"
            )
    if x is not None:
        check_feature_inputs(c, b, x, names=("c", "b", "x"))  # device, L, broadcasting
    try:
        torch.broadcast_shapes(*(t.shape[:-2] for t in names.values()))
    except RuntimeError:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in names.items())
        raise ValueError(f"the leading axes do not broadcast: {shapes}") from None


def check_ssm_attention_inputs(phi_q, phi_k, v, *, eps, gate=None) -> None:
    """Causal (gated) linear attention as an SSM: ``phi_q``, ``phi_k (..., L, M)``,
    ``v (..., L, Dv)`` and ``eps`` as in :func:`check_feature_inputs`, and as an SSM's
    ``c``, ``b``, ``x`` (:func:`check_ssm_inputs`); ``gate (..., L)`` floating when
    given."""
    check_feature_inputs(phi_q, phi_k, v, eps=eps)
    if gate is not None:
        check_floating("gate", gate)
    check_ssm_inputs(phi_q, phi_k, phi_q, v)
    if gate is not None and gate.shape[-1:] != phi_k.shape[-2:-1]:
        raise ValueError(
            f"gate must be (..., L) with L = {phi_k.shape[-2]}, got {tuple(gate.shape)}"
        )


def check_weight_function_inputs(scores, mask=None, **reals) -> None:
    """``scores (..., L, S)`` and ``mask`` as in :func:`check_softmax_inputs`; each
    keyword (a ``scale``, a ``bias``) a real number."""
    check_softmax_inputs(scores, mask=mask, name="scores")
    for name, value in reals.items():
        check_real(name, value)
