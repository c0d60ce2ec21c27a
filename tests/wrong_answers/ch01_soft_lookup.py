"""Plausible wrong answers to the chapter 1 exercises; each must lose points on its question."""

WRONG_ANSWERS = {
    "q1": [
        ("forgets the minus sign (far keys get the largest weights)", '''
def gaussian_weights(queries, keys, sigma):
    scores = (queries[:, None] - keys[None, :]) ** 2 / (2 * sigma**2)
    return torch.softmax(scores, dim=-1)
'''),
        ("divides by sigma^2 instead of 2 sigma^2", '''
def gaussian_weights(queries, keys, sigma):
    scores = -(queries[:, None] - keys[None, :]) ** 2 / sigma**2
    return torch.softmax(scores, dim=-1)
'''),
        ("normalises over the queries (columns sum to 1) instead of the keys", '''
def gaussian_weights(queries, keys, sigma):
    scores = -(queries[:, None] - keys[None, :]) ** 2 / (2 * sigma**2)
    return torch.softmax(scores, dim=0)
'''),
    ],
    "q2": [
        ("argmax of the distance (the farthest key) instead of argmin", '''
def hard_lookup(queries, keys, values):
    d2 = (queries[:, None] - keys[None, :]) ** 2
    nearest = d2.argmax(dim=1)
    weights = torch.nn.functional.one_hot(nearest, num_classes=keys.shape[0]).to(values.dtype)
    return weights @ values, weights
'''),
        ("nearest key by signed difference instead of distance (argmin of q - k)", '''
def hard_lookup(queries, keys, values):
    diff = queries[:, None] - keys[None, :]
    nearest = diff.argmin(dim=1)
    weights = torch.nn.functional.one_hot(nearest, num_classes=keys.shape[0]).to(values.dtype)
    return weights @ values, weights
'''),
    ],
    "q3": [
        ("plain average of the values (ignores the queries)", '''
def nadaraya_watson(queries, keys, values, sigma):
    return values.mean(dim=0, keepdim=True).expand(queries.shape[0], -1)
'''),
        ("softmax over the wrong axis (over queries)", '''
def nadaraya_watson(queries, keys, values, sigma):
    d2 = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(dim=-1)
    weights = torch.softmax(-d2 / (2 * sigma**2), dim=0)
    return weights @ values
'''),
        ("Euclidean distance instead of its square", '''
def nadaraya_watson(queries, keys, values, sigma):
    d = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(dim=-1).sqrt()
    weights = torch.softmax(-d / (2 * sigma**2), dim=-1)
    return weights @ values
'''),
    ],
    "q4": [
        ("does not leave the point out (training error, not leave-one-out)", '''
def loo_error(x, y, sigma):
    scores = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)
    pred = torch.softmax(scores, dim=-1) @ y
    return ((pred - y) ** 2).mean().item()
'''),
        ("zeroes the self weight after the softmax without renormalising", '''
def loo_error(x, y, sigma):
    scores = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)
    weights = torch.softmax(scores, dim=-1) * (1 - torch.eye(x.shape[0], device=x.device, dtype=x.dtype))
    pred = weights @ y
    return ((pred - y) ** 2).mean().item()
'''),
        ("root mean squared error instead of the mean squared error", '''
def loo_error(x, y, sigma):
    scores = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)
    scores = scores.masked_fill(torch.eye(x.shape[0], dtype=torch.bool, device=x.device), float("-inf"))
    pred = torch.softmax(scores, dim=-1) @ y
    return ((pred - y) ** 2).mean().sqrt().item()
'''),
    ],
}
