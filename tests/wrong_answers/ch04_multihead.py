"""Plausible wrong answers to the chapter 4 exercises; each must lose points on its question."""

WRONG_ANSWERS = {
    "q1": [
        ("reshapes straight to (B, H, L, D): positions mixed into heads", '''
def split_heads(X, num_heads):
    B, L, HD = X.shape
    return X.reshape(B, num_heads, L, HD // num_heads)


def merge_heads(X):
    B, H, L, D = X.shape
    return X.reshape(B, L, H * D)
'''),
        ("interleaved heads: reshape to (B, L, D, H) so head h gets every H-th feature", '''
def split_heads(X, num_heads):
    B, L, HD = X.shape
    return X.reshape(B, L, HD // num_heads, num_heads).permute(0, 3, 1, 2)


def merge_heads(X):
    B, H, L, D = X.shape
    return X.permute(0, 2, 3, 1).reshape(B, L, H * D)
'''),
    ],
    "q2": [
        ("scales by 1/sqrt(d_model) instead of 1/sqrt(d_head)", '''
def mha_forward(Xq, Xkv, W_q, W_k, W_v, W_o, num_heads):
    q = split_heads(Xq @ W_q, num_heads)
    k = split_heads(Xkv @ W_k, num_heads)
    v = split_heads(Xkv @ W_v, num_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(Xq.shape[-1])
    return merge_heads(torch.softmax(scores, dim=-1) @ v) @ W_o
'''),
        ("softmax over the query axis instead of the key axis", '''
def mha_forward(Xq, Xkv, W_q, W_k, W_v, W_o, num_heads):
    q = split_heads(Xq @ W_q, num_heads)
    k = split_heads(Xkv @ W_k, num_heads)
    v = split_heads(Xkv @ W_v, num_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return merge_heads(torch.softmax(scores, dim=-2) @ v) @ W_o
'''),
        ("forgets the output projection W_o", '''
def mha_forward(Xq, Xkv, W_q, W_k, W_v, W_o, num_heads):
    q = split_heads(Xq @ W_q, num_heads)
    k = split_heads(Xkv @ W_k, num_heads)
    v = split_heads(Xkv @ W_v, num_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return merge_heads(torch.softmax(scores, dim=-1) @ v)
'''),
    ],
    "q3": [
        ("sin and cos swapped", '''
def positional_encoding(num_positions, num_hiddens):
    i = torch.arange(num_positions, dtype=torch.float32, device=device)[:, None]
    two_j = torch.arange(0, num_hiddens, 2, dtype=torch.float32, device=device)
    angles = i / 10000 ** (two_j / num_hiddens)
    P = torch.zeros(num_positions, num_hiddens, device=device)
    P[:, 0::2] = torch.cos(angles)
    P[:, 1::2] = torch.sin(angles)
    return P
'''),
        ("exponent j/d instead of 2j/d", '''
def positional_encoding(num_positions, num_hiddens):
    i = torch.arange(num_positions, dtype=torch.float32, device=device)[:, None]
    j = torch.arange(num_hiddens // 2, dtype=torch.float32, device=device)
    angles = i / 10000 ** (j / num_hiddens)
    P = torch.zeros(num_positions, num_hiddens, device=device)
    P[:, 0::2] = torch.sin(angles)
    P[:, 1::2] = torch.cos(angles)
    return P
'''),
        ("multiplies by 10000^(2j/d) instead of dividing", '''
def positional_encoding(num_positions, num_hiddens):
    i = torch.arange(num_positions, dtype=torch.float32, device=device)[:, None]
    two_j = torch.arange(0, num_hiddens, 2, dtype=torch.float32, device=device)
    angles = i * 10000 ** (two_j / num_hiddens)
    P = torch.zeros(num_positions, num_hiddens, device=device)
    P[:, 0::2] = torch.sin(angles)
    P[:, 1::2] = torch.cos(angles)
    return P
'''),
    ],
    "q4": [
        ("compares f(X[:, perm]) with f(X) without permuting the output", '''
def equivariance_gap(f, X, perm):
    with torch.no_grad():
        return (f(X[:, perm]) - f(X)).abs().max().item()
'''),
        ("permutes the batch axis instead of the positions", '''
def equivariance_gap(f, X, perm):
    with torch.no_grad():
        return (f(X[perm]) - f(X)[perm]).abs().max().item()
'''),
        ("permutes the features (last axis) instead of the positions", '''
def equivariance_gap(f, X, perm):
    with torch.no_grad():
        return (f(X[..., perm]) - f(X)[..., perm]).abs().max().item()
'''),
    ],
}
