"""The grader's guard inside a student's kernel.

It is installed by :mod:`attnkit.grading.batch`; students never import it.

``install(config_path)`` runs from an IPython startup file before the first cell. It adds one
audit hook (PEP 578: it cannot be removed by later code) that

* refuses writes outside the submission's own directory and its private temp directory,
  reads of the instructor's directories (course, gradebook, other submissions), network
  calls, new processes, signals and raw ``ctypes`` calls;
* at every cell (the ``exec`` audit event of each top-level statement) puts back what the
  student's code replaced in ``torch``, ``numpy``, ``math``, ``builtins``, ``attnkit`` … and
  IPython's error display; if something was replaced *while a test cell runs*, the test fails;
* while a test cell of question ``qN`` runs, turns attnkit's reference implementations of
  ``qN`` into tripwires: called from the test cell itself they work (hidden tests may use them
  as references), called from anywhere else (the student's solution) they raise.

Honest limits: this is in-process Python. It stops the accidents and the obvious tricks listed
in book/instructor-guide.md and records every event in a log; a determined attacker who reads
this file can still find a way around it. The hard bounds (time, memory, processes, the
gradebook never being opened by the kernel) come from ``attnkit.grading``.
"""

from __future__ import annotations

import builtins
import json
import os
import signal
import sys
import types

_MISSING = object()
_DENIED = {
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "signal.pthread_kill",
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "ctypes.call_function",
    "ctypes.dlsym",
    "ctypes.cdata",
    "ctypes.string_at",
    "ctypes.wstring_at",
    "ctypes.dlopen",
    "os.chroot",
    "shutil.rmtree",
}
_PATH_WRITES = {
    "os.remove",
    "os.rmdir",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.mkdir",
    "os.symlink",
    "os.link",
    "os.utime",
    "os.rename",
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


_IPYTHON_BUILTINS = {
    "exit",
    "quit",
    "get_ipython",
    "display",
    "copyright",
    "credits",
    "license",
    "help",
    "dreload",
    "runfile",
    "input",
    "raw_input",
}  # ipykernel swaps input per request


class GradingGuardError(RuntimeError):
    """Raised in the student's kernel when the grader refuses something."""


def _exit_blocked(*args):
    raise GradingGuardError("exiting or aborting the kernel is disabled while grading")


def _protected_owners():
    """(label, namespace) pairs whose attributes are restored before every cell."""
    import math
    import operator

    import numpy
    import numpy.testing
    import torch
    import torch._dynamo  # noqa: F401 - see below
    import torch.testing

    # torch._dynamo wraps torch.manual_seed (and more) when it is first imported; a test cell that
    # enters a TorchDispatchMode or uses the meta device imports it. Imported before the snapshot,
    # its wrappers are the originals, so an honest test cell is not taken for a monkeypatch.

    owners = [
        ("builtins", builtins),
        ("math", math),
        ("operator", operator),
        ("torch", torch),
        ("torch.testing", torch.testing),
        ("torch.Tensor", torch.Tensor),
        ("torch.nn.functional", torch.nn.functional),
        ("numpy", numpy),
        ("numpy.testing", numpy.testing),
        ("os", os),
    ]
    owners += [
        (name, mod)
        for name, mod in sorted(sys.modules.items())
        if (name == "attnkit" or name.startswith("attnkit.")) and mod is not None
    ]
    return owners


def resolve(path: str):
    """The object at a dotted path, any depth: the longest importable module, then getattr."""
    import importlib

    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(f"cannot import {path}")


def _targets(obj):
    """``(function, class or None)`` pairs to trip for a forbidden object: a function itself, a
    class's ``__init__`` and ``forward`` (inherited ones too: the dispatch checks the instance),
    a ``torch.autograd.Function``'s static ``forward`` and ``backward`` (called with a context
    object, not an instance, so any call trips them)."""
    if isinstance(obj, types.FunctionType):
        return [(obj, None)]
    autograd = sys.modules.get("torch.autograd")
    if isinstance(obj, type) and autograd and issubclass(obj, autograd.Function):
        found = [vars(obj).get(m) for m in ("forward", "backward")]
        return [(f.__func__, None) for f in found if isinstance(f, staticmethod)]
    if isinstance(obj, type):
        found = [(getattr(obj, m, None), obj) for m in ("__init__", "forward")]
        return [
            (f, obj)
            for f, _ in found
            if isinstance(f, types.FunctionType)
            and (f.__module__ or "").split(".")[0] == "attnkit"
        ]
    return []


def _trip_code(fn, key):
    """Code for ``fn.__code__`` that calls ``key``, with ``fn``'s free variables (``super()``'s
    ``__class__``): a function's code can only be replaced by code with as many."""
    free = fn.__code__.co_freevars
    body = "".join(f"        {v}\n" for v in free)
    src = (
        "def _outer():\n"
        + "".join(f"    {v} = None\n" for v in free)
        + f"    def {fn.__name__}(*args, **kwargs):\n{body}        return {key}(args, kwargs)\n"
        + f"    return {fn.__name__}\n"
    )
    ns = {}
    exec(compile(src, "<attnkit grader>", "exec"), fn.__globals__, ns)
    code = ns["_outer"]().__code__
    if code.co_freevars != free:
        raise ValueError(f"cannot trip {fn.__qualname__}: free variables {free}")
    return code


class Tripwires:
    """The forbidden calls of every question, enforced while that question's test cells run.

    ``tests``: ``[{"grade_id", "forbidden": [dotted paths], "answers": [names it defines]}]``.
    Each listed function (a class: its ``__init__``/``forward``) gets, once and for good, a code
    object that hands every call to :meth:`dispatch`, so every way of reaching it (an alias,
    ``from … import … as``, ``getattr``, ``importlib``, a copy of ``__code__``) ends there.
    ``dispatch`` refuses the call while a test cell of a question that lists it runs, unless the
    nearest notebook frame on the stack is that test cell itself (hidden tests may use the
    reference); otherwise it runs the original code. ``enter(test)``, at the start of each cell,
    also refuses a test cell whose question's answer name *is* a forbidden object
    (``sort_by_bucket = attnkit.lsh.sort_by_bucket``: the test cell would call it itself).
    """

    def __init__(self, tests, cell_dir, event, namespace):
        self.cell_dir, self.event, self.namespace = cell_dir, event, namespace
        self.cell, self.question, self.grade_id = None, None, None
        self.forbidden: dict[str, list] = {}  # question -> [(path, object)]
        self.answers: dict[str, list] = {}
        self.rules: dict = {}  # function -> [(question, path, class or None)]
        self.originals: dict = {}  # function -> a function running its own code
        self.codes: dict = {}  # tripwire code -> its function
        self.broken: list[str] = []  # paths that could not be resolved or tripped
        self.test_files: set[str] = set()  # the test cells' file names (set by install)
        for t in tests:
            q = t["grade_id"].split("_", 1)[0]
            self.answers.setdefault(q, list(t.get("answers", [])))
            if q in self.forbidden:
                continue
            self.forbidden[q] = []
            for path in t.get("forbidden", []):
                try:
                    obj = resolve(path)
                    targets = _targets(obj)
                    for fn, cls in targets:
                        self._wire(fn)
                        self.rules[fn].append((q, path, cls))
                except Exception as exc:  # reported, never fatal
                    self.broken.append(f"{path} ({type(exc).__name__}: {exc})")
                    continue
                if not targets:
                    self.broken.append(f"{path} (not a function or class)")
                self.forbidden[q].append((path, obj))

    def _wire(self, fn):
        if fn in self.rules:
            return
        own = fn.__code__
        key = f"_attnkit_trip_{fn.__name__}_{id(fn)}"
        fn.__globals__[key] = lambda args, kwargs, fn=fn: self.dispatch(
            fn, args, kwargs
        )
        trip = _trip_code(fn, key)
        original = types.FunctionType(
            own, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
        )
        original.__kwdefaults__ = fn.__kwdefaults__
        try:
            import inspect

            fn.__signature__ = inspect.signature(
                fn
            )  # introspection keeps the real signature
        except (TypeError, ValueError):
            pass
        fn.__code__ = trip
        self.rules[fn], self.originals[fn], self.codes[trip] = [], original, fn

    def enter(self, cell_name, test):
        """A new cell starts: ``test`` is its test entry, or None for any other cell."""
        self.cell = cell_name
        self.grade_id = test["grade_id"] if test else None
        self.question = self.grade_id.split("_", 1)[0] if test else None
        if test:
            for name in self.answers.get(self.question, []):
                path = self._is_forbidden(self.namespace().get(name))
                if path:
                    self.event(
                        "forbidden-call", grade_id=self.grade_id, name=path, answer=name
                    )
                    raise GradingGuardError(
                        f"{self.question}: your `{name}` is {path} itself, "
                        "which "
                        f"{self.question} may not use: no points for it"
                    )

    def guard_helpers(self, namespace) -> None:
        """While a test cell runs, after each of its statements: the private helpers it
        defines (module-level functions named ``_…``: a hidden test's ``_reference``) refuse
        calls but from a test cell, so that a student's function cannot borrow them (they sit
        in the notebook's namespace, ``globals()["_reference"]``)."""
        if self.cell not in self.test_files:
            return
        for name, fn in list(namespace.items()):
            if (
                name.startswith("_")
                and isinstance(fn, types.FunctionType)
                and fn.__code__.co_filename == self.cell
                and fn not in self.rules
            ):
                try:
                    self._wire(fn)
                except Exception:  # (a closure cannot be tripped: left as it is)
                    continue
                self.rules[fn].append(("*", f"the test's own {name}", None))

    def _is_forbidden(self, obj, depth=0):
        """The forbidden path ``obj`` is (or wraps, or subclasses), for the current question."""
        import functools

        if obj is None or depth > 8:
            return None
        for path, target in self.forbidden.get(self.question, []):
            if obj is target or (
                isinstance(obj, type)
                and isinstance(target, type)
                and issubclass(obj, target)
            ):
                return path
        if isinstance(
            obj, types.FunctionType
        ):  # a copy of a tripwire's code is the original
            obj = self.codes.get(obj.__code__, obj)
        for q, path, _ in (
            self.rules.get(obj, []) if isinstance(obj, types.FunctionType) else []
        ):
            if q == self.question:
                return path
        inner = []
        if isinstance(obj, functools.partial):
            inner.append(obj.func)
        if isinstance(obj, (types.MethodType, staticmethod, classmethod)):
            inner.append(obj.__func__)
        if (
            isinstance(getattr(obj, "__dict__", None), dict)
            and "__wrapped__" in obj.__dict__
        ):
            inner.append(obj.__dict__["__wrapped__"])
        if (
            isinstance(obj, type) and obj.__module__ == "__main__"
        ):  # a notebook class: its members
            inner += list(vars(obj).values())
        for o in inner:
            path = self._is_forbidden(o, depth + 1)
            if path:
                return path
        return None

    def _calling_cell(self) -> str | None:
        """The file name of the nearest notebook cell on the stack (attnkit and torch frames
        skipped), or None."""
        frame = sys._getframe(1)
        while frame is not None and not frame.f_code.co_filename.startswith(
            self.cell_dir
        ):
            frame = frame.f_back
        return None if frame is None else frame.f_code.co_filename

    def dispatch(self, fn, args, kwargs):
        q = self.question
        if self.rules[fn][:1] and self.rules[fn][0][0] == "*":  # a test's own helper
            cell = self._calling_cell()
            if cell is not None and cell not in self.test_files:
                path = self.rules[fn][0][1]
                self.event("forbidden-call", grade_id=self.grade_id, name=path)
                raise GradingGuardError(
                    f"{q or 'this answer'}: your solution calls {path}: no points for it"
                )
            return self.originals[fn](*args, **kwargs)
        if q is not None:
            for rq, path, cls in self.rules[fn]:
                if rq == q and (cls is None or (args and isinstance(args[0], cls))):
                    # the nearest notebook cell decides: only the test cell itself may call
                    if self._calling_cell() != self.cell:
                        self.event("forbidden-call", grade_id=self.grade_id, name=path)
                        raise GradingGuardError(
                            f"{q}: your solution calls {path}, which {q} may "
                            "not use "
                            "(it answers the question): no points for it"
                        )
                    break
        return self.originals[fn](*args, **kwargs)


def install_tripwires(tests) -> Tripwires:
    """Only the forbidden-call tripwires (no other guard), for the students' self-check kernel."""
    import attnkit.grading  # noqa: F401  (the package imports torch, numpy: before the hook)

    ip = get_ipython()  # noqa: F821
    cell_dir = os.path.dirname(ip.compile.get_code_name("", "", 0))
    by_name = {ip.compile.get_code_name(t["source"], t["source"], 0): t for t in tests}
    notes = []
    wires = Tripwires(
        tests,
        cell_dir,
        lambda kind, **info: notes.append((kind, info)),
        lambda: ip.user_ns,
    )
    state = {"cell": None, "exec": None}
    wires.test_files = set(by_name)

    def hook(name, args):
        if name == "exec" and isinstance(args[0], types.CodeType):
            code = args[0]
            if code.co_filename.startswith(cell_dir) and (
                code.co_filename != state["cell"] or ip.execution_count != state["exec"]
            ):
                state["cell"], state["exec"] = code.co_filename, ip.execution_count
                wires.enter(code.co_filename, by_name.get(code.co_filename))

    sys.addaudithook(hook)
    return wires


def _keep(label, key, value):
    """Which attributes are protected: callables and modules (not caches, not IPython's own)."""
    if label == "builtins" and (
        key.startswith("_")
        and key not in ("__import__", "__build_class__")
        or key in _IPYTHON_BUILTINS
    ):
        return False
    return callable(value) or isinstance(value, types.ModuleType)


class _CappedStream:
    """Wraps sys.stdout/stderr: at most ``cap`` characters per cell, then one note."""

    def __init__(self, stream, cap, on_cut):
        self._stream, self._cap, self.used, self.cut, self._on_cut = (
            stream,
            cap,
            0,
            False,
            on_cut,
        )

    def write(self, text):
        room = self._cap - self.used
        self.used += len(text)
        if room >= len(text):
            return self._stream.write(text)
        if not self.cut:
            self.cut = True
            self._on_cut(self._cap)
            self._stream.write(
                text[: max(room, 0)]
                + f"\n[grader] output cut at {self._cap} characters\n"
            )
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _self_interrupt(name, args) -> bool:
    """``os.kill``/``os.killpg``: SIGINT from the kernel to itself (or its own process group):
    how ipykernel obeys an interrupt message, the way the sandboxed kernel is interrupted
    (attnkit.grading.kernelbox)."""
    if len(args) != 2:
        return False
    me = os.getpid() if name == "os.kill" else os.getpgrp()
    return args[0] == me and args[1] == signal.SIGINT


_HIDDEN: dict = {}  # what hidden_calls needs, set by install


def hidden_calls(key: str) -> None:
    """What the kernel runs in place of the hidden test cell ``key``
    (:func:`attnkit.grading.replay.stub`): the answers called with the hidden tests'
    arguments, each call recorded for the judge. The tests themselves never come here."""
    if not _HIDDEN:
        raise RuntimeError("hidden tests run only when the grader grades the notebook")
    calls = _HIDDEN["calls"].get(key, [])
    _HIDDEN["recorder"].run_hidden(key, calls, _HIDDEN["namespace"]())


def install(config_path: str) -> None:
    with open(config_path) as f:
        cfg = json.load(f)
    log = open(
        cfg["log"], "a", buffering=1
    )  # opened before the hook: the kernel keeps writing it
    allow = [os.path.realpath(p) for p in cfg["allow_write"]]
    deny_read = [os.path.realpath(p) for p in cfg["deny_read"]]
    prefixes = [os.path.realpath(p) for p in {sys.prefix, sys.base_prefix}]

    def under(path, roots):
        return any(path == r or path.startswith(r + os.sep) for r in roots)

    def event(kind, **info):
        log.write(json.dumps({"kind": kind, **info}) + "\n")

    # the pristine state: exits disabled first, so that restoring also re-disables them
    import posix

    for owner in (os, posix):
        owner._exit = _exit_blocked
    os.abort = _exit_blocked
    ip = get_ipython()  # noqa: F821  (the startup file runs inside IPython)
    cell_dir = os.path.dirname(ip.compile.get_code_name("", "", 0))
    # the instructor's cells are known by their file names (the config holds no source):
    # the kernel must name cells as the grader expects (replay.cell_name), or nothing is known
    probe = cfg.get("probe", {})
    if probe and os.path.basename(
        ip.compile.get_code_name(probe["source"], probe["source"], 0)
    ) != probe.get("name"):
        event("guard-broken", why="the kernel names cells differently")
    # the forbidden calls first: resolving them imports their modules, which are then protected too
    wires = Tripwires(cfg["tests"], cell_dir, event, lambda: ip.user_ns)
    for broken in wires.broken:
        event("forbidden-unresolved", name=broken)
    recorder = None
    # the answers' results, recorded for the trusted judge (attnkit.grading.replay)
    if cfg.get("replay"):
        from attnkit.grading.replay import Recorder

        recorder = Recorder(
            cfg["replay"]["folder"],
            cfg["replay"],
            lambda name: os.path.join(cell_dir, name),
        )
        if cfg["replay"].get("calls"):  # read now: the guard denies it to the student
            from attnkit.grading.replay import load_calls

            _HIDDEN.update(
                recorder=recorder,
                namespace=lambda: ip.user_ns,
                calls=load_calls(cfg["replay"]["calls"]),
            )
    owners = _protected_owners()
    pristine = [
        (label, ns, {k: v for k, v in vars(ns).items() if _keep(label, k, v)})
        for label, ns in owners
    ]
    ip_names = (
        "showtraceback",
        "_showtraceback",
        "showsyntaxerror",
        "CustomTB",
        "run_cell",
        "run_code",
    )
    ip_pristine = {n: ip.__dict__.get(n, _MISSING) for n in ip_names}

    def cut(cap):
        event(
            "output-cut", grade_id=tests.get(state["cell"], {}).get("grade_id"), cap=cap
        )

    streams = {
        n: _CappedStream(getattr(sys, n), cfg["max_output"], cut)
        for n in ("stdout", "stderr")
    }
    tests = {os.path.join(cell_dir, t["name"]): t for t in cfg["tests"]}
    state = {"cell": None, "exec": None}
    wires.test_files = set(tests)

    def restore():
        changed = []
        for label, ns, saved in pristine:
            now = vars(ns)
            for key, value in saved.items():
                if now.get(key, _MISSING) is not value:
                    changed.append(f"{label}.{key}")
                    setattr(ns, key, value)
            if isinstance(ns, type):
                for key in [
                    k for k, v in now.items() if k not in saved and _keep(label, k, v)
                ]:
                    changed.append(f"{label}.{key}")
                    delattr(ns, key)
        for n, value in ip_pristine.items():
            if ip.__dict__.get(n, _MISSING) is not value:
                changed.append(f"IPython.{n}")
                ip.__dict__.pop(n, None) if value is _MISSING else setattr(ip, n, value)
        if ip.custom_exceptions:
            changed.append("IPython.custom_exceptions")
            ip.custom_exceptions = ()
        for n, stream in streams.items():
            if getattr(sys, n) is not stream:
                if not isinstance(getattr(sys, n), _CappedStream):
                    stream._stream = getattr(sys, n)
                setattr(sys, n, stream)
        return changed

    def on_cell(code):
        new_cell = (
            code.co_filename != state["cell"] or ip.execution_count != state["exec"]
        )
        test_before = tests.get(state["cell"]) if not new_cell else None
        if new_cell:
            state["cell"], state["exec"] = code.co_filename, ip.execution_count
            for s in streams.values():
                s.used, s.cut = 0, False
        changed = restore()
        test = tests.get(state["cell"])
        if changed:
            event(
                "restored", grade_id=test["grade_id"] if test else None, names=changed
            )
            if test_before:
                raise GradingGuardError(
                    f"{', '.join(changed)} changed while this test ran "
                    "(put back by the grader): the test fails"
                )
            print(
                f"[grader] put back {', '.join(changed)} (changed by the code above)",
                file=sys.stderr,
            )
        if (
            new_cell
        ):  # the forbidden calls of this test's question (none outside test cells)
            wires.enter(state["cell"], test)
            if recorder is not None:
                try:
                    recorder.enter(state["cell"], ip.user_ns)
                except Exception as exc:
                    # logged; the judge then finds no record of this cell
                    event("record-failed", error=type(exc).__name__)
        if test:  # the private helpers this test cell's statements so far defined
            wires.guard_helpers(ip.user_ns)

    def hook(name, args):
        if name == "exec":
            code = args[0]
            if isinstance(code, types.CodeType) and code.co_filename.startswith(
                cell_dir
            ):
                on_cell(code)
        elif name == "open":
            path, mode, flags = args
            if path is None or isinstance(path, int):
                return
            real = os.path.realpath(os.fsdecode(path))
            write = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                (flags or 0) & _WRITE_FLAGS
            )
            if (write and not under(real, allow)) or (
                under(real, deny_read) and not under(real, allow)
            ):
                event("denied", what="open", path=real, write=write)
                raise PermissionError(
                    f"[grader] {'writing' if write else 'reading'} {real} "
                    "is not allowed while grading"
                )
        elif name in _PATH_WRITES:
            for p in args[:2]:
                if isinstance(p, (str, bytes, os.PathLike)) and not under(
                    os.path.realpath(os.fsdecode(p)), allow
                ):
                    event("denied", what=name, path=os.fsdecode(p))
                    raise PermissionError(
                        f"[grader] {name} outside the submission is not allowed while grading"
                    )
        elif name in ("os.kill", "os.killpg") and _self_interrupt(name, args):
            return
        elif (
            name in _DENIED or name.startswith("os.exec") or name.startswith("os.spawn")
        ):
            if (
                name == "ctypes.dlopen"
                and args
                and isinstance(args[0], str)
                and under(os.path.realpath(args[0]), prefixes)
            ):
                return
            event("denied", what=name)
            raise PermissionError(f"[grader] {name} is not allowed while grading")

    restore()
    sys.addaudithook(hook)
    event("installed", tests=[t["grade_id"] for t in cfg["tests"]])
