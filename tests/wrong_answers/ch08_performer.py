"""Plausible wrong answers to the chapter 8 exercises; each must lose points on its question."""

WRONG_ANSWERS = {
    "q1": [
        ("forgets the -|x|^2/2 term (estimates exp(|q+k|^2/2), not exp(q·k))", '''
def positive_random_features(x, omega):
    return torch.exp(x @ omega.T) / math.sqrt(omega.shape[0])
'''),
        ("forgets the 1/sqrt(M) normalisation", '''
def positive_random_features(x, omega):
    return torch.exp(x @ omega.T - 0.5 * (x * x).sum(dim=-1, keepdim=True))
'''),
        ("subtracts |x|^2 instead of |x|^2/2", '''
def positive_random_features(x, omega):
    return torch.exp(x @ omega.T - (x * x).sum(dim=-1, keepdim=True)) / math.sqrt(omega.shape[0])
'''),
    ],
    "q2": [
        ("keeps the unit-length rows of Q (no Gaussian lengths)", '''
def orthogonal_random_matrix(m, d, generator):
    blocks = []
    for _ in range(math.ceil(m / d)):
        q, r = torch.linalg.qr(torch.randn(d, d, generator=generator))
        blocks.append((q * torch.sign(torch.diagonal(r))[None, :]).T)
    return torch.cat(blocks)[:m]
'''),
        ("plain iid Gaussian rows (no orthogonalisation)", '''
def orthogonal_random_matrix(m, d, generator):
    return torch.randn(m, d, generator=generator)
'''),
        ("rescales every row to the mean length sqrt(d) instead of drawing chi lengths", '''
def orthogonal_random_matrix(m, d, generator):
    blocks = []
    for _ in range(math.ceil(m / d)):
        q, r = torch.linalg.qr(torch.randn(d, d, generator=generator))
        blocks.append((q * torch.sign(torch.diagonal(r))[None, :]).T)
    return torch.cat(blocks)[:m] * math.sqrt(d)
'''),
    ],
    "q3": [
        ("returns the variance of one sample, not of the mean", '''
def kernel_estimate(q, k, omega):
    s = torch.exp(omega @ q - 0.5 * (q @ q)) * torch.exp(omega @ k - 0.5 * (k @ k))
    return s.mean().item(), s.var().item()
'''),
        ("drops the norm terms (estimates exp(|q+k|^2/2))", '''
def kernel_estimate(q, k, omega):
    s = torch.exp(omega @ q) * torch.exp(omega @ k)
    return s.mean().item(), (s.var() / s.shape[0]).item()
'''),
    ],
    "q4": [
        ("non-causal: every query sees every key", '''
def causal_favor(q, k, v, omega):
    s = q.shape[-1] ** -0.25
    return linear_attention_noncausal(positive_random_features(q * s, omega), positive_random_features(k * s, omega), v)
'''),
        ("scales by 1/sqrt(D) on both sides (kernel exp(q·k/D))", '''
def causal_favor(q, k, v, omega):
    s = q.shape[-1] ** -0.5
    return linear_attention_cumsum(positive_random_features(q * s, omega), positive_random_features(k * s, omega), v)
'''),
        ("forgets the scaling (kernel exp(q·k) without 1/sqrt(D))", '''
def causal_favor(q, k, v, omega):
    return linear_attention_cumsum(positive_random_features(q, omega), positive_random_features(k, omega), v)
'''),
    ],
}
