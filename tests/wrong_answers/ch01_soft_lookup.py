"""Plausible wrong answers to the chapter 1 exercises; each must lose points on its question.

CORRECT_ANSWERS are right but written differently from the solution; each must score full marks.
"""

WRONG_ANSWERS = {
    "q1": [
        ("exp of the raw scores without a shift: overflows for huge scores, 0/0 far below -1e6", '''
def context_vector(s, H, score):
    scores = torch.stack([score(s, H[j]) for j in range(H.shape[0])])
    e = torch.exp(scores)
    alpha = e / e.sum()
    C = torch.zeros_like(H[0])
    for j in range(H.shape[0]):
        C = C + alpha[j] * H[j]
    return C, alpha
'''),
        ("calls score(h, s): the arguments swapped (right only for a symmetric score)", '''
def context_vector(s, H, score):
    scores = torch.stack([score(H[j], s) for j in range(H.shape[0])])
    alpha = torch.softmax(scores, dim=0)
    C = torch.zeros_like(H[0])
    for j in range(H.shape[0]):
        C = C + alpha[j] * H[j]
    return C, alpha
'''),
        ("collects the scores with .item() into a new float32 tensor: loses dtype, device and gradient", '''
def context_vector(s, H, score):
    scores = torch.tensor([score(s, H[j]).item() for j in range(H.shape[0])])
    alpha = torch.softmax(scores, dim=0)
    C = torch.zeros(H.shape[1])
    for j in range(H.shape[0]):
        C = C + alpha[j] * H[j]
    return C, alpha
'''),
        ("accumulates C in a tensor created without device= (on the CPU whatever the inputs)", '''
def context_vector(s, H, score):
    scores = torch.stack([score(s, H[j]) for j in range(H.shape[0])])
    alpha = torch.softmax(scores, dim=0)
    C = torch.zeros(H.shape[1], dtype=H.dtype)
    for j in range(H.shape[0]):
        C += alpha[j] * H[j]
    return C, alpha
'''),
        ("hard attention: all the weight on the best-scoring state", '''
def context_vector(s, H, score):
    scores = torch.stack([score(s, H[j]) for j in range(H.shape[0])])
    alpha = torch.zeros_like(scores)
    alpha[scores.argmax()] = 1.0
    return alpha @ H, alpha
'''),
        ("normalises the scores by their sum instead of a softmax", '''
def context_vector(s, H, score):
    scores = torch.stack([score(s, H[j]) for j in range(H.shape[0])])
    alpha = scores / scores.sum()
    return alpha @ H, alpha
'''),
    ],
    "q2": [
        ("the colleague's code as given: -1e6 is not minus infinity", '''
def loo_error(x, y, sigma):
    n = x.shape[0]
    scores = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)
    self_pair = torch.eye(n, dtype=torch.bool, device=x.device)
    scores = scores.masked_fill(self_pair, -1e6)
    weights = torch.softmax(scores, dim=-1)
    pred = weights @ y
    return ((pred - y) ** 2).mean().item()
'''),
        ("a bigger fill, -1e9: still finite, still loses to scores below -1e9", '''
def loo_error(x, y, sigma):
    n = x.shape[0]
    scores = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)
    self_pair = torch.eye(n, dtype=torch.bool, device=x.device)
    scores = scores.masked_fill(self_pair, -1e9)
    weights = torch.softmax(scores, dim=-1)
    pred = weights @ y
    return ((pred - y) ** 2).mean().item()
'''),
        ("zeroes the self weight after the softmax without renormalising", '''
def loo_error(x, y, sigma):
    n = x.shape[0]
    scores = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)
    self_pair = torch.eye(n, dtype=torch.bool, device=x.device)
    weights = torch.softmax(scores, dim=-1).masked_fill(self_pair, 0.0)
    pred = weights @ y
    return ((pred - y) ** 2).mean().item()
'''),
        ("renormalises by hand with exp and no max shift: 0/0 when every other point is far", '''
def loo_error(x, y, sigma):
    n = x.shape[0]
    scores = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)
    self_pair = torch.eye(n, dtype=torch.bool, device=x.device)
    e = torch.exp(scores).masked_fill(self_pair, 0.0)
    weights = e / e.sum(dim=-1, keepdim=True)
    pred = weights @ y
    return ((pred - y) ** 2).mean().item()
'''),
        ("the right fill, but the softmax moved to the other axis", '''
def loo_error(x, y, sigma):
    n = x.shape[0]
    scores = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)
    self_pair = torch.eye(n, dtype=torch.bool, device=x.device)
    scores = scores.masked_fill(self_pair, float("-inf"))
    weights = torch.softmax(scores, dim=0)
    pred = weights @ y
    return ((pred - y) ** 2).mean().item()
'''),
    ],
    "q3": [
        ("reads the main diagonal alpha[i, i] instead of the anti-diagonal", '''
def reversal_alignment_mass(T, D, scale, n, generator):
    H = torch.randn(n, T, D, generator=generator, dtype=torch.float64)
    H = H / H.norm(dim=-1, keepdim=True)
    Q = H.flip(1)
    alpha = torch.softmax(scale * Q @ H.transpose(1, 2), dim=-1)
    return alpha.diagonal(dim1=1, dim2=2).mean().item()

measured = reversal_alignment_mass(10, 8, 3.0, 4000, torch.Generator().manual_seed(0))
'''),
        ("forgets to normalise the states: dot products of size D, not 1", '''
def reversal_alignment_mass(T, D, scale, n, generator):
    H = torch.randn(n, T, D, generator=generator, dtype=torch.float64)
    Q = H.flip(1)
    alpha = torch.softmax(scale * Q @ H.transpose(1, 2), dim=-1)
    i = torch.arange(T)
    return alpha[:, i, T - 1 - i].mean().item()

measured = reversal_alignment_mass(10, 8, 3.0, 4000, torch.Generator().manual_seed(0))
'''),
        ("draws from the global random state, not from the generator", '''
def reversal_alignment_mass(T, D, scale, n, generator):
    H = torch.randn(n, T, D, dtype=torch.float64)
    H = H / H.norm(dim=-1, keepdim=True)
    Q = H.flip(1)
    alpha = torch.softmax(scale * Q @ H.transpose(1, 2), dim=-1)
    i = torch.arange(T)
    return alpha[:, i, T - 1 - i].mean().item()

measured = reversal_alignment_mass(10, 8, 3.0, 4000, torch.Generator().manual_seed(0))
'''),
        ("off by one: reads alpha[i, T - i] (wraps round to column 0 at i = 0)", '''
def reversal_alignment_mass(T, D, scale, n, generator):
    H = torch.randn(n, T, D, generator=generator, dtype=torch.float64)
    H = H / H.norm(dim=-1, keepdim=True)
    Q = H.flip(1)
    alpha = torch.softmax(scale * Q @ H.transpose(1, 2), dim=-1)
    i = torch.arange(T)
    return alpha[:, i, (T - i) % T].mean().item()

measured = reversal_alignment_mass(10, 8, 3.0, 4000, torch.Generator().manual_seed(0))
'''),
        ("returns the high-dimension approximation instead of measuring", '''
import math

def reversal_alignment_mass(T, D, scale, n, generator):
    torch.randn(n, T, D, generator=generator)
    return math.exp(scale) / (math.exp(scale) + T - 1)

measured = reversal_alignment_mass(10, 8, 3.0, 4000, torch.Generator().manual_seed(0))
'''),
        ("one source drawn and reused n times: a sample of one", '''
def reversal_alignment_mass(T, D, scale, n, generator):
    H = torch.randn(1, T, D, generator=generator, dtype=torch.float64).expand(n, T, D)
    H = H / H.norm(dim=-1, keepdim=True)
    Q = H.flip(1)
    alpha = torch.softmax(scale * Q @ H.transpose(1, 2), dim=-1)
    i = torch.arange(T)
    return alpha[:, i, T - 1 - i].mean().item()

measured = reversal_alignment_mass(10, 8, 3.0, 4000, torch.Generator().manual_seed(0))
'''),
    ],
    "q4": [
        ("the k farthest keys instead of the nearest", '''
def topk_nadaraya_watson(queries, keys, values, sigma, k):
    d2 = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    idx = d2.topk(k, dim=-1).indices
    keep = torch.zeros_like(d2, dtype=torch.bool).scatter(1, idx, True)
    scores = (-d2 / (2 * sigma**2)).masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, dim=-1) @ values
'''),
        ("softmax over all keys, then zeroes the others without renormalising", '''
def topk_nadaraya_watson(queries, keys, values, sigma, k):
    d2 = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    idx = d2.topk(k, dim=-1, largest=False).indices
    keep = torch.zeros_like(d2, dtype=torch.bool).scatter(1, idx, True)
    w = torch.softmax(-d2 / (2 * sigma**2), dim=-1) * keep
    return w @ values
'''),
        ("fills the other keys with -1e9: they win when every real score is below -1e9", '''
def topk_nadaraya_watson(queries, keys, values, sigma, k):
    d2 = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    idx = d2.topk(k, dim=-1, largest=False).indices
    keep = torch.zeros_like(d2, dtype=torch.bool).scatter(1, idx, True)
    scores = (-d2 / (2 * sigma**2)).masked_fill(~keep, -1e9)
    return torch.softmax(scores, dim=-1) @ values
'''),
        ("strict threshold at the k-th distance: keeps only k - 1 keys", '''
def topk_nadaraya_watson(queries, keys, values, sigma, k):
    d2 = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    kth = d2.kthvalue(k, dim=-1, keepdim=True).values
    scores = (-d2 / (2 * sigma**2)).masked_fill(~(d2 < kth), float("-inf"))
    return torch.softmax(scores, dim=-1) @ values
'''),
        ("the Euclidean distance, not its square, in the kernel", '''
def topk_nadaraya_watson(queries, keys, values, sigma, k):
    d = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1).sqrt()
    idx = d.topk(k, dim=-1, largest=False).indices
    keep = torch.zeros_like(d, dtype=torch.bool).scatter(1, idx, True)
    scores = (-d / (2 * sigma**2)).masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, dim=-1) @ values
'''),
        ("the mask built with torch.zeros(L, S) (no device=)", '''
def topk_nadaraya_watson(queries, keys, values, sigma, k):
    d2 = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    idx = d2.topk(k, dim=-1, largest=False).indices
    keep = torch.zeros(d2.shape, dtype=torch.bool).scatter(1, idx.cpu(), True)
    scores = (-d2 / (2 * sigma**2)).masked_fill(~keep.to(d2.device), float("-inf"))
    return torch.softmax(scores, dim=-1).to(values.device) @ values
'''),
    ],
}

CORRECT_ANSWERS = {
    "q1": [
        ("log-sum-exp normalisation and a weighted sum by matrix product", '''
def context_vector(s, H, score):
    a = torch.stack([score(s, h) for h in H])
    alpha = torch.exp(a - torch.logsumexp(a, dim=0))
    return alpha @ H, alpha
'''),
    ],
    "q2": [
        ("an explicit loop: each point predicted from the others by torch.cat", '''
import math

def loo_error(x, y, sigma):
    n = x.shape[0]
    total = 0.0
    for i in range(n):
        xo = torch.cat([x[:i], x[i + 1:]])
        yo = torch.cat([y[:i], y[i + 1:]])
        w = torch.softmax(-(x[i] - xo) ** 2 / (2 * sigma**2), dim=0)
        total += float((w @ yo - y[i]) ** 2)
    return total / n
'''),
        ("fill_diagonal_ with -inf on a copy", '''
def loo_error(x, y, sigma):
    scores = (-(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)).clone()
    scores.fill_diagonal_(float("-inf"))
    pred = torch.softmax(scores, dim=1) @ y
    return float(((pred - y) ** 2).mean())
'''),
    ],
    "q3": [
        ("a loop over the steps with einsum, float32 draws", '''
def reversal_alignment_mass(T, D, scale, n, generator):
    X = torch.randn(n, T, D, generator=generator)
    X = torch.nn.functional.normalize(X, dim=-1).double()
    total = 0.0
    for i in range(T):
        w = torch.softmax(scale * torch.einsum("nd,ntd->nt", X[:, T - 1 - i], X), dim=-1)
        total += w[:, T - 1 - i].sum().item()
    return total / (n * T)

measured = reversal_alignment_mass(10, 8, 3.0, 4000, torch.Generator().manual_seed(0))
'''),
    ],
    "q4": [
        ("threshold at the k-th smallest distance (kthvalue, <=)", '''
def topk_nadaraya_watson(queries, keys, values, sigma, k):
    d2 = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    kth = d2.kthvalue(k, dim=-1, keepdim=True).values
    scores = torch.where(d2 <= kth, -d2 / (2 * sigma**2), torch.full_like(d2, float("-inf")))
    return torch.softmax(scores, dim=-1) @ values
'''),
        ("gather the k nearest keys' values per query, softmax over them", '''
def topk_nadaraya_watson(queries, keys, values, sigma, k):
    d2 = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    near = d2.topk(k, dim=-1, largest=False)
    w = torch.softmax(-near.values / (2 * sigma**2), dim=-1)
    return torch.einsum("lk,lkv->lv", w, values[near.indices])
'''),
    ],
}
