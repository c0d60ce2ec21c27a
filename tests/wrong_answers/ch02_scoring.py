"""Plausible wrong answers to the chapter 2 exercises; each must lose points on its question.

CORRECT_ANSWERS are right but written differently from the solution; each must score full marks.
"""

WRONG_ANSWERS = {
    "q1": [
        ("the chapter's broadcast: builds the (B, L, S, h) tensor of tanh features", '''
def additive_scores_lean(queries, keys, W_q, W_k, w_v):
    q = queries @ W_q.T
    k = keys @ W_k.T
    return torch.tanh(q.unsqueeze(2) + k.unsqueeze(1)) @ w_v
'''),
        ("tanh applied after the weighted sum over the hidden units", '''
def additive_scores_lean(queries, keys, W_q, W_k, w_v):
    q = queries @ W_q.T
    k = keys @ W_k.T
    scores = torch.zeros(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype, device=q.device)
    for c in range(W_q.shape[0]):
        scores = scores + w_v[c] * (q[:, :, c, None] + k[:, None, :, c])
    return torch.tanh(scores)
'''),
        ("forgets w_v: adds the tanh features with weight 1", '''
def additive_scores_lean(queries, keys, W_q, W_k, w_v):
    q = queries @ W_q.T
    k = keys @ W_k.T
    scores = torch.zeros(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype, device=q.device)
    for c in range(W_q.shape[0]):
        scores = scores + torch.tanh(q[:, :, c, None] + k[:, None, :, c])
    return scores
'''),
        ("accumulates into torch.zeros(B, L, S) without dtype= or device=", '''
def additive_scores_lean(queries, keys, W_q, W_k, w_v):
    q = queries @ W_q.T
    k = keys @ W_k.T
    scores = torch.zeros(q.shape[0], q.shape[1], k.shape[1])
    for c in range(W_q.shape[0]):
        scores += w_v[c] * torch.tanh(q[:, :, c, None] + k[:, None, :, c])
    return scores
'''),
        ("returns (B, S, L): keys on the rows", '''
def additive_scores_lean(queries, keys, W_q, W_k, w_v):
    q = queries @ W_q.T
    k = keys @ W_k.T
    scores = 0
    for c in range(W_q.shape[0]):
        scores = scores + w_v[c] * torch.tanh(k[:, :, c, None] + q[:, None, :, c])
    return scores
'''),
    ],
    "q2": [
        ("the teammate's code as given: scaled by sqrt(Dv)", '''
import math

def scaled_dot_attention(queries, keys, values):
    scale = 1 / math.sqrt(values.shape[-1])
    scores = queries @ keys.transpose(-2, -1) * scale
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights
'''),
        ("scaled by sqrt(L): queries.shape[1] is the number of queries, not D", '''
import math

def scaled_dot_attention(queries, keys, values):
    scale = 1 / math.sqrt(queries.shape[1])
    scores = queries @ keys.transpose(-2, -1) * scale
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights
'''),
        ("scaled by sqrt(S), the number of keys", '''
import math

def scaled_dot_attention(queries, keys, values):
    scale = 1 / math.sqrt(keys.shape[-2])
    scores = queries @ keys.transpose(-2, -1) * scale
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights
'''),
        ("divides by D instead of sqrt(D)", '''
def scaled_dot_attention(queries, keys, values):
    scores = queries @ keys.transpose(-2, -1) / queries.shape[-1]
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights
'''),
        ("fixes the scale but breaks the batch dimensions (transpose(1, 2) and bmm)", '''
import math

def scaled_dot_attention(queries, keys, values):
    scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(queries.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    return torch.bmm(weights, values), weights
'''),
    ],
    "q3": [
        ("forms W = U V^T, then the full bilinear score", '''
def low_rank_bilinear_scores(queries, keys, U, V):
    W = U @ V.T
    return queries @ W @ keys.transpose(-2, -1)
'''),
        ("U and V swapped (right only when Dq == Dk and U == V)", '''
def low_rank_bilinear_scores(queries, keys, U, V):
    return (queries @ V) @ (keys @ U).transpose(-2, -1)
'''),
        ("transpose(1, 2): wrong for inputs with more than one leading dimension", '''
def low_rank_bilinear_scores(queries, keys, U, V):
    return (queries @ U) @ (keys @ V).transpose(1, 2)
'''),
        ("adds a 1/sqrt(r) scale the score does not have", '''
import math

def low_rank_bilinear_scores(queries, keys, U, V):
    return (queries @ U) @ (keys @ V).transpose(-2, -1) / math.sqrt(U.shape[1])
'''),
        ("pairs the rank components wrongly: (Q U) (K V)^T with V transposed first", '''
def low_rank_bilinear_scores(queries, keys, U, V):
    q = queries @ U
    k = keys @ V
    return q @ k.flip(-1).transpose(-2, -1)
'''),
    ],
    "q4": [
        ("drops without rescaling the survivors by 1/(1-p)", '''
def dropout_output_stats(weights, values, p, n, generator):
    keep = torch.rand(n, weights.shape[0], generator=generator, dtype=torch.float64) >= p
    out = (weights.double() * keep) @ values.double()
    return out.mean().item(), out.var().item()

w = torch.softmax(torch.arange(8.0) / 2, dim=0)
v = torch.linspace(-1, 1, 8)
measured = dropout_output_stats(w, v, 0.3, 200_000, torch.Generator().manual_seed(0))
'''),
        ("uses F.dropout: draws from the global random state", '''
import torch.nn.functional as F

def dropout_output_stats(weights, values, p, n, generator):
    dropped = F.dropout(weights.double().expand(n, -1), p=p, training=True)
    out = dropped @ values.double()
    return out.mean().item(), out.var().item()

w = torch.softmax(torch.arange(8.0) / 2, dim=0)
v = torch.linspace(-1, 1, 8)
measured = dropout_output_stats(w, v, 0.3, 200_000, torch.Generator().manual_seed(0))
'''),
        ("keeps with probability p instead of dropping with probability p", '''
def dropout_output_stats(weights, values, p, n, generator):
    keep = torch.rand(n, weights.shape[0], generator=generator, dtype=torch.float64) < p
    out = (weights.double() * keep / (1 - p)) @ values.double()
    return out.mean().item(), out.var().item()

w = torch.softmax(torch.arange(8.0) / 2, dim=0)
v = torch.linspace(-1, 1, 8)
measured = dropout_output_stats(w, v, 0.3, 200_000, torch.Generator().manual_seed(0))
'''),
        ("one mask per draw for the whole row: every weight dropped or kept together", '''
def dropout_output_stats(weights, values, p, n, generator):
    keep = torch.rand(n, 1, generator=generator, dtype=torch.float64) >= p
    out = (weights.double() * keep / (1 - p)) @ values.double()
    return out.mean().item(), out.var().item()

w = torch.softmax(torch.arange(8.0) / 2, dim=0)
v = torch.linspace(-1, 1, 8)
measured = dropout_output_stats(w, v, 0.3, 200_000, torch.Generator().manual_seed(0))
'''),
        ("renormalises the survivors to sum to the original total instead of dividing by 1 - p", '''
def dropout_output_stats(weights, values, p, n, generator):
    keep = torch.rand(n, weights.shape[0], generator=generator, dtype=torch.float64) >= p
    kept = weights.double() * keep
    kept = kept / kept.sum(-1, keepdim=True).clamp_min(1e-300) * weights.double().sum()
    out = kept @ values.double()
    return out.mean().item(), out.var().item()

w = torch.softmax(torch.arange(8.0) / 2, dim=0)
v = torch.linspace(-1, 1, 8)
measured = dropout_output_stats(w, v, 0.3, 200_000, torch.Generator().manual_seed(0))
'''),
        ("returns the two formulas instead of measuring", '''
def dropout_output_stats(weights, values, p, n, generator):
    torch.rand(n, weights.shape[0], generator=generator)
    return float(weights @ values), p / (1 - p) * float(((weights * values) ** 2).sum())

w = torch.softmax(torch.arange(8.0) / 2, dim=0)
v = torch.linspace(-1, 1, 8)
measured = dropout_output_stats(w, v, 0.3, 200_000, torch.Generator().manual_seed(0))
'''),
    ],
    "q5": [
        ("draws normal entries (the chapter's case, 6/D) instead of +-1", '''
import math

def pm1_score_kurtosis(D, n, generator):
    q = torch.randn(n, D, generator=generator, dtype=torch.float64)
    k = torch.randn(n, D, generator=generator, dtype=torch.float64)
    z = (q * k).sum(-1) / math.sqrt(D)
    c = z - z.mean()
    return ((c**4).mean() / (c**2).mean() ** 2 - 3).item()


measured = pm1_score_kurtosis(4, 200_000, torch.Generator().manual_seed(0))
'''),
        ("the kurtosis, not the excess kurtosis (forgets the - 3)", '''
import math

def pm1_score_kurtosis(D, n, generator):
    q = torch.randint(0, 2, (n, D), generator=generator, dtype=torch.float64) * 2 - 1
    k = torch.randint(0, 2, (n, D), generator=generator, dtype=torch.float64) * 2 - 1
    z = (q * k).sum(-1) / math.sqrt(D)
    c = z - z.mean()
    return ((c**4).mean() / (c**2).mean() ** 2).item()


measured = pm1_score_kurtosis(4, 200_000, torch.Generator().manual_seed(0))
'''),
        ("0/1 entries instead of -1/+1", '''
import math

def pm1_score_kurtosis(D, n, generator):
    q = torch.randint(0, 2, (n, D), generator=generator, dtype=torch.float64)
    k = torch.randint(0, 2, (n, D), generator=generator, dtype=torch.float64)
    z = (q * k).sum(-1) / math.sqrt(D)
    c = z - z.mean()
    return ((c**4).mean() / (c**2).mean() ** 2 - 3).item()


measured = pm1_score_kurtosis(4, 200_000, torch.Generator().manual_seed(0))
'''),
        ("draws from the global random state", '''
import math

def pm1_score_kurtosis(D, n, generator):
    q = torch.randint(0, 2, (n, D), dtype=torch.float64) * 2 - 1
    k = torch.randint(0, 2, (n, D), dtype=torch.float64) * 2 - 1
    z = (q * k).sum(-1) / math.sqrt(D)
    c = z - z.mean()
    return ((c**4).mean() / (c**2).mean() ** 2 - 3).item()


measured = pm1_score_kurtosis(4, 200_000, torch.Generator().manual_seed(0))
'''),
        ("uses the same draw for q and k: q.k = D for every pair", '''
import math

def pm1_score_kurtosis(D, n, generator):
    q = torch.randint(0, 2, (n, D), generator=generator, dtype=torch.float64) * 2 - 1
    z = (q * q).sum(-1) / math.sqrt(D)
    c = z - z.mean()
    return ((c**4).mean() / (c**2).mean() ** 2 - 3).item()


measured = pm1_score_kurtosis(4, 200_000, torch.Generator().manual_seed(0))
'''),
        ("returns the prediction -2/D instead of measuring", '''
def pm1_score_kurtosis(D, n, generator):
    torch.rand(n, generator=generator)
    return -2 / D


measured = pm1_score_kurtosis(4, 200_000, torch.Generator().manual_seed(0))
'''),
    ],
}

CORRECT_ANSWERS = {
    "q1": [
        ("einsum for the projections, two hidden units per step", '''
def additive_scores_lean(queries, keys, W_q, W_k, w_v):
    q = torch.einsum("bld,hd->blh", queries, W_q)
    k = torch.einsum("bsd,hd->bsh", keys, W_k)
    B, L, S, h = q.shape[0], q.shape[1], k.shape[1], q.shape[2]
    scores = queries.new_zeros(B, L, S)
    for c0 in range(0, h, 2):
        f = torch.tanh(q[:, :, None, c0:c0 + 2] + k[:, None, :, c0:c0 + 2])
        scores = scores + f @ w_v[c0:c0 + 2]
    return scores
'''),
    ],
    "q2": [
        ("einsum and a power for the scale", '''
def scaled_dot_attention(queries, keys, values):
    scores = torch.einsum("...ld,...sd->...ls", queries, keys) * queries.size(-1) ** -0.5
    weights = scores.softmax(dim=-1)
    return torch.einsum("...ls,...sv->...lv", weights, values), weights
'''),
    ],
    "q3": [
        ("einsum over the rank index", '''
def low_rank_bilinear_scores(queries, keys, U, V):
    qu = torch.einsum("...la,ar->...lr", queries, U)
    kv = torch.einsum("...sb,br->...sr", keys, V)
    return torch.einsum("...lr,...sr->...ls", qu, kv)
'''),
    ],
    "q4": [
        ("torch.bernoulli with the generator, population variance", '''
def dropout_output_stats(weights, values, p, n, generator):
    probs = torch.full((n, weights.shape[0]), 1 - p, dtype=torch.float64)
    m = torch.bernoulli(probs, generator=generator)
    out = (m * weights.double() / (1 - p)) @ values.double()
    return float(out.mean()), float(((out - out.mean()) ** 2).mean())

w = torch.softmax(torch.arange(8.0) / 2, dim=0)
v = torch.linspace(-1, 1, 8)
measured = dropout_output_stats(w, v, 0.3, 200_000, torch.Generator().manual_seed(0))
'''),
    ],
    "q5": [
        ("signs of normal draws, scipy-style moments written out", '''
def pm1_score_kurtosis(D, n, generator):
    q = torch.sign(torch.randn(n, D, generator=generator))
    k = torch.sign(torch.randn(n, D, generator=generator))
    z = (q * k).sum(dim=1).double() / D ** 0.5
    m = z.mean()
    m2 = ((z - m) ** 2).mean()
    m4 = ((z - m) ** 4).mean()
    return float(m4 / m2**2) - 3.0


measured = pm1_score_kurtosis(4, 200_000, torch.Generator().manual_seed(0))
'''),
    ],
}
