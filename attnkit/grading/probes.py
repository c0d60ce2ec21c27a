"""Probes: the objects a hidden test hands to a student's function, sent as plain data.

A hidden test that passes an answer something to call (an attention "mechanism" that returns a
fixed tensor, a branch that counts its calls) cannot have its calls sent to the student's kernel
as plain data, and the test's own classes are secret. A probe is such an object whose code is
public (this module): the grader sends it as its class name, the keyword arguments that build
it (:meth:`Probe.spec`) and what it has seen so far (:meth:`Probe.observed`); the kernel builds
it again and calls the answer with it; what the probe saw during the call comes back as plain
data and is set on the judge's own probe (:meth:`Probe.restore`), where the hidden test reads it.

What a probe saw is reported by the student's kernel, which can lie about it (as it can about
the operations :class:`attnkit.grading.replay.Operations` counts); the results the answer
returns are judged against the test's own references, computed in the judge.

A probe passed to several calls starts each of them, in the kernel, from the state it had when
the grader rehearsed that call with the solution. A probe with weights draws them from a seed
of its own and leaves the global random state as it was.

A *runner* (:data:`RUNNERS`) is a public function a test calls that runs the student's code in
the kernel and returns plain data: the mechanism class the student registered, run
(:func:`run_mechanism`) or described (:func:`describe_mechanism`), or the model the student's
function returns, reported (:func:`model_report`). The grader records a runner's calls in the
kernel and replays them in the judge, as it does the answers' own functions.

To add one: a probe subclasses :class:`Probe` (``spec``, and ``observed``/``restore`` if it
sees anything); a runner returns plain data and is named in :data:`RUNNERS`.
"""

from __future__ import annotations

import contextlib
import sys

import torch
from torch import nn

__all__ = [
    "REGISTRY",
    "Probe",
    "build",
    "Fixed",
    "CountedBranch",
    "InputProbe",
    "Made",
    "PairwiseScore",
    "SelfAttention",
    "FeedForward",
    "LayerNorm",
    "Zero",
    "RUNNERS",
    "run_mechanism",
    "describe_mechanism",
    "model_report",
    "answer",
    "tiny_model",
    "reorder",
]

REGISTRY: dict[str, type] = {}


class Probe:
    """Base of the probes: a subclass is registered by its class name."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        REGISTRY[cls.__name__] = cls

    def spec(self) -> dict:
        """The keyword arguments that build this probe again (plain data)."""
        raise NotImplementedError

    def observed(self) -> dict:
        """What the probe has seen (plain data); empty for one that sees nothing."""
        return {}

    def restore(self, observed: dict) -> None:
        """Set what :meth:`observed` returned (from the kernel, so checked, never trusted)."""


@contextlib.contextmanager
def _seeded(seed: int):
    """Inside, torch's global (CPU) random numbers are drawn from ``seed``; after, the global
    random state is as it was: a probe's weights depend on its seed alone."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def build(name: str, spec: dict, observed: dict):
    """The probe ``name`` built from ``spec`` and set to ``observed``."""
    if name not in REGISTRY:
        _probe_classes()
    if name not in REGISTRY:
        raise ValueError(f"no probe named {name!r}")
    if not isinstance(spec, dict) or not all(isinstance(k, str) for k in spec):
        raise ValueError(f"probe {name}: spec must be a dict of keyword arguments")
    with torch.random.fork_rng(devices=[]):  # a probe's draws move no global state
        probe = REGISTRY[name](**spec)
    if isinstance(observed, dict):
        probe.restore(observed)
    return probe


class Fixed(Probe, nn.Module):
    """An attention "mechanism" that returns ``out`` whatever it is called with."""

    def __init__(self, out: torch.Tensor):
        super().__init__()
        self.out = out

    def forward(self, q, k, v, *, mask=None, causal=False):
        return self.out

    def spec(self) -> dict:
        return {"out": self.out}


class CountedBranch(Probe, nn.Module):
    """A small residual branch with parameters (float64, drawn from ``seed``) that counts its
    calls: ``y = gelu(x W1) W2 + 0.3 sin(x)``, ``x`` of shape ``(..., E)``."""

    def __init__(self, E: int, seed: int):
        super().__init__()
        self.E, self.seed = E, seed
        g = torch.Generator().manual_seed(seed)
        shape1, shape2 = (E, 2 * E), (2 * E, E)
        w1 = torch.randn(shape1, generator=g, dtype=torch.float64) / E**0.5
        w2 = torch.randn(shape2, generator=g, dtype=torch.float64) / E**0.5
        self.w1, self.w2 = nn.Parameter(w1), nn.Parameter(w2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return nn.functional.gelu(x @ self.w1) @ self.w2 + 0.3 * x.sin()

    def spec(self) -> dict:
        return {"E": self.E, "seed": self.seed}

    def observed(self) -> dict:
        grads = [None if p.grad is None else p.grad.detach() for p in self.parameters()]
        return {"calls": self.calls, "grads": grads}

    def restore(self, observed: dict) -> None:
        calls = observed.get("calls")
        if type(calls) is int and calls >= 0:
            self.calls = calls
        grads = observed.get("grads")
        if not isinstance(grads, list):
            return
        for p, grad in zip(self.parameters(), grads):
            fits = isinstance(grad, torch.Tensor) and grad.shape == p.shape
            p.grad = grad.to(p).detach() if fits else None


class InputProbe(Probe, nn.Module):
    """An attention "mechanism" that checks its inputs are ``(batch, heads, n, head_dim)`` for
    ``shape = (batch, heads, head_dim)``, remembers a number that depends on all of them
    (``seen``), and whose largest tensor has ``max(n^2, 7n)`` elements."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.seen: list[float] = []

    def forward(self, q, k, v):
        n = q.shape[2]
        want = (self.shape[0], self.shape[1], n, self.shape[2])
        assert tuple(q.shape) == want, (
            f"q must have shape (batch, heads, n, head_dim) = {want}, got "
            f"{tuple(q.shape)}"
        )
        assert k.shape == q.shape and v.shape == q.shape, (
            "q, k and v must all be (batch, heads, n, head_dim)"
        )
        self.seen.append(float(q.sum()) + 2 * float(k.sum()) + 3 * float(v.sum()))
        return torch.zeros(n, n).sum() + torch.zeros(7 * n).sum()

    def spec(self) -> dict:
        return {"shape": list(self.shape)}

    def observed(self) -> dict:
        return {"seen": list(self.seen)}

    def restore(self, observed: dict) -> None:
        seen = observed.get("seen")
        if isinstance(seen, list) and all(type(x) is float for x in seen):
            self.seen = list(seen)


class Made(Probe, nn.Module):
    """The library's mechanism ``name`` (:func:`attnkit.registry.make_mechanism`) with its
    keyword ``settings``: a real mechanism, sent by name."""

    def __init__(self, name: str, settings: dict | None = None):
        super().__init__()
        from attnkit.registry import make_mechanism

        self.name, self.settings = name, dict(settings or {})
        self.mechanism = make_mechanism(name, **self.settings)

    def forward(self, *args, **kwargs):
        return self.mechanism(*args, **kwargs)

    def spec(self) -> dict:
        return {"name": self.name, "settings": dict(self.settings)}


class PairwiseScore(Probe):
    """A score ``a(s, h)`` of ONE decoder state ``s`` ``(Ds,)`` and ONE encoder state ``h``
    ``(Dh,)`` that checks its arguments and counts its calls (``calls``). ``kind``:
    ``"additive"``, ``w_v . tanh(W_s s + W_h h)``; ``"bilinear"``, ``s^T W h``; ``"dot"``,
    ``scale (s . h) + shift``. ``weights``: the tensors the kind names."""

    KINDS = {"additive": ("W_s", "W_h", "w_v"), "bilinear": ("W",), "dot": ()}

    def __init__(self, kind, Ds, Dh, weights=None, scale=1.0, shift=0.0):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {sorted(self.KINDS)}, got {kind!r}")
        self.kind, self.Ds, self.Dh = kind, int(Ds), int(Dh)
        self.weights = dict(weights or {})
        missing = set(self.KINDS[kind]) - set(self.weights)
        if missing:
            raise ValueError(f"weights: a {kind} score needs {sorted(missing)}")
        self.scale, self.shift = scale, shift
        self.calls = 0

    def __call__(self, s, h):
        assert s.dim() == 1 and h.dim() == 1, (
            "score takes ONE decoder state (Ds,) and ONE encoder state (Dh,)"
        )
        assert s.shape[0] == self.Ds and h.shape[0] == self.Dh, (
            f"score(s, h) expects s of size Ds = {self.Ds} first and h of size "
            f"Dh = {self.Dh}, got {s.shape[0]} and {h.shape[0]}"
        )
        self.calls += 1
        w = self.weights
        if self.kind == "additive":
            return w["w_v"] @ torch.tanh(w["W_s"] @ s + w["W_h"] @ h)
        if self.kind == "bilinear":
            return s @ w["W"] @ h
        out = s @ h
        if self.scale != 1.0:
            out = self.scale * out
        if self.shift != 0.0:
            out = out + self.shift
        return out

    def spec(self) -> dict:
        return {
            "kind": self.kind,
            "Ds": self.Ds,
            "Dh": self.Dh,
            "weights": dict(self.weights),
            "scale": self.scale,
            "shift": self.shift,
        }

    def observed(self) -> dict:
        return {"calls": self.calls}

    def restore(self, observed: dict) -> None:
        calls = observed.get("calls")
        if type(calls) is int and calls >= 0:
            self.calls = calls


class SelfAttention(Probe, nn.Module):
    """``z -> mha(z, z, z)`` for the library's :class:`attnkit.MultiHeadAttention` of width
    ``E`` and ``heads`` heads, float64, in eval mode, its weights drawn from ``seed``."""

    def __init__(self, E: int, heads: int, seed: int, device: str = "cpu"):
        super().__init__()
        from attnkit import MultiHeadAttention

        self.E, self.heads, self.seed, self.device = E, heads, seed, str(device)
        with _seeded(seed):
            mha = MultiHeadAttention(E, heads, query_size=E, key_size=E, value_size=E)
        self.mha = mha.double().eval().to(self.device)

    def forward(self, z):
        return self.mha(z, z, z)

    def spec(self) -> dict:
        return {
            "E": self.E,
            "heads": self.heads,
            "seed": self.seed,
            "device": self.device,
        }


class FeedForward(Probe, nn.Module):
    """``Linear(E, 2E) -> GELU -> Linear(2E, E)``, float64, its weights drawn from ``seed``."""

    def __init__(self, E: int, seed: int, device: str = "cpu"):
        super().__init__()
        self.E, self.seed, self.device = E, seed, str(device)
        with _seeded(seed):
            net = nn.Sequential(nn.Linear(E, 2 * E), nn.GELU(), nn.Linear(2 * E, E))
        self.net = net.double().to(self.device)

    def forward(self, z):
        return self.net(z)

    def spec(self) -> dict:
        return {"E": self.E, "seed": self.seed, "device": self.device}


class LayerNorm(Probe, nn.LayerNorm):
    """``nn.LayerNorm(E)``, float64, with a gain ``1 + 0.5 N(0, 1)`` and a bias ``N(0, 1)``
    drawn from ``seed`` (not the default 1 and 0)."""

    def __init__(self, E: int, seed: int, device: str = "cpu"):
        super().__init__(E, dtype=torch.float64)
        self.E, self.seed, self.device = E, seed, str(device)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.weight.copy_(
                1 + 0.5 * torch.randn(E, generator=g, dtype=torch.float64)
            )
            self.bias.copy_(torch.randn(E, generator=g, dtype=torch.float64))
        self.to(self.device)

    def spec(self) -> dict:
        return {"E": self.E, "seed": self.seed, "device": self.device}


class Zero(Probe, nn.Module):
    """A sub-layer that outputs zeros: ``z -> zeros_like(z)``."""

    def forward(self, z):
        return torch.zeros_like(z)

    def spec(self) -> dict:
        return {}


def tiny_model(vocab_size, d_model, num_heads, *, seed, device="cpu", **settings):
    """:class:`attnkit.tasks.TinyAttentionModel` ``(vocab_size, d_model, num_heads,
    **settings)``, its weights drawn after ``torch.manual_seed(seed)`` (the global random
    state left as it was), on ``device``: a probe, sent by these arguments."""
    return _probe_classes()["TinyModel"](
        vocab_size, d_model, num_heads, seed=seed, device=device, **settings
    )


def reorder(n_samples, seq_len, vocab, *, seed=0, perm_seed=1234):
    """:func:`attnkit.tasks.reorder_task` with these arguments: a probe, sent by them."""
    return _probe_classes()["ReorderTask"](
        n_samples, seq_len, vocab, seed=seed, perm_seed=perm_seed
    )


_CLASSES: dict = {}


def _probe_classes() -> dict:
    """The probes that are also the library's models and tasks (made on first use: the
    library's task module is not imported with this one)."""
    if _CLASSES:
        return _CLASSES
    import attnkit.tasks as tasks  # (not at the top: not every kernel needs it)

    class TinyModel(Probe, tasks.TinyAttentionModel):
        def __init__(self, vocab_size, d_model, num_heads, *, seed, device="cpu", **kw):
            with _seeded(seed):
                super().__init__(vocab_size, d_model, num_heads, **kw)
            self.to(device)
            self._spec = {
                "vocab_size": vocab_size,
                "d_model": d_model,
                "num_heads": num_heads,
                "seed": seed,
                "device": str(device),
                **kw,
            }

        def spec(self) -> dict:
            return dict(self._spec)

    class ReorderTask(Probe, tasks.SequenceTask):
        def __init__(self, n_samples, seq_len, vocab, *, seed=0, perm_seed=1234):
            task = tasks.reorder_task(
                n_samples, seq_len, vocab, seed=seed, perm_seed=perm_seed
            )
            super().__init__(task.inputs, task.targets, task.scored, task.vocab_size)
            self._spec = {
                "n_samples": n_samples,
                "seq_len": seq_len,
                "vocab": vocab,
                "seed": seed,
                "perm_seed": perm_seed,
            }

        def spec(self) -> dict:
            return dict(self._spec)

    _CLASSES.update(TinyModel=TinyModel, ReorderTask=ReorderTask)
    return _CLASSES


# Runners: public functions a test calls that run the student's code in the kernel and return
# plain data. The grader records their calls in the kernel and replays them in the judge, as
# it does the answers' own functions (attnkit.grading.replay: a plan's "runners").


def run_mechanism(name: str, settings: dict, q, k, v, **kwargs):
    """The output of the mechanism registered under ``name`` (in the student's kernel: the
    student's class), built with its keyword ``settings`` and called on ``(q, k, v)`` with
    ``kwargs`` (``mask``, ``causal``)."""
    from attnkit.registry import make_mechanism

    return make_mechanism(name, **settings)(q, k, v, **kwargs)


def describe_mechanism(name: str, attributes=()) -> dict:
    """What the class registered under ``name`` is, as plain data: ``registered``; whether
    it subclasses :class:`attnkit.mechanisms.Mechanism` (``subclass``); the exception's
    class name when it is built with one positional argument, or ``"accepted"``
    (``positional``); the ``attributes`` of one built with its defaults (``None`` where it
    has none; a value that is not a number, string or bool as its type's name)."""
    from attnkit.mechanisms import Mechanism
    from attnkit.registry import MECHANISMS

    cls = MECHANISMS.get(name)
    facts = {"registered": cls is not None, "subclass": None, "positional": None}
    facts["attributes"] = dict.fromkeys(attributes)
    if cls is None:
        return facts
    facts["subclass"] = isinstance(cls, type) and issubclass(cls, Mechanism)
    try:
        cls(3)
        facts["positional"] = "accepted"
    except Exception as exc:
        facts["positional"] = type(exc).__name__
    built = cls()
    for attribute in attributes:
        value = getattr(built, attribute, None)
        plain = value is None or type(value) in (bool, int, float, str)
        facts["attributes"][attribute] = value if plain else type(value).__name__
    return facts


_NAMESPACE: list = []  # the notebook's namespace, where the grader knows it


def answer(name: str, namespace: dict | None = None):
    """The notebook's ``name`` (the student's function): from the namespace the grader set
    (its recorder or rehearsal), else from ``namespace`` (a runner's caller's globals: the
    notebook's, where no grader runs)."""
    if _NAMESPACE:
        namespace = _NAMESPACE[-1]
    if namespace is None or name not in namespace:
        raise NameError(f"name {name!r} is not defined")
    return namespace[name]


def model_report(name: str, model, *args, **kwargs) -> dict:
    """Call the notebook's function ``name`` as ``name(model, *args, **kwargs)`` and report,
    as plain data, what it returned and what it did to ``model`` (an ``nn.Module``):
    ``types`` (the result's class and its bases, by name), ``is_argument`` (it returned
    ``model`` itself), ``shares_storage`` (a parameter of the result shares memory with one
    of ``model``'s), ``parameters`` (the result's, detached) and ``frozen`` (the names of
    those that do not require gradients), ``argument_changed`` and ``argument_frozen`` (the
    names of ``model``'s parameters whose values changed, or that no longer require
    gradients)."""
    function = answer(name, sys._getframe(1).f_globals)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = function(model, *args, **kwargs)
    mine = {p.data_ptr() for p in model.parameters()}
    params = dict(result.named_parameters()) if isinstance(result, nn.Module) else {}
    return {
        "types": [c.__name__ for c in type(result).__mro__],
        "is_argument": result is model,
        "shares_storage": any(p.data_ptr() in mine for p in params.values()),
        "parameters": {n: p.detach().clone() for n, p in params.items()},
        "frozen": [n for n, p in params.items() if not p.requires_grad],
        "argument_changed": [
            n
            for n, p in model.named_parameters()
            if n not in before or not torch.equal(p.detach(), before[n])
        ],
        "argument_frozen": [
            n for n, p in model.named_parameters() if not p.requires_grad
        ],
    }


RUNNERS = ("run_mechanism", "describe_mechanism", "model_report")
