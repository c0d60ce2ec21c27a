"""The grader's guard inside a student's kernel (installed by :mod:`attnkit.grading.batch`; students never import it).

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
import sys
import types

_MISSING = object()
_DENIED = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
           "os.forkpty", "os.kill", "os.killpg", "signal.pthread_kill", "socket.connect",
           "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
           "ctypes.call_function", "ctypes.dlsym", "ctypes.cdata", "ctypes.string_at",
           "ctypes.wstring_at", "ctypes.dlopen", "os.chroot", "shutil.rmtree"}
_PATH_WRITES = {"os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.chown", "os.mkdir",
                "os.symlink", "os.link", "os.utime", "os.rename"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


_IPYTHON_BUILTINS = {"exit", "quit", "get_ipython", "display", "copyright", "credits", "license", "help",
                     "dreload", "runfile", "input", "raw_input"}  # ipykernel swaps input per request


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
    import torch.testing

    import attnkit
    owners = [("builtins", builtins), ("math", math), ("operator", operator), ("torch", torch),
              ("torch.testing", torch.testing), ("torch.Tensor", torch.Tensor),
              ("torch.nn.functional", torch.nn.functional), ("numpy", numpy),
              ("numpy.testing", numpy.testing), ("os", os)]
    owners += [(name, mod) for name, mod in sorted(sys.modules.items())
               if (name == "attnkit" or name.startswith("attnkit.")) and mod is not None]
    return owners


def _tripwire(fn, name, dispatch):
    """Code for ``fn.__code__`` that hands every call to ``dispatch(fn, name, args, kwargs)``."""
    key = f"_attnkit_trip_{fn.__name__}_{id(fn)}"
    fn.__globals__[key] = lambda args, kwargs: dispatch(fn, name, args, kwargs)
    ns = {}
    exec(compile(f"def {fn.__name__}(*args, **kwargs):\n    return {key}(args, kwargs)\n",
                 "<attnkit grader>", "exec"), fn.__globals__, ns)
    return ns[fn.__name__].__code__


def _keep(label, key, value):
    """Which attributes are protected: callables and modules (not caches, not IPython's own)."""
    if label == "builtins" and (key.startswith("_") and key not in ("__import__", "__build_class__")
                                or key in _IPYTHON_BUILTINS):
        return False
    return callable(value) or isinstance(value, types.ModuleType)


class _CappedStream:
    """Wraps sys.stdout/stderr: at most ``cap`` characters per cell, then one note."""

    def __init__(self, stream, cap, on_cut):
        self._stream, self._cap, self.used, self.cut, self._on_cut = stream, cap, 0, False, on_cut

    def write(self, text):
        room = self._cap - self.used
        self.used += len(text)
        if room >= len(text):
            return self._stream.write(text)
        if not self.cut:
            self.cut = True
            self._on_cut(self._cap)
            self._stream.write(text[:max(room, 0)] + f"\n[grader] output cut at {self._cap} characters\n")
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def install(config_path: str) -> None:
    with open(config_path) as f:
        cfg = json.load(f)
    log = open(cfg["log"], "a", buffering=1)  # opened before the hook: the kernel keeps writing it
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
    owners = _protected_owners()
    pristine = [(label, ns, {k: v for k, v in vars(ns).items() if _keep(label, k, v)}) for label, ns in owners]
    ip = get_ipython()  # noqa: F821  (the startup file runs inside IPython)
    ip_names = ("showtraceback", "_showtraceback", "showsyntaxerror", "CustomTB", "run_cell", "run_code")
    ip_pristine = {n: ip.__dict__.get(n, _MISSING) for n in ip_names}
    def cut(cap):
        event("output-cut", grade_id=tests.get(state["cell"], {}).get("grade_id"), cap=cap)

    streams = {n: _CappedStream(getattr(sys, n), cfg["max_output"], cut) for n in ("stdout", "stderr")}
    cell_dir = os.path.dirname(ip.compile.get_code_name("", "", 0))
    tests = {ip.compile.get_code_name(t["source"], t["source"], 0): t for t in cfg["tests"]}
    state = {"cell": None, "exec": None}

    def forbidden_call(fn, name, args, kwargs):
        frame = sys._getframe(2)
        while frame is not None and not frame.f_code.co_filename.startswith(cell_dir):
            frame = frame.f_back  # skip attnkit/torch frames: the nearest notebook cell decides
        if frame is not None and frame.f_code.co_filename == state["cell"]:
            original = types.FunctionType(trips[fn][0], fn.__globals__, fn.__name__, fn.__defaults__)
            original.__kwdefaults__ = fn.__kwdefaults__
            return original(*args, **kwargs)  # the test cell itself may use the reference
        test = tests.get(state["cell"], {})
        event("forbidden-call", grade_id=test.get("grade_id"), name=name)
        raise GradingGuardError(f"your solution calls attnkit.{name}, the reference implementation "
                                "of what this question asks you to write: no points for it")

    import attnkit
    trips = {}  # function -> (its own code, the tripwire's code) for every forbidden name
    for t in cfg["tests"]:
        for name in t["forbidden"]:
            obj = getattr(attnkit, name, None)
            funcs = [obj] if isinstance(obj, types.FunctionType) else []
            if isinstance(obj, type):
                funcs = [v for k, v in vars(obj).items() if k in ("__init__", "forward") and isinstance(v, types.FunctionType)]
            for fn in funcs:
                if fn.__closure__ is None and fn not in trips:
                    trips[fn] = (fn.__code__, _tripwire(fn, name, forbidden_call))

    def restore():
        changed = []
        for label, ns, saved in pristine:
            now = vars(ns)
            for key, value in saved.items():
                if now.get(key, _MISSING) is not value:
                    changed.append(f"{label}.{key}")
                    setattr(ns, key, value)
            if isinstance(ns, type):
                for key in [k for k, v in now.items() if k not in saved and _keep(label, k, v)]:
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
        new_cell = code.co_filename != state["cell"] or ip.execution_count != state["exec"]
        test_before = tests.get(state["cell"]) if not new_cell else None
        if new_cell:
            state["cell"], state["exec"] = code.co_filename, ip.execution_count
            for s in streams.values():
                s.used, s.cut = 0, False
        changed = restore()
        test = tests.get(state["cell"])
        for fn, (own, trip) in trips.items():  # tripwires only while a test cell runs
            fn.__code__ = trip if test else own
        if changed:
            event("restored", grade_id=test["grade_id"] if test else None, names=changed)
            if test_before:
                raise GradingGuardError(f"{', '.join(changed)} changed while this test ran "
                                        "(put back by the grader): the test fails")
            print(f"[grader] put back {', '.join(changed)} (changed by the code above)", file=sys.stderr)

    def hook(name, args):
        if name == "exec":
            code = args[0]
            if isinstance(code, types.CodeType) and code.co_filename.startswith(cell_dir):
                on_cell(code)
        elif name == "open":
            path, mode, flags = args
            if path is None or isinstance(path, int):
                return
            real = os.path.realpath(os.fsdecode(path))
            write = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
            if (write and not under(real, allow)) or (under(real, deny_read) and not under(real, allow)):
                event("denied", what="open", path=real, write=write)
                raise PermissionError(f"[grader] {'writing' if write else 'reading'} {real} is not allowed while grading")
        elif name in _PATH_WRITES:
            for p in args[:2]:
                if isinstance(p, (str, bytes, os.PathLike)) and not under(os.path.realpath(os.fsdecode(p)), allow):
                    event("denied", what=name, path=os.fsdecode(p))
                    raise PermissionError(f"[grader] {name} outside the submission is not allowed while grading")
        elif name in _DENIED or name.startswith("os.exec") or name.startswith("os.spawn"):
            if name == "ctypes.dlopen" and args and isinstance(args[0], str) and under(os.path.realpath(args[0]), prefixes):
                return
            event("denied", what=name)
            raise PermissionError(f"[grader] {name} is not allowed while grading")

    restore()
    sys.addaudithook(hook)
    event("installed", tests=[t["grade_id"] for t in cfg["tests"]])
