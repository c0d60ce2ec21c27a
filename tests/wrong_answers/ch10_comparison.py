"""Plausible wrong answers for the chapter 10 exercises; each must lose points on its question."""

WRONG_ANSWERS = {
    "q1": [
        ("slope through the first and last points only", '''
import math


def fit_exponent(lengths, times):
    if len(lengths) < 2:
        raise ValueError("need two points")
    return (math.log(times[-1]) - math.log(times[0])) / (math.log(lengths[-1]) - math.log(lengths[0]))
'''),
        ("regresses log n on log t (the reciprocal slope)", '''
import numpy as np


def fit_exponent(lengths, times):
    if len(lengths) < 2:
        raise ValueError("need two points")
    return float(np.polyfit(np.log(times), np.log(lengths), 1)[0])
'''),
        ("log of the time against the length itself (not its log)", '''
import numpy as np


def fit_exponent(lengths, times):
    if len(lengths) < 2:
        raise ValueError("need two points")
    return float(np.polyfit(np.asarray(lengths, dtype=float), np.log(times), 1)[0])
'''),
    ],
    "q2": [
        ("first length where the mechanism is faster, ignoring a later reversal", '''
def crossover_length(mechanism, baseline):
    common = sorted(set(mechanism) & set(baseline))
    if not common or mechanism[common[-1]] >= baseline[common[-1]]:
        return None
    for n in common:
        if mechanism[n] < baseline[n]:
            return n
'''),
        ("a tie counts as faster", '''
def crossover_length(mechanism, baseline):
    common = sorted(set(mechanism) & set(baseline))
    answer = None
    for n in reversed(common):
        if mechanism[n] <= baseline[n]:
            answer = n
        else:
            break
    return answer
'''),
        ("walks the dicts in insertion order instead of by length", '''
def crossover_length(mechanism, baseline):
    common = [n for n in mechanism if n in baseline]
    answer = None
    for n in reversed(common):
        if mechanism[n] < baseline[n]:
            answer = n
        else:
            break
    return answer
'''),
    ],
    "q3": [
        ("fully masked rows divided by zero (NaN)", '''
from torch import nn
from attnkit.masking import build_mask
from attnkit.mechanisms import check_mechanism_inputs
from attnkit.registry import MECHANISMS, make_mechanism


class MeanAttention(nn.Module):
    supports_causal = True

    def forward(self, q, k, v, *, mask=None, causal=False):
        check_mechanism_inputs(q, k, v, mask)
        B, H, L, S = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
        allowed = build_mask(L, S, mask=mask, causal=causal, device=q.device)
        weights = torch.ones(B, H, L, S, dtype=v.dtype, device=v.device)
        if allowed is not None:
            weights = weights * allowed
        weights = weights / weights.sum(dim=-1, keepdim=True)
        return weights @ v


MECHANISMS["mean"] = MeanAttention
'''),
        ("causal mask the wrong way round (sees the future)", '''
from torch import nn
from attnkit.masking import build_mask
from attnkit.mechanisms import check_mechanism_inputs
from attnkit.registry import MECHANISMS, make_mechanism


class MeanAttention(nn.Module):
    supports_causal = True

    def forward(self, q, k, v, *, mask=None, causal=False):
        check_mechanism_inputs(q, k, v, mask)
        B, H, L, S = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
        allowed = build_mask(L, S, mask=mask, device=q.device)
        weights = torch.ones(B, H, L, S, dtype=v.dtype, device=v.device)
        if causal:
            weights = weights.triu()
        if allowed is not None:
            weights = weights * allowed
        weights = weights / weights.sum(dim=-1, keepdim=True).clamp(min=1)
        return weights @ v


MECHANISMS["mean"] = MeanAttention
'''),
        ("ignores the mask", '''
from torch import nn
from attnkit.masking import build_mask
from attnkit.mechanisms import check_mechanism_inputs
from attnkit.registry import MECHANISMS, make_mechanism


class MeanAttention(nn.Module):
    supports_causal = True

    def forward(self, q, k, v, *, mask=None, causal=False):
        check_mechanism_inputs(q, k, v, mask)
        B, H, L, S = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
        allowed = build_mask(L, S, causal=causal, device=q.device)
        weights = torch.ones(B, H, L, S, dtype=v.dtype, device=v.device)
        if allowed is not None:
            weights = weights * allowed
        weights = weights / weights.sum(dim=-1, keepdim=True).clamp(min=1)
        return weights @ v


MECHANISMS["mean"] = MeanAttention
'''),
        ("divides by the number of all keys, not the allowed ones", '''
from torch import nn
from attnkit.masking import build_mask
from attnkit.mechanisms import check_mechanism_inputs
from attnkit.registry import MECHANISMS, make_mechanism


class MeanAttention(nn.Module):
    supports_causal = True

    def forward(self, q, k, v, *, mask=None, causal=False):
        check_mechanism_inputs(q, k, v, mask)
        B, H, L, S = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
        allowed = build_mask(L, S, mask=mask, causal=causal, device=q.device)
        weights = torch.ones(B, H, L, S, dtype=v.dtype, device=v.device)
        if allowed is not None:
            weights = weights * allowed
        return weights @ v / S


MECHANISMS["mean"] = MeanAttention
'''),
    ],
}
