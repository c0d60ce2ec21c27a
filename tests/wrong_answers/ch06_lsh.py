"""Plausible wrong answers to the chapter 6 (LSH attention) exercises (each must lose points on
its question), and correct answers written differently from the solutions (each must score full
marks)."""

_Q1 = '''
def candidate_rate(theta, dim, n_bits, n_rounds, n_trials, generator):
    opts = dict(generator=generator, dtype=torch.float64)
    x = torch.nn.functional.normalize(torch.randn(n_trials, dim, **opts), dim=-1)
    u = torch.randn(n_trials, dim, **opts)
    U_LINE
    y = Y_LINE
    planes = PLANES
    bx = torch.einsum("tbrd,td->tbr", planes, x) >= 0
    by = torch.einsum("tbrd,td->tbr", planes, y) >= 0
    same_bucket = (bx == by).BITS(dim=-1)
    candidate = same_bucket.ROUNDS(dim=-1)
    return candidate.double().mean().item()
'''
_Q1_OK = dict(U_LINE="u = torch.nn.functional.normalize(u - (u * x).sum(-1, keepdim=True) * x, dim=-1)",
              Y_LINE="math.cos(theta) * x + math.sin(theta) * u",
              PLANES="torch.randn(n_trials, n_rounds, n_bits, dim, **opts)", BITS="all", ROUNDS="any")


def _q1(**change):
    src = _Q1
    for key, value in {**_Q1_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q2 = '''
def bucket_attention(x, v, buckets, causal=False):
    keys = KEYS
    out = torch.zeros(x.shape[0], v.shape[1], dtype=v.dtype, device=v.device)
    for b in torch.unique(buckets):
        pos = torch.nonzero(buckets == b).flatten()
        s = QUERIES @ keys[pos].T / math.sqrt(x.shape[1])
        is_self = pos[:, None] == pos[None, :]
        s = s.masked_fill(is_self, SELF)
        if causal:
            s = s.masked_fill(pos[None, :] CMP pos[:, None], float("-inf"))
        out[pos] = torch.softmax(s, dim=-1) @ v[pos]
    return out
'''
_Q2_OK = dict(KEYS="x / x.norm(dim=-1, keepdim=True)", QUERIES="x[pos]", SELF="-1e5", CMP=">")


def _q2(**change):
    src = _Q2
    for key, value in {**_Q2_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q3 = '''
def combine_rounds(scores, v, allowed):
    CORRECTION
    outs, lses = [], []
    for r in range(allowed.shape[0]):
        s = scores.masked_fill(~allowed[r], float("-inf"))
        top = s.amax(-1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        e = torch.exp(s - top)
        total = e.sum(-1, keepdim=True)
        outs.append(e @ v / torch.where(total > 0, total, torch.ones_like(total)))
        lses.append(torch.where(total > 0, top + total.log(), torch.full_like(total, float("-inf")))[:, 0])
    lse = torch.stack(lses)
    COMBINE
'''
_Q3_OK = dict(CORRECTION="scores = scores - allowed.sum(0).clamp(min=1).to(scores.dtype).log()",
              COMBINE="w = torch.softmax(lse, dim=0).nan_to_num(0.0)\n"
                      "    return (w[:, :, None] * torch.stack(outs)).sum(0), lse")


def _q3(**change):
    src = _Q3
    for key, value in {**_Q3_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q4 = '''
def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):
    out = INIT
    for start in range(0, STOP, chunk):
        cols = slice(start, start + chunk)
        hidden = HIDDEN
        out += UPDATE
    return FINISH
'''
_Q4_OK = dict(INIT="b2.expand(x.shape[:-1] + b2.shape).clone()", STOP="W1.shape[1]",
              HIDDEN="torch.relu(x @ W1[:, cols] + b1[cols])", UPDATE="hidden @ W2[cols]", FINISH="out")


def _q4(**change):
    src = _Q4
    for key, value in {**_Q4_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q5 = """
def reversible_backward_step(y1, y2, dy1, dy2, F, G):
    with torch.enable_grad():
        z1 = y1.detach().requires_grad_()
        g = G(z1)
        (dg,) = torch.autograd.grad(g, z1, G_UPSTREAM)
    x2 = (y2 - g)DETACH
    dy1_total = DY1_TOTAL
    with torch.enable_grad():
        z2 = x2.detach().requires_grad_()
        f = F(z2)
        (df,) = torch.autograd.grad(f, z2, dy1_total)
    x1 = (y1 - f)DETACH
    return x1, x2, dy1_total, DX2
"""
_Q5_OK = dict(G_UPSTREAM="dy2", DETACH=".detach()", DY1_TOTAL="dy1 + dg", DX2="dy2 + df")


def _q5(**change):
    src = _Q5
    for key, value in {**_Q5_OK, **change}.items():
        src = src.replace(key, value)
    return src


WRONG_ANSWERS = {
    "q1": [
        ("AND over the rounds as well: every round must agree (passes the visible tests)", _q1(ROUNDS="all")),
        ("OR over the bits: any agreeing bit counts as the same bucket", _q1(BITS="any")),
        ("the same hyperplanes in every round (passes the visible tests)",
         _q1(PLANES="torch.randn(n_trials, 1, n_bits, dim, **opts).expand(n_trials, n_rounds, n_bits, dim)")),
        ("u not made orthogonal to x: the pair is not at angle theta (passes the visible tests)",
         _q1(U_LINE="u = torch.nn.functional.normalize(u, dim=-1)")),
        ("y = x + theta u: an angle of atan(theta), not theta", _q1(Y_LINE="x + theta * u")),
        ("returns the closed form instead of simulating", '''
def candidate_rate(theta, dim, n_bits, n_rounds, n_trials, generator):
    return 1 - (1 - (1 - theta / math.pi) ** n_bits) ** n_rounds
'''),
        ("draws the hyperplanes from torch's global random state",
         _q1(PLANES="torch.randn(n_trials, n_rounds, n_bits, dim, dtype=torch.float64)")),
        ("one pair and one set of hyperplanes reused by every trial (a 0-or-1 estimate)",
         _q1(PLANES="torch.randn(1, n_rounds, n_bits, dim, **opts).expand(n_trials, n_rounds, n_bits, dim)")
         .replace("x = torch.nn.functional.normalize(torch.randn(n_trials, dim, **opts), dim=-1)",
                  "x = torch.nn.functional.normalize(torch.randn(1, dim, **opts), dim=-1).expand(n_trials, dim)")
         .replace("u = torch.randn(n_trials, dim, **opts)", "u = torch.randn(1, dim, **opts).expand(n_trials, dim)")),
    ],
    "q2": [
        ("-inf instead of the finite self-penalty: a lone token gets NaN", _q2(SELF='float("-inf")')),
        ("keys not normalised", _q2(KEYS="x")),
        ("queries normalised too (passes the visible tests)", _q2(QUERIES="keys[pos]")),
        ("causal with >=: a query may not see itself, the first of a bucket gets NaN", _q2(CMP=">=")),
        ("one dense L x L masked softmax (right values, the whole matrix in memory)", '''
def bucket_attention(x, v, buckets, causal=False):
    L = x.shape[0]
    keys = x / x.norm(dim=-1, keepdim=True)
    s = x @ keys.T / math.sqrt(x.shape[1])
    idx = torch.arange(L, device=x.device)
    s = s.masked_fill(idx[:, None] == idx[None, :], -1e5)
    allowed = buckets[:, None] == buckets[None, :]
    if causal:
        allowed = allowed & (idx[None, :] <= idx[:, None])
    return torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1) @ v
'''),
        ("results written back in bucket order, not at their positions", '''
def bucket_attention(x, v, buckets, causal=False):
    keys = x / x.norm(dim=-1, keepdim=True)
    outs = []
    for b in torch.unique(buckets):
        pos = torch.nonzero(buckets == b).flatten()
        s = x[pos] @ keys[pos].T / math.sqrt(x.shape[1])
        s = s.masked_fill(pos[:, None] == pos[None, :], -1e5)
        if causal:
            s = s.masked_fill(pos[None, :] > pos[:, None], float("-inf"))
        outs.append(torch.softmax(s, dim=-1) @ v[pos])
    return torch.cat(outs)
'''),
    ],
    "q3": [
        ("the colleague's code unchanged: duplicates counted N times (passes the visible tests)",
         _q3(CORRECTION="pass")),
        ("subtracts log R from every score: a constant per round, it changes nothing",
         _q3(CORRECTION="scores = scores - math.log(allowed.shape[0])")),
        ("averages the rounds' outputs instead of weighting them by their normalisers",
         _q3(COMBINE="met = torch.isfinite(lse).double()\n"
                     "    w = met / met.sum(0).clamp(min=1)\n"
                     "    return (w[:, :, None] * torch.stack(outs)).sum(0), lse")),
        ("the right output from one dense softmax over the union, but the uncorrected lse", _q3(
            CORRECTION="pass",
            COMBINE="union = allowed.any(0)\n"
                    "    w = torch.softmax(scores.masked_fill(~union, float('-inf')), -1).nan_to_num(0.0)\n"
                    "    return w @ v, lse")),
        ("corrects only the first round", _q3(CORRECTION="pass").replace(
            "s = scores.masked_fill(~allowed[r], float(\"-inf\"))",
            "s = (scores - (allowed.sum(0).clamp(min=1).double().log() if r == 0 else 0)).masked_fill(~allowed[r], float(\"-inf\"))")),
        ("plain softmax over the rounds' normalisers: NaN for a query that meets nothing", _q3(
            COMBINE="w = torch.softmax(lse, dim=0)\n"
                    "    return (w[:, :, None] * torch.stack(outs)).sum(0), lse")),
    ],
    "q4": [
        ("adds b2 in every chunk: the output bias counted once per block",
         _q4(INIT="torch.zeros_like(x)", UPDATE="hidden @ W2[cols] + b2")),
        ("ReLU after summing the chunks' pre-activations", '''
def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):
    out = torch.zeros_like(x)
    for start in range(0, W1.shape[1], chunk):
        cols = slice(start, start + chunk)
        out += (x @ W1[:, cols] + b1[cols]) @ W2[cols]
    return torch.relu(out) + b2
'''),
        ("drops the last, shorter block (passes the visible tests, where chunk divides Dh)",
         _q4(STOP="W1.shape[1] - chunk + 1")),
        ("computes the whole hidden layer at once (right values, too much memory)", '''
def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):
    return torch.relu(x @ W1 + b1) @ W2 + b2
'''),
        ("chunks the positions instead of the hidden units", '''
def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):
    parts = [torch.relu(p @ W1 + b1) @ W2 + b2 for p in x.split(chunk, dim=1)]
    return torch.cat(parts, dim=1)
'''),
    ],
    "q5": [
        ("the colleague's order: x1 rebuilt first, with F evaluated at y2 instead of x2", """
def reversible_backward_step(y1, y2, dy1, dy2, F, G):
    with torch.enable_grad():
        z2 = y2.detach().requires_grad_()
        f = F(z2)
        (df,) = torch.autograd.grad(f, z2, dy1)
    x1 = (y1 - f).detach()
    dx2 = dy2 + df
    with torch.enable_grad():
        z1 = y1.detach().requires_grad_()
        g = G(z1)
        (dg,) = torch.autograd.grad(g, z1, dy2)
    x2 = (y2 - g).detach()
    return x1, x2, dy1 + dg, dx2
"""),
        ("G's gradient pulled back with dy1 instead of dy2 (passes the visible tests)",
         _q5(G_UPSTREAM="dy1")),
        ("the gradient through G forgotten: dx1 = dy1", _q5(DY1_TOTAL="dy1")),
        ("dx2 without the direct path dy2", _q5(DX2="df")),
        ("rebuilt inputs keep their autograd graph (passes the visible tests)",
         _q5(DETACH="").replace("z2 = x2.detach()", "z2 = x2")),
        ("G called twice: once without gradients to rebuild x2, once to differentiate "
         "(passes the visible tests)", """
def reversible_backward_step(y1, y2, dy1, dy2, F, G):
    with torch.no_grad():
        x2 = y2 - G(y1)
    with torch.enable_grad():
        z1 = y1.detach().requires_grad_()
        (dg,) = torch.autograd.grad(G(z1), z1, dy2)
        z2 = x2.detach().requires_grad_()
        f = F(z2)
        (df,) = torch.autograd.grad(f, z2, dy1 + dg)
    return (y1 - f).detach(), x2, dy1 + dg, dy2 + df
"""),
        ("backward() instead of autograd.grad: the parameters' .grad change "
         "(passes the visible tests)", """
def reversible_backward_step(y1, y2, dy1, dy2, F, G):
    z1 = y1.detach().requires_grad_()
    with torch.enable_grad():
        g = G(z1)
        g.backward(dy2)
    x2 = (y2 - g).detach()
    dx1 = dy1 + z1.grad
    z2 = x2.clone().requires_grad_()
    with torch.enable_grad():
        f = F(z2)
        f.backward(dx1)
    return (y1 - f).detach(), x2, dx1, dy2 + z2.grad
"""),
    ],
}

CORRECT_ANSWERS = {
    "q1": [
        ("a loop over trials; fixed pair direction per trial drawn by Gram-Schmidt on a 2 x D draw", '''
def candidate_rate(theta, dim, n_bits, n_rounds, n_trials, generator):
    hits = 0
    for _ in range(n_trials):
        a = torch.randn(2, dim, generator=generator, dtype=torch.float64)
        x = a[0] / a[0].norm()
        u = a[1] - (a[1] @ x) * x
        u = u / u.norm()
        y = math.cos(theta) * x + math.sin(theta) * u
        found = False
        for r in range(n_rounds):
            h = torch.randn(dim, n_bits, generator=generator, dtype=torch.float64)
            if torch.equal(x @ h >= 0, y @ h >= 0):
                found = True
        hits += found
    return hits / n_trials
'''),
    ],
    "q2": [
        ("sort once, then walk the runs of equal buckets; weights with an explicit max shift", '''
def bucket_attention(x, v, buckets, causal=False):
    order = torch.sort(buckets, stable=True).indices
    counts = torch.unique_consecutive(buckets[order], return_counts=True)[1]
    out = torch.empty(x.shape[0], v.shape[1], dtype=v.dtype, device=v.device)
    for pos in torch.split(order, counts.tolist()):
        q = x[pos]
        k = q / torch.linalg.vector_norm(q, dim=1, keepdim=True)
        s = torch.einsum("id,jd->ij", q, k) / x.shape[1] ** 0.5
        s = torch.where(pos[:, None] == pos[None, :], torch.full_like(s, -1e5), s)
        if causal:
            s = torch.where(pos[None, :] <= pos[:, None], s, torch.full_like(s, -math.inf))
        e = torch.exp(s - s.max(dim=1, keepdim=True).values)
        out[pos] = (e / e.sum(dim=1, keepdim=True)) @ v[pos]
    return out
'''),
    ],
    "q3": [
        ("the correction applied to the exponentials (e / N) instead of the scores", '''
def combine_rounds(scores, v, allowed):
    counts = allowed.sum(0).to(scores.dtype)
    outs, lses = [], []
    for r in range(allowed.shape[0]):
        s = scores.masked_fill(~allowed[r], float("-inf"))
        top = s.amax(-1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        e = torch.where(allowed[r], torch.exp(s - top) / counts.clamp(min=1), torch.zeros_like(s))
        total = e.sum(-1, keepdim=True)
        outs.append(e @ v / torch.where(total > 0, total, torch.ones_like(total)))
        lses.append(torch.where(total > 0, top + total.log(), torch.full_like(total, float("-inf")))[:, 0])
    lse = torch.stack(lses)
    w = torch.softmax(lse, dim=0).nan_to_num(0.0)
    return (w[:, :, None] * torch.stack(outs)).sum(0), lse
'''),
    ],
    "q4": [
        ("torch.split of the weights and einsum, b2 added at the end", '''
def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):
    out = None
    for w1, c1, w2 in zip(W1.split(chunk, dim=1), b1.split(chunk), W2.split(chunk, dim=0)):
        part = torch.einsum("blh,he->ble", torch.clamp(torch.einsum("ble,eh->blh", x, w1) + c1, min=0), w2)
        out = part if out is None else out + part
    return out + b2
'''),
    ],
    "q5": [
        ("torch.func.vjp for each branch, inputs rebuilt inside no_grad", """
def reversible_backward_step(y1, y2, dy1, dy2, F, G):
    g, pull_g = torch.func.vjp(G, y1.detach())
    with torch.no_grad():
        x2 = y2 - g
        dx1 = dy1 + pull_g(dy2)[0]
    f, pull_f = torch.func.vjp(F, x2)
    with torch.no_grad():
        x1 = y1 - f
        dx2 = dy2 + pull_f(dx1)[0]
    return x1.detach(), x2.detach(), dx1.detach(), dx2.detach()
"""),
    ],
}
