"""attnkit.reversible: exact inversion, the memory-saving backward equal to ordinary autograd,
the chunked feed-forward network, and memory shapes that do not depend on timing."""

import pytest
import torch
from helpers import randn
from torch import nn

from attnkit.bench.memory import PeakMemory, saved_tensor_count
from attnkit.block import PositionWiseFFN
from attnkit.reversible import (
    FeedForwardBranch,
    ReversibleBlock,
    ReversibleStack,
    chunked_feed_forward,
    reversible_stack,
    reversible_stack_naive,
)


def test_block_inverts_exactly():
    torch.manual_seed(0)
    block = ReversibleBlock(12, 3, 20, causal=True).double()
    x1, x2 = randn(2, 9, 12), randn(2, 9, 12, seed=1)
    with torch.no_grad():
        y1, y2 = block(x1, x2)
        back1, back2 = block.inverse(y1, y2)
    torch.testing.assert_close(back1, x1, atol=1e-12, rtol=0)
    torch.testing.assert_close(back2, x2, atol=1e-12, rtol=0)
    torch.testing.assert_close(y1, x1 + block.f(x2))
    torch.testing.assert_close(y2, x2 + block.g(y1))


def grads_of(stack, x, weight):
    """Output and the gradients of <weight, stack(x)> for x and every parameter."""
    out = stack(x)
    grads = torch.autograd.grad(out, (x, *stack.parameters()), weight)
    return out, grads


@pytest.mark.parametrize(
    "num_layers, causal, chunk_size",
    [(1, False, None), (3, True, None), (4, False, 3), (2, True, 5)],
)
def test_reversible_backward_equals_ordinary_autograd(num_layers, causal, chunk_size):
    torch.manual_seed(0)
    stack = ReversibleStack(
        num_layers, 16, 2, 24, causal=causal, chunk_size=chunk_size
    ).double()
    x = randn(2, 11, 16, requires_grad=True)
    weight = randn(2, 11, 16, seed=1)
    out_rev, grads_rev = grads_of(stack, x, weight)
    stack.reversible = False
    out_ref, grads_ref = grads_of(stack, x, weight)
    torch.testing.assert_close(out_rev, out_ref, atol=1e-12, rtol=0)
    assert len(grads_rev) == len(grads_ref) == 1 + len(list(stack.parameters()))
    for g_rev, g_ref in zip(grads_rev, grads_ref):
        torch.testing.assert_close(g_rev, g_ref, atol=1e-10, rtol=0)


def test_reversible_stack_on_a_pair_and_frozen_parameters():
    torch.manual_seed(0)
    blocks = [ReversibleBlock(8, 2).double() for _ in range(2)]
    blocks[0].f.norm.weight.requires_grad_(False)  # a frozen parameter gets no gradient
    layers = [(b.f, b.g) for b in blocks]
    x1, x2 = (
        randn(2, 5, 8, requires_grad=True),
        randn(2, 5, 8, seed=1, requires_grad=True),
    )
    (y1, y2), (r1, r2) = (
        reversible_stack(x1, x2, layers),
        reversible_stack_naive(x1, x2, layers),
    )
    loss, ref = (y1 * y2).sum(), (r1 * r2).sum()
    trainable = [p for b in blocks for p in b.parameters() if p.requires_grad]
    for g, h in zip(
        torch.autograd.grad(loss, (x1, x2, *trainable)),
        torch.autograd.grad(ref, (x1, x2, *trainable)),
    ):
        torch.testing.assert_close(g, h, atol=1e-10, rtol=0)


def test_chunked_feed_forward_equals_the_whole():
    torch.manual_seed(0)
    ff = PositionWiseFFN(8, 32).double()
    x = randn(3, 13, 8, requires_grad=True)
    whole = ff(x)
    for chunk in (1, 4, 13, 20):
        part = chunked_feed_forward(x, ff, chunk)
        torch.testing.assert_close(part, whole, atol=1e-14, rtol=0)
        w = randn(3, 13, 8, seed=chunk)
        got = torch.autograd.grad(part, (x, *ff.parameters()), w)
        want = torch.autograd.grad(whole, (x, *ff.parameters()), w, retain_graph=True)
        for g, h in zip(got, want):
            torch.testing.assert_close(g, h, atol=1e-12, rtol=0)


def test_saved_tensors_grow_with_depth_only_without_reversibility():
    x = torch.randn(2, 16, 8, requires_grad=True)
    counts = {}
    for reversible in (False, True):
        for depth in (1, 2, 4):
            torch.manual_seed(0)
            stack = ReversibleStack(depth, 8, 2, reversible=reversible)
            counts[reversible, depth] = saved_tensor_count(stack, x)
    ordinary = [counts[False, d] for d in (1, 2, 4)]
    assert ordinary[1] == 2 * ordinary[0] and ordinary[2] == 4 * ordinary[0]
    # the reversible stack keeps its two outputs, plus what (y1 + y2) / 2 saves: none
    assert counts[True, 1] == counts[True, 2] == counts[True, 4] == 2


def test_peak_memory_counts_what_is_allocated():
    before = torch.ones(300)  # made outside: its views and in-place updates add nothing
    with PeakMemory() as m:
        a = torch.ones(1000, dtype=torch.float64)  # 8000 bytes
        b = a.view(10, 100)  # a view: nothing new
        before.add_(1.0)
        before.t()
        del a, b
        c = torch.ones(500, dtype=torch.float32)  # 2000 bytes, once a is freed
    assert m.peak == 8000 and m.current == 2000
    del c
    assert m.current == 0


def test_chunked_ffn_and_reversible_stack_lower_the_peak():
    torch.manual_seed(0)
    branch = FeedForwardBranch(16, 64)
    x = torch.randn(2, 256, 16)
    peaks = {}
    for chunk in (None, 32):
        branch.chunk_size = chunk
        with torch.no_grad(), PeakMemory() as m:
            branch(x)
        peaks[chunk] = m.peak
    hidden = 2 * 256 * 64 * 4  # bytes of the (B, L, Dh) hidden tensor
    assert peaks[None] >= hidden > peaks[32]
    # training: from 2 to 6 blocks, the reversible stack's peak grows only by the four new
    # blocks' parameter gradients (which outlive the step); the ordinary stack's peak grows
    # by every block's activations on top
    x = torch.randn(2, 64, 16, requires_grad=True)
    growth = {}
    for reversible in (False, True):
        peak = []
        for depth in (2, 6):
            torch.manual_seed(0)
            stack = ReversibleStack(depth, 16, 2, reversible=reversible)
            with PeakMemory() as m:
                stack(x).sum().backward()
            peak.append(m.peak)
        growth[reversible] = peak[1] - peak[0]
    grad_bytes = 4 * 4 * sum(p.numel() for p in ReversibleBlock(16, 2).parameters())
    assert grad_bytes <= growth[True] <= 1.1 * grad_bytes
    assert growth[False] > 4 * grad_bytes


def test_bad_input():
    torch.manual_seed(0)
    block = ReversibleBlock(8, 2)
    layers = [(block.f, block.g)]
    with pytest.raises(ValueError, match="x2"):
        reversible_stack(torch.randn(2, 5, 8), torch.randn(2, 4, 8), layers)
    with pytest.raises(ValueError, match="x1"):
        reversible_stack(torch.randn(5, 8), torch.randn(5, 8), layers)
    with pytest.raises(TypeError, match="layers"):
        reversible_stack(
            torch.randn(2, 5, 8), torch.randn(2, 5, 8), [(block.f, lambda t: t)]
        )
    with pytest.raises(ValueError, match="layers"):
        reversible_stack_naive(torch.randn(2, 5, 8), torch.randn(2, 5, 8), [])
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_feed_forward(torch.randn(2, 5, 8), nn.Identity(), 0)
    with pytest.raises(TypeError, match="reversible"):
        ReversibleStack(2, 8, 2, reversible="yes")
