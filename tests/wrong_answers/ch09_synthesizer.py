"""Plausible wrong answers to the chapter 9 exercises (each must lose points on its question),
and correct answers written differently from the solutions (each must score full marks)."""

_Q1 = '''
def tiled_factorized_logits(x, W1, b1, Wa, ba, Wb, bb, N):
    n_a, n_b = Wa.shape[0], Wb.shape[0]
    CHECK
    h = HIDDEN
    a = h @ Wa.T + ba
    b = h @ Wb.T + bb
    tiled = TILED
    return tiled[:, :N]
'''
_Q1_OK = dict(CHECK="if N > n_a * n_b:\n        raise ValueError('N too large')",
              HIDDEN="torch.relu(x @ W1.T + b1)",
              TILED="a.repeat(1, n_b) * b.repeat(1, n_a)")


def _q1(**change):
    src = _Q1
    for key, value in {**_Q1_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q2 = '''
def mixture_attention(R, q, k, v, alpha, key_padding=None, causal=False):
    B, L, D = q.shape
    allowed = torch.ones(B, L, L, dtype=torch.bool, device=q.device)
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, :]
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    synth = R[:L, :L].expand(B, L, L)
    dot = q @ k.transpose(-2, -1) / math.sqrt(D)
    MIX
    return weights @ v, weights
'''


def _q2(mix):
    return _Q2.replace("MIX", mix.strip().replace("\n", "\n    "))


_Q3 = '''
def offset_synthesizer(r, v, key_padding=None, causal=False):
    B, L, Dv = v.shape
    N = (r.shape[0] + 1) // 2
    CHECK
    pos = torch.arange(L, device=DEVICE)
    logits = LOGITS
    allowed = torch.ones(B, L, L, dtype=torch.bool, device=v.device)
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, :]
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=v.device).tril()
    WEIGHTS
    return weights @ v, weights
'''
_Q3_OK = dict(CHECK="if L > N:\n        raise ValueError('too long')", DEVICE="v.device",
              LOGITS="r[N - 1 + pos[None, :] - pos[:, None]]",
              WEIGHTS="weights = attnkit.masked_softmax(logits.expand(B, L, L), mask=allowed)")


def _q3(**change):
    src = _Q3
    for key, value in {**_Q3_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q4 = '''
def top_weight(L, sigma, n_samples, generator):
    R = DRAW
    return RESULT
'''
_Q4_OK = dict(DRAW="sigma * torch.randn(n_samples, L, L, generator=generator, dtype=torch.float64)",
              RESULT="torch.softmax(R, dim=-1).amax(dim=-1).mean().item()")


def _q4(**change):
    src = _Q4
    for key, value in {**_Q4_OK, **change}.items():
        src = src.replace(key, value)
    return src


_Q5 = '''
def finetune_routing(pretrained, task, steps, lr=1e-2, seed=0):
    CHECK
    model = COPY
    mechanism = model.attention.attention
    INIT
    routing = {id(p) for p in mechanism.parameters()}
    for p in model.parameters():
        p.requires_grad_(FREEZE)
    train(model, task, steps=steps, lr=lr, batch_size=32, seed=seed, progress=False)
    RESTORE
    return model
'''
_Q5_OK = dict(
    CHECK="if not list(pretrained.attention.attention.parameters()):\n        raise ValueError('nothing')",
    COPY="copy.deepcopy(pretrained)",
    INIT="pass",
    FREEZE="id(p) in routing",
    RESTORE="for p in model.parameters():\n        p.requires_grad_(True)",
)


def _q5(**change):
    src = _Q5
    for key, value in {**_Q5_OK, **change}.items():
        src = src.replace(key, value)
    return src


WRONG_ANSWERS = {
    "q1": [
        ("attnkit's flattened outer product instead of the paper's tiling",
         _q1(TILED="(a[:, :, None] * b[:, None, :]).flatten(1)")),
        ("no ReLU (the visible test has zero biases and still checks it; hidden ones use negative pre-activations)",
         _q1(HIDDEN="x @ W1.T + b1")),
        ("the first bias dropped (the visible test has zero biases)", _q1(HIDDEN="torch.relu(x @ W1.T)")),
        ("no ValueError when N > n_a n_b (the cut silently returns fewer logits)", _q1(CHECK="pass")),
        ("repeat_interleave instead of repeat (each entry repeated in place, not the whole vector)",
         _q1(TILED="a.repeat_interleave(n_b, dim=1) * b.repeat_interleave(n_a, dim=1)")),
    ],
    "q2": [
        ("the colleague's code unchanged: mixes the weights after two softmaxes", _q2('''
w_synth = attnkit.masked_softmax(synth, mask=allowed)
w_dot = attnkit.masked_softmax(dot, mask=allowed)
weights = alpha[0] * w_synth + alpha[1] * w_dot
''')),
        ("mixing weights normalised to sum to 1 (the visible alpha already does)", _q2('''
a = alpha / alpha.sum()
weights = attnkit.masked_softmax(a[0] * synth + a[1] * dot, mask=allowed)
''')),
        ("masked with a -1e9 fill and a plain softmax (empty rows uniform, huge logits leak)", _q2('''
logits = (alpha[0] * synth + alpha[1] * dot).masked_fill(~allowed, -1e9)
weights = torch.softmax(logits, dim=-1)
''')),
        ("softmax first, then zero the masked keys and renormalise (NaN on empty rows)", _q2('''
p = torch.softmax(alpha[0] * synth + alpha[1] * dot, dim=-1) * allowed
weights = p / p.sum(-1, keepdim=True)
''')),
        ("post-softmax mixture renormalised to rows of sum 1", _q2('''
w = alpha[0] * attnkit.masked_softmax(synth, mask=allowed) + alpha[1] * attnkit.masked_softmax(dot, mask=allowed)
weights = w / w.sum(-1, keepdim=True).clamp(min=1e-30)
''')),
    ],
    "q3": [
        ("offset i - j instead of j - i", _q3(LOGITS="r[N - 1 + pos[:, None] - pos[None, :]]")),
        ("the centre taken as L - 1, as if N = L (the visible test has L = N)",
         _q3(LOGITS="r[L - 1 + pos[None, :] - pos[:, None]]")),
        ("no ValueError for L > N (negative indices wrap around)", _q3(CHECK="pass")),
        ("a -1e9 fill and a plain softmax", _q3(
            WEIGHTS="weights = torch.softmax(logits.expand(B, L, L).masked_fill(~allowed, -1e9), dim=-1)")),
        ("-inf fill and a plain softmax: NaN on a query with no allowed key", _q3(
            WEIGHTS="weights = torch.softmax(logits.expand(B, L, L).masked_fill(~allowed, float('-inf')), dim=-1)")),
        ("the causal mask reads the future (triu instead of tril)",
         _q3().replace(".tril()", ".triu()")),
    ],
    "q4": [
        ("the mean of the largest logit, not of the largest softmax weight",
         _q4(RESULT="R.amax(dim=-1).mean().item()")),
        ("entries scaled by sigma^2 instead of sigma (the same at sigma = 1)",
         _q4(DRAW="sigma ** 2 * torch.randn(n_samples, L, L, generator=generator, dtype=torch.float64)")),
        ("one matrix drawn whatever n_samples",
         _q4(DRAW="sigma * torch.randn(1, L, L, generator=generator, dtype=torch.float64)")),
        ("the global random generator instead of the one given",
         _q4(DRAW="sigma * torch.randn(n_samples, L, L, dtype=torch.float64)")),
        ("returns a tensor, not a Python float", _q4(RESULT="torch.softmax(R, dim=-1).amax(dim=-1).mean()")),
        ("the weight on the diagonal, not the largest one",
         _q4(RESULT="torch.softmax(R, dim=-1).diagonal(dim1=-2, dim2=-1).mean().item()")),
        ("one softmax over the whole matrix instead of each row",
         _q4(RESULT="(torch.softmax(R.flatten(1), dim=-1).reshape(R.shape).amax(-1) * L).mean().item()")),
    ],
    "q5": [
        ("the colleague's code unchanged: fine-tunes the pre-trained model itself, re-initialised, "
         "with the routing frozen and everything else trained", '''
def finetune_routing(pretrained, task, steps, lr=1e-2, seed=0):
    model = pretrained
    mechanism = model.attention.attention
    for p in mechanism.parameters():
        torch.nn.init.normal_(p, std=0.02)
        p.requires_grad_(False)
    train(model, task, steps=steps, lr=lr, batch_size=32, seed=seed, progress=False)
    return model
'''),
        ("no copy: the pre-trained model is fine-tuned in place", _q5(COPY="pretrained")),
        ("a shallow copy.copy: the parameters are shared with the pre-trained model",
         _q5(COPY="copy.copy(pretrained)")),
        ("the routing re-initialised before training (passes the visible test: R still changes)",
         _q5(INIT="for p in mechanism.parameters():\n        torch.nn.init.normal_(p, std=0.02)")),
        ("the freeze inverted: everything but the mechanism is trained", _q5(FREEZE="id(p) not in routing")),
        ("nothing frozen: every parameter is fine-tuned (passes the visible test)", _q5(FREEZE="True")),
        ("the returned model left frozen (passes the visible test)", _q5(RESTORE="pass")),
        ("frozen on the pre-trained model before copying: its flags stay changed (passes the visible test)",
         _q5(COPY="pretrained", CHECK="if not list(pretrained.attention.attention.parameters()):\n"
             "        raise ValueError('nothing')\n"
             "    ids = {id(p) for p in pretrained.attention.attention.parameters()}\n"
             "    for p in pretrained.parameters():\n"
             "        p.requires_grad_(id(p) in ids)\n"
             "    pretrained = copy.deepcopy(pretrained)")),
        ("no ValueError for a mechanism without parameters (passes the visible test)", _q5(CHECK="pass")),
        ("the parameter-less case detected by a missing R: a Random Synthesizer with a fixed R passes",
         _q5(CHECK="if not hasattr(pretrained.attention.attention, 'R'):\n        raise ValueError('no R')")),
        ("another learning rate than the one given (the visible test uses the default)",
         _q5().replace("lr=lr", "lr=1e-2")),
    ],
}

CORRECT_ANSWERS = {
    "q1": [
        ("index arithmetic with arange and modulo, einsum for the layers", '''
def tiled_factorized_logits(x, W1, b1, Wa, ba, Wb, bb, N):
    n_a, n_b = len(ba), len(bb)
    if N > n_a * n_b:
        raise ValueError("N is larger than n_a * n_b")
    h = torch.clamp(torch.einsum("hd,ld->lh", W1, x) + b1, min=0)
    a = torch.einsum("ah,lh->la", Wa, h) + ba
    b = torch.einsum("bh,lh->lb", Wb, h) + bb
    j = torch.arange(N, device=x.device)
    return a[:, j % n_a] * b[:, j % n_b]
'''),
    ],
    "q2": [
        ("a manual masked softmax: -inf fill, max shift, zero rows kept at zero; einsum for the scores", '''
def mixture_attention(R, q, k, v, alpha, key_padding=None, causal=False):
    B, L, D = q.shape
    allowed = torch.ones(B, L, L, dtype=torch.bool, device=q.device)
    if key_padding is not None:
        allowed &= key_padding.unsqueeze(1)
    if causal:
        allowed &= torch.tril(torch.ones(L, L, dtype=torch.bool, device=q.device))
    logits = alpha[1] * torch.einsum("bid,bjd->bij", q, k) / D ** 0.5 + alpha[0] * R[:L, :L]
    logits = logits.masked_fill(~allowed, float("-inf"))
    top = logits.amax(-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = torch.exp(logits - top)
    total = e.sum(-1, keepdim=True)
    weights = e / torch.where(total > 0, total, torch.ones_like(total))
    return weights @ v, weights
'''),
    ],
    "q3": [
        ("the (L, L) logits built row by row from slices of the flipped r, softmax + nan_to_num", '''
def offset_synthesizer(r, v, key_padding=None, causal=False):
    B, L, Dv = v.shape
    N = (len(r) + 1) // 2
    if L > N:
        raise ValueError("L > N")
    rows = [r[N - 1 - i: N - 1 - i + L] for i in range(L)]
    logits = torch.stack(rows)
    allowed = torch.ones(B, L, L, dtype=torch.bool, device=v.device)
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, :]
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=v.device).tril()
    scores = logits.expand(B, L, L).masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return weights @ v, weights
'''),
    ],
    "q4": [
        ("a loop over samples, one matrix at a time, the maxima collected in a list", '''
def top_weight(L, sigma, n_samples, generator):
    tops = []
    for _ in range(n_samples):
        R = torch.randn(L, L, generator=generator, dtype=torch.float64) * sigma
        tops.extend(torch.softmax(R, 1).max(1).values.tolist())
    return sum(tops) / len(tops)
'''),
    ],
    "q5": [
        ("the whole model frozen, then the mechanism unfrozen; try/finally; the pre-trained state "
         "loaded again into the copy", '''
def finetune_routing(pretrained, task, steps, lr=1e-2, seed=0):
    mechanism = pretrained.attention.attention
    if sum(p.numel() for p in mechanism.parameters()) == 0:
        raise ValueError("no parameters to fine-tune")
    model = copy.deepcopy(pretrained)
    model.load_state_dict({k: v.clone() for k, v in pretrained.state_dict().items()})
    model.requires_grad_(False)
    model.attention.attention.requires_grad_(True)
    try:
        train(model, task, steps=steps, lr=lr, batch_size=32, seed=seed, progress=False)
    finally:
        model.requires_grad_(True)
    return model
'''),
        ("frozen by name: every parameter outside block.attention.attention", '''
def finetune_routing(pretrained, task, steps, lr=1e-2, seed=0):
    model = copy.deepcopy(pretrained)
    frozen = [p for name, p in model.named_parameters()
              if not name.startswith("block.attention.attention.")]
    if len(frozen) == len(list(model.parameters())):
        raise ValueError("the mechanism has no parameters")
    for p in frozen:
        p.requires_grad = False
    train(model, task, steps=steps, lr=lr, batch_size=32, seed=seed, progress=False)
    for p in frozen:
        p.requires_grad = True
    return model
'''),
    ],
}
