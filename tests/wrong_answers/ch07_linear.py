"""Plausible wrong answers to the chapter 7 exercises; each must lose points on its question."""

WRONG_ANSWERS = {
    "q1": [
        ("masks the values instead of the features (padded keys stay in the denominator)", '''
def linear_attention(phi_q, phi_k, v, keep, eps=EPS):
    v = v * keep[:, None].to(v.dtype)
    kv = phi_k.T @ v
    z = phi_k.sum(dim=0)
    return (phi_q @ kv) / (phi_q @ z + eps)[:, None]
'''),
        ("forgets the normaliser (no division by phi(q)·z)", '''
def linear_attention(phi_q, phi_k, v, keep, eps=EPS):
    phi_k = phi_k * keep[:, None].to(phi_k.dtype)
    return phi_q @ (phi_k.T @ v)
'''),
        ("softmax over phi(Q) phi(K)^T instead of the kernel normalisation", '''
def linear_attention(phi_q, phi_k, v, keep, eps=EPS):
    scores = (phi_q @ phi_k.T).masked_fill(~keep[None, :], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
'''),
    ],
    "q2": [
        ("reads the state before adding token i (query i does not see itself)", '''
def causal_recurrent(phi_q, phi_k, v, eps=EPS):
    L, M = phi_q.shape
    S = torch.zeros(M, v.shape[1], dtype=v.dtype, device=v.device)
    z = torch.zeros(M, dtype=v.dtype, device=v.device)
    outs = []
    for i in range(L):
        outs.append((phi_q[i] @ S) / (phi_q[i] @ z + eps))
        S = S + torch.outer(phi_k[i], v[i])
        z = z + phi_k[i]
    return torch.stack(outs)
'''),
        ("never updates z (normalises by the first key only)", '''
def causal_recurrent(phi_q, phi_k, v, eps=EPS):
    L, M = phi_q.shape
    S = torch.zeros(M, v.shape[1], dtype=v.dtype, device=v.device)
    z = phi_k[0]
    outs = []
    for i in range(L):
        S = S + torch.outer(phi_k[i], v[i])
        outs.append((phi_q[i] @ S) / (phi_q[i] @ z + eps))
    return torch.stack(outs)
'''),
        ("uses the full (non-causal) state for every query", '''
def causal_recurrent(phi_q, phi_k, v, eps=EPS):
    S = phi_k.T @ v
    z = phi_k.sum(0)
    return torch.stack([(phi_q[i] @ S) / (phi_q[i] @ z + eps) for i in range(phi_q.shape[0])])
'''),
    ],
    "q3": [
        ("exclusive prefix sum (query i does not see key i)", '''
def causal_cumsum(phi_q, phi_k, v, eps=EPS):
    outer = phi_k[:, :, None] * v[:, None, :]
    S = torch.cumsum(outer, dim=0) - outer
    z = torch.cumsum(phi_k, dim=0) - phi_k
    return torch.einsum("lm,lmd->ld", phi_q, S) / ((phi_q * z).sum(-1) + eps)[:, None]
'''),
        ("non-causal prefix sum: cumulative sum from the end (suffix), sees the future", '''
def causal_cumsum(phi_q, phi_k, v, eps=EPS):
    S = torch.cumsum((phi_k[:, :, None] * v[:, None, :]).flip(0), dim=0).flip(0)
    z = torch.cumsum(phi_k.flip(0), dim=0).flip(0)
    return torch.einsum("lm,lmd->ld", phi_q, S) / ((phi_q * z).sum(-1) + eps)[:, None]
'''),
        ("cumulative sum over the feature axis instead of the positions", '''
def causal_cumsum(phi_q, phi_k, v, eps=EPS):
    S = torch.cumsum(phi_k[:, :, None] * v[:, None, :], dim=1)
    z = torch.cumsum(phi_k, dim=1)
    return torch.einsum("lm,lmd->ld", phi_q, S) / ((phi_q * z).sum(-1) + eps)[:, None]
'''),
    ],
    "q4": [
        ("reads the old state, then updates it (token i missing from its own output)", '''
def decode_step(S, z, phi_q_i, phi_k_i, v_i, eps=EPS):
    o_i = (phi_q_i @ S) / (phi_q_i @ z + eps)
    return o_i, S + torch.outer(phi_k_i, v_i), z + phi_k_i
'''),
        ("updates the state in place (the caller's state changes)", '''
def decode_step(S, z, phi_q_i, phi_k_i, v_i, eps=EPS):
    S += torch.outer(phi_k_i, v_i)
    z += phi_k_i
    return (phi_q_i @ S) / (phi_q_i @ z + eps), S, z
'''),
        ("forgets to add phi(k_i) to z", '''
def decode_step(S, z, phi_q_i, phi_k_i, v_i, eps=EPS):
    S_new = S + torch.outer(phi_k_i, v_i)
    return (phi_q_i @ S_new) / (phi_q_i @ z + eps), S_new, z
'''),
    ],
}
