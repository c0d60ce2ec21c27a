"""Trusted verdicts: record what a student's functions return, replay it to the tests.

A student's kernel can lie about its own results (a tensor subclass whose comparisons always
succeed, a rebound builtin, a patched ``torch.testing`` internal), so a test's verdict must not
depend on that kernel. Here is how it does not:

* **Recording, in the student's kernel** (:class:`Recorder`, installed by
  :mod:`attnkit.grading.sandbox`). Each function the answer cells define is wrapped. While one
  of the instructor's cells runs (a setup or test cell, known by its exact source), every
  top-level call to such a function is saved as plain data: the shape of its arguments and its
  result (tensors, numbers, strings, lists, tuples and dicts of them) or the exception it raised.
  At the start of each instructor cell the plain values the answer cells assign
  (``measured = ...``) are saved too.
* **Judging, in another process** (:func:`judge`, run by ``judge.py`` after the student's
  processes are gone). The instructor's own cells, read from ``solutions/``, run again: setup
  and test cells, the answer cells' imports, never a line the student wrote. Each answer
  function is a :class:`Replayer` that hands out the recorded results in order, each answer value
  its snapshot. Everything recorded is read with ``torch.load(weights_only=True)``: no subclass,
  and no object of the student's with methods, survives. The assertions, ``torch.testing`` and
  the builtins that decide the verdict are the real ones.

**Hidden tests never reach the kernel** (:func:`stub`, :func:`rehearse`). A test cell with
hidden tests is replaced, in the gradebook the student's autograde uses, by a stub that calls the
answer functions with the arguments the hidden tests will pass, and nothing else. The grader
finds those arguments once per assignment by running the instructor's notebook with the
solution (:func:`rehearse`, in a process of the grader's), as the judge will run it. The kernel
records each call's result, and the arguments as the call left them (an answer that changes
its input in place is seen). The judge then runs the real hidden tests; each call gets the
kernel's result, provided the test passes the arguments the kernel was given (within a
tolerance: a test may pass on the student's own earlier results). What a test passes that
is not plain data is a probe of :mod:`.probes` (public code, sent by name); what it needs
beyond a return value it asks a runner of :mod:`.probes` for (public functions that run the
student's code and return plain data, recorded and replayed like the answers). A gradient a
test takes through an answer comes from the Jacobians the kernel records
(:func:`_jacobians`); the operations a test's dispatch mode watches, from :class:`Operations`.
:func:`rehearse` says why a cell cannot be stubbed, if one cannot.

The grader keeps a test's points only if both the kernel and the judge passed it. A test that
needs what none of this gives can be marked in its cell's metadata, ``{"attnkit": {"replay":
"kernel", "why": "..."}}``, and keeps the kernel's verdict (none of the course's is).

This module is imported inside the student's kernel as well: what the kernel does with it is
not trusted, only what :func:`judge` concludes.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import io
import math
import os
import re
from collections import defaultdict, deque

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import (
    tree_flatten,
    tree_leaves,
    tree_map_only,
    tree_unflatten,
)

from attnkit.grading import probes
from attnkit.grading.probes import Probe

__all__ = [
    "ReplayError",
    "Recorder",
    "Replayer",
    "plan",
    "for_kernel",
    "cell_name",
    "signature",
    "plain",
    "load_record",
    "judge",
    "stub",
    "rehearse",
    "encode",
    "decode",
    "load_calls",
    "same",
    "Operations",
    "replay_operations",
]

MAX_VALUE = 64 * 2**20  # bytes of one recorded result or value
FILE = re.compile(r"^(c\d+)\.(values|\d{6})\.pt$")  # c12.values.pt, c12.000003.pt
HIDDEN = "### BEGIN HIDDEN TESTS"
MEASURES = "TorchDispatchMode"  # a hidden test that watches the answer's operations
# how close a hidden test's argument must be to the rehearsed one
RTOL, ATOL = 1e-4, 1e-6


class ReplayError(BaseException):
    """The replay cannot give the test what it asks (not an ``Exception``: a test's
    ``except Exception`` must not swallow it and pass)."""


class Unplain(TypeError):
    """A value that is not plain data."""


def _meta(cell, *keys):
    value = cell.get("metadata", {})
    for key in keys:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return value


def plan(nb) -> dict:
    """What the recorder and the judge need from the instructor's (source) notebook.

    ``{"cells": [{"key", "kind", "source", "grade_id", "replay", "why"}], "functions",
    "runners", "classes", "values"}``: every code cell in order, keyed ``c<index>``; ``kind`` is
    ``"answer"`` (a solution cell; its ``source`` is only its imports), ``"test"`` or
    ``"setup"``; ``replay`` is False for a test marked to keep the kernel's verdict.
    ``functions`` and ``classes``: what the answer cells define, and ``functions`` also the
    runners of :mod:`.probes` the instructor's cells call (``runners``: public functions that
    run the student's code, recorded and replayed as the answers are); ``values``: the names they
    assign (``measured = ...``) that no instructor cell assigns too, so that a test's own
    inputs are never taken from the student's kernel.
    """
    cells, functions, classes, values, instructors = [], [], [], [], set()
    runners = set()
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        grading = _meta(cell, "nbgrader")
        mark = _meta(cell, "attnkit")
        entry = {
            "key": f"c{i}",
            "kind": "setup",
            "source": cell.source,
            "grade_id": grading.get("grade_id"),
            "replay": mark.get("replay", "judge") != "kernel",
            "why": mark.get("why", ""),
            "stub": False,
            "measures": False,
        }
        if grading.get("solution"):
            entry["kind"] = "answer"
            try:
                body = ast.parse(cell.source).body
            except SyntaxError:
                body = []
            imports = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))]
            entry["source"] = "\n".join(ast.unparse(n) for n in imports)
            for node in body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions.append(node.name)
                elif isinstance(node, ast.ClassDef):
                    classes.append(node.name)
                elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    targets = (
                        node.targets if isinstance(node, ast.Assign) else [node.target]
                    )
                    values += [
                        n.id
                        for t in targets
                        for n in ast.walk(t)
                        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
                    ]
        else:
            entry["kind"] = "test" if grading.get("grade") else "setup"
            instructors |= _module_names(cell.source)
            runners |= {
                r for r in probes.RUNNERS if re.search(rf"\b{r}\b", cell.source)
            }
            # hidden tests judged here: run out of the kernel (rehearse says if they can)
            entry["stub"] = (
                entry["kind"] == "test" and entry["replay"] and HIDDEN in cell.source
            )
            entry["measures"] = entry["stub"] and MEASURES in cell.source
        cells.append(entry)
    unique = lambda names: sorted(set(names))  # noqa: E731
    return {
        "cells": cells,
        "functions": unique(functions + list(runners)),
        "runners": sorted(runners),
        "classes": unique(classes),
        # a name the instructor's cells also assign (a test's input) is never the student's
        "values": unique(set(values) - set(functions) - set(classes) - instructors),
    }


def stub(key: str) -> str:
    """The source the student's kernel runs instead of the hidden test cell ``key``."""
    return (
        "# The hidden tests run in the grader, out of this notebook's reach: here your\n"
        "# functions are called with their inputs, and the grader judges the results.\n"
        "from attnkit.grading.sandbox import hidden_calls\n\n"
        f"hidden_calls({key!r})\n"
    )


def kernel_source(cell: dict) -> str:
    """What the kernel runs for a :func:`plan` cell: its stub or its own source."""
    return stub(cell["key"]) if cell.get("stub") else cell["source"]


def cell_name(source: str) -> str:
    """The file name the IPython kernel gives a cell's code (``<hash>.py`` in its folder,
    ``ipykernel.compiler.get_file_name``): how the kernel's guard knows the instructor's cells
    without being given their source."""
    from ipykernel.compiler import get_tmp_hash_seed, murmur2_x86

    return f"{murmur2_x86(source, get_tmp_hash_seed())}.py"


def for_kernel(replay: dict) -> dict:
    """:func:`plan` as the student's kernel gets it: each cell's :func:`cell_name` instead of
    its source (the hidden tests' source is not the kernel's to read)."""
    cells = [
        {
            **{k: v for k, v in c.items() if k != "source"},
            "name": cell_name(kernel_source(c)),
        }
        for c in replay["cells"]
    ]
    return {**replay, "cells": cells}


def _module_names(source: str) -> set[str]:
    """The names a cell binds at module level (not inside its functions or classes)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names, todo = set(), list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp)):
            continue
        if isinstance(node, ast.GeneratorExp):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        todo.extend(ast.iter_child_nodes(node))
    return names


def signature(args, kwargs) -> list:
    """The shape of a call's arguments: tensors by dtype, shape and device, scalars and strings by
    value, anything else by its type's name. The same call in the kernel and in the judge
    gives the same signature."""

    def one(x, depth=0):
        if depth > 8:
            return ["..."]
        if isinstance(x, torch.Tensor):
            return ["tensor", str(x.dtype), list(x.shape), x.device.type]
        if x is None or isinstance(x, (bool, int, float, str)):
            return [type(x).__name__, repr(x)[:80]]
        if isinstance(x, (list, tuple)):
            return [type(x).__name__, [one(y, depth + 1) for y in list(x)[:64]]]
        if isinstance(x, dict):
            return ["dict", sorted([str(k), one(v, depth + 1)] for k, v in x.items())]
        return [type(x).__name__]

    return one([list(args), dict(kwargs)])


def plain(x, depth=0):
    """``x`` as plain data that ``torch.load(weights_only=True)`` reads back: tensors (their
    subclass dropped), ``None``, bools, ints, floats, complex numbers, strings, and lists,
    tuples and dicts of them; raises :class:`Unplain` for anything else."""
    if depth > 32:
        raise Unplain("nested more than 32 deep")
    if isinstance(x, torch.Tensor):
        t = x.detach()
        t = t if type(t) is torch.Tensor else t.as_subclass(torch.Tensor)
        if t.layout == torch.strided and (
            t.untyped_storage().nbytes() > t.numel() * t.element_size()
        ):
            # a view: saved alone, not with the whole buffer it looks into
            t = t.clone()
        # whether it takes part in autograd (the base class's flag: a subclass may lie)
        if torch.Tensor.requires_grad.__get__(x) and (
            t.is_floating_point() or t.is_complex()
        ):
            t = t.requires_grad_()
        return t
    if isinstance(x, Probe):  # what a test's probe saw (attnkit.grading.probes)
        return (PROBE, type(x).__name__, plain(x.observed(), depth + 1))
    if x is None or type(x) in (bool, int, float, complex, str):
        return x
    if isinstance(x, (int, float)):  # a subclass (a float that lies): its value alone
        return (int if isinstance(x, int) else float)(x)
    if type(x).__module__ == "numpy" and getattr(x, "ndim", None) == 0:  # numpy scalars
        return plain(x.item(), depth + 1)
    if isinstance(x, (list, tuple)):
        items = [plain(y, depth + 1) for y in x]
        return items if isinstance(x, list) else tuple(items)
    if isinstance(x, dict):
        return {plain(k, depth + 1): plain(v, depth + 1) for k, v in x.items()}
    raise Unplain(f"a {type(x).__name__}")


GENERATOR = "__attnkit_generator__"
RANGE = "__attnkit_range__"
PROBE = "__attnkit_probe__"


def encode(x, depth=0, *, built=True):
    """A call's arguments as plain data (:func:`plain`, tensors copied), a ``torch.Generator``
    as its device and state, a ``range`` as its bounds, a probe (:mod:`.probes`) as its class
    name, what builds it and what it has seen (``built=False``: what it has seen alone, as
    :func:`plain` gives it); raises :class:`Unplain` for anything else."""
    if depth > 32:
        raise Unplain("nested more than 32 deep")
    if isinstance(x, torch.Generator):
        return (GENERATOR, x.device.type, x.get_state())
    if isinstance(x, range):
        return (RANGE, x.start, x.stop, x.step)
    if isinstance(x, Probe) and built:
        spec = encode(x.spec(), depth + 1)
        return (PROBE, type(x).__name__, spec, plain(x.observed(), depth + 1))
    if isinstance(x, torch.Tensor):
        t = plain(x)
        return t.detach().clone().requires_grad_(t.requires_grad)
    if isinstance(x, (list, tuple)) and type(x) in (list, tuple):
        items = [encode(y, depth + 1, built=built) for y in x]
        return items if isinstance(x, list) else tuple(items)
    if isinstance(x, dict) and type(x) is dict:
        return {
            plain(k, depth + 1): encode(v, depth + 1, built=built) for k, v in x.items()
        }
    return plain(x, depth)


def decode(x, depth=0):
    """:func:`encode`'s data as arguments again (a generator in the state it was in)."""
    if depth > 32:
        raise ValueError("nested more than 32 deep")
    if isinstance(x, tuple) and len(x) == 3 and x[0] == GENERATOR:
        g = torch.Generator(device=x[1])
        g.set_state(x[2])
        return g
    if isinstance(x, tuple) and len(x) == 4 and x[0] == RANGE:
        return range(*x[1:])
    if isinstance(x, tuple) and len(x) == 4 and x[0] == PROBE:
        return probes.build(x[1], decode(x[2], depth + 1), decode(x[3], depth + 1))
    if isinstance(x, (list, tuple)):
        items = [decode(y, depth + 1) for y in x]
        return items if isinstance(x, list) else tuple(items)
    if isinstance(x, dict):
        return {k: decode(v, depth + 1) for k, v in x.items()}
    return x


def load_calls(path) -> dict:
    """A rehearsal's ``calls.pt`` (:func:`rehearse`), each call's arguments :func:`decode`d:
    ``{key: [(name, args, kwargs), ...]}``, on the GPU where the grader has one."""
    where = None if torch.cuda.is_available() else "cpu"
    calls = torch.load(path, weights_only=True, map_location=where)
    return {k: [(n, *decode([a, kw])) for n, a, kw in v] for k, v in calls.items()}


def same(a, b, depth=0) -> bool:
    """Whether a hidden test's argument ``a`` in the judge is the rehearsed one ``b`` (tensors
    and floats within ``RTOL``/``ATOL``; a generator is a generator: the student's answer may
    draw from it differently from the solution)."""
    if depth > 40:
        return False
    if isinstance(a, torch.Generator) or isinstance(b, torch.Generator):
        return isinstance(a, torch.Generator) and isinstance(b, torch.Generator)
    if isinstance(a, range) or isinstance(b, range):
        return a == b
    # the same probe (attnkit.grading.probes), built the same way
    if isinstance(a, Probe) or isinstance(b, Probe):
        return type(a) is type(b) and same(a.spec(), b.spec(), depth + 1)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if "meta" in (a.device.type, b.device.type):
            return a.device.type == b.device.type
        try:
            a, b = a.detach().cpu(), b.detach().cpu()
            if a.is_floating_point() or a.is_complex():
                return torch.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
            return torch.equal(a, b)
        except RuntimeError:  # a layout allclose does not take
            return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(same(x, y, depth + 1) for x, y in zip(a, b))
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], depth + 1) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        if not all(isinstance(x, (int, float)) for x in (a, b)):
            return False
        return (a != a and b != b) or abs(a - b) <= ATOL + RTOL * abs(b)
    return type(a) is type(b) and a == b


def _copy_back(actual, after, given, depth=0) -> None:
    """Where the kernel's call changed its arguments (``given``, the rehearsed ones) into
    ``after``, change the judge's own (``actual``) in place the same way: an answer that
    changes its input is seen. A probe (:mod:`.probes`) is told what it saw in the kernel,
    also for a call that was not rehearsed (``given`` None: no tensor is changed then)."""
    if depth > 40:
        return
    if isinstance(actual, Probe):  # what the probe saw in the kernel's call
        ok = isinstance(after, tuple) and len(after) == 3 and after[0] == PROBE
        if ok and after[1] == type(actual).__name__ and isinstance(after[2], dict):
            actual.restore(after[2])
        return
    if all(isinstance(x, torch.Tensor) for x in (actual, after, given)):
        if (
            actual.shape == after.shape == given.shape
            and actual.dtype == after.dtype == given.dtype
            and "meta" not in (actual.device.type, after.device.type, given.device.type)
            and not torch.equal(given.cpu(), after.cpu())
        ):
            with torch.no_grad():
                actual.copy_(after.to(actual.device))
    elif all(isinstance(x, (list, tuple)) for x in (actual, after)):
        if given is None or isinstance(given, (list, tuple)):
            for i, (x, y) in enumerate(zip(actual, after)):
                z = given[i] if given is not None and i < len(given) else None
                _copy_back(x, y, z, depth + 1)
    elif all(isinstance(x, dict) for x in (actual, after)):
        if given is None or isinstance(given, dict):
            for k in actual.keys() & after.keys():
                _copy_back(actual[k], after[k], (given or {}).get(k), depth + 1)


def _as_left(args):
    """A call's arguments as the call left them, as plain data: :func:`encode`'s, a probe as
    what it saw (:func:`plain`)."""
    return encode(args, built=False)


# the Jacobians recorded for one call: entries, and rows (a backward pass each)
MAX_JACOBIAN, MAX_JACOBIAN_ROWS = 2**20, 4096


def _jacobians(args, kwargs, result) -> list:
    """In the student's kernel, for a recorded call given tensors that require gradients: the
    Jacobian of each tensor of the result that requires them with respect to each such
    argument, ``[(result leaf, argument leaf, J of shape (result numel, argument numel))]``
    (leaves numbered as ``tree_leaves`` gives them), up to ``MAX_JACOBIAN`` entries and
    ``MAX_JACOBIAN_ROWS`` rows (the result's elements, a backward pass each); a test
    that takes a gradient through the answer gets it in the judge from these."""
    leaves = tree_leaves((tuple(args), dict(kwargs)))
    inputs = [
        (i, x)
        for i, x in enumerate(leaves)
        if isinstance(x, torch.Tensor) and x.requires_grad
    ]
    if not inputs:
        return []
    outputs = [
        (i, y)
        for i, y in enumerate(tree_leaves(result))
        if isinstance(y, torch.Tensor) and y.requires_grad and y.is_floating_point()
    ]
    size = sum(x.numel() for _, x in inputs)
    found, entries, passes = [], 0, 0
    for i, y in outputs:
        entries, passes = entries + y.numel() * size, passes + y.numel()
        if entries > MAX_JACOBIAN or passes > MAX_JACOBIAN_ROWS:
            break
        rows = [[] for _ in inputs]  # per argument: each element's gradient, or None
        try:
            with torch.enable_grad():
                for element in y.reshape(-1):
                    grads = torch.autograd.grad(
                        element,
                        [x for _, x in inputs],
                        retain_graph=True,
                        allow_unused=True,
                    )
                    for row, grad in zip(rows, grads):
                        row.append(grad)
        except Exception:  # a graph that does not go back: no gradient in the judge
            continue
        for (j, x), row in zip(inputs, rows):
            if all(grad is None for grad in row):
                continue  # the result does not depend on it (its .grad stays None)
            J = torch.stack(
                [
                    (torch.zeros_like(x) if grad is None else grad.detach())
                    .reshape(-1)
                    .to(y.dtype)
                    for grad in row
                ]
            )
            found.append((i, j, J))
    return found


def _linearised(result, jacobians, args, kwargs):
    """In the judge: ``result`` whose tensors, where the kernel recorded their Jacobians
    (:func:`_jacobians`), depend on the judge's own arguments to first order,
    ``y + J (x - x.detach())``: the same values, and the kernel's gradients."""
    leaves = tree_leaves((tuple(args), dict(kwargs)))
    flat, spec = tree_flatten(result)
    if not isinstance(jacobians, list):
        raise ReplayError("a malformed record of gradients")
    changes = defaultdict(list)
    for entry in jacobians:
        ok = isinstance(entry, tuple) and len(entry) == 3
        i, j, J = entry if ok else (None, None, None)
        ok = ok and type(i) is int and type(j) is int and isinstance(J, torch.Tensor)
        ok = ok and 0 <= i < len(flat) and 0 <= j < len(leaves)
        y = flat[i] if ok else None
        x = leaves[j] if ok else None
        ok = ok and isinstance(y, torch.Tensor) and isinstance(x, torch.Tensor)
        ok = ok and y.is_floating_point() and J.shape == (y.numel(), x.numel())
        if not ok:
            raise ReplayError("a malformed record of gradients")
        if x.requires_grad:
            changes[i].append((x, J))
    with torch.enable_grad():
        for i, terms in changes.items():
            y = flat[i].detach()
            for x, J in terms:
                step = (x - x.detach()).reshape(-1).to(J.dtype)
                y = y + (J.to(x.device) @ step).reshape(y.shape).to(y.dtype)
            flat[i] = y
    return tree_unflatten(flat, spec)


def _has_probe(args) -> bool:
    """Whether a call's arguments hold a probe (:mod:`.probes`)."""
    return any(isinstance(x, Probe) for x in tree_leaves(args))


def _rng_states() -> list:
    """The global random states: the CPU's, and each GPU's once CUDA is in use."""
    states = [("cpu", torch.get_rng_state())]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states += [("cuda", s) for s in torch.cuda.get_rng_state_all()]
    return states


def _rng_moved(before: list) -> list[str]:
    """The device types whose global random state moved since ``before``."""
    now = dict(enumerate(_rng_states()))
    return sorted(
        {
            device
            for i, (device, state) in enumerate(before)
            if i not in now or not torch.equal(state, now[i][1])
        }
    )


def _move_rng(devices) -> None:
    """In the judge: move the global random state of the devices the kernel's call moved
    (a test may check that an answer draws only from the generator it is given)."""
    if not isinstance(devices, list):
        return
    if "cpu" in devices:
        torch.rand(1)
    if "cuda" in devices and torch.cuda.is_available():
        torch.rand(1, device="cuda")


MAX_OPERATIONS = 100_000  # replayed for one call; a recorded count above is refused


def _numel(shape) -> int:
    return math.prod(shape) if shape is not None else -1


class Operations(TorchDispatchMode):
    """In the student's kernel, around a stub's call in a cell whose hidden tests measure
    how the answer computes: how many operations ran (``count``), and the shapes of the
    largest tensor an operation returned (``any``) and of the largest one in storage that
    none of the operation's inputs held (``new``; a view is not new). What the chapters'
    tests measure with their own dispatch modes, which :func:`replay_operations` gives them
    again in the judge."""

    def __init__(self):
        super().__init__()
        self.count, self.new, self.any = 0, None, None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.count += 1
        inputs = {
            t.untyped_storage().data_ptr()
            for t in tree_leaves((args, kwargs))
            if isinstance(t, torch.Tensor)
        }
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            if t.numel() > _numel(self.any):
                self.any = list(t.shape)
            if t.untyped_storage().data_ptr() not in inputs and t.numel() > _numel(
                self.new
            ):
                self.new = list(t.shape)
        return out


def _shape(value) -> list[int] | None:
    if value is None:
        return None
    if (
        isinstance(value, list)
        and len(value) <= 16
        and all(type(n) is int and 0 <= n < 2**40 for n in value)
    ):
        return value
    raise ReplayError("a malformed record of operations")


def replay_operations(ops) -> None:
    """In the judge, where a replayed call runs under a test's dispatch mode: operations on
    the ``meta`` device (no memory, no numbers) that the mode sees as the kernel's call
    would have been seen, per :class:`Operations`' record ``[count, new, any]``: a new
    tensor of shape ``new``, a view of shape ``any`` if larger, then empty tensors up to
    ``count`` operations (exact from three operations on)."""
    if not (isinstance(ops, list) and len(ops) == 3 and type(ops[0]) is int):
        raise ReplayError("a malformed record of operations")
    count, new, largest = ops[0], _shape(ops[1]), _shape(ops[2])
    if not 0 <= count <= MAX_OPERATIONS:
        raise ReplayError(f"a record of {count} operations")
    done = 0
    if new is not None:
        torch.empty(new, device="meta")
        done += 1
    if largest is not None and _numel(largest) > _numel(new):
        torch.empty([1] * len(largest), device="meta").expand(largest)
        done += 2
    for _ in range(count - done):
        torch.empty(0, device="meta")


def _exception_type(names) -> type:
    """The first builtin exception class among ``names`` (the raised class's MRO names)."""
    for name in names:
        found = getattr(builtins, str(name), None)
        if isinstance(found, type) and issubclass(found, Exception):
            return found
    return RuntimeError


class Recorder:
    """In the student's kernel: wraps the answer functions and saves their calls.

    ``folder``: where the ``.pt`` files go. ``replay``: :func:`for_kernel`'s dict.
    ``code_name``: the kernel's path of a cell from its :func:`cell_name`, by which
    :meth:`enter` recognises the instructor's cells.
    """

    def __init__(self, folder, replay: dict, code_name):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.keys: dict[str, str] = {}
        for cell in replay["cells"]:
            if cell["kind"] != "answer":
                self.keys.setdefault(code_name(cell["name"]), cell["key"])
        self.functions = list(replay["functions"])
        self.values = list(replay["values"])
        # the runners the tests import from attnkit.grading.probes: recorded there
        self.runners = list(replay.get("runners", []))
        for name in self.runners:
            runner = getattr(probes, name)
            if not hasattr(runner, "__attnkit_record__"):
                setattr(probes, name, self.wrap(name, runner))
        self.key = None
        self.depth = 0
        self.count = 0
        # a stub's calls: their arguments are recorded as each call left them, and in a
        # cell that measures the answers' operations, those operations
        self.stubbed = False
        self.measured = {c["key"] for c in replay["cells"] if c.get("measures")}

    def enter(self, code_name: str, namespace: dict) -> None:
        """A new cell starts: an instructor cell is recorded, a student's cell is not."""
        # where a runner finds the student's functions
        probes._NAMESPACE[:] = [namespace]
        self.key = self.keys.get(code_name)
        if self.key is None:
            return
        for name in self.functions:
            fn = namespace.get(name)
            # functions and any other callable (torch.compile's, a partial, a class used
            # as one): the instructor's answer is a function, so the tests only call it
            if callable(fn) and not hasattr(fn, "__attnkit_record__"):
                namespace[name] = self.wrap(name, fn)
        snapshot = {}
        for name in self.values:
            if name in namespace:
                snapshot[name] = self._plain_or_why(namespace[name])
        self._save(
            f"{self.key}.values.pt",
            lambda why: snapshot if why is None else dict.fromkeys(snapshot, why),
        )

    def wrap(self, name: str, fn):
        @functools.wraps(fn)
        def recorded(*args, **kwargs):
            key = self.key if self.depth == 0 else None  # top-level calls only
            self.depth += 1
            ops = (
                Operations() if key and self.stubbed and key in self.measured else None
            )
            rng = _rng_states() if key and self.stubbed else None
            try:
                with ops or contextlib.nullcontext():
                    result = fn(*args, **kwargs)
            except Exception as exc:
                if key:
                    names = [c.__name__ for c in type(exc).__mro__]
                    outcome = ("raise", names, str(exc))
                    extra = self._extra(args, kwargs, ops, rng)
                    self._call(key, name, args, kwargs, outcome, extra)
                raise
            finally:
                self.depth -= 1
            if key:
                outcome = self._plain_or_why(result)
                extra = self._extra(args, kwargs, ops, rng)
                jacobians = _jacobians(args, kwargs, result)
                if jacobians:  # a test may take a gradient through the answer
                    extra = {**(extra or {}), "jacobians": jacobians}
                self._call(key, name, args, kwargs, outcome, extra)
            return result

        recorded.__attnkit_record__ = fn
        return recorded

    def _extra(self, args, kwargs, ops, rng):
        """A stub's call: ``{"after": its arguments as the call left them, "rng": the
        devices whose global random state it moved, "ops": what :class:`Operations` saw, if
        it watched}``; another call given a probe: ``{"after": ...}`` alone (what the probe
        saw); else None. (A call that returned may add ``"jacobians"``:
        :func:`_jacobians`.)"""
        if not self.stubbed and not _has_probe([args, kwargs]):
            return None
        extra = {"after": self._plain_or_why([list(args), dict(kwargs)], _as_left)}
        if not self.stubbed:  # outside a stub: only what a test's probes saw
            return extra
        extra["rng"] = _rng_moved(rng) if rng is not None else []
        if ops is not None:
            extra["ops"] = [ops.count, ops.new, ops.any]
        return extra

    def run_hidden(self, key: str, calls, namespace: dict) -> None:
        """The stub of the hidden test cell ``key``: call each ``(name, args, kwargs)`` of
        ``calls`` (:func:`decode`d) on the namespace's answers, each call recorded. An answer's
        exception ends its own call only; a missing answer is recorded as a ``NameError``."""
        self.key, self.stubbed = key, True
        probes._NAMESPACE[:] = [namespace]
        try:
            for name, args, kwargs in calls:
                fn = namespace.get(name)
                if not callable(fn) and name in self.runners:
                    fn = getattr(probes, name)
                if not callable(fn):
                    names = [c.__name__ for c in NameError.__mro__]
                    why = ("raise", names, f"name {name!r} is not defined")
                    self._call(key, name, args, kwargs, why, None)
                    continue
                if not hasattr(fn, "__attnkit_record__"):
                    fn = self.wrap(name, fn)  # rebound since the cell began
                with contextlib.suppress(Exception):
                    fn(*args, **kwargs)
        finally:
            self.stubbed = False

    def _plain_or_why(self, value, as_data=plain):
        try:
            return ("return", as_data(value))
        except Unplain as why:
            return ("unplain", str(why))
        except Exception as exc:  # a student's object that fails to be read
            return ("unplain", f"{type(exc).__name__}")

    def _call(self, key, name, args, kwargs, outcome, extra=None) -> None:
        try:
            sig = signature(args, kwargs)
        except Exception:
            sig = ["unreadable"]
        self.count += 1
        self._save(
            f"{key}.{self.count:06d}.pt",
            lambda why: (name, sig, why or outcome, None if why else extra),
        )

    def _save(self, file_name, data) -> None:
        """Save ``data(None)``; if that fails or is too large, ``data(("unplain", why))``."""
        buffer, why = io.BytesIO(), None
        try:
            torch.save(data(None), buffer)
            if buffer.tell() > MAX_VALUE:
                why = ("unplain", f"over {MAX_VALUE >> 20} MiB")
        except Exception as exc:
            why = ("unplain", f"not saved: {type(exc).__name__}")
        if why:
            buffer = io.BytesIO()
            torch.save(data(why), buffer)
        with open(os.path.join(self.folder, file_name), "wb") as f:
            f.write(buffer.getvalue())


class Unreplayable:
    """Stands for an answer value or class that could not be recorded: using it fails."""

    def __init__(self, name, why):
        self.name, self.why = name, why

    def __call__(self, *args, **kwargs):
        raise ReplayError(f"{self.name} cannot be replayed: {self.why}")

    def __getattr__(self, attr):
        raise ReplayError(f"{self.name} cannot be replayed: {self.why}")


class Replayer:
    """Stands for a student's function in the judge: each call gets the next recorded call
    of the running cell, if it is a call of this function with the same argument shapes."""

    def __init__(self, name: str, calls: deque, expected: deque | None = None):
        self.name, self.calls, self.expected = name, calls, expected

    def __call__(self, *args, **kwargs):
        if not self.calls:
            raise ReplayError(
                f"{self.name} was called more times here than in the kernel"
            )
        entry = self.calls.popleft()
        extra = entry[3] if len(entry) > 3 and isinstance(entry[3], dict) else {}
        with _disable_current_modes():  # a test's dispatch mode sees none of this
            _move_rng(extra.get("rng"))
            result = self._replay(entry[:3], extra.get("after"), args, kwargs)
            if extra.get("jacobians"):
                result = _linearised(result, extra["jacobians"], args, kwargs)
        if "ops" in extra and torch._C._len_torch_dispatch_stack():
            replay_operations(extra["ops"])  # for the test's dispatch mode
        return result

    def _replay(self, entry, after, args, kwargs):
        name, sig, outcome = entry
        given = None  # a stub's call: the arguments the kernel was given
        if self.expected is not None:
            if not self.expected:
                raise ReplayError(f"{self.name} was called more times than rehearsed")
            want = self.expected.popleft()
            given = list(want[1:])
            if want[0] != self.name or not same([list(args), kwargs], given):
                raise ReplayError(
                    f"this test passes {self.name} other arguments than the grader "
                    "rehearsed with the solution (results of your own earlier calls?)"
                )
        if name is None:  # a record that could not be read
            return _outcome(self.name, outcome)
        if name != self.name:
            raise ReplayError(
                f"the kernel called {name} where this test calls {self.name}"
            )
        if sig != signature(args, kwargs):
            raise ReplayError(
                f"{self.name} was called with other arguments in the kernel"
            )
        # a meta tensor holds no numbers (assert_close passes two of them): only as the
        # answer to meta inputs (a test that checks shapes or memory on the meta device)
        if "meta" in _devices(outcome) and "meta" not in _devices([args, kwargs]):
            raise ReplayError(f"{self.name} returned a meta tensor for real inputs")
        ok = isinstance(after, tuple) and len(after) == 2 and after[0] == "return"
        if ok:
            _copy_back([list(args), kwargs], after[1], given)
        return _outcome(self.name, outcome)


def _outcome(name, outcome):
    kind = outcome[0] if isinstance(outcome, tuple) and outcome else None
    if kind == "return" and len(outcome) == 2:
        return _in_graph(outcome[1])
    if kind == "raise" and len(outcome) == 3:
        raise _exception_type(outcome[1])(outcome[2])
    why = (
        outcome[1] if kind == "unplain" and len(outcome) == 2 else "a malformed record"
    )
    raise ReplayError(f"{name}'s result is not plain data ({why})")


def _in_graph(value):
    """A recorded result whose tensors took part in autograd in the kernel, as they would be
    there: requiring gradients, not leaves (an in-place change to them is allowed)."""

    def one(t):
        if not t.requires_grad:
            return t
        with torch.enable_grad():
            return t.clone()

    return tree_map_only(torch.Tensor, one, value)


def load_record(folder) -> tuple[dict, dict, list[str]]:
    """``(calls, values, problems)`` read from a recording folder: ``calls[key]`` the cell's
    calls in order, ``values[key]`` its value snapshot. Read with ``weights_only=True``; a
    file that does not load is a problem, never an exception."""
    calls, values, problems = defaultdict(list), {}, []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        names = []
    # on a GPU grader the kernel's CUDA results stay on the GPU, as the judge's inputs are
    where = None if torch.cuda.is_available() else "cpu"
    for file_name in names:
        match = FILE.match(file_name)
        if not match:
            continue
        try:
            data = torch.load(
                os.path.join(folder, file_name), weights_only=True, map_location=where
            )
            _devices(data)
        except Exception as exc:
            problems.append(f"{file_name}: {type(exc).__name__}: {exc}"[:200])
            data = ("unread", f"{type(exc).__name__}: {exc}"[:120])
        key, part = match.groups()
        if part == "values":
            values[key] = data if isinstance(data, dict) else {}
        elif isinstance(data, tuple) and len(data) in (3, 4):
            calls[key].append((*data, None) if len(data) == 3 else data)
        else:  # unreadable, or not a call: the next call here cannot be replayed
            unread = isinstance(data, tuple) and len(data) == 2 and data[0] == "unread"
            why = str(data[1]) if unread else "a malformed record"
            calls[key].append((None, None, ("unplain", why), None))
    return calls, values, problems


def _devices(data, depth=0) -> set[str]:
    """The device types of the tensors in ``data`` (raises on one that is not a CPU, GPU or
    ``meta`` tensor)."""
    if depth > 40:
        raise ValueError("nested too deep")
    if isinstance(data, torch.Tensor):
        if data.device.type not in ("cpu", "cuda", "meta"):
            raise ValueError(f"a tensor on {data.device}")
        return {data.device.type}
    found = set()
    items = data.items() if isinstance(data, dict) else data
    if isinstance(data, (list, tuple, dict)):
        for item in items:
            found |= _devices(item, depth + 1)
    return found


def _transform(source: str) -> str:
    """IPython syntax (``%magic``, ``!cmd``) as plain Python, as the kernel would run it."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def judge(
    replay: dict, folder, namespace: dict | None = None, rehearsed: dict | None = None
) -> dict[str, str | None]:
    """Run the instructor's cells with the recorded answers; ``{grade_id: None if the test
    passed, else why it failed}`` for every test cell that is judged here (not those marked
    to keep the kernel's verdict). ``rehearsed``: :func:`rehearse`'s calls (decoded), which
    the stubbed cells' calls must match."""
    calls, values, _ = load_record(folder)
    ns = {"__name__": "__main__"} if namespace is None else namespace
    verdicts = {}
    with _runners_restored(replay):  # each cell sets them to its replayers
        for cell in replay["cells"]:
            verdicts.update(_judge_cell(cell, replay, calls, values, ns, rehearsed))
    return verdicts


@contextlib.contextmanager
def _runners_restored(replay: dict, wrap=None, namespace=None):
    """The runners of :mod:`.probes` that ``replay`` names, each replaced by ``wrap(name,
    runner)`` if given and finding the answers in ``namespace`` if given, and put back as
    they were at the end."""
    saved = {name: getattr(probes, name) for name in replay.get("runners", [])}
    if namespace is not None:
        probes._NAMESPACE.append(namespace)
    try:
        for name, runner in saved.items():
            if wrap is not None:
                setattr(probes, name, wrap(name, runner))
        yield
    finally:
        for name, runner in saved.items():
            setattr(probes, name, runner)
        if namespace is not None:
            probes._NAMESPACE.pop()


def _judge_cell(cell, replay, calls, values, ns, rehearsed) -> dict:
    """One instructor cell of :func:`judge`, run in ``ns``: its verdict, if it is judged."""
    key = cell["key"]
    queue = deque(calls.get(key, []))
    expected = None
    if cell.get("stub") and rehearsed is not None:
        expected = deque(rehearsed.get(key, []))
    for name in replay["functions"]:
        ns[name] = Replayer(name, queue, expected)
    for name in replay.get("runners", []):  # what the test imports is the replay
        setattr(probes, name, ns[name])
    for name in replay["classes"]:
        ns[name] = Unreplayable(name, "a class the student's answer defines")
    for name, (kind, value) in _pairs(values.get(key, {})):
        if name not in replay["values"]:
            continue  # only the answers' own values: a test's inputs are the judge's
        if kind == "return":
            ns[name] = value
        else:
            ns[name] = Unreplayable(name, value)
    try:
        code = compile(
            _transform(cell["source"]), f"<{cell['grade_id'] or key}>", "exec"
        )
        exec(code, ns)  # the instructor's cell, never the student's
        failed = None
    except (Exception, ReplayError) as exc:
        failed = f"{type(exc).__name__}: {exc}"[:300]
    if cell["kind"] == "test" and cell["replay"]:
        return {cell["grade_id"]: failed}
    return {}


def rehearse(nb, replay: dict) -> tuple[dict, dict]:
    """Run the instructor's notebook ``nb`` (solutions and hidden tests) as the judge runs it,
    with the solution's answers; returns ``(calls, why)``.

    ``calls[key]``: for each stubbed cell of ``replay``, the top-level calls it makes to an
    answer function, ``(name, args, kwargs)``, :func:`encode`d before the call, in order.
    ``why[key]``: why a stubbed cell cannot be one (it passes what is not plain data, or the
    solution fails it); such a cell is not in ``calls``. The answer cells and the answers'
    calls run under ``torch.random.fork_rng``: the judge runs neither, and the instructor's
    cells must draw the same random numbers here as there.
    """
    stubs = {c["key"] for c in replay["cells"] if c.get("stub")}
    calls, why = {key: [] for key in stubs}, {}
    state = {"key": None, "depth": 0}
    ns = {"__name__": "__main__"}

    def wrap(name, fn):
        @functools.wraps(fn)
        def called(*args, **kwargs):
            key = state["key"] if state["depth"] == 0 else None
            # a test's dispatch mode sees the answer's operations, not these
            with _disable_current_modes():
                if key in stubs and key not in why:
                    try:
                        call = (name, encode(list(args)), encode(dict(kwargs)))
                        calls[key].append(call)
                    except Unplain as exc:
                        why[key] = f"it passes {name} {exc}, which is not plain data"
                rng = torch.random.fork_rng()
                rng.__enter__()
            state["depth"] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                state["depth"] -= 1
                with _disable_current_modes():
                    rng.__exit__(None, None, None)

        called.__attnkit_rehearsed__ = fn
        return called

    # what the tests import from probes: rehearsed like the answers, with the solution's
    with _runners_restored(replay, wrap, ns):
        for cell in replay["cells"]:
            key = cell["key"]
            index = int(key[1:])
            source = nb.cells[index].source
            state["key"] = key
            code = compile(_transform(source), f"<{cell['grade_id'] or key}>", "exec")
            if cell["kind"] == "answer":
                with contextlib.suppress(Exception), torch.random.fork_rng():
                    exec(code, ns)
                for name in replay["functions"]:
                    fn = ns.get(name)
                    if callable(fn) and not hasattr(fn, "__attnkit_rehearsed__"):
                        ns[name] = wrap(name, fn)
                continue
            try:
                exec(code, ns)
            except Exception as exc:
                if key in stubs:
                    failed = f"{type(exc).__name__}: {exc}"
                    why[key] = f"the solution fails it: {failed}"[:300]
    return {k: v for k, v in calls.items() if k not in why}, why


def _pairs(snapshot: dict):
    """The well-formed ``(name, (kind, value))`` pairs of a value snapshot."""
    for name, item in snapshot.items():
        if isinstance(name, str) and isinstance(item, tuple) and len(item) == 2:
            yield name, item
