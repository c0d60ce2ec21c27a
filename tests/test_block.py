"""attnkit.block: the feed-forward network, pre/post-norm residual blocks, stacks.

Hand-written formulas in float64, parity with torch.nn.TransformerEncoderLayer (outputs and
gradients, weights copied), the tiny model of attnkit.tasks rebuilt by hand from its own
parameters, and "H separate projections = one projection split into heads".
"""

import math

import pytest
import torch
from helpers import randn
from torch import nn

from attnkit.block import (
    PositionWiseFFN,
    TransformerBlock,
    TransformerStack,
    position_wise_ffn,
    residual,
    transformer_block,
)
from attnkit.multihead import MultiHeadAttention, split_heads
from attnkit.tasks import TinyAttentionModel, use_mechanism


def layer_norm(x, ln):
    """LayerNorm by hand: (x − mean) / √(var + eps) · γ + β over the last axis."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def mha_by_hand(x, mha, causal=False):
    """Multi-head self-attention, one head at a time, each head with its own slice of the
    projections W_q, W_k, W_v."""
    H = mha.num_heads
    D = mha.num_hiddens // H
    L = x.shape[1]
    heads = []
    for h in range(H):
        rows = slice(h * D, (h + 1) * D)
        q = x @ mha.W_q.weight[rows].T  # (B, L, D)
        k = x @ mha.W_k.weight[rows].T
        v = x @ mha.W_v.weight[rows].T
        s = q @ k.transpose(1, 2) / math.sqrt(D)  # (B, L, L)
        if causal:
            s = s.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), float("-inf"))
        heads.append(torch.softmax(s, -1) @ v)
    return torch.cat(heads, -1) @ mha.W_o.weight.T  # (B, L, E)


def ffn_by_hand(x, ff, act):
    return (
        act(x @ ff.linear1.weight.T + ff.linear1.bias) @ ff.linear2.weight.T
        + ff.linear2.bias
    )


def test_ffn_shape_positions_independent_and_errors():
    torch.manual_seed(0)
    ff = PositionWiseFFN(8, 32).double()
    x = randn(2, 7, 8)
    y = ff(x)
    assert y.shape == (2, 7, 8)
    torch.testing.assert_close(
        torch.cat([ff(x[:, :3]), ff(x[:, 3:])], 1), y
    )  # position-wise
    torch.testing.assert_close(y, ffn_by_hand(x, ff, nn.functional.gelu))
    with pytest.raises(ValueError, match="activation"):
        PositionWiseFFN(8, 32, activation="tanh")
    with pytest.raises(TypeError, match="ffn_num_hiddens"):
        PositionWiseFFN(8, 32.0)
    with pytest.raises(ValueError, match="W1"):
        position_wise_ffn(
            randn(2, 3, 5), ff.linear1.weight, None, ff.linear2.weight, None
        )
    with pytest.raises(TypeError, match="x"):
        position_wise_ffn(
            torch.ones(2, 3, 8, dtype=torch.long),
            ff.linear1.weight,
            None,
            ff.linear2.weight,
            None,
        )


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_block_equals_the_formula(norm_first, causal):
    torch.manual_seed(0)
    block = TransformerBlock(12, 3, 20, norm_first=norm_first).double()
    with torch.no_grad():  # non-trivial LayerNorm parameters
        for ln in (block.norm1, block.norm2):
            ln.weight.normal_()
            ln.bias.normal_()
    x = randn(2, 9, 12)
    gelu = nn.functional.gelu
    if norm_first:
        h = x + mha_by_hand(layer_norm(x, block.norm1), block.attention, causal)
        want = h + ffn_by_hand(layer_norm(h, block.norm2), block.ff, gelu)
    else:
        h = layer_norm(x + mha_by_hand(x, block.attention, causal), block.norm1)
        want = layer_norm(h + ffn_by_hand(h, block.ff, gelu), block.norm2)
    torch.testing.assert_close(block(x, causal=causal), want, atol=1e-12, rtol=1e-12)


def test_residual_placements():
    x = randn(2, 4, 6)
    double, shift = (lambda t: 2 * t), (lambda t: t + 1)
    torch.testing.assert_close(
        residual(x, double, shift, norm_first=True), x + 2 * (x + 1)
    )
    torch.testing.assert_close(residual(x, double, shift, norm_first=False), 3 * x + 1)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_parity_with_torch_transformer_encoder_layer(norm_first, activation):
    torch.manual_seed(0)
    E, H, Dh = 16, 4, 24
    theirs = nn.TransformerEncoderLayer(
        E,
        H,
        Dh,
        dropout=0.0,
        activation=activation,
        batch_first=True,
        norm_first=norm_first,
    ).double()
    ours = TransformerBlock(
        E, H, Dh, norm_first=norm_first, activation=activation, bias=True
    ).double()
    with torch.no_grad():
        for ln in (theirs.norm1, theirs.norm2):
            ln.weight.normal_()
            ln.bias.normal_()
        W = theirs.self_attn.in_proj_weight.chunk(3)
        b = theirs.self_attn.in_proj_bias.chunk(3)
        mha = ours.attention
        for layer, w_i, b_i in zip((mha.W_q, mha.W_k, mha.W_v), W, b):
            layer.weight.copy_(w_i)
            layer.bias.copy_(b_i)
        ours.attention.W_o.weight.copy_(theirs.self_attn.out_proj.weight)
        ours.attention.W_o.bias.copy_(theirs.self_attn.out_proj.bias)
        for mine, their in (
            (ours.ff.linear1, theirs.linear1),
            (ours.ff.linear2, theirs.linear2),
            (ours.norm1, theirs.norm1),
            (ours.norm2, theirs.norm2),
        ):
            mine.weight.copy_(their.weight)
            mine.bias.copy_(their.bias)
    x1 = randn(3, 10, E, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    grad_out = randn(3, 10, E, seed=1)
    y_ours, y_theirs = ours(x1), theirs(x2)
    torch.testing.assert_close(y_ours, y_theirs, atol=1e-12, rtol=1e-12)
    y_ours.backward(grad_out)
    y_theirs.backward(grad_out)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-12, rtol=1e-12)
    pairs = [
        (ours.ff.linear1.weight, theirs.linear1.weight),
        (ours.norm1.weight, theirs.norm1.weight),
        (ours.norm2.bias, theirs.norm2.bias),
        (ours.attention.W_o.weight, theirs.self_attn.out_proj.weight),
    ]
    for mine, their in pairs:
        torch.testing.assert_close(mine.grad, their.grad, atol=1e-12, rtol=1e-12)
    in_proj = torch.cat(
        [
            ours.attention.W_q.weight.grad,
            ours.attention.W_k.weight.grad,
            ours.attention.W_v.weight.grad,
        ]
    )
    torch.testing.assert_close(
        in_proj, theirs.self_attn.in_proj_weight.grad, atol=1e-12, rtol=1e-12
    )


@pytest.mark.parametrize(
    "mechanism, settings",
    [("softmax", None), ("local", {"window": 2}), ("linear", None)],
)
def test_block_takes_any_mechanism_and_stacks(mechanism, settings):
    torch.manual_seed(0)
    stack = TransformerStack(
        3, 16, 2, mechanism=mechanism, mechanism_settings=settings
    ).eval()
    x = torch.randn(2, 12, 16)
    y = stack(x, causal=True)
    assert y.shape == (2, 12, 16) and len(stack.blocks) == 3
    by_hand = x
    for block in stack.blocks:
        by_hand = block(by_hand, causal=True)
    torch.testing.assert_close(y, stack.final_norm(by_hand))
    post = TransformerStack(2, 16, 2, norm_first=False)
    assert isinstance(post.final_norm, nn.Identity)


def test_block_masks_and_bad_input():
    torch.manual_seed(0)
    block = TransformerBlock(8, 2).double().eval()
    x = randn(2, 6, 8)
    lens = torch.tensor([6, 4])
    y = block(x, lens)
    x2 = x.clone()
    x2[1, 4:] = 100.0  # padded positions must not change the real ones
    torch.testing.assert_close(block(x2, lens)[1, :4], y[1, :4])
    with pytest.raises(ValueError, match="x"):
        block(randn(6, 8))
    with pytest.raises(TypeError, match="norm_first"):
        TransformerBlock(8, 2, norm_first=1)
    with pytest.raises(TypeError, match="num_layers"):
        TransformerStack(2.0, 8, 2)
    with pytest.raises(ValueError, match="num_layers"):
        TransformerStack(0, 8, 2)
    with pytest.raises(TypeError, match="feed_forward"):
        transformer_block(x, block.attention, None, block.norm1, block.norm2)


def test_h_separate_projections_equal_one_projection_split():
    torch.manual_seed(0)
    E, H = 12, 3
    D = E // H
    x = randn(2, 5, E)
    W = randn(E, E, seed=1)  # one (H·D, E) projection
    separate = torch.stack(
        [x @ W[h * D : (h + 1) * D].T for h in range(H)], 1
    )  # (B, H, L, D)
    torch.testing.assert_close(split_heads(x @ W.T, H), separate, atol=1e-12, rtol=0)
    mha = MultiHeadAttention(E, H, query_size=E, key_size=E, value_size=E).double()
    torch.testing.assert_close(
        mha(x, x, x), mha_by_hand(x, mha), atol=1e-12, rtol=1e-12
    )


def old_tiny_model(model, ids):
    """TinyAttentionModel's computation before it used attnkit.block, from its parameters."""
    p = dict(model.named_parameters())
    gelu = nn.functional.gelu
    t = torch.arange(ids.shape[1])
    x = p["tok.weight"][ids] + p["pos.weight"][t]
    h = nn.functional.layer_norm(
        x, x.shape[-1:], p["block.norm1.weight"], p["block.norm1.bias"]
    )
    x = x + model.attention(h, h, h, causal=model.causal)
    h = nn.functional.layer_norm(
        x, x.shape[-1:], p["block.norm2.weight"], p["block.norm2.bias"]
    )
    h = gelu(h @ p["block.ff.linear1.weight"].T + p["block.ff.linear1.bias"])
    x = x + h @ p["block.ff.linear2.weight"].T + p["block.ff.linear2.bias"]
    h = nn.functional.layer_norm(x, x.shape[-1:], p["norm3.weight"], p["norm3.bias"])
    return h @ p["out.weight"].T + p["out.bias"]


def test_tiny_model_is_the_old_computation_and_loads_old_state_dicts():
    torch.manual_seed(0)
    model = TinyAttentionModel(9, 16, 2, max_len=12).eval()
    ids = torch.randint(0, 9, (3, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(
            model(ids), old_tiny_model(model, ids), atol=1e-6, rtol=1e-6
        )
    # parameters in the order the model has always created them
    names = [n for n, _ in model.named_parameters()]
    assert names == [
        "tok.weight",
        "pos.weight",
        "block.norm1.weight",
        "block.norm1.bias",
        "block.attention.W_q.weight",
        "block.attention.W_k.weight",
        "block.attention.W_v.weight",
        "block.attention.W_o.weight",
        "block.norm2.weight",
        "block.norm2.bias",
        "block.ff.linear1.weight",
        "block.ff.linear1.bias",
        "block.ff.linear2.weight",
        "block.ff.linear2.bias",
        "norm3.weight",
        "norm3.bias",
        "out.weight",
        "out.bias",
    ]
    # a state_dict in the earlier layout (norm1., attention., ff.0., ff.2.) still loads
    rename = {"block.ff.linear1.": "ff.0.", "block.ff.linear2.": "ff.2.", "block.": ""}
    old = {}
    for key, value in model.state_dict().items():
        for new, was in rename.items():
            if key.startswith(new):
                key = was + key[len(new) :]
                break
        old[key] = value
    assert "ff.0.weight" in old and "attention.W_q.weight" in old
    torch.manual_seed(1)
    other = TinyAttentionModel(9, 16, 2, max_len=12).eval()
    other.load_state_dict(old)
    with torch.no_grad():
        torch.testing.assert_close(other(ids), model(ids), atol=0, rtol=0)
    use_mechanism(other, "softmax", {"fast": False})
    assert (
        other.attention is other.block.attention
        and other.attention.attention.fast is False
    )
