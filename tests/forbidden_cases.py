"""Submissions that call a forbidden attnkit function, shared by tests/test_exercises.py (the
one-line calls, tried on every question by the trial runner) and tests/test_forbidden.py (the
batch grader and the self-check on ch06).
"""

from __future__ import annotations

import ast

# other ways to reach a forbidden function, each refused as well:
# {assignment: (question, path, {name: answer})}
VARIANTS = {
    "ch06-lsh": (
        "q4",
        "attnkit.reversible.chunked_feed_forward",
        {
            "from-import-as": "from attnkit.reversible import chunked_feed_forward as f\n"
            "def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return f(x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "getattr": "def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return getattr(attnkit.reversible, 'chunked_feed_forward')(\n"
            "        x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "import_module": "import importlib\ndef ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return importlib.import_module('attnkit.reversible').chunked_feed_forward(\n"
            "        x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "module-alias": "import attnkit.reversible as R\n"
            "def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return R.chunked_feed_forward(\n"
            "        x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "top-level-alias": "ffn_hidden_chunks = lambda x, W1, b1, W2, b2, chunk: "
            "attnkit.reversible.chunked_feed_forward(\n"
            "    x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "partial": "import functools\n"
            "_f = functools.partial(attnkit.reversible.chunked_feed_forward)\n"
            "def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return _f(x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "copied-code": "import types\n_f = attnkit.reversible.chunked_feed_forward\n"
            "_g = types.FunctionType(_f.__code__, _f.__globals__)\n"
            "def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return _g(x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
        },
    ),
    "ch08-performer": (
        "q4",
        "attnkit.random_features.PerformerAttention",
        {
            "subclass": "class _P(attnkit.random_features.PerformerAttention):\n    pass\n"
            "def causal_favor(q, k, v, omega):\n    return _P(n_features=omega.shape[0])(q, k, v)",
        },
    ),
}


def _module_part(path: str) -> str:
    import importlib

    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            importlib.import_module(".".join(parts[:i]))
            return ".".join(parts[:i])
        except ImportError:
            continue
    raise ImportError(path)


def one_liner(solution: str, path: str) -> str:
    """The solution cell with every function it defines replaced by a one-line call to ``path``
    (``path.apply`` for a ``torch.autograd.Function``, which is called that way)."""
    import torch

    from attnkit.grading.sandbox import resolve

    target = resolve(path)
    call = (
        f"{path}.apply"
        if isinstance(target, type) and issubclass(target, torch.autograd.Function)
        else path
    )
    names = [n.name for n in ast.parse(solution).body if isinstance(n, ast.FunctionDef)]
    defs = "".join(
        f"def {n}(*args, **kwargs):\n    return {call}(*args, **kwargs)\n\n\n"
        for n in names
    )
    return f"import attnkit\nimport {_module_part(path)}\n\n\n{defs}"
