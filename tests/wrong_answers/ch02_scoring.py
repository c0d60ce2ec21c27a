"""Plausible wrong answers to the chapter 2 exercises; each must lose points on its question."""

WRONG_ANSWERS = {
    "q1": [
        ("tanh applied after w_v instead of before", '''
def additive_scores(queries, keys, W_q, W_k, w_v):
    q = queries @ W_q.T
    k = keys @ W_k.T
    return torch.tanh((q.unsqueeze(2) + k.unsqueeze(1)) @ w_v)
'''),
        ("tanh of the query and key projections separately (a sum of two tanh's)", '''
def additive_scores(queries, keys, W_q, W_k, w_v):
    q = torch.tanh(queries @ W_q.T)
    k = torch.tanh(keys @ W_k.T)
    return (q.unsqueeze(2) + k.unsqueeze(1)) @ w_v
'''),
        ("L and S axes swapped: returns (B, S, L)", '''
def additive_scores(queries, keys, W_q, W_k, w_v):
    q = queries @ W_q.T
    k = keys @ W_k.T
    return torch.tanh(q.unsqueeze(1) + k.unsqueeze(2)) @ w_v
'''),
    ],
    "q2": [
        ("missing the 1/sqrt(D) scaling", '''
def scaled_dot_scores(queries, keys):
    return queries @ keys.transpose(1, 2)
'''),
        ("divides by D instead of sqrt(D)", '''
def scaled_dot_scores(queries, keys):
    return queries @ keys.transpose(1, 2) / queries.shape[-1]
'''),
        ("square root of the number of keys S instead of D", '''
import math
def scaled_dot_scores(queries, keys):
    return queries @ keys.transpose(1, 2) / math.sqrt(keys.shape[1])
'''),
    ],
    "q3": [
        ("scales the dot product by D instead of sqrt(D)", '''
def dot_product_variance(D, n=20000, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, D, generator=g)
    k = torch.randn(n, D, generator=g)
    dots = (q * k).sum(dim=1)
    return dots.var().item(), (dots / D).var().item()
'''),
        ("divides the variance by sqrt(D) (instead of the scores)", '''
import math
def dot_product_variance(D, n=20000, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, D, generator=g)
    k = torch.randn(n, D, generator=g)
    dots = (q * k).sum(dim=1)
    return dots.var().item(), dots.var().item() / math.sqrt(D)
'''),
        ("ignores the seed (draws from the global random generator)", '''
import math
def dot_product_variance(D, n=20000, seed=0):
    q = torch.randn(n, D)
    k = torch.randn(n, D)
    dots = (q * k).sum(dim=1)
    return dots.var().item(), (dots / math.sqrt(D)).var().item()
'''),
    ],
    "q4": [
        ("missing the 1/sqrt(D) scaling", '''
def attention_with_lengths(queries, keys, values, valid_lens=None):
    scores = queries @ keys.transpose(1, 2)
    weights = attnkit.masked_softmax(scores, valid_lens)
    return weights @ values, weights
'''),
        ("zeroes the padding weights after the softmax without renormalising", '''
import math
def attention_with_lengths(queries, keys, values, valid_lens=None):
    scores = queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    if valid_lens is not None:
        keep = torch.arange(keys.shape[1], device=keys.device)[None, None, :] < valid_lens[:, None, None]
        weights = weights * keep
    return weights @ values, weights
'''),
        ("ignores valid_lens (padding keys get weight)", '''
import math
def attention_with_lengths(queries, keys, values, valid_lens=None):
    scores = queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights
'''),
    ],
}
