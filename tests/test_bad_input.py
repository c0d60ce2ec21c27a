"""Bad input gets a clear error: every public function of the core modules (masking, scoring,
attention, pooling, positional, fusion, mechanisms, multihead, sparse, local, hashing, lsh),
called with one argument spoiled, raises the exact exception type with a message naming that
argument. Empty batches and sequences either give an empty (or all-zero) result of the right
shape or a clear error; both are pinned down here.

Mixed devices use the ``meta`` device: no GPU is needed to see that a weight on ``meta`` and
values on the CPU are refused.
"""

import pytest
import torch
from helpers import qkv, randn

import attnkit
from attnkit import hashing, local, lsh, masking, multihead, pooling, sparse
from attnkit._checks import check_mechanism_inputs

META = torch.device("meta")
f = torch.float64


def t(*shape, dtype=f, device="cpu"):
    """A seeded tensor of the given shape, dtype and device (bool: all True; int: small ints)."""
    if device == "meta":
        return torch.empty(*shape, dtype=dtype, device=META)
    if dtype == torch.bool:
        return torch.ones(*shape, dtype=torch.bool)
    if dtype in (torch.int64, torch.int32):
        return torch.ones(*shape, dtype=dtype)
    if dtype == torch.complex64:
        return torch.ones(*shape, dtype=dtype)
    return randn(*shape, dtype=dtype)


def bucket_ids(B, H, R, N, dtype=torch.long):
    return (torch.arange(B * H * R * N) % 3).reshape(B, H, R, N).to(dtype)


# ------------------------------------------------------------------- the public functions


def _attention_qkv(**spoil):
    a = {"queries": t(2, 3, 4), "keys": t(2, 5, 4), "values": t(2, 5, 6)}
    a.update(spoil)
    return a


def _mha(**spoil):
    E, H = 8, 2
    a = {
        "queries": t(2, 3, 4),
        "keys": t(2, 5, 4),
        "values": t(2, 5, 6),
        "W_q": t(E, 4),
        "W_k": t(E, 4),
        "W_v": t(E, 6),
        "W_o": t(E, E),
        "num_heads": H,
    }
    a.update(spoil)
    return a


def _mech(**spoil):
    q, k, v = qkv(2, 2, 6, 6, 4, 3)
    a = {"q": q, "k": k, "v": v}
    a.update(spoil)
    return a


def _lsh(**spoil):
    q, k, v = qkv(2, 2, 6, 6, 4, 3)
    a = {
        "q": q,
        "k": k,
        "v": v,
        "q_buckets": bucket_ids(2, 2, 1, 6),
        "k_buckets": bucket_ids(2, 2, 1, 6),
        "bucket_size": 2,
    }
    a.update(spoil)
    return a


def _fusion(**spoil):
    a = {"H": t(2, 3, 4), "W": t(5, 4), "b": t(5), "c": t(5)}
    a.update(spoil)
    return a


def _lookup(**spoil):
    a = {"queries": t(3), "keys": t(5), "values": t(5)}
    a.update(spoil)
    return a


def _blocks(**spoil):
    a = {
        "q_blk": t(1, 2, 3, 2, 4),
        "k_win": t(1, 2, 3, 6, 4),
        "v_win": t(1, 2, 3, 6, 5),
        "tile_mask": t(3, 2, 6, dtype=torch.bool),
    }
    a.update(spoil)
    return a


def call(fn, builder=None, **spoil):
    """A zero-argument call of ``fn`` with the builder's arguments, ``spoil`` replacing some."""
    if builder is None:
        return lambda: fn(**spoil)
    return lambda: fn(**builder(**spoil))


CASES = [
    # masking
    (
        "masked_softmax int X",
        call(masking.masked_softmax, X=t(2, 3, 4, dtype=torch.long)),
        TypeError,
        "X",
    ),
    (
        "masked_softmax bool X",
        call(masking.masked_softmax, X=t(2, 3, 4, dtype=torch.bool)),
        TypeError,
        "X",
    ),
    (
        "masked_softmax complex X",
        call(masking.masked_softmax, X=t(2, 3, 4, dtype=torch.complex64)),
        TypeError,
        "X",
    ),
    (
        "masked_softmax 0-D X",
        call(masking.masked_softmax, X=torch.tensor(1.0)),
        ValueError,
        "X",
    ),
    (
        "masked_softmax lens batch",
        call(masking.masked_softmax, X=t(2, 3, 4), valid_lens=torch.tensor([1, 2, 3])),
        ValueError,
        "valid_lens",
    ),
    (
        "masked_softmax lens device",
        call(
            masking.masked_softmax,
            X=t(2, 3, 4),
            valid_lens=t(2, dtype=torch.long, device="meta"),
        ),
        ValueError,
        "valid_lens",
    ),
    (
        "masked_softmax mask device",
        call(
            masking.masked_softmax,
            X=t(2, 3, 4),
            mask=t(3, 4, dtype=torch.bool, device="meta"),
        ),
        ValueError,
        "mask",
    ),
    (
        "masked_softmax int mask",
        call(masking.masked_softmax, X=t(2, 3, 4), mask=t(3, 4, dtype=torch.long)),
        TypeError,
        "mask",
    ),
    (
        "masked_softmax causal 1-D",
        call(masking.masked_softmax, X=t(4), causal=True),
        ValueError,
        "X",
    ),
    (
        "softmax_one int X",
        call(masking.softmax_one, X=t(3, 4, dtype=torch.long)),
        TypeError,
        "X",
    ),
    (
        "softmax_one mask shape",
        call(masking.softmax_one, X=t(3, 4), mask=t(5, dtype=torch.bool)),
        ValueError,
        "mask",
    ),
    (
        "apply_mask int scores",
        call(masking.apply_mask, scores=t(3, 4, dtype=torch.long), mask=None),
        TypeError,
        "scores",
    ),
    (
        "apply_mask mask device",
        call(
            masking.apply_mask,
            scores=t(3, 4),
            mask=t(4, dtype=torch.bool, device="meta"),
        ),
        ValueError,
        "mask",
    ),
    (
        "sequence_mask rows",
        call(masking.sequence_mask, X=t(2, 4), valid_len=torch.tensor([1, 2, 3])),
        ValueError,
        "valid_len",
    ),
    (
        "sequence_mask 2-D lens",
        call(
            masking.sequence_mask,
            X=t(2, 4),
            valid_len=torch.ones(2, 1, dtype=torch.long),
        ),
        ValueError,
        "valid_len",
    ),
    (
        "lengths_to_mask bool",
        call(
            masking.lengths_to_mask,
            valid_lens=t(2, dtype=torch.bool),
            num_queries=3,
            num_keys=4,
        ),
        TypeError,
        "valid_lens",
    ),
    (
        "lengths_to_mask range",
        call(
            masking.lengths_to_mask,
            valid_lens=torch.tensor([5, 1]),
            num_queries=3,
            num_keys=4,
        ),
        ValueError,
        "valid_lens",
    ),
    (
        "lengths_to_mask float num_keys",
        call(
            masking.lengths_to_mask,
            valid_lens=torch.tensor([1, 1]),
            num_queries=3,
            num_keys=4.0,
        ),
        TypeError,
        "num_keys",
    ),
    (
        "causal_mask negative",
        call(masking.causal_mask, num_queries=-1),
        ValueError,
        "num_queries",
    ),
    (
        "causal_mask bool",
        call(masking.causal_mask, num_queries=True),
        TypeError,
        "num_queries",
    ),
    (
        "causal_mask align",
        call(masking.causal_mask, num_queries=3, align="middle"),
        ValueError,
        "align",
    ),
    (
        "check_mask not broadcasting",
        call(masking.check_mask, mask=t(5, dtype=torch.bool), scores_shape=(3, 4)),
        ValueError,
        "mask",
    ),
    (
        "combine_masks float mask",
        lambda: masking.combine_masks(t(3, 4, dtype=torch.bool), None, t(3, 4)),
        TypeError,
        r"masks\[2\]",
    ),
    (
        "combine_masks int mask",
        lambda: masking.combine_masks(t(3, 4, dtype=torch.long)),
        TypeError,
        r"masks\[0\]",
    ),
    (
        "combine_masks not a tensor",
        lambda: masking.combine_masks(t(3, 4, dtype=torch.bool), [[True]]),
        TypeError,
        r"masks\[1\]",
    ),
    (
        "combine_masks not broadcasting",
        lambda: masking.combine_masks(
            t(3, 4, dtype=torch.bool), t(5, dtype=torch.bool)
        ),
        ValueError,
        r"masks\[1\]",
    ),
    (
        "combine_masks device",
        lambda: masking.combine_masks(
            t(3, 4, dtype=torch.bool), t(3, 4, dtype=torch.bool, device="meta")
        ),
        ValueError,
        r"masks\[1\]",
    ),
    (
        "build_mask float num_queries",
        call(masking.build_mask, num_queries=3.0, num_keys=4),
        TypeError,
        "num_queries",
    ),
    (
        "build_mask negative num_keys",
        call(masking.build_mask, num_queries=3, num_keys=-1),
        ValueError,
        "num_keys",
    ),
    (
        "build_mask int causal",
        call(masking.build_mask, num_queries=3, num_keys=4, causal=1),
        TypeError,
        "causal",
    ),
    (
        "build_mask bad device",
        call(
            masking.build_mask, num_queries=3, num_keys=4, causal=True, device="nowhere"
        ),
        ValueError,
        "device",
    ),
    (
        "build_mask float device",
        call(masking.build_mask, num_queries=3, num_keys=4, device=1.5),
        TypeError,
        "device",
    ),
    (
        "build_mask int mask",
        call(
            masking.build_mask,
            num_queries=3,
            num_keys=4,
            mask=t(3, 4, dtype=torch.long),
        ),
        TypeError,
        "mask",
    ),
    (
        "build_mask mask shape",
        call(
            masking.build_mask,
            num_queries=3,
            num_keys=4,
            mask=t(3, 5, dtype=torch.bool),
        ),
        ValueError,
        "mask",
    ),
    (
        "build_mask mask vs lens batch",
        call(
            masking.build_mask,
            num_queries=3,
            num_keys=4,
            mask=t(5, 3, 4, dtype=torch.bool),
            valid_lens=torch.tensor([1, 2]),
        ),
        ValueError,
        "mask",
    ),
    (
        "build_mask 3-D lens",
        call(
            masking.build_mask,
            num_queries=3,
            num_keys=4,
            valid_lens=t(2, 3, 1, dtype=torch.long),
        ),
        ValueError,
        "valid_lens",
    ),
    (
        "build_mask list lens",
        call(masking.build_mask, num_queries=3, num_keys=4, valid_lens=[1, 2]),
        TypeError,
        "valid_lens",
    ),
    (
        "build_mask mask vs device",
        call(
            masking.build_mask,
            num_queries=3,
            num_keys=4,
            mask=t(3, 4, dtype=torch.bool, device="meta"),
            device="cpu",
        ),
        ValueError,
        "mask",
    ),
    (
        "build_mask mask vs causal default device",
        call(
            masking.build_mask,
            num_queries=3,
            num_keys=4,
            mask=t(3, 4, dtype=torch.bool, device="meta"),
            causal=True,
        ),
        ValueError,
        "mask",
    ),
    (
        "build_mask lens device",
        call(
            masking.build_mask,
            num_queries=3,
            num_keys=4,
            mask=t(3, 4, dtype=torch.bool),
            valid_lens=t(2, dtype=torch.long, device="meta"),
        ),
        ValueError,
        "valid_lens",
    ),
    # scoring
    (
        "dot_product_scores int",
        call(
            attnkit.dot_product_scores,
            queries=t(2, 3, 4, dtype=torch.int32),
            keys=t(2, 5, 4),
        ),
        TypeError,
        "queries",
    ),
    (
        "dot_product_scores D",
        call(attnkit.dot_product_scores, queries=t(2, 3, 4), keys=t(2, 5, 3)),
        ValueError,
        "keys",
    ),
    (
        "dot_product_scores batch",
        call(attnkit.dot_product_scores, queries=t(2, 3, 4), keys=t(3, 5, 4)),
        ValueError,
        "keys",
    ),
    (
        "dot_product_scores device",
        call(
            attnkit.dot_product_scores,
            queries=t(2, 3, 4),
            keys=t(2, 5, 4, device="meta"),
        ),
        ValueError,
        "keys",
    ),
    (
        "additive_scores W_q device",
        call(
            attnkit.additive_scores,
            queries=t(2, 3, 4),
            keys=t(2, 5, 6),
            W_q=t(7, 4, device="meta"),
            W_k=t(7, 6),
            w_v=t(7),
        ),
        ValueError,
        "W_q",
    ),
    (
        "additive_scores w_v size",
        call(
            attnkit.additive_scores,
            queries=t(2, 3, 4),
            keys=t(2, 5, 6),
            W_q=t(7, 4),
            W_k=t(7, 6),
            w_v=t(6),
        ),
        ValueError,
        "w_v",
    ),
    (
        "additive_scores w_v rows",
        call(
            attnkit.additive_scores,
            queries=t(2, 3, 4),
            keys=t(2, 5, 6),
            W_q=t(7, 4),
            W_k=t(7, 6),
            w_v=t(2, 7),
        ),
        ValueError,
        "w_v",
    ),
    (
        "additive_scores complex keys",
        call(
            attnkit.additive_scores,
            queries=t(2, 3, 4),
            keys=t(2, 5, 6, dtype=torch.complex64),
            W_q=t(7, 4),
            W_k=t(7, 6),
            w_v=t(7),
        ),
        TypeError,
        "keys",
    ),
    # attention
    (
        "attend device",
        call(attnkit.attend, weights=t(2, 3, 5, device="meta"), values=t(2, 5, 6)),
        ValueError,
        "values",
    ),
    (
        "attend S",
        call(attnkit.attend, weights=t(2, 3, 5), values=t(2, 4, 6)),
        ValueError,
        "values",
    ),
    (
        "attend batch broadcast",
        call(attnkit.attend, weights=t(3, 5), values=t(2, 5, 6)),
        ValueError,
        "values",
    ),
    (
        "attend int values",
        call(attnkit.attend, weights=t(2, 3, 5), values=t(2, 5, 6, dtype=torch.long)),
        TypeError,
        "values",
    ),
    (
        "dot_product_attention bool values",
        call(
            attnkit.dot_product_attention,
            _attention_qkv,
            values=t(2, 5, 6, dtype=torch.bool),
        ),
        TypeError,
        "values",
    ),
    (
        "dot_product_attention device",
        call(
            attnkit.dot_product_attention,
            _attention_qkv,
            values=t(2, 5, 6, device="meta"),
        ),
        ValueError,
        "values",
    ),
    (
        "dot_product_attention lens with 4-D",
        call(
            attnkit.dot_product_attention,
            queries=t(1, 2, 3, 4),
            keys=t(1, 2, 5, 4),
            values=t(1, 2, 5, 6),
            valid_lens=torch.tensor([1]),
        ),
        ValueError,
        "queries",
    ),
    (
        "dot_product_attention mask shape",
        call(
            attnkit.dot_product_attention,
            _attention_qkv,
            mask=t(3, 4, dtype=torch.bool),
        ),
        ValueError,
        "mask",
    ),
    (
        "additive_attention values S",
        call(
            attnkit.additive_attention,
            _attention_qkv,
            values=t(2, 4, 6),
            W_q=t(7, 4),
            W_k=t(7, 4),
            w_v=t(7),
        ),
        ValueError,
        "values",
    ),
    (
        "additive_attention W_k device",
        call(
            attnkit.additive_attention,
            _attention_qkv,
            W_q=t(7, 4),
            W_k=t(7, 4, device="meta"),
            w_v=t(7),
        ),
        ValueError,
        "W_k",
    ),
    # pooling
    (
        "squared_distances 3-D",
        call(pooling.squared_distances, queries=t(2, 3, 4), keys=t(5, 4)),
        ValueError,
        "queries",
    ),
    (
        "squared_distances int keys",
        call(pooling.squared_distances, queries=t(3), keys=t(5, dtype=torch.long)),
        TypeError,
        "keys",
    ),
    (
        "hard_lookup no keys",
        call(pooling.hard_lookup, _lookup, keys=t(0), values=t(0)),
        ValueError,
        "keys",
    ),
    (
        "hard_lookup values S",
        call(pooling.hard_lookup, _lookup, values=t(4)),
        ValueError,
        "values",
    ),
    (
        "hard_lookup device",
        call(pooling.hard_lookup, _lookup, values=t(5, device="meta")),
        ValueError,
        "values",
    ),
    (
        "average_pooling empty",
        call(pooling.average_pooling, values=t(0, 3), num_queries=2),
        ValueError,
        "values",
    ),
    (
        "average_pooling float L",
        call(pooling.average_pooling, values=t(4, 3), num_queries=2.0),
        TypeError,
        "num_queries",
    ),
    (
        "gaussian_kernel_weights bandwidth",
        call(pooling.gaussian_kernel_weights, queries=t(3), keys=t(5), bandwidth=0.0),
        ValueError,
        "bandwidth",
    ),
    (
        "gaussian_kernel_weights bool bandwidth",
        call(pooling.gaussian_kernel_weights, queries=t(3), keys=t(5), bandwidth=True),
        TypeError,
        "bandwidth",
    ),
    (
        "nadaraya_watson device",
        call(pooling.nadaraya_watson, _lookup, values=t(5, device="meta")),
        ValueError,
        "values",
    ),
    (
        "nadaraya_watson bandwidth device",
        call(
            pooling.nadaraya_watson, _lookup, bandwidth=torch.tensor(1.0, device=META)
        ),
        ValueError,
        "bandwidth",
    ),
    (
        "nadaraya_watson int queries",
        call(pooling.nadaraya_watson, _lookup, queries=t(3, dtype=torch.long)),
        TypeError,
        "queries",
    ),
    (
        "regression_target int",
        call(pooling.regression_target, x=t(3, dtype=torch.long)),
        TypeError,
        "x",
    ),
    (
        "make_regression_data zero",
        call(pooling.make_regression_data, n_train=0),
        ValueError,
        "n_train",
    ),
    (
        "make_regression_data bool",
        call(pooling.make_regression_data, n_test=True),
        TypeError,
        "n_test",
    ),
    # positional and fusion
    (
        "sinusoidal_encoding zero width",
        call(attnkit.sinusoidal_encoding, num_positions=3, num_hiddens=0),
        ValueError,
        "num_hiddens",
    ),
    (
        "sinusoidal_encoding float",
        call(attnkit.sinusoidal_encoding, num_positions=2.5, num_hiddens=4),
        TypeError,
        "num_positions",
    ),
    (
        "add_positional_encoding long",
        call(attnkit.add_positional_encoding, X=t(2, 5, 4), P=t(3, 4)),
        ValueError,
        "max_len",
    ),
    (
        "add_positional_encoding device",
        call(attnkit.add_positional_encoding, X=t(2, 3, 4), P=t(5, 4, device="meta")),
        ValueError,
        "P",
    ),
    (
        "add_positional_encoding int X",
        call(
            attnkit.add_positional_encoding, X=t(2, 3, 4, dtype=torch.long), P=t(5, 4)
        ),
        TypeError,
        "X",
    ),
    (
        "attention_fusion W device",
        call(attnkit.attention_fusion, _fusion, W=t(5, 4, device="meta")),
        ValueError,
        "W",
    ),
    (
        "attention_fusion int H",
        call(attnkit.attention_fusion, _fusion, H=t(2, 3, 4, dtype=torch.long)),
        TypeError,
        "H",
    ),
    (
        "attention_fusion int mask",
        call(attnkit.attention_fusion, _fusion, mask=t(2, 3, dtype=torch.long)),
        TypeError,
        "mask",
    ),
    (
        "attention_fusion mask shape",
        call(attnkit.attention_fusion, _fusion, mask=t(3, 2, dtype=torch.bool)),
        ValueError,
        "mask",
    ),
    # mechanisms
    (
        "softmax_attention_naive complex",
        call(
            attnkit.softmax_attention_naive,
            _mech,
            v=t(2, 2, 6, 3, dtype=torch.complex64),
        ),
        TypeError,
        "v",
    ),
    (
        "softmax_attention_naive device",
        call(attnkit.softmax_attention_naive, _mech, k=t(2, 2, 6, 4, device="meta")),
        ValueError,
        "k",
    ),
    (
        "softmax_attention_naive 3-D",
        call(attnkit.softmax_attention_naive, _mech, q=t(2, 6, 4)),
        ValueError,
        "q",
    ),
    (
        "check_mechanism_inputs mask device",
        call(check_mechanism_inputs, _mech, mask=t(6, dtype=torch.bool, device="meta")),
        ValueError,
        "mask",
    ),
    (
        "key_padding_from_mask per-query",
        call(
            attnkit.key_padding_from_mask,
            mask=t(2, 1, 6, 6, dtype=torch.bool),
            batch=2,
            num_keys=6,
            mechanism="local",
        ),
        ValueError,
        "mask",
    ),
    # multihead
    (
        "split_heads float heads",
        call(multihead.split_heads, X=t(2, 3, 4), num_heads=2.0),
        TypeError,
        "num_heads",
    ),
    (
        "split_heads zero heads",
        call(multihead.split_heads, X=t(2, 3, 4), num_heads=0),
        ValueError,
        "num_heads",
    ),
    (
        "split_heads not divisible",
        call(multihead.split_heads, X=t(2, 3, 5), num_heads=2),
        ValueError,
        "num_heads",
    ),
    ("merge_heads 3-D", call(multihead.merge_heads, X=t(2, 3, 4)), ValueError, "X"),
    (
        "valid_lens_to_mask range",
        call(
            multihead.valid_lens_to_mask,
            valid_lens=torch.tensor([7]),
            num_queries=2,
            num_keys=4,
        ),
        ValueError,
        "valid_lens",
    ),
    (
        "multi_head_attention 1-D W_o",
        call(multihead.multi_head_attention, _mha, W_o=t(8)),
        ValueError,
        "W_o",
    ),
    (
        "multi_head_attention W_o size",
        call(multihead.multi_head_attention, _mha, W_o=t(8, 6)),
        ValueError,
        "W_o",
    ),
    (
        "multi_head_attention W_q device",
        call(multihead.multi_head_attention, _mha, W_q=t(8, 4, device="meta")),
        ValueError,
        "W_q",
    ),
    (
        "multi_head_attention values device",
        call(multihead.multi_head_attention, _mha, values=t(2, 5, 6, device="meta")),
        ValueError,
        "values",
    ),
    (
        "multi_head_attention int keys",
        call(multihead.multi_head_attention, _mha, keys=t(2, 5, 4, dtype=torch.long)),
        TypeError,
        "keys",
    ),
    (
        "multi_head_attention heads",
        call(multihead.multi_head_attention, _mha, num_heads=3),
        ValueError,
        "num_heads",
    ),
    (
        "multi_head_attention bias",
        call(multihead.multi_head_attention, _mha, b_q=t(7)),
        ValueError,
        "b_q",
    ),
    (
        "multi_head_attention S",
        call(multihead.multi_head_attention, _mha, values=t(2, 4, 6)),
        ValueError,
        "length S",
    ),
    (
        "multi_head_attention mask",
        call(
            multihead.multi_head_attention, _mha, mask=t(2, 3, 3, 5, dtype=torch.bool)
        ),
        ValueError,
        "mask",
    ),
    # sparse
    (
        "local_pattern window -1",
        call(sparse.local_pattern, n=5, window=-1),
        ValueError,
        "window",
    ),
    (
        "local_pattern window True",
        call(sparse.local_pattern, n=5, window=True),
        TypeError,
        "window",
    ),
    (
        "atrous_pattern step 2.5",
        call(sparse.atrous_pattern, n=5, step=2.5),
        TypeError,
        "step",
    ),
    (
        "atrous_pattern limit -1",
        call(sparse.atrous_pattern, n=5, step=1, limit=-1),
        ValueError,
        "limit",
    ),
    (
        "strided_pattern n float",
        call(sparse.strided_pattern, n=5.0, stride=2),
        TypeError,
        "n",
    ),
    (
        "longformer_pattern global range",
        call(sparse.longformer_pattern, n=5, window=1, global_tokens=[5]),
        ValueError,
        "global_tokens",
    ),
    (
        "longformer_pattern global float",
        call(sparse.longformer_pattern, n=5, window=1, global_tokens=[1.5]),
        TypeError,
        "global_tokens",
    ),
    (
        "longformer_pattern global bool",
        call(
            sparse.longformer_pattern, n=5, window=1, global_tokens=torch.tensor([True])
        ),
        TypeError,
        "global_tokens",
    ),
    (
        "bigbird_pattern block 0",
        call(sparse.bigbird_pattern, n=5, window=1, block_size=0),
        ValueError,
        "block_size",
    ),
    (
        "bigbird_pattern seed float",
        call(sparse.bigbird_pattern, n=5, window=1, seed=0.5),
        TypeError,
        "seed",
    ),
    (
        "density empty",
        call(sparse.density, mask=t(0, 0, dtype=torch.bool)),
        ValueError,
        "mask",
    ),
    ("density float", call(sparse.density, mask=t(3, 3)), TypeError, "mask"),
    (
        "sparse_attention_naive pattern dtype",
        call(sparse.sparse_attention_naive, _mech, pattern=t(6, 6, dtype=torch.long)),
        TypeError,
        "pattern",
    ),
    (
        "sparse_attention_naive pattern shape",
        call(sparse.sparse_attention_naive, _mech, pattern=t(6, 5, dtype=torch.bool)),
        ValueError,
        "pattern",
    ),
    (
        "sparse_attention_naive pattern device",
        call(
            sparse.sparse_attention_naive,
            _mech,
            pattern=t(6, 6, dtype=torch.bool, device="meta"),
        ),
        ValueError,
        "pattern",
    ),
    # local
    (
        "local_attention window -1",
        call(local.local_attention, _mech, window=-1),
        ValueError,
        "window",
    ),
    (
        "local_attention window 2.5",
        call(local.local_attention, _mech, window=2.5),
        TypeError,
        "window",
    ),
    (
        "local_attention key_padding (B, H)",
        call(
            local.local_attention,
            _mech,
            window=1,
            key_padding=t(2, 2, dtype=torch.bool),
        ),
        ValueError,
        "key_padding",
    ),
    (
        "local_attention key_padding int",
        call(
            local.local_attention,
            _mech,
            window=1,
            key_padding=t(2, 6, dtype=torch.long),
        ),
        TypeError,
        "key_padding",
    ),
    (
        "local_attention key_padding device",
        call(
            local.local_attention,
            _mech,
            window=1,
            key_padding=t(2, 6, dtype=torch.bool, device="meta"),
        ),
        ValueError,
        "key_padding",
    ),
    (
        "local_attention global range",
        call(local.local_attention, _mech, window=1, global_tokens=[9]),
        ValueError,
        "global_tokens",
    ),
    (
        "local_attention v device",
        call(local.local_attention, _mech, window=1, v=t(2, 2, 6, 3, device="meta")),
        ValueError,
        "v",
    ),
    (
        "local_attention_naive int q",
        call(
            local.local_attention_naive,
            _mech,
            window=1,
            q=t(2, 2, 6, 4, dtype=torch.long),
        ),
        TypeError,
        "q",
    ),
    (
        "block_attention tile_mask",
        call(local.block_attention, _blocks, tile_mask=t(3, 2, 5, dtype=torch.bool)),
        ValueError,
        "tile_mask",
    ),
    (
        "block_attention v_win device",
        call(local.block_attention, _blocks, v_win=t(1, 2, 3, 6, 5, device="meta")),
        ValueError,
        "v_win",
    ),
    (
        "block_attention k_glob alone",
        call(local.block_attention, _blocks, k_glob=t(1, 2, 1, 4)),
        ValueError,
        "k_glob",
    ),
    # hashing
    (
        "random_hyperplanes n_bits 0",
        call(hashing.random_hyperplanes, dim=4, n_bits=0),
        ValueError,
        "n_bits",
    ),
    (
        "random_hyperplanes seed float",
        call(hashing.random_hyperplanes, dim=4, n_bits=2, seed=1.5),
        TypeError,
        "seed",
    ),
    (
        "hyperplane_bits planes D",
        call(hashing.hyperplane_bits, x=t(3, 4), planes=t(5, 2)),
        ValueError,
        "planes",
    ),
    (
        "hyperplane_bits planes device",
        call(hashing.hyperplane_bits, x=t(3, 4), planes=t(4, 2, device="meta")),
        ValueError,
        "planes",
    ),
    (
        "hyperplane_hash int x",
        call(hashing.hyperplane_hash, x=t(3, 4, dtype=torch.long), planes=t(4, 2)),
        TypeError,
        "x",
    ),
    (
        "hyperplane_collision_probability n_bits",
        call(hashing.hyperplane_collision_probability, theta=0.1, n_bits=1.5),
        TypeError,
        "n_bits",
    ),
    (
        "hyperplane_collision_probability theta",
        call(hashing.hyperplane_collision_probability, theta="0.1"),
        TypeError,
        "theta",
    ),
    (
        "random_rotations n_rounds 0",
        call(hashing.random_rotations, dim=4, n_buckets=4, n_rounds=0),
        ValueError,
        "n_rounds",
    ),
    (
        "random_rotations n_buckets True",
        call(hashing.random_rotations, dim=4, n_buckets=True),
        TypeError,
        "n_buckets",
    ),
    (
        "angular_hash rotations device",
        call(hashing.angular_hash, x=t(3, 4), rotations=t(1, 4, 2, device="meta")),
        ValueError,
        "rotations",
    ),
    (
        "angular_hash 1-D x",
        call(hashing.angular_hash, x=t(4), rotations=t(1, 4, 2)),
        ValueError,
        "x",
    ),
    # lsh
    (
        "chunk_layout bucket_size 2.5",
        call(lsh.chunk_layout, num_queries=4, num_keys=4, bucket_size=2.5),
        TypeError,
        "bucket_size",
    ),
    (
        "chunk_layout bucket_size True",
        call(lsh.chunk_layout, num_queries=4, num_keys=4, bucket_size=True),
        TypeError,
        "bucket_size",
    ),
    (
        "chunk_layout no queries",
        call(lsh.chunk_layout, num_queries=0, num_keys=4, bucket_size=2),
        ValueError,
        "num_queries",
    ),
    (
        "default_n_buckets bucket_size 0",
        call(lsh.default_n_buckets, num_queries=4, num_keys=4, bucket_size=0),
        ValueError,
        "bucket_size",
    ),
    (
        "sort_by_bucket float",
        call(lsh.sort_by_bucket, buckets=t(2, 5)),
        TypeError,
        "buckets",
    ),
    (
        "sort_by_bucket padded_len",
        call(lsh.sort_by_bucket, buckets=t(2, 5, dtype=torch.long), padded_len=4),
        ValueError,
        "padded_len",
    ),
    (
        "lsh_attention float buckets",
        call(lsh.lsh_attention, _lsh, q_buckets=bucket_ids(2, 2, 1, 6, f)),
        TypeError,
        "q_buckets",
    ),
    (
        "lsh_attention bool buckets",
        call(lsh.lsh_attention, _lsh, k_buckets=bucket_ids(2, 2, 1, 6, torch.bool)),
        TypeError,
        "k_buckets",
    ),
    (
        "lsh_attention bucket shape",
        call(lsh.lsh_attention, _lsh, k_buckets=bucket_ids(2, 2, 1, 5)),
        ValueError,
        "k_buckets",
    ),
    (
        "lsh_attention rounds differ",
        call(lsh.lsh_attention, _lsh, k_buckets=bucket_ids(2, 2, 2, 6)),
        ValueError,
        "k_buckets",
    ),
    (
        "lsh_attention negative bucket",
        call(lsh.lsh_attention, _lsh, q_buckets=-bucket_ids(2, 2, 1, 6) - 1),
        ValueError,
        "q_buckets",
    ),
    (
        "lsh_attention bucket device",
        call(
            lsh.lsh_attention,
            _lsh,
            q_buckets=t(2, 2, 1, 6, dtype=torch.long, device="meta"),
        ),
        ValueError,
        "q_buckets",
    ),
    (
        "lsh_attention bucket_size 2.5",
        call(lsh.lsh_attention, _lsh, bucket_size=2.5),
        TypeError,
        "bucket_size",
    ),
    (
        "lsh_attention bucket_size True",
        call(lsh.lsh_attention, _lsh, bucket_size=True),
        TypeError,
        "bucket_size",
    ),
    (
        "lsh_attention key_padding (B, H)",
        call(lsh.lsh_attention, _lsh, key_padding=t(2, 2, dtype=torch.bool)),
        ValueError,
        "key_padding",
    ),
    (
        "lsh_attention int v",
        call(lsh.lsh_attention, _lsh, v=t(2, 2, 6, 3, dtype=torch.long)),
        TypeError,
        "v",
    ),
    (
        "lsh_attention empty S",
        call(
            lsh.lsh_attention,
            _lsh,
            k=t(2, 2, 0, 4),
            v=t(2, 2, 0, 3),
            k_buckets=bucket_ids(2, 2, 1, 0),
        ),
        ValueError,
        "one key",
    ),
    (
        "lsh_attention_naive float buckets",
        call(lsh.lsh_attention_naive, _lsh, k_buckets=bucket_ids(2, 2, 1, 6, f)),
        TypeError,
        "k_buckets",
    ),
]


@pytest.mark.parametrize(
    "fn, exc, name", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_raises_naming_the_argument(fn, exc, name):
    with pytest.raises(exc, match=name) as info:
        fn()
    assert type(info.value) is exc  # the exact type, not a subclass


# ------------------------------------------------------------------- settings of the modules


SETTINGS = [
    (
        "local window -1",
        lambda: attnkit.LocalAttention(window=-1),
        ValueError,
        "window",
    ),
    (
        "local window True",
        lambda: attnkit.LocalAttention(window=True),
        TypeError,
        "window",
    ),
    (
        "local blocked 1",
        lambda: attnkit.LocalAttention(blocked=1),
        TypeError,
        "blocked",
    ),
    (
        "local global float",
        lambda: attnkit.LocalAttention(global_tokens=[0.5]),
        TypeError,
        "global_tokens",
    ),
    (
        "lsh bucket_size 2.5",
        lambda: attnkit.LSHAttention(bucket_size=2.5),
        TypeError,
        "bucket_size",
    ),
    (
        "lsh bucket_size True",
        lambda: attnkit.LSHAttention(bucket_size=True),
        TypeError,
        "bucket_size",
    ),
    (
        "lsh n_hashes 0",
        lambda: attnkit.LSHAttention(n_hashes=0),
        ValueError,
        "n_hashes",
    ),
    (
        "lsh n_buckets 3",
        lambda: attnkit.LSHAttention(n_buckets=3),
        ValueError,
        "n_buckets",
    ),
    (
        "lsh shared_qk 'yes'",
        lambda: attnkit.LSHAttention(shared_qk="yes"),
        TypeError,
        "shared_qk",
    ),
    ("mha heads 0", lambda: attnkit.MultiHeadAttention(8, 0), ValueError, "num_heads"),
    (
        "mha hiddens 2.0",
        lambda: attnkit.MultiHeadAttention(8.0, 2),
        TypeError,
        "num_hiddens",
    ),
    (
        "positional max_len -1",
        lambda: attnkit.PositionalEncoding(4, max_len=-1),
        ValueError,
        "max_len",
    ),
    (
        "fusion size 0",
        lambda: attnkit.AttentionFusion(0, 3),
        ValueError,
        "feature_size",
    ),
    (
        "registry unknown",
        lambda: attnkit.make_mechanism("softmx"),
        ValueError,
        "unknown mechanism 'softmx'",
    ),
    (
        "registry not a str",
        lambda: attnkit.get_mechanism_class(3),
        TypeError,
        "mechanism name",
    ),
]


@pytest.mark.parametrize(
    "fn, exc, name", [c[1:] for c in SETTINGS], ids=[c[0] for c in SETTINGS]
)
def test_bad_settings_raise_naming_the_setting(fn, exc, name):
    with pytest.raises(exc, match=name) as info:
        fn()
    assert type(info.value) is exc


def test_one_unknown_mechanism_message_everywhere():
    from attnkit.bench.runner import parse_spec

    messages = set()
    for make in (
        lambda: attnkit.make_mechanism("nope"),
        lambda: attnkit.MultiHeadAttention(4, 2, mechanism="nope"),
        lambda: parse_spec("nope:window=3"),
    ):
        with pytest.raises(ValueError) as info:
            make()
        messages.add(str(info.value))
    assert (
        len(messages) == 1
        and "unknown mechanism 'nope'; known mechanisms: " in messages.pop()
    )


# ------------------------------------------------------------------- empty batches and sequences


def _empty(B, L, S):
    return qkv(B, 2, L, S, 4, 3)


@pytest.mark.parametrize("B, L, S", [(0, 5, 5), (2, 0, 5), (2, 5, 0), (2, 0, 0)])
def test_empty_inputs_give_empty_or_zero_outputs(B, L, S):
    """Softmax-based functions: no queries or no batch → an empty output of the right shape;
    no keys → zeros (a query with nothing to attend to gets zeros, never NaN)."""
    q, k, v = _empty(B, L, S)
    outs = {
        "softmax_attention_naive": attnkit.softmax_attention_naive(q, k, v)[0],
        "SoftmaxAttention(fast=False)": attnkit.SoftmaxAttention(fast=False)(q, k, v),
        "dot_product_attention": attnkit.dot_product_attention(q, k, v)[0],
        "local_attention": local.local_attention(q, k, v, window=2),
        "local_attention_naive": local.local_attention_naive(q, k, v, window=2)[0],
        "sparse_attention_naive": sparse.sparse_attention_naive(
            q, k, v, torch.ones(L, S, dtype=torch.bool)
        )[0],
    }
    for name, out in outs.items():
        assert out.shape == (B, 2, L, 3), name
        assert torch.equal(out, torch.zeros_like(out)) or S > 0, name
        assert not out.isnan().any(), name


@pytest.mark.parametrize("B, L, S", [(0, 5, 5), (2, 0, 5), (2, 5, 0)])
def test_empty_inputs_to_the_single_head_and_multi_head_layers(B, L, S):
    x, y = randn(B, L, 4), randn(B, S, 4)
    W = [randn(4, 4, seed=i) for i in range(4)]
    out, weights = multihead.multi_head_attention(x, y, y, *W, num_heads=2)
    assert out.shape == (B, L, 4) and weights.shape == (B, 2, L, S)
    assert multihead.split_heads(x, 2).shape == (B, 2, L, 2)
    assert masking.masked_softmax(randn(B, L, S)).shape == (B, L, S)
    fused, w = attnkit.attention_fusion(randn(B, S, 4), randn(3, 4), randn(3), randn(3))
    assert fused.shape == (B, 4) and w.shape == (B, S)
    if S == 0:
        assert torch.equal(fused, torch.zeros_like(fused))


def test_empty_lookups():
    out, w = pooling.nadaraya_watson(t(3), t(0), t(0))
    assert (
        out.shape == (3,)
        and w.shape == (3, 0)
        and torch.equal(out, torch.zeros(3, dtype=f))
    )
    assert pooling.hard_lookup(t(0), t(4), t(4))[0].shape == (0,)


@pytest.mark.parametrize("L, S", [(0, 6), (6, 0)])
def test_lsh_refuses_empty_sequences(L, S):
    q, k, v = qkv(1, 1, L, S, 4, 3)
    with pytest.raises(ValueError, match="at least one query and one key"):
        lsh.lsh_attention(
            q, k, v, bucket_ids(1, 1, 1, L), bucket_ids(1, 1, 1, S), bucket_size=2
        )
    with pytest.raises(ValueError, match="at least one query and one key"):
        lsh.lsh_attention_naive(
            q, k, v, bucket_ids(1, 1, 1, L), bucket_ids(1, 1, 1, S), bucket_size=2
        )


def test_lsh_with_an_empty_batch_gives_an_empty_output():
    q, k, v = qkv(0, 2, 6, 6, 4, 3)
    out = lsh.lsh_attention(
        q, k, v, bucket_ids(0, 2, 1, 6), bucket_ids(0, 2, 1, 6), bucket_size=2
    )
    assert out.shape == (0, 2, 6, 3)


def test_a_one_dimensional_w_v_is_a_vector_and_a_row_is_too():
    q, k = t(2, 3, 4), t(2, 5, 6)
    W_q, W_k, w = t(7, 4), t(7, 6), t(7)
    torch.testing.assert_close(
        attnkit.additive_scores(q, k, W_q, W_k, w),
        attnkit.additive_scores(q, k, W_q, W_k, w[None]),
    )
