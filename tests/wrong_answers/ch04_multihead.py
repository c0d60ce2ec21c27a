"""Plausible wrong answers to the chapter 4 exercises (each must lose points on its question),
and correct answers written differently from the solutions (each must score full marks)."""

_Q1 = '''
def masked_self_attention(X, W_q, W_k, W_v, W_o, num_heads, key_padding=None, causal=False):
    B, L, _ = X.shape
    H = num_heads
    q = (X @ W_q).reshape(B, L, H, -1).transpose(1, 2)
    k = (X @ W_k).reshape(B, L, H, -1).transpose(1, 2)
    v = (X @ W_v).reshape(B, L, H, -1).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(SCALE)
    allowed = torch.ones(B, 1, L, L, dtype=torch.bool, device=X.device)
    if key_padding is not None:
        allowed = allowed & PADDING
    if causal:
        allowed = allowed & CAUSAL
    scores = scores.masked_fill(~allowed, FILL)
    WEIGHTS
    heads = weights @ v
    return heads.transpose(1, 2).reshape(B, L, -1) @ W_o
'''
_Q1_OK = dict(SCALE="q.shape[-1]", PADDING="key_padding[:, None, None, :]",
              CAUSAL="torch.ones(L, L, dtype=torch.bool, device=X.device).tril()",
              FILL='float("-inf")',
              WEIGHTS="weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)")


def _q1(**change):
    src = _Q1
    for key, value in {**_Q1_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q2_BUGGY = '''
def fuse(Hs, W, b, c, present):
    scores = torch.relu(Hs @ W.T + b) @ c            # (B, P)
    scores = scores.masked_fill(~present, FILL)      # missing sources
    weights = torch.softmax(scores, dim=-1)          # (B, P)
    fused = (weights[:, :, None] * Hs).sum(1)        # (B, Dh)
    return fused, weights
'''

_Q3 = '''
def relative_bias_attention(q, k, v, bias):
    K = (bias.shape[-1] - 1) // 2
    L, S = q.shape[-2], k.shape[-2]
    offset = OFFSET
    column = COLUMN
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]) + BIAS
    return torch.softmax(scores, dim=-1) @ v
'''
_Q3_OK = dict(OFFSET="torch.arange(S, device=q.device)[None, :] - torch.arange(L, device=q.device)[:, None]",
              COLUMN="offset.clamp(-K, K) + K", BIAS="bias[:, column]")


def _q3(**change):
    src = _Q3
    for key, value in {**_Q3_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q4 = '''
def score_variances(E, H, n_samples, generator):
    D = E // H
    opts = dict(generator=generator, dtype=torch.float64)
    DRAW
    s = (q * k).sum(-1)
    return RETURN
'''
_Q4_FRESH = '''x = torch.randn(n_samples, E, **opts)
    x2 = torch.randn(n_samples, E, **opts)
    W_q = torch.randn(n_samples, E, D, **opts) / math.sqrt(E)
    W_k = torch.randn(n_samples, E, D, **opts) / math.sqrt(E)
    q = torch.einsum("ne,ned->nd", x, W_q)
    k = torch.einsum("ne,ned->nd", x2, W_k)'''
_Q4_RETURN = "(s / math.sqrt(D)).var().item(), (s / math.sqrt(E)).var().item()"


def _q4(draw=_Q4_FRESH, ret=_Q4_RETURN):
    return _Q4.replace("DRAW", draw).replace("RETURN", ret)


_Q5_BUGGY = '''
def pre_norm_block(x, attend, ffn, norm1, norm2):
    x = norm1(x)
    x = x + attend(x)
    x = norm2(x)
    x = x + ffn(x)
    return x
'''


def _q5(ret):
    return (
        "\ndef pre_norm_block(x, attend, ffn, norm1, norm2):\n"
        "    h = x + attend(norm1(x))\n"
        f"    return {ret}\n"
    )



WRONG_ANSWERS = {
    "q1": [
        ("scales by 1/sqrt(Dv) instead of 1/sqrt(D) (passes the visible tests, where D == Dv)",
         _q1(SCALE="v.shape[-1]")),
        ("scales by 1/sqrt(E), the model width, instead of the head size", _q1(SCALE="X.shape[-1]")),
        ("fills masked scores with -1e9 (passes the visible tests; fails when real scores are below -1e9)",
         _q1(FILL="-1e9")),
        ("plain softmax: a query with no allowed key gives NaN", _q1(WEIGHTS="weights = torch.softmax(scores, dim=-1)")),
        ("key padding applied to the queries instead of the keys",
         _q1(PADDING="key_padding[:, None, :, None]")),
        ("causal mask built on the CPU (no device=): breaks on any other device",
         _q1(CAUSAL="torch.ones(L, L, dtype=torch.bool).tril()")),
        ("reshapes straight to (B, H, L, D): positions mixed into heads", _q1().replace(
            ".reshape(B, L, H, -1).transpose(1, 2)", ".reshape(B, H, L, -1)")),
        ("key padding turned into lengths (assumes the padding is a suffix)", _q1(
            PADDING="(torch.arange(L, device=X.device)[None, :] < key_padding.sum(-1)[:, None])[:, None, None, :]")),
    ],
    "q2": [
        ("the colleague's code unchanged: -1e6 fill (passes the visible tests)", _Q2_BUGGY.replace("FILL", "-1e6")),
        ("a bigger finite fill, -1e30: a missing-only example still gets a uniform average",
         _Q2_BUGGY.replace("FILL", "-1e30")),
        ("-inf fill but a plain softmax: NaN for an example with no source present",
         _Q2_BUGGY.replace("FILL", 'float("-inf")')),
        ("zeroes the missing weights after the softmax without renormalising", '''
def fuse(Hs, W, b, c, present):
    scores = torch.relu(Hs @ W.T + b) @ c
    weights = torch.softmax(scores, dim=-1) * present
    fused = (weights[:, :, None] * Hs).sum(1)
    return fused, weights
'''),
        ("-inf fill, softmax, then nan_to_num on the fused vector only (the weights stay NaN)", '''
def fuse(Hs, W, b, c, present):
    scores = torch.relu(Hs @ W.T + b) @ c
    weights = torch.softmax(scores.masked_fill(~present, float("-inf")), dim=-1)
    fused = (weights[:, :, None] * Hs).sum(1).nan_to_num(0.0)
    return fused, weights
'''),
        ("exp without the max shift: overflows to inf/NaN for huge scores", '''
def fuse(Hs, W, b, c, present):
    scores = torch.relu(Hs @ W.T + b) @ c
    e = torch.exp(scores) * present
    total = e.sum(-1, keepdim=True)
    weights = e / torch.where(total > 0, total, torch.ones_like(total))
    fused = (weights[:, :, None] * Hs).sum(1)
    return fused, weights
'''),
    ],
    "q3": [
        ("offset i - j instead of j - i", _q3(
            OFFSET="torch.arange(L, device=q.device)[:, None] - torch.arange(S, device=q.device)[None, :]")),
        ("no clipping: offsets beyond K index the table with wrap-around (passes the visible tests)",
         _q3(COLUMN="(offset + K) % (2 * K + 1)")),
        ("clips to [-(K-1), K-1]", _q3(COLUMN="offset.clamp(-K + 1, K - 1) + K")),
        ("table reshaped as (2K+1, H) instead of transposed (right only by luck when H == 1)",
         _q3(BIAS="bias.reshape(-1, bias.shape[0])[column].permute(2, 0, 1)")),
        ("offsets measured from position 0 of a common length max(L, S) centred on the keys", _q3(
            OFFSET="torch.arange(S, device=q.device)[None, :] - torch.arange(L, device=q.device)[:, None] - (S - L) // 2")),
        ("bias added to the weights after the softmax", '''
def relative_bias_attention(q, k, v, bias):
    K = (bias.shape[-1] - 1) // 2
    L, S = q.shape[-2], k.shape[-2]
    offset = torch.arange(S, device=q.device)[None, :] - torch.arange(L, device=q.device)[:, None]
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) + bias[:, offset.clamp(-K, K) + K]
    return (w / w.sum(-1, keepdim=True)) @ v
'''),
    ],
    "q4": [
        ("returns the theory instead of measuring it", '''
def score_variances(E, H, n_samples, generator):
    return 1.0, 1.0 / H
'''),
        ("draws from torch's global random state, not the generator", _q4(draw=_Q4_FRESH.replace(", **opts)", ", dtype=torch.float64)"))),
        ("one W_q, W_k for all samples: correlated samples, a noisy measurement", _q4(draw='''x = torch.randn(n_samples, E, **opts)
    x2 = torch.randn(n_samples, E, **opts)
    W_q = torch.randn(E, D, **opts) / math.sqrt(E)
    W_k = torch.randn(E, D, **opts) / math.sqrt(E)
    q = x @ W_q
    k = x2 @ W_k''')),
        ("the same token as query and key (x' = x)", _q4(draw=_Q4_FRESH.replace("x2 = torch.randn(n_samples, E, **opts)", "x2 = x"))),
        ("weights with N(0, 1) entries instead of N(0, 1/E)", _q4(draw=_Q4_FRESH.replace(" / math.sqrt(E)", ""))),
        ("scales the head's score by 1/D instead of 1/sqrt(D)", _q4(ret="(s / D).var().item(), (s / math.sqrt(E)).var().item()")),
        ("returns tensors, not Python floats", _q4(ret="(s / math.sqrt(D)).var(), (s / math.sqrt(E)).var()")),
    ],
    "q5": [
        ("the colleague's code unchanged: normalises the residual stream itself", _Q5_BUGGY),
        ("post-norm instead of pre-norm: LN(x + f(x))", '''
def pre_norm_block(x, attend, ffn, norm1, norm2):
    h = norm1(x + attend(x))
    return norm2(h + ffn(h))
'''),
        ("norm1 for both sub-layers (passes the visible tests, where both norms are the default)",
         _q5("h + ffn(norm1(h))")),
        ("adds in place to x (passes the visible tests; changes the caller's tensor)", '''
def pre_norm_block(x, attend, ffn, norm1, norm2):
    x += attend(norm1(x))
    x += ffn(norm2(x))
    return x
'''),
        ("the FFN's residual added to x instead of h (skips the attention output)",
         _q5("x + ffn(norm2(h))")),
        ("parallel sub-layers: both read x", _q5("h + ffn(norm2(x))")),
        ("a LayerNorm on the block's output as well", _q5("norm2(h + ffn(norm2(h)))")),
    ],
}

CORRECT_ANSWERS = {
    "q1": [
        ("PyTorch's fused scaled_dot_product_attention with the boolean mask (empty rows give zeros)", '''
import torch.nn.functional as F
def masked_self_attention(X, W_q, W_k, W_v, W_o, num_heads, key_padding=None, causal=False):
    B, L, _ = X.shape
    q = (X @ W_q).unflatten(-1, (num_heads, -1)).transpose(1, 2)
    k = (X @ W_k).unflatten(-1, (num_heads, -1)).transpose(1, 2)
    v = (X @ W_v).unflatten(-1, (num_heads, -1)).transpose(1, 2)
    allowed = torch.ones(B, 1, L, L, dtype=torch.bool, device=X.device)
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, None, :]
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=X.device).tril()
    heads = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    heads = torch.where(allowed.any(-1, keepdim=True), heads, torch.zeros_like(heads))
    return heads.transpose(1, 2).flatten(2) @ W_o
'''),
        ("a loop over heads on column slices, einsum, and softmax + nan_to_num for empty rows", '''
def masked_self_attention(X, W_q, W_k, W_v, W_o, num_heads, key_padding=None, causal=False):
    B, L, _ = X.shape
    D, Dv = W_q.shape[1] // num_heads, W_v.shape[1] // num_heads
    allowed = torch.ones(B, L, L, dtype=torch.bool, device=X.device)
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, :]
    if causal:
        allowed = allowed & torch.tril(torch.ones(L, L, dtype=torch.bool, device=X.device))
    heads = []
    for h in range(num_heads):
        q = X @ W_q[:, h * D:(h + 1) * D]
        k = X @ W_k[:, h * D:(h + 1) * D]
        v = X @ W_v[:, h * Dv:(h + 1) * Dv]
        s = torch.einsum("bid,bjd->bij", q, k) / D ** 0.5
        w = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1)
        w = torch.where(allowed.any(-1, keepdim=True), w, torch.zeros_like(w))
        heads.append(w @ v)
    return torch.cat(heads, dim=-1) @ W_o
'''),
    ],
    "q2": [
        ("the softmax over the present sources, then zeros where nothing is present", '''
def fuse(Hs, W, b, c, present):
    scores = torch.einsum("bpa,a->bp", torch.relu(torch.einsum("bpd,ad->bpa", Hs, W) + b), c)
    weights = torch.softmax(scores.masked_fill(~present, float("-inf")), dim=-1)
    weights = torch.where(present.any(-1, keepdim=True), weights, torch.zeros_like(weights))
    return torch.einsum("bp,bpd->bd", weights, Hs), weights
'''),
    ],
    "q3": [
        ("a (2K+1)-long loop over offsets, adding each bias where j - i has that (clipped) value", '''
def relative_bias_attention(q, k, v, bias):
    K = (bias.shape[1] - 1) // 2
    L, S = q.shape[2], k.shape[2]
    i = torch.arange(L, device=q.device).reshape(L, 1)
    j = torch.arange(S, device=q.device).reshape(1, S)
    r = torch.clamp(j - i, min=-K, max=K)
    scores = torch.einsum("bhld,bhsd->bhls", q, k) / math.sqrt(q.shape[3])
    for offset in range(-K, K + 1):
        scores = scores + (r == offset) * bias[:, K + offset].reshape(-1, 1, 1)
    return torch.einsum("bhls,bhsv->bhlv", torch.softmax(scores, dim=3), v)
'''),
    ],
    "q4": [
        ("one sample at a time in a loop, the variance as the mean square (the mean is 0)", '''
def score_variances(E, H, n_samples, generator):
    D = E // H
    s = torch.empty(n_samples, dtype=torch.float64)
    for n in range(n_samples):
        x, x2 = torch.randn(2, E, generator=generator, dtype=torch.float64)
        W_q = torch.randn(E, E, generator=generator, dtype=torch.float64) / E ** 0.5
        W_k = torch.randn(E, E, generator=generator, dtype=torch.float64) / E ** 0.5
        s[n] = (x @ W_q)[:D] @ (x2 @ W_k)[:D]
    return float((s ** 2).mean() / D), float((s ** 2).mean() / E)
'''),
    ],
    "q5": [
        ("LayerNorm written out with F.layer_norm, in-place adds on a fresh tensor", '''
import torch.nn.functional as F
def pre_norm_block(x, attend, ffn, norm1, norm2):
    E = x.shape[-1]
    y = x.clone()
    y += attend(F.layer_norm(x, (E,), norm1.weight, norm1.bias, norm1.eps))
    y = y + ffn(F.layer_norm(y, (E,), norm2.weight, norm2.bias, norm2.eps))
    return y
'''),
    ],
}
