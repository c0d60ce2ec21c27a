"""Plausible wrong answers for the chapter 9 exercises; each must lose points on its question."""

WRONG_ANSWERS = {
    "q1": [
        ("no ReLU between the layers", '''
def dense_logits(x, W1, b1, W2, b2):
    hidden = x @ W1.T + b1
    return hidden @ W2.T + b2
'''),
        ("tanh instead of ReLU", '''
def dense_logits(x, W1, b1, W2, b2):
    hidden = torch.tanh(x @ W1.T + b1)
    return hidden @ W2.T + b2
'''),
        ("second bias forgotten", '''
def dense_logits(x, W1, b1, W2, b2):
    hidden = torch.relu(x @ W1.T + b1)
    return hidden @ W2.T
'''),
    ],
    "q2": [
        ("masked logits filled with 0 instead of -inf", '''
def random_synthesizer(R, v, key_padding=None, causal=False):
    B, L, Dv = v.shape
    if L > R.shape[-1]:
        raise ValueError("too long")
    logits = R[:L, :L].expand(B, L, L)
    allowed = torch.ones(B, L, L, dtype=torch.bool, device=v.device)
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, :]
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=v.device).tril()
    weights = torch.softmax(logits.masked_fill(~allowed, 0.0), dim=-1)
    return weights @ v, weights
'''),
        ("bottom-right block of R instead of the top-left one", '''
def random_synthesizer(R, v, key_padding=None, causal=False):
    B, L, Dv = v.shape
    if L > R.shape[-1]:
        raise ValueError("too long")
    logits = R[-L:, -L:].expand(B, L, L)
    allowed = torch.ones(B, L, L, dtype=torch.bool, device=v.device)
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, :]
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=v.device).tril()
    weights = attnkit.masked_softmax(logits, mask=allowed)
    return weights @ v, weights
'''),
        ("causal flag ignored", '''
def random_synthesizer(R, v, key_padding=None, causal=False):
    B, L, Dv = v.shape
    if L > R.shape[-1]:
        raise ValueError("too long")
    logits = R[:L, :L].expand(B, L, L)
    allowed = torch.ones(B, L, L, dtype=torch.bool, device=v.device)
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, :]
    weights = attnkit.masked_softmax(logits, mask=allowed)
    return weights @ v, weights
'''),
        ("-1e9 fill: a fully padded sequence gets a uniform average, not zeros", '''
def random_synthesizer(R, v, key_padding=None, causal=False):
    B, L, Dv = v.shape
    if L > R.shape[-1]:
        raise ValueError("too long")
    logits = R[:L, :L].expand(B, L, L)
    allowed = torch.ones(B, L, L, dtype=torch.bool, device=v.device)
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, :]
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=v.device).tril()
    weights = torch.softmax(logits.masked_fill(~allowed, -1e9), dim=-1)
    return weights @ v, weights
'''),
    ],
    "q3": [
        ("singular values left out", '''
def best_factors(T, k):
    U, S, Vh = torch.linalg.svd(T)
    return U[:, :k], Vh[:k].T
'''),
        ("columns of Vh taken instead of rows", '''
def best_factors(T, k):
    U, S, Vh = torch.linalg.svd(T)
    return U[:, :k] * S[:k], Vh[:, :k]
'''),
        ("the k smallest singular values kept", '''
def best_factors(T, k):
    U, S, Vh = torch.linalg.svd(T)
    return U[:, -k:] * S[-k:], Vh[-k:].T
'''),
    ],
    "q4": [
        ("probabilities mixed after two softmaxes instead of logits before one", '''
import math

def mixture_weights(R, q, k, alpha):
    L, D = q.shape[-2], q.shape[-1]
    dot = q @ k.transpose(-2, -1) / math.sqrt(D)
    return alpha[0] * torch.softmax(R[:L, :L], dim=-1) + alpha[1] * torch.softmax(dot, dim=-1)
'''),
        ("dot product not scaled by sqrt(D)", '''
def mixture_weights(R, q, k, alpha):
    L = q.shape[-2]
    dot = q @ k.transpose(-2, -1)
    return torch.softmax(alpha[0] * R[:L, :L] + alpha[1] * dot, dim=-1)
'''),
    ],
}
