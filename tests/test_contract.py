"""One contract for every mechanism in ``attnkit.registry.MECHANISMS``.

Each test is parametrised over the registry, so a mechanism registered later is
checked automatically. Approximate mechanisms do not equal softmax attention, so the
contract tests *properties*, not values. Mechanisms declare what their maths cannot
support with the attributes documented in :mod:`attnkit.mechanisms`
(``supports_causal``, ``content_dependent_grouping``, ``max_len``).
"""

import pytest
import torch
from helpers import qkv

from attnkit.mechanisms import Mechanism
from attnkit.registry import MECHANISMS, make_mechanism

NAMES = sorted(MECHANISMS)
B, H, L, D, DV = 3, 2, 37, 24, 20  # odd L, D not a power of two, Dv ≠ D
ATOL, RTOL = 1e-5, 1e-4


def build(name):
    torch.manual_seed(0)
    mech = make_mechanism(name).eval()
    max_len = mech.max_len
    if max_len is not None and max_len < L:
        pytest.fail(f"{name}: default max_len={max_len} is below the contract's L={L}")
    return mech


def inputs():
    """The contract's q, k, v: float32 (the mechanisms' default), B × H × L × D (Dv for v)."""
    return qkv(B, H, L, L, D, DV, seed=1, dtype=torch.float32)


def run(mech, q, k, v, **kw):
    with torch.no_grad():
        return mech(q, k, v, **kw)


def perturb(name, mech, q, k, v, where):
    """New inputs differing at positions ``where`` (a slice of L, or a (B, H, L) boolean).

    Content-grouping mechanisms (LSH) get only their values changed; see attnkit.mechanisms.
    """
    g = torch.Generator().manual_seed(99)
    if isinstance(where, slice):
        sel = torch.zeros(q.shape[:3], dtype=torch.bool)
        sel[:, :, where] = True
    else:
        sel = where
    sel = sel[..., None]  # (B, H, L, 1)
    v2 = torch.where(sel, 10 * torch.randn(v.shape, generator=g), v)
    if mech.content_dependent_grouping:
        return q.clone(), k.clone(), v2
    q2 = torch.where(sel, torch.randn(q.shape, generator=g), q)
    k2 = torch.where(sel, 10 * torch.randn(k.shape, generator=g), k)
    return q2, k2, v2


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("causal", [False, True])
def test_shape_and_finite(name, causal):
    mech = build(name)
    if causal and not mech.supports_causal:
        with pytest.raises(ValueError):
            run(mech, *inputs(), causal=True)
        return
    out = run(mech, *inputs(), causal=causal)
    assert out.shape == (B, H, L, DV)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_batch_independence(name):
    mech = build(name)
    q, k, v = inputs()
    out = run(mech, q, k, v)
    for b in range(B):
        alone = run(mech, q[b : b + 1], k[b : b + 1], v[b : b + 1])
        torch.testing.assert_close(alone[0], out[b], atol=ATOL, rtol=RTOL)
    # changing one batch item leaves the others alone
    q2, k2, v2 = q.clone(), k.clone(), v.clone()
    v2[1] += 5.0
    k2[1] = k2[1].flip(-2)
    out2 = run(mech, q2, k2, v2)
    torch.testing.assert_close(out2[[0, 2]], out[[0, 2]], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("name", NAMES)
def test_causal_ignores_the_future(name):
    mech = build(name)
    if not mech.supports_causal:
        pytest.skip(f"{name} declares supports_causal = False")
    q, k, v = inputs()
    t = 20
    out = run(mech, q, k, v, causal=True)
    q2, k2, v2 = perturb(name, mech, q, k, v, slice(t + 1, None))
    out2 = run(mech, q2, k2, v2, causal=True)
    torch.testing.assert_close(
        out2[:, :, : t + 1], out[:, :, : t + 1], atol=ATOL, rtol=RTOL
    )
    # and the future does matter without causal=True (the check above can fail)
    assert not torch.allclose(
        run(mech, q2, k2, v2)[:, :, : t + 1], run(mech, q, k, v)[:, :, : t + 1]
    )


def key_padding(lengths, length=L):
    return (torch.arange(length)[None, :] < torch.tensor(lengths)[:, None])[
        :, None, None, :
    ]  # (B, 1, 1, S)


def holes_mask():
    """(B, 1, 1, S): no padding, right padding, and scattered holes (incl. the first key)."""
    j = torch.arange(L)
    rows = [torch.ones(L, dtype=torch.bool), j < 30, (j % 3 != 0) & (j < 33)]
    return torch.stack(rows)[:, None, None, :]  # (B, 1, 1, S)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("causal", [False, True])
def test_masked_keys_have_no_effect(name, causal):
    mech = build(name)
    if causal and not mech.supports_causal:
        pytest.skip(f"{name} declares supports_causal = False")
    q, k, v = inputs()
    mask = holes_mask()
    out = run(mech, q, k, v, mask=mask, causal=causal)
    hidden = ~mask[:, 0, 0, :]  # (B, S)
    q2, k2, v2 = perturb(name, mech, q, k, v, hidden[:, None, :].expand(B, H, L))
    q2 = q  # queries are not keys: only keys and values at masked positions change
    out2 = run(mech, q2, k2, v2, mask=mask, causal=causal)
    torch.testing.assert_close(out2, out, atol=ATOL, rtol=RTOL)
    # the check can fail: without the mask the same change does move the outputs
    assert not torch.allclose(run(mech, q2, k2, v2)[2], run(mech, q, k, v)[2])


@pytest.mark.parametrize("name", NAMES)
def test_fully_masked_rows_give_zeros(name):
    mech = build(name)
    q, k, v = inputs()
    mask = key_padding([L, 0, 5])
    out = run(mech, q, k, v, mask=mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1], torch.zeros_like(out[1]), atol=1e-6, rtol=0)
    assert out[0].abs().sum() > 0 and out[2].abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length,dim", [(1, 24), (7, 10), (37, 24)])
def test_awkward_sizes(name, length, dim):
    mech = build(name)
    q, k, v = qkv(2, 3, length, length, dim, 5, seed=3, dtype=torch.float32)
    out = run(mech, q, k, v, causal=mech.supports_causal)
    assert out.shape == (2, 3, length, 5)
    assert torch.isfinite(out).all()


def test_the_contract_covers_the_softmax_reference():
    # the registry this file is parametrised over: exactly these names, each a Mechanism
    assert set(NAMES) == {
        "softmax",
        "linear",
        "lsh",
        "local",
        "strided",
        "bigbird",
        "longformer",
        "performer",
        "rfa",
        "nystrom",
        "synthesizer_dense",
        "synthesizer_random",
        "synthesizer_factorized_dense",
        "synthesizer_factorized_random",
        "synthesizer_mixture",
        "squared_relu",
    }
    assert all(issubclass(cls, Mechanism) for cls in MECHANISMS.values())
