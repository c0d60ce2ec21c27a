"""Plausible wrong answers to the chapter 3 exercises; each must lose points on its question.

CORRECT_ANSWERS are right answers written differently from the solution; they must score full marks.
"""

_ONLINE_HEAD = '''
def online_masked_attention(scores, values, valid_lens):
    B, L, S = scores.shape
    lens = valid_lens[:, None].expand(B, L) if valid_lens.dim() == 1 else valid_lens
    neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    m = torch.full((B, L), float("-inf"), dtype=scores.dtype, device=scores.device)
    total = torch.zeros(B, L, dtype=scores.dtype, device=scores.device)
    acc = torch.zeros(B, L, values.shape[-1], dtype=scores.dtype, device=scores.device)
'''

_CACHED_HEAD = '''
import math


def cached_attention(q, k, v):
    L, S = q.shape[-2], k.shape[-2]
'''

WRONG_ANSWERS = {
    "q1": [
        ("vectorised: builds the (B, L, S) weights (right values, not one pass)", '''
def online_masked_attention(scores, values, valid_lens):
    B, L, S = scores.shape
    lens = valid_lens[:, None].expand(B, L) if valid_lens.dim() == 1 else valid_lens
    allowed = torch.arange(S, device=scores.device) < lens[..., None]
    x = scores.masked_fill(~allowed, float("-inf"))
    m = x.amax(-1, keepdim=True)
    m = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    e = torch.exp(x - m)
    tot = e.sum(-1, keepdim=True)
    return (e / torch.where(tot > 0, tot, torch.ones_like(tot))) @ values.to(scores.dtype)
'''),
        ("no running maximum: exp(x) overflows for large scores", _ONLINE_HEAD + '''
    for j in range(S):
        p = torch.where(j < lens, torch.exp(scores[:, :, j]), torch.zeros_like(total))
        total = total + p
        acc = acc + p[..., None] * values[:, None, j, :]
    return acc / torch.where(total > 0, total, torch.ones_like(total))[..., None]
'''),
        ("fills padding with -1e6 (a length-0 query averages the padding; scores below -1e6 lose)",
         _ONLINE_HEAD + '''
    for j in range(S):
        x = torch.where(j < lens, scores[:, :, j], torch.full_like(total, -1e6))
        m_new = torch.maximum(m, x)
        rescale = torch.exp(m - m_new)
        p = torch.exp(x - m_new)
        total = total * rescale + p
        acc = acc * rescale[..., None] + p[..., None] * values[:, None, j, :]
        m = m_new
    return acc / total[..., None]
'''),
        ("-inf for padding but no guard: a query with no allowed key gives NaN", _ONLINE_HEAD + '''
    for j in range(S):
        x = torch.where(j < lens, scores[:, :, j], neg_inf)
        m_new = torch.maximum(m, x)
        rescale = torch.exp(m - m_new)
        p = torch.exp(x - m_new)
        total = total * rescale + p
        acc = acc * rescale[..., None] + p[..., None] * values[:, None, j, :]
        m = m_new
    return acc / total[..., None]
'''),
        ("rescales the running sum but not the running weighted values", _ONLINE_HEAD + '''
    for j in range(S):
        x = torch.where(j < lens, scores[:, :, j], neg_inf)
        m_new = torch.maximum(m, x)
        safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        rescale = torch.exp(m - safe)
        p = torch.exp(x - safe)
        total = total * rescale + p
        acc = acc + p[..., None] * values[:, None, j, :]
        m = m_new
    return acc / torch.where(total > 0, total, torch.ones_like(total))[..., None]
'''),
        ("off by one: key j allowed when j <= length", _ONLINE_HEAD + '''
    for j in range(S):
        x = torch.where(j <= lens, scores[:, :, j], neg_inf)
        m_new = torch.maximum(m, x)
        safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        rescale = torch.exp(m - safe)
        p = torch.exp(x - safe)
        total = total * rescale + p
        acc = acc * rescale[..., None] + p[..., None] * values[:, None, j, :]
        m = m_new
    return acc / torch.where(total > 0, total, torch.ones_like(total))[..., None]
'''),
        ("2-D valid_lens read as one length per sequence (the first query's)", '''
def online_masked_attention(scores, values, valid_lens):
    B, L, S = scores.shape
    if valid_lens.dim() == 2:
        valid_lens = valid_lens[:, 0]
    lens = valid_lens[:, None].expand(B, L)
    m = torch.full((B, L), float("-inf"), dtype=scores.dtype, device=scores.device)
    total = torch.zeros(B, L, dtype=scores.dtype, device=scores.device)
    acc = torch.zeros(B, L, values.shape[-1], dtype=scores.dtype, device=scores.device)
    for j in range(S):
        x = torch.where(j < lens, scores[:, :, j], torch.full_like(total, float("-inf")))
        m_new = torch.maximum(m, x)
        safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        rescale = torch.exp(m - safe)
        p = torch.exp(x - safe)
        total = total * rescale + p
        acc = acc * rescale[..., None] + p[..., None] * values[:, None, j, :]
        m = m_new
    return acc / torch.where(total > 0, total, torch.ones_like(total))[..., None]
'''),
    ],
    "q2": [
        ("the given code unchanged (top-left alignment)", _CACHED_HEAD + '''
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    allowed = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
'''),
        ("mask removed (right for one new token, leaks the future with several)", _CACHED_HEAD + '''
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v
'''),
        ("offset with the wrong sign: tril(diagonal=L - S)", _CACHED_HEAD + '''
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    allowed = torch.ones(L, S, dtype=torch.bool, device=q.device).tril(diagonal=L - S)
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
'''),
        ("right mask, but 'fixes' the scale to 1/sqrt(Dv)", _CACHED_HEAD + '''
    scores = q @ k.transpose(-2, -1) / math.sqrt(v.shape[-1])
    allowed = torch.ones(L, S, dtype=torch.bool, device=q.device).tril(diagonal=S - L)
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
'''),
        ("right fix, but the positions are created without device= (fails on a GPU)", _CACHED_HEAD + '''
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    allowed = torch.arange(S)[None, :] <= torch.arange(S - L, S)[:, None]
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
'''),
        ("SDPA with is_causal=True (top-left again)", _CACHED_HEAD + '''
    import torch.nn.functional as F
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)
'''),
    ],
    "q3": [
        ("plain softmax over the allowed keys (never sparse)", '''
def masked_sparsemax(scores, mask):
    mask = mask.expand(scores.shape)
    w = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return torch.nan_to_num(w, nan=0.0)
'''),
        ("fills masked scores with -1e6 (a fully masked row becomes uniform)", '''
def masked_sparsemax(scores, mask):
    mask = mask.expand(scores.shape)
    x = scores.masked_fill(~mask, -1e6)
    z, _ = torch.sort(x, dim=-1, descending=True)
    k = torch.arange(1, x.shape[-1] + 1, device=x.device)
    cums = z.cumsum(-1)
    k_star = (1 + k * z > cums).sum(-1, keepdim=True)
    tau = (cums.gather(-1, k_star - 1) - 1) / k_star
    return torch.clamp(x - tau, min=0)
'''),
        ("sparsemax over all keys, masked ones zeroed afterwards (no renormalisation)", '''
def masked_sparsemax(scores, mask):
    mask = mask.expand(scores.shape)
    z, _ = torch.sort(scores, dim=-1, descending=True)
    k = torch.arange(1, scores.shape[-1] + 1, device=scores.device)
    cums = z.cumsum(-1)
    k_star = (1 + k * z > cums).sum(-1, keepdim=True)
    tau = (cums.gather(-1, k_star - 1) - 1) / k_star
    return torch.clamp(scores - tau, min=0).masked_fill(~mask, 0.0)
'''),
        ("-inf fill, no guard: a fully masked row gives NaN", '''
def masked_sparsemax(scores, mask):
    mask = mask.expand(scores.shape)
    x = scores.masked_fill(~mask, float("-inf"))
    z, _ = torch.sort(x, dim=-1, descending=True)
    k = torch.arange(1, x.shape[-1] + 1, device=x.device)
    n = mask.sum(-1, keepdim=True)
    zz = torch.where(k <= n, z, torch.zeros_like(z))
    cums = zz.cumsum(-1)
    k_star = ((k <= n) & (1 + k * zz > cums)).sum(-1, keepdim=True)
    tau = (cums.gather(-1, (k_star - 1).clamp(min=0)) - 1) / k_star
    return torch.clamp(scores - tau, min=0) * mask
'''),
        ("right maths, but the ranks 1..S are created without device= (fails on a GPU)", '''
def masked_sparsemax(scores, mask):
    mask = mask.expand(scores.shape)
    x = scores.masked_fill(~mask, float("-inf"))
    z, _ = torch.sort(x, dim=-1, descending=True)
    n = mask.sum(-1, keepdim=True)
    k = torch.arange(1, x.shape[-1] + 1)
    zz = torch.where(k <= n, z, torch.zeros_like(z))
    cums = zz.cumsum(-1)
    k_star = ((k <= n) & (1 + k * zz > cums)).sum(-1, keepdim=True)
    tau = (cums.gather(-1, (k_star - 1).clamp(min=0)) - 1) / k_star.clamp(min=1)
    return torch.clamp(scores - tau, min=0).masked_fill(~mask | (n == 0), 0.0)
'''),
        ("divides by the number of allowed keys instead of the support size", '''
def masked_sparsemax(scores, mask):
    mask = mask.expand(scores.shape)
    x = scores.masked_fill(~mask, float("-inf"))
    z, _ = torch.sort(x, dim=-1, descending=True)
    n = mask.sum(-1, keepdim=True)
    k = torch.arange(1, x.shape[-1] + 1, device=x.device)
    zz = torch.where(k <= n, z, torch.zeros_like(z))
    cums = zz.cumsum(-1)
    k_star = ((k <= n) & (1 + k * zz > cums)).sum(-1, keepdim=True)
    tau = (cums.gather(-1, (k_star - 1).clamp(min=0)) - 1) / n.clamp(min=1)
    return torch.clamp(scores - tau, min=0).masked_fill(~mask | (n == 0), 0.0)
'''),
    ],
    "q4": [
        ("draws from the global RNG instead of the generator", '''
def abstention(mu, S, n_rows, generator):
    x = mu + torch.randn(n_rows, S, dtype=torch.float64)
    z = torch.cat([torch.zeros(n_rows, 1, dtype=torch.float64), x], dim=-1)
    return float(torch.exp(-torch.logsumexp(z, dim=-1)).mean())


measured = abstention(-6.0, 64, 20000, torch.Generator().manual_seed(0))
'''),
        ("plain softmax: 1 minus its row sum is always 0 (no invisible key)", '''
def abstention(mu, S, n_rows, generator):
    x = mu + torch.randn(n_rows, S, generator=generator, dtype=torch.float64)
    return float((1 - torch.softmax(x, dim=-1).sum(-1)).clamp(min=0).mean())


measured = abstention(-6.0, 64, 20000, torch.Generator().manual_seed(0))
'''),
        ("1 minus the naive softmax_1 row sum: inf / inf = NaN for large mu", '''
def abstention(mu, S, n_rows, generator):
    x = mu + torch.randn(n_rows, S, generator=generator, dtype=torch.float64)
    e = torch.exp(x)
    return float((1 - (e / (1 + e.sum(-1, keepdim=True))).sum(-1)).mean())


measured = abstention(-6.0, 64, 20000, torch.Generator().manual_seed(0))
'''),
        ("the large-S approximation instead of a measurement", '''
import math


def abstention(mu, S, n_rows, generator):
    torch.randn(n_rows, S, generator=generator)
    return 1 / (1 + S * math.exp(mu + 0.5))


measured = abstention(-6.0, 64, 20000, torch.Generator().manual_seed(0))
'''),
        ("uniform scores on [mu, mu + 1) instead of N(mu, 1)", '''
def abstention(mu, S, n_rows, generator):
    x = mu + torch.rand(n_rows, S, generator=generator, dtype=torch.float64)
    z = torch.cat([torch.zeros(n_rows, 1, dtype=torch.float64), x], dim=-1)
    return float(torch.exp(-torch.logsumexp(z, dim=-1)).mean())


measured = abstention(-6.0, 64, 20000, torch.Generator().manual_seed(0))
'''),
        ("ignores n_rows (always 20000 rows)", '''
def abstention(mu, S, n_rows, generator):
    x = mu + torch.randn(20000, S, generator=generator, dtype=torch.float64)
    z = torch.cat([torch.zeros(20000, 1, dtype=torch.float64), x], dim=-1)
    return float(torch.exp(-torch.logsumexp(z, dim=-1)).mean())


measured = abstention(-6.0, 64, 20000, torch.Generator().manual_seed(0))
'''),
        ("returns a 0-d tensor, not a Python float", '''
def abstention(mu, S, n_rows, generator):
    x = mu + torch.randn(n_rows, S, generator=generator, dtype=torch.float64)
    z = torch.cat([torch.zeros(n_rows, 1, dtype=torch.float64), x], dim=-1)
    return torch.exp(-torch.logsumexp(z, dim=-1)).mean()


measured = float(abstention(-6.0, 64, 20000, torch.Generator().manual_seed(0)))
'''),
    ],
}

CORRECT_ANSWERS = {
    "q1": [
        ("scalar loops per query, Python floats for the running max and sum", '''
import math


def online_masked_attention(scores, values, valid_lens):
    B, L, S = scores.shape
    out = torch.zeros(B, L, values.shape[-1], dtype=scores.dtype, device=scores.device)
    for b in range(B):
        for i in range(L):
            n = int(valid_lens[b]) if valid_lens.dim() == 1 else int(valid_lens[b, i])
            m, total = -math.inf, 0.0
            acc = torch.zeros(values.shape[-1], dtype=torch.float64, device=scores.device)
            for j in range(n):
                x = float(scores[b, i, j])
                if x > m:
                    scale = math.exp(m - x)
                    total, acc, m = total * scale, acc * scale, x
                p = math.exp(x - m)
                total += p
                acc = acc + p * values[b, j].double()
            if n > 0:
                out[b, i] = (acc / total).to(scores.dtype)
    return out
'''),
    ],
    "q2": [
        ("positions compared explicitly, mask applied with torch.where", '''
import math


def cached_attention(q, k, v):
    L, S = q.shape[-2], k.shape[-2]
    scores = torch.einsum("bld,bsd->bls", q, k) / math.sqrt(q.shape[-1])
    q_pos = torch.arange(S - L, S, device=q.device)[:, None]
    k_pos = torch.arange(S, device=q.device)[None, :]
    scores = torch.where(k_pos <= q_pos, scores, torch.tensor(float("-inf"), dtype=scores.dtype, device=q.device))
    return torch.einsum("bls,bsv->blv", torch.softmax(scores, dim=-1), v)
'''),
    ],
    "q3": [
        ("tau by bisection per row instead of sorting", '''
def masked_sparsemax(scores, mask):
    mask = mask.expand(scores.shape)
    x = scores.double().masked_fill(~mask, float("-inf"))
    hi = x.amax(-1, keepdim=True)
    empty = torch.isinf(hi)
    hi = torch.where(empty, torch.zeros_like(hi), hi)
    lo = hi - 1
    for _ in range(100):
        mid = (lo + hi) / 2
        over = torch.clamp(x - mid, min=0).sum(-1, keepdim=True) > 1
        lo, hi = torch.where(over, mid, lo), torch.where(over, hi, mid)
    tau = (lo + hi) / 2
    support = x > tau
    k = support.sum(-1, keepdim=True).clamp(min=1)
    tau = (torch.where(support, x, torch.zeros_like(x)).sum(-1, keepdim=True) - 1) / k
    out = torch.clamp(x - tau, min=0).masked_fill(~mask | empty, 0.0)
    return out.to(scores.dtype)
'''),
    ],
    "q4": [
        ("softmax over [0, x] per row, weight of the extra key", '''
def abstention(mu, S, n_rows, generator):
    x = torch.normal(mu, 1.0, size=(n_rows, S), generator=generator, dtype=torch.float64)
    w = torch.softmax(torch.nn.functional.pad(x, (1, 0)), dim=-1)
    return w[:, 0].mean().item()


measured = abstention(-6.0, 64, 20000, torch.Generator().manual_seed(0))
'''),
    ],
}
