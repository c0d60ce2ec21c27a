"""Plausible wrong answers to the chapter 10 exercises; each must lose points on its question.

CORRECT_ANSWERS are right answers written differently from the solution; they must score full marks.
"""

_REPORT = '''

textbook_exponent = memory_exponent(SoftmaxAttention(fast=False), [64, 128, 256, 512],
                                    generator=torch.Generator().manual_seed(0))
fused_exponent = memory_exponent(SoftmaxAttention(), [64, 128, 256, 512],
                                 generator=torch.Generator().manual_seed(0))
'''

_Q1_HEAD = '''
import math

from attnkit.mechanisms import SoftmaxAttention

'''

_LS = '''
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return float(sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs))
'''

_Q3_HEAD = '''
import math


def relative_error(mechanism, q, k, v, *, mask=None, causal=False):
    with torch.no_grad():
        out = mechanism(q, k, v, mask=mask, causal=causal)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        L, S = scores.shape[-2], scores.shape[-1]
'''

_Q4_HEAD = '''
import math

from attnkit.mechanisms import Mechanism, check_mechanism_inputs
from attnkit.registry import MECHANISMS, make_mechanism


class WindowedReLUAttention(Mechanism):
    def __init__(self, *, window: int = 4):
        super().__init__()
        self.window = window

    def forward(self, q, k, v, *, mask=None, causal=False):
        check_mechanism_inputs(q, k, v, mask)
        L, S = q.shape[2], k.shape[2]
        i = torch.arange(L)[:, None]
        j = torch.arange(S)[None, :]
'''

_Q4_REG = '''

MECHANISMS["relu_window"] = WindowedReLUAttention
'''

WRONG_ANSWERS = {
    "q1": [
        ("slope between the end points only, not least squares", _Q1_HEAD + '''
def memory_exponent(mechanism, lengths, *, generator, batch=1, heads=2, head_dim=8):
    sizes = {}
    for n in lengths:
        q, k, v = (torch.randn(batch, heads, n, head_dim, generator=generator) for _ in range(3))
        with torch.no_grad(), LargestTensor() as rec:
            mechanism(q, k, v)
        sizes[n] = rec.numel
    lo, hi = min(sizes), max(sizes)
    return math.log(sizes[hi] / sizes[lo]) / math.log(hi / lo)
''' + _REPORT),
        ("records the drawing of the inputs too", _Q1_HEAD + '''
def memory_exponent(mechanism, lengths, *, generator, batch=1, heads=2, head_dim=8):
    xs, ys = [], []
    for n in lengths:
        with torch.no_grad(), LargestTensor() as rec:
            q, k, v = (torch.randn(batch, heads, n, head_dim, generator=generator) for _ in range(3))
            mechanism(q, k, v)
        xs.append(math.log(n))
        ys.append(math.log(rec.numel))
''' + _LS + _REPORT),
        ("draws the inputs from the global RNG", _Q1_HEAD + '''
def memory_exponent(mechanism, lengths, *, generator, batch=1, heads=2, head_dim=8):
    xs, ys = [], []
    for n in lengths:
        q, k, v = (torch.randn(batch, heads, n, head_dim) for _ in range(3))
        with torch.no_grad(), LargestTensor() as rec:
            mechanism(q, k, v)
        xs.append(math.log(n))
        ys.append(math.log(rec.numel))
''' + _LS + _REPORT),
        ("fits log(numel) against n instead of log(n)", _Q1_HEAD + '''
def memory_exponent(mechanism, lengths, *, generator, batch=1, heads=2, head_dim=8):
    xs, ys = [], []
    for n in lengths:
        q, k, v = (torch.randn(batch, heads, n, head_dim, generator=generator) for _ in range(3))
        with torch.no_grad(), LargestTensor() as rec:
            mechanism(q, k, v)
        xs.append(float(n))
        ys.append(math.log(rec.numel))
''' + _LS + _REPORT),
        ("ignores batch, heads and head_dim (always 1, 2, 8)", _Q1_HEAD + '''
def memory_exponent(mechanism, lengths, *, generator, batch=1, heads=2, head_dim=8):
    xs, ys = [], []
    for n in lengths:
        q, k, v = (torch.randn(1, 2, n, 8, generator=generator) for _ in range(3))
        with torch.no_grad(), LargestTensor() as rec:
            mechanism(q, k, v)
        xs.append(math.log(n))
        ys.append(math.log(rec.numel))
''' + _LS + _REPORT),
        ("returns a tensor (torch least squares), not a Python float", _Q1_HEAD + '''
def memory_exponent(mechanism, lengths, *, generator, batch=1, heads=2, head_dim=8):
    xs, ys = [], []
    for n in lengths:
        q, k, v = (torch.randn(batch, heads, n, head_dim, generator=generator) for _ in range(3))
        with torch.no_grad(), LargestTensor() as rec:
            mechanism(q, k, v)
        xs.append(math.log(n))
        ys.append(math.log(rec.numel))
    X = torch.tensor([[x, 1.0] for x in xs], dtype=torch.float64)
    return torch.linalg.lstsq(X, torch.tensor(ys, dtype=torch.float64)[:, None]).solution[0, 0]
''' + _REPORT.replace("memory_exponent(", "float(memory_exponent(").replace(
            "manual_seed(0))", "manual_seed(0)))")),
    ],
    "q2": [
        ("the chapter's version: the measured length from which it stays faster", '''
def crossover_length(mechanism, baseline):
    answer = None
    for n in sorted(set(mechanism) & set(baseline), reverse=True):
        if mechanism[n] < baseline[n]:
            answer = n
        else:
            break
    return answer
'''),
        ("interpolates the time difference linearly in n", '''
def crossover_length(mechanism, baseline):
    common = sorted(set(mechanism) & set(baseline))
    d = {n: mechanism[n] - baseline[n] for n in common}
    if not common or d[common[-1]] >= 0:
        return None
    i = len(common) - 1
    while i > 0 and d[common[i - 1]] < 0:
        i -= 1
    if i == 0:
        return float(common[0])
    lo, hi = common[i - 1], common[i]
    return float(lo + d[lo] / (d[lo] - d[hi]) * (hi - lo))
'''),
        ("the first crossing from the short end (a lucky point counts)", '''
import math


def crossover_length(mechanism, baseline):
    common = sorted(set(mechanism) & set(baseline))
    r = {n: math.log(mechanism[n] / baseline[n]) for n in common}
    if not common or r[common[-1]] >= 0:
        return None
    if r[common[0]] < 0:
        return float(common[0])
    for lo, hi in zip(common, common[1:]):
        if r[lo] >= 0 > r[hi]:
            return float(math.exp(math.log(lo) + r[lo] / (r[lo] - r[hi]) * math.log(hi / lo)))
'''),
        ("fills a length missing from the baseline with the mechanism's own time", '''
import math


def crossover_length(mechanism, baseline):
    lengths = sorted(set(mechanism) | set(baseline))
    base = {n: baseline.get(n, mechanism.get(n)) for n in lengths}
    mech = {n: mechanism.get(n, baseline.get(n)) for n in lengths}
    r = {n: math.log(mech[n]) - math.log(base[n]) for n in lengths}
    if r[lengths[-1]] >= 0:
        return None
    i = len(lengths) - 1
    while i > 0 and r[lengths[i - 1]] < 0:
        i -= 1
    if i == 0:
        return float(lengths[0])
    lo, hi = lengths[i - 1], lengths[i]
    return float(math.exp(math.log(lo) + r[lo] / (r[lo] - r[hi]) * math.log(hi / lo)))
'''),
        ("returns the measured length above the crossing (no interpolation)", '''
import math


def crossover_length(mechanism, baseline):
    common = sorted(set(mechanism) & set(baseline))
    if not common or mechanism[common[-1]] >= baseline[common[-1]]:
        return None
    i = len(common) - 1
    while i > 0 and mechanism[common[i - 1]] < baseline[common[i - 1]]:
        i -= 1
    return float(common[i])
'''),
    ],
    "q3": [
        ("the given code unchanged (reference ignores mask and causal)", _Q3_HEAD + '''
        exact = torch.softmax(scores, dim=-1) @ v
    return float((out - exact).norm() / exact.norm())
'''),
        ("applies the mask but forgets causal", _Q3_HEAD + '''
        allowed = torch.ones(L, S, dtype=torch.bool)
        if mask is not None:
            allowed = allowed & mask
        w = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1).masked_fill(~allowed, 0.0)
        exact = w @ v
    return float((out - exact).norm() / exact.norm())
'''),
        ("causal aligned bottom-right", _Q3_HEAD + '''
        allowed = torch.ones(L, S, dtype=torch.bool)
        if causal:
            allowed = allowed.tril(diagonal=S - L)
        if mask is not None:
            allowed = allowed & mask
        w = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1).masked_fill(~allowed, 0.0)
        exact = w @ v
    return float((out - exact).norm() / exact.norm())
'''),
        ("fills with -1e9: a fully masked query averages the masked keys", _Q3_HEAD + '''
        allowed = torch.ones(L, S, dtype=torch.bool)
        if causal:
            allowed = allowed.tril()
        if mask is not None:
            allowed = allowed & mask
        exact = torch.softmax(scores.masked_fill(~allowed, -1e9), dim=-1) @ v
    return float((out - exact).norm() / exact.norm())
'''),
        ("-inf fill without a guard: NaN for a fully masked query", _Q3_HEAD + '''
        allowed = torch.ones(L, S, dtype=torch.bool)
        if causal:
            allowed = allowed.tril()
        if mask is not None:
            allowed = allowed & mask
        exact = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v
    return float((out - exact).norm() / exact.norm())
'''),
        ("divides by the norm of the mechanism's output, not of the exact one", _Q3_HEAD + '''
        allowed = torch.ones(L, S, dtype=torch.bool)
        if causal:
            allowed = allowed.tril()
        if mask is not None:
            allowed = allowed & mask
        w = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1).masked_fill(~allowed, 0.0)
        exact = w @ v
    return float((out - exact).norm() / out.norm())
'''),
    ],
    "q4": [
        ("divides by the number of keys S, not by |A_i|", _Q4_HEAD + '''
        allowed = (i - j).abs() <= self.window
        if causal:
            allowed = allowed & (j <= i)
        if mask is not None:
            allowed = allowed & mask
        w = torch.relu(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])) * allowed
        return w / S @ v
''' + _Q4_REG),
        ("window off by one: |i - j| < w", _Q4_HEAD + '''
        allowed = (i - j).abs() < self.window
        if causal:
            allowed = allowed & (j <= i)
        if mask is not None:
            allowed = allowed & mask
        allowed = allowed.expand(q.shape[0], q.shape[1], L, S)
        w = torch.relu(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])) * allowed
        return w / allowed.sum(-1, keepdim=True).clamp(min=1) @ v
''' + _Q4_REG),
        ("counts the window's keys even where the mask forbids them", _Q4_HEAD + '''
        window = (i - j).abs() <= self.window
        if causal:
            window = window & (j <= i)
        allowed = window if mask is None else window & mask
        w = torch.relu(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])) * allowed
        return w / window.sum(-1, keepdim=True).clamp(min=1) @ v
''' + _Q4_REG),
        ("0/0: NaN for a query with no allowed key", _Q4_HEAD + '''
        allowed = (i - j).abs() <= self.window
        if causal:
            allowed = allowed & (j <= i)
        if mask is not None:
            allowed = allowed & mask
        allowed = allowed.expand(q.shape[0], q.shape[1], L, S)
        w = torch.relu(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])) * allowed
        return w / allowed.sum(-1, keepdim=True) @ v
''' + _Q4_REG),
        ("scales by 1/sqrt(Dv)", _Q4_HEAD + '''
        allowed = (i - j).abs() <= self.window
        if causal:
            allowed = allowed & (j <= i)
        if mask is not None:
            allowed = allowed & mask
        allowed = allowed.expand(q.shape[0], q.shape[1], L, S)
        w = torch.relu(q @ k.transpose(-2, -1) / math.sqrt(v.shape[-1])) * allowed
        return w / allowed.sum(-1, keepdim=True).clamp(min=1) @ v
''' + _Q4_REG),
        ("ignores causal", _Q4_HEAD + '''
        allowed = (i - j).abs() <= self.window
        if mask is not None:
            allowed = allowed & mask
        allowed = allowed.expand(q.shape[0], q.shape[1], L, S)
        w = torch.relu(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])) * allowed
        return w / allowed.sum(-1, keepdim=True).clamp(min=1) @ v
''' + _Q4_REG),
        ("right maths, but the positions are created without device= (fails on a GPU)", _Q4_HEAD + '''
        allowed = (i - j).abs() <= self.window
        if causal:
            allowed = allowed & (j <= i)
        if mask is not None:
            allowed = allowed & mask
        allowed = allowed.expand(q.shape[0], q.shape[1], L, S)
        w = torch.relu(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])) * allowed
        return w / allowed.sum(-1, keepdim=True).clamp(min=1) @ v
''' + _Q4_REG),
        ("right maths, never registered", _Q4_HEAD + '''
        allowed = (i - j).abs() <= self.window
        if causal:
            allowed = allowed & (j <= i)
        if mask is not None:
            allowed = allowed & mask
        allowed = allowed.expand(q.shape[0], q.shape[1], L, S)
        w = torch.relu(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])) * allowed
        return w / allowed.sum(-1, keepdim=True).clamp(min=1) @ v


MECHANISMS.pop("relu_window", None)


def make_mechanism(name, **settings):
    return WindowedReLUAttention(**settings)
'''),
    ],
}

CORRECT_ANSWERS = {
    "q1": [
        ("numpy's polyfit, lengths drawn in another order", _Q1_HEAD + '''
import numpy as np


def memory_exponent(mechanism, lengths, *, generator, batch=1, heads=2, head_dim=8):
    sizes = []
    for n in lengths:
        q = torch.randn(batch, heads, n, head_dim, generator=generator)
        k = torch.randn(batch, heads, n, head_dim, generator=generator)
        v = torch.randn(batch, heads, n, head_dim, generator=generator)
        rec = LargestTensor()
        with rec:
            mechanism(q, k, v)
        sizes.append(rec.numel)
    return float(np.polyfit(np.log(np.asarray(lengths, dtype=float)), np.log(sizes), 1)[0])
''' + _REPORT),
    ],
    "q2": [
        ("log-ratio of the times, scanned from the short end", '''
import math


def crossover_length(mechanism, baseline):
    common = sorted(n for n in mechanism if n in baseline)
    if not common:
        return None
    r = [math.log(mechanism[n] / baseline[n]) for n in common]
    last_slow = None
    for idx, value in enumerate(r):
        if value >= 0:
            last_slow = idx
    if last_slow == len(common) - 1:
        return None
    if last_slow is None:
        return float(common[0])
    a, b = common[last_slow], common[last_slow + 1]
    t = r[last_slow] / (r[last_slow] - r[last_slow + 1])
    return float(a * (b / a) ** t)
'''),
    ],
    "q3": [
        ("combined mask with build_mask, zeros by nan_to_num, einsum", '''
import math

from attnkit.masking import build_mask


def relative_error(mechanism, q, k, v, *, mask=None, causal=False):
    with torch.no_grad():
        out = mechanism(q, k, v, mask=mask, causal=causal)
        s = torch.einsum("bhld,bhsd->bhls", q, k) / math.sqrt(q.shape[-1])
        allowed = build_mask(q.shape[2], k.shape[2], mask=mask, causal=causal, device=q.device)
        if allowed is not None:
            s = torch.where(allowed, s, torch.tensor(float("-inf"), dtype=s.dtype))
        w = torch.nan_to_num(torch.softmax(s, dim=-1), nan=0.0)
        exact = torch.einsum("bhls,bhsv->bhlv", w, v)
    return (torch.linalg.vector_norm(out - exact) / torch.linalg.vector_norm(exact)).item()
'''),
    ],
    "q4": [
        ("einsum, masked_fill and a safe division by where", '''
import math

from attnkit.mechanisms import Mechanism, check_mechanism_inputs
from attnkit.registry import MECHANISMS, make_mechanism


class WindowedReLUAttention(Mechanism):
    def __init__(self, *, window=4):
        super().__init__()
        self.window = window

    def forward(self, q, k, v, *, mask=None, causal=False):
        check_mechanism_inputs(q, k, v, mask)
        B, H, L, D = q.shape
        S = k.shape[2]
        pos_q = torch.arange(L, device=q.device).view(L, 1)
        pos_k = torch.arange(S, device=q.device).view(1, S)
        ok = (pos_k >= pos_q - self.window) & (pos_k <= pos_q + self.window)
        if causal:
            ok = ok & (pos_k <= pos_q)
        ok = ok.expand(B, H, L, S) if mask is None else ok & mask.expand(B, H, L, S)
        s = torch.einsum("bhld,bhsd->bhls", q, k) / D ** 0.5
        w = s.clamp(min=0).masked_fill(~ok, 0.0)
        n = ok.sum(-1, keepdim=True)
        w = torch.where(n > 0, w / n.clamp(min=1), torch.zeros_like(w))
        return torch.einsum("bhls,bhsv->bhlv", w, v)


MECHANISMS["relu_window"] = WindowedReLUAttention
'''),
    ],
}
