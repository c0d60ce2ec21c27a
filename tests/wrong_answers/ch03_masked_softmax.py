"""Plausible wrong answers to the chapter 3 exercises; each must lose points on its question."""

WRONG_ANSWERS = {
    "q1": [
        ("off by one: j <= length instead of j < length", '''
def lengths_to_mask(valid_lens, L, S):
    if valid_lens.dim() == 1:
        valid_lens = valid_lens[:, None].expand(-1, L)
    positions = torch.arange(S, device=valid_lens.device)
    return positions[None, None, :] <= valid_lens[:, :, None]
'''),
        ("treats 2-D lengths as one length per sequence (uses the first query's)", '''
def lengths_to_mask(valid_lens, L, S):
    if valid_lens.dim() == 2:
        valid_lens = valid_lens[:, 0]
    positions = torch.arange(S, device=valid_lens.device)
    return (positions[None, :] < valid_lens[:, None])[:, None, :].expand(-1, L, S)
'''),
        ("returns a float 0/1 mask instead of a boolean one", '''
def lengths_to_mask(valid_lens, L, S):
    if valid_lens.dim() == 1:
        valid_lens = valid_lens[:, None].expand(-1, L)
    positions = torch.arange(S, device=valid_lens.device)
    return (positions[None, None, :] < valid_lens[:, :, None]).float()
'''),
    ],
    "q2": [
        ("fills masked scores with 0 instead of -inf (masked keys get weight)", '''
def masked_softmax(X, mask):
    return torch.softmax(X.masked_fill(~mask, 0.0), dim=-1)
'''),
        ("fills with -1e6 (fully masked rows become uniform, scores below -1e6 lose)", '''
def masked_softmax(X, mask):
    return torch.softmax(X.masked_fill(~mask, -1e6), dim=-1)
'''),
        ("fills with -inf but a fully masked row gives NaN", '''
def masked_softmax(X, mask):
    return torch.softmax(X.masked_fill(~mask, float("-inf")), dim=-1)
'''),
        ("multiplies the softmax by the mask without renormalising", '''
def masked_softmax(X, mask):
    return torch.softmax(X, dim=-1) * mask
'''),
    ],
    "q3": [
        ("top-left alignment (query i sits at position i)", '''
def bottom_right_causal_mask(L, S, device=None):
    q_pos = torch.arange(L, device=device)[:, None]
    k_pos = torch.arange(S, device=device)[None, :]
    return k_pos <= q_pos
'''),
        ("strict triangle: j < i + S - L (a query cannot see its own position)", '''
def bottom_right_causal_mask(L, S, device=None):
    q_pos = torch.arange(L, device=device)[:, None] + (S - L)
    k_pos = torch.arange(S, device=device)[None, :]
    return k_pos < q_pos
'''),
        ("offset with the wrong sign: i + L - S", '''
def bottom_right_causal_mask(L, S, device=None):
    q_pos = torch.arange(L, device=device)[:, None] + (L - S)
    k_pos = torch.arange(S, device=device)[None, :]
    return k_pos <= q_pos
'''),
    ],
    "q4": [
        ("naive formula: exp(1000) overflows to inf and gives NaN", '''
def softmax_one(x):
    e = torch.exp(x)
    return e / (1 + e.sum(dim=-1, keepdim=True))
'''),
        ("plain softmax (forgets the +1)", '''
def softmax_one(x):
    return torch.softmax(x, dim=-1)
'''),
        ("shifts the exponents by the max but not the 1", '''
def softmax_one(x):
    m = x.amax(dim=-1, keepdim=True)
    e = torch.exp(x - m)
    return e / (1 + e.sum(dim=-1, keepdim=True))
'''),
    ],
}
