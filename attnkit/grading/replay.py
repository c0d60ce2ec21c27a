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

The grader keeps a test's points only if both the kernel and the judge passed it. A test that
needs more than returned values (a callable it passes in and inspects, a gradient through the
student's code, a model it trains, an in-place change to an argument) is marked in its cell's
metadata, ``{"attnkit": {"replay": "kernel", "why": "..."}}``, and keeps the kernel's verdict.

This module is imported inside the student's kernel as well: what the kernel does with it is
not trusted, only what :func:`judge` concludes.
"""

from __future__ import annotations

import ast
import builtins
import functools
import io
import os
import re
from collections import defaultdict, deque

import torch

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
]

MAX_VALUE = 64 * 2**20  # bytes of one recorded result or value
FILE = re.compile(r"^(c\d+)\.(values|\d{6})\.pt$")  # c12.values.pt, c12.000003.pt


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
    "classes", "values"}``: every code cell in order, keyed ``c<index>``; ``kind`` is
    ``"answer"`` (a solution cell; its ``source`` is only its imports), ``"test"`` or
    ``"setup"``; ``replay`` is False for a test marked to keep the kernel's verdict.
    ``functions`` and ``classes``: what the answer cells define; ``values``: the names they
    assign (``measured = ...``) that no instructor cell assigns too, so that a test's own
    inputs are never taken from the student's kernel.
    """
    cells, functions, classes, values, instructors = [], [], [], [], set()
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
        cells.append(entry)
    unique = lambda names: sorted(set(names))  # noqa: E731
    return {
        "cells": cells,
        "functions": unique(functions),
        "classes": unique(classes),
        # a name the instructor's cells also assign (a test's input) is never the student's
        "values": unique(set(values) - set(functions) - set(classes) - instructors),
    }


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
        {**{k: v for k, v in c.items() if k != "source"}, "name": cell_name(c["source"])}
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
            t = (
                t.clone()
            )  # a view: saved alone, not with the whole buffer it looks into
        return t
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
        self.key = None
        self.depth = 0
        self.count = 0

    def enter(self, code_name: str, namespace: dict) -> None:
        """A new cell starts: an instructor cell is recorded, a student's cell is not."""
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
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if key:
                    names = [c.__name__ for c in type(exc).__mro__]
                    self._call(key, name, args, kwargs, ("raise", names, str(exc)))
                raise
            finally:
                self.depth -= 1
            if key:
                self._call(key, name, args, kwargs, self._plain_or_why(result))
            return result

        recorded.__attnkit_record__ = fn
        return recorded

    def _plain_or_why(self, value):
        try:
            return ("return", plain(value))
        except Unplain as why:
            return ("unplain", str(why))
        except Exception as exc:  # a student's object that fails to be read
            return ("unplain", f"{type(exc).__name__}")

    def _call(self, key, name, args, kwargs, outcome) -> None:
        try:
            sig = signature(args, kwargs)
        except Exception:
            sig = ["unreadable"]
        self.count += 1
        self._save(
            f"{key}.{self.count:06d}.pt",
            lambda why: (name, sig, why or outcome),
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

    def __init__(self, name: str, calls: deque):
        self.name, self.calls = name, calls

    def __call__(self, *args, **kwargs):
        if not self.calls:
            raise ReplayError(
                f"{self.name} was called more times here than in the kernel"
            )
        name, sig, outcome = self.calls.popleft()
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
        return _outcome(self.name, outcome)


def _outcome(name, outcome):
    kind = outcome[0] if isinstance(outcome, tuple) and outcome else None
    if kind == "return" and len(outcome) == 2:
        return outcome[1]
    if kind == "raise" and len(outcome) == 3:
        raise _exception_type(outcome[1])(outcome[2])
    why = (
        outcome[1] if kind == "unplain" and len(outcome) == 2 else "a malformed record"
    )
    raise ReplayError(f"{name}'s result is not plain data ({why})")


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
        elif isinstance(data, tuple) and len(data) == 3:
            calls[key].append(data)
        else:  # unreadable, or not a call: the next call here cannot be replayed
            unread = isinstance(data, tuple) and len(data) == 2 and data[0] == "unread"
            why = str(data[1]) if unread else "a malformed record"
            calls[key].append((None, None, ("unplain", why)))
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


def judge(replay: dict, folder, namespace: dict | None = None) -> dict[str, str | None]:
    """Run the instructor's cells with the recorded answers; ``{grade_id: None if the test
    passed, else why it failed}`` for every test cell that is judged here (not those marked
    to keep the kernel's verdict)."""
    calls, values, _ = load_record(folder)
    ns = {"__name__": "__main__"} if namespace is None else namespace
    verdicts = {}
    for cell in replay["cells"]:
        key = cell["key"]
        queue = deque(calls.get(key, []))
        for name in replay["functions"]:
            ns[name] = Replayer(name, queue)
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
            verdicts[cell["grade_id"]] = failed
    return verdicts


def _pairs(snapshot: dict):
    """The well-formed ``(name, (kind, value))`` pairs of a value snapshot."""
    for name, item in snapshot.items():
        if isinstance(name, str) and isinstance(item, tuple) and len(item) == 2:
            yield name, item
