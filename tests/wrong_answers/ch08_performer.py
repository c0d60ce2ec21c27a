"""Plausible wrong answers to the chapter 8 exercises (each must lose points on its question),
and correct answers written differently from the solutions (each must score full marks)."""

_Q1 = '''
def hyperpower_pinv(A, iterations, order):
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=DEVICE)
    norm1 = NORM1
    norm_inf = NORMINF
    Z = START / (norm1 * norm_inf)[..., None, None]
    for _ in range(iterations):
        E = eye - A @ Z
        total, power = eye, eye
        for _ in range(TERMS):
            power = power @ E
            total = total + power
        Z = Z @ total
    return Z
'''
_Q1_OK = dict(DEVICE="A.device", NORM1="A.abs().sum(dim=-2).amax(dim=-1)",
              NORMINF="A.abs().sum(dim=-1).amax(dim=-1)", START="A.transpose(-2, -1)",
              TERMS="order - 1")


def _q1(**change):
    src = _Q1
    for key, value in {**_Q1_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q2 = '''
def arccos_estimate_stats(x, y, m, n_draws, generator):
    omega = DRAW
    phi_x = FEATX
    phi_y = torch.relu(omega @ y) / math.sqrt(m)
    estimates = (phi_x * phi_y).sum(-1)
    return RETURN
'''
_Q2_OK = dict(DRAW="torch.randn(n_draws, m, x.shape[-1], generator=generator, dtype=x.dtype)",
              FEATX="torch.relu(omega @ x) / math.sqrt(m)",
              RETURN="estimates.mean().item(), estimates.var().item()")


def _q2(**change):
    src = _Q2
    for key, value in {**_Q2_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q3 = '''
def vector_gated_attention(phi_q, phi_k, v, gate, eps=1e-6):
    B, L, M = phi_q.shape
    state = phi_q.new_zeros(B, M, v.shape[-1])
    z = phi_q.new_zeros(B, M)
    outs = []
    for t in range(L):
        g = GATE
        write = (1 - g) * phi_k[:, t]
        STATE
        Z_UPDATE
        num = (phi_q[:, t, :, None] * state).sum(1)
        den = DEN
        outs.append(num / den)
    return torch.stack(outs, dim=1)
'''
_Q3_OK = dict(GATE="gate[:, t]",
              STATE="state = g[:, :, None] * state + write[:, :, None] * v[:, t, None, :]",
              Z_UPDATE="z = g * z + write",
              DEN="(phi_q[:, t] * z).sum(-1, keepdim=True).clamp(min=eps)")


def _q3(**change):
    src = _Q3
    for key, value in {**_Q3_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q4 = '''
def causal_favor(q, k, v, omega):
    m = omega.shape[0]
    s = SCALE
    log_q = (q * s) @ omega.T - 0.5 * ((q * s) ** 2).sum(-1, keepdim=True)
    log_k = (k * s) @ omega.T - 0.5 * ((k * s) ** 2).sum(-1, keepdim=True)
    phi_q = PHIQ
    phi_k = PHIK
    kv = torch.cumsum(phi_k[:, :, None] * v[:, None, :], dim=0)
    z = torch.cumsum(phi_k, dim=0)
    num = torch.einsum("lm,lmd->ld", phi_q, kv)
    den = (phi_q * z).sum(-1, keepdim=True)
    return num / den
'''
_Q4_OK = dict(SCALE="q.shape[-1] ** -0.25",
              PHIQ="torch.exp(log_q - log_q.amax(-1, keepdim=True)) / math.sqrt(m)",
              PHIK="torch.exp(log_k - log_k[0].amax()) / math.sqrt(m)")


def _q4(**change):
    src = _Q4
    for key, value in {**_Q4_OK, **change}.items():
        src = src.replace(key, value)
    return src


WRONG_ANSWERS = {
    "q1": [
        ("one pair of norms for the whole batch instead of per matrix (passes the visible single matrix)",
         _q1(NORM1="A.abs().sum(dim=-2).amax()", NORMINF="A.abs().sum(dim=-1).amax()")
         .replace("(norm1 * norm_inf)[..., None, None]", "(norm1 * norm_inf)")),
        ("Z_0 from A instead of A^T (the visible matrix is symmetric)", _q1(START="A")),
        ("one term too many: I + E + ... + E^p, an iteration of order p + 1 (still converges)",
         _q1(TERMS="order")),
        ("the start scaled by the squared Frobenius norm instead of ||A||_1 ||A||_inf",
         _q1(NORM1="A.pow(2).sum(dim=(-2, -1))", NORMINF="torch.ones_like(A[..., 0, 0])")),
        ("the identity created on the default device", _q1(DEVICE="None")),
        ("the Nyströmformer's own update whatever the order", '''
def hyperpower_pinv(A, iterations, order):
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    norm1 = A.abs().sum(dim=-2).amax(dim=-1)
    norm_inf = A.abs().sum(dim=-1).amax(dim=-1)
    Z = A.transpose(-2, -1) / (norm1 * norm_inf)[..., None, None]
    for _ in range(iterations):
        AZ = A @ Z
        Z = 0.25 * Z @ (13 * eye - AZ @ (15 * eye - AZ @ (7 * eye - AZ)))
    return Z
'''),
    ],
    "q2": [
        ("one Omega drawn once and reused for every estimate (variance 0)",
         _q2(DRAW="torch.randn(m, x.shape[-1], generator=generator, dtype=x.dtype).expand(n_draws, m, x.shape[-1])")),
        ("features without the 1/sqrt(M) on one side (the estimate is M times too large)",
         _q2(FEATX="torch.relu(omega @ x)")),
        ("the global random generator instead of the one given",
         _q2(DRAW="torch.randn(n_draws, m, x.shape[-1], dtype=x.dtype)")),
        ("returns tensors, not Python floats", _q2(RETURN="estimates.mean(), estimates.var()")),
        ("the ReLU of the product of projections instead of the product of ReLUs", '''
def arccos_estimate_stats(x, y, m, n_draws, generator):
    omega = torch.randn(n_draws, m, x.shape[-1], generator=generator, dtype=x.dtype)
    estimates = torch.relu((omega @ x) * (omega @ y)).sum(-1) / m
    return estimates.mean().item(), estimates.var().item()
'''),
        ("the variance of the single-feature terms, not of the M-feature estimate (M times too large)", '''
def arccos_estimate_stats(x, y, m, n_draws, generator):
    omega = torch.randn(n_draws, m, x.shape[-1], generator=generator, dtype=x.dtype)
    terms = torch.relu(omega @ x) * torch.relu(omega @ y)
    return terms.mean().item(), terms.flatten().var().item()
'''),
    ],
    "q3": [
        ("one scalar gate per token (the mean over features)", _q3(GATE="gate[:, t].mean(-1, keepdim=True).expand_as(gate[:, t])")),
        ("the gate decays the state but not the normaliser", _q3(Z_UPDATE="z = z + write")),
        ("decays after writing: the current token is decayed too (invisible with a constant gate)",
         _q3(STATE="state = g[:, :, None] * (state + write[:, :, None] * v[:, t, None, :])",
             Z_UPDATE="z = g * (z + write)")),
        ("the gate of the previous token (invisible with a constant gate)",
         _q3(GATE="gate[:, max(t - 1, 0)]")),
        ("eps added to the normaliser instead of a clamp (negative normalisers)",
         _q3(DEN="(phi_q[:, t] * z).sum(-1, keepdim=True) + eps")),
        ("the state created on the default device", _q3().replace(
            "phi_q.new_zeros(B, M, v.shape[-1])", "torch.zeros(B, M, v.shape[-1], dtype=v.dtype)")),
    ],
    "q4": [
        ("the colleague's code unchanged: one constant per key reweights the keys", _q4(
            PHIK="torch.exp(log_k - log_k.amax(-1, keepdim=True)) / math.sqrt(m)")),
        ("one constant for all keys, but the largest over every key, future ones included",
         _q4(PHIK="torch.exp(log_k - log_k.amax()) / math.sqrt(m)")),
        ("the largest over the last key (the future)", _q4(PHIK="torch.exp(log_k - log_k[-1].amax()) / math.sqrt(m)")),
        ("no key stabiliser at all (fine in float64 with small norms, underflows in float32)",
         _q4(PHIK="torch.exp(log_k) / math.sqrt(m)")),
        ("no stabiliser at all", _q4(PHIQ="torch.exp(log_q) / math.sqrt(m)", PHIK="torch.exp(log_k) / math.sqrt(m)")),
        ("scaled by D^(-1/2) instead of D^(-1/4)", _q4(SCALE="q.shape[-1] ** -0.5")),
    ],
}

CORRECT_ANSWERS = {
    "q1": [
        ("Horner's form Z (I + E (I + E (...))), mT and einsum", '''
def hyperpower_pinv(A, iterations, order):
    M = A.shape[-1]
    eye = torch.eye(M, dtype=A.dtype, device=A.device).expand_as(A)
    scale = A.abs().sum(-2).max(-1).values * A.abs().sum(-1).max(-1).values
    Z = A.mT / scale.unsqueeze(-1).unsqueeze(-1)
    for _ in range(iterations):
        E = eye - torch.einsum("...ij,...jk->...ik", A, Z)
        poly = eye
        for _ in range(order - 1):
            poly = eye + E @ poly
        Z = Z @ poly
    return Z
'''),
        ("the sum of powers with torch.linalg.matrix_power", '''
def hyperpower_pinv(A, iterations, order):
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    Z = A.transpose(-1, -2) / (torch.linalg.matrix_norm(A, ord=1) * torch.linalg.matrix_norm(A, ord=float("inf")))[..., None, None]
    for _ in range(iterations):
        E = eye - A @ Z
        Z = Z @ sum(torch.linalg.matrix_power(E, i) for i in range(order))
    return Z
'''),
    ],
    "q2": [
        ("a Python loop over draws, one Omega at a time, statistics by hand", '''
def arccos_estimate_stats(x, y, m, n_draws, generator):
    values = []
    for _ in range(n_draws):
        omega = torch.randn(m, x.numel(), generator=generator, dtype=torch.float64)
        values.append(float(torch.clamp(omega @ x, min=0) @ torch.clamp(omega @ y, min=0)) / m)
    mean = sum(values) / n_draws
    return mean, sum((e - mean) ** 2 for e in values) / (n_draws - 1)
'''),
    ],
    "q3": [
        ("the dense form: per-feature decays from cumulative log-gates, no loop over positions", '''
def vector_gated_attention(phi_q, phi_k, v, gate, eps=1e-6):
    L = phi_q.shape[1]
    G = torch.cumsum(torch.log(gate), dim=1)                         # (B, L, M)
    keep = torch.ones(L, L, dtype=torch.bool, device=gate.device).tril()[None, :, :, None]
    diff = (G[:, :, None, :] - G[:, None, :, :]).masked_fill(~keep, float("-inf"))  # (B, t, j, M)
    decay = torch.exp(diff) * (1 - gate)[:, None, :, :]
    w = torch.einsum("btm,bjm,btjm->btj", phi_q, phi_k, decay)
    den = w.sum(-1, keepdim=True).clamp(min=eps)
    return (w @ v) / den
'''),
    ],
    "q4": [
        ("the log domain: a masked softmax over j <= i of logsumexp_m (log phi(q_i) + log phi(k_j))", '''
def causal_favor(q, k, v, omega):
    s = q.shape[-1] ** -0.25
    lq = (q * s) @ omega.T - 0.5 * ((q * s) ** 2).sum(-1, keepdim=True)
    lk = (k * s) @ omega.T - 0.5 * ((k * s) ** 2).sum(-1, keepdim=True)
    logw = torch.logsumexp(lq[:, None, :] + lk[None, :, :], dim=-1)   # (L, L)
    L = q.shape[0]
    future = torch.ones(L, L, dtype=torch.bool, device=q.device).triu(1)
    return torch.softmax(logw.masked_fill(future, float("-inf")), dim=-1) @ v
'''),
        ("a running maximum over the keys seen so far, rescaling the sums (online softmax style)", '''
def causal_favor(q, k, v, omega):
    m = omega.shape[0]
    s = q.shape[-1] ** -0.25
    lq = (q * s) @ omega.T - 0.5 * ((q * s) ** 2).sum(-1, keepdim=True)
    lk = (k * s) @ omega.T - 0.5 * ((k * s) ** 2).sum(-1, keepdim=True)
    phi_q = torch.exp(lq - lq.amax(-1, keepdim=True))
    outs = []
    c = None
    for i in range(q.shape[0]):
        ci = lk[i].amax()
        if c is None:
            c, kv, z = ci, 0.0, 0.0
        elif ci > c:
            kv, z = kv * torch.exp(c - ci), z * torch.exp(c - ci)
            c = ci
        f = torch.exp(lk[i] - c)
        kv = kv + f[:, None] * v[i][None, :]
        z = z + f
        outs.append((phi_q[i] @ kv) / (phi_q[i] @ z))
    return torch.stack(outs)
'''),
    ],
}
