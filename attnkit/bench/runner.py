"""Time and memory of attention mechanisms on the reader's machine.

``python -m attnkit.bench --mechanisms softmax local:window=256 linear --lengths 1024 4096``

* A mechanism is given as ``name`` or ``name:key=value,key=value`` (settings for its
  constructor), e.g. ``local:window=256,blocked=false`` or ``softmax:fast=false`` (the
  textbook matmul–softmax–matmul).
* Each (mechanism, length) runs in a fresh process: on Linux one forked from a server
  process that has imported torch and attnkit and done nothing else (no tensor, allocator
  cache or thread pool to inherit; a fork costs milliseconds where starting Python and
  importing torch costs 2–3 s), elsewhere a new interpreter. Inputs and the mechanism are
  built, the forward pass is run ``warmup`` times, then timed ``repeats`` times; the
  median is reported, with the peak memory of the computation alone (on CPU the bytes
  its tensors hold at their peak, counted by :class:`~attnkit.bench.memory.PeakMemory`
  in one more call, and the peak resident set as ``rss_mb``; on CUDA
  ``max_memory_allocated`` minus what was allocated before).
* A run that would exceed ``--budget-gb`` is stopped by a memory limit and marked
  ``over budget``, and longer lengths of that mechanism are skipped.
* Ratios are against the baselines measured in the same run (by default both the
  textbook softmax and PyTorch's fused ``scaled_dot_product_attention``).
* ``--mode train`` times a forward *and* backward pass (a training step's attention, as in
  the Long Range Arena's steps per second); ``--mode forward`` (default) the forward alone.
* A mechanism with a ``max_len`` setting (the Synthesizers' fixed ``N × N`` matrices) gets
  ``max_len`` = the length being measured unless the spec sets it; one that cannot run
  causally is marked ``no causal`` when ``--causal`` is asked for.
* Writes ``bench.csv``, ``time.png`` and ``memory.png`` (log–log, with the fitted growth
  exponent of each mechanism) to ``--out``, and an approximation-error table
  (``error.csv``: relative error of each mechanism's output against exact softmax, without
  and with the causal mask). The plots are drawn by :mod:`attnkit.bench.plots`.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import multiprocessing
import resource
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..mechanisms import softmax_attention_naive
from ..registry import MECHANISMS, get_mechanism_class, make_mechanism
from .memory import PeakMemory
from .plots import plot_rows
from .stats import budget_summary, ratio_key

__all__ = [
    "parse_spec",
    "measure",
    "measure_step",
    "run_benchmark",
    "approximation_errors",
    "main",
]

DEFAULT_BASELINES = ("softmax:fast=false", "softmax")


def _parse_value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"local:window=256,blocked=false"`` → ``("local", {"window": 256, "blocked": False})``."""
    name, _, rest = spec.partition(":")
    get_mechanism_class(name)  # an unknown name fails here, with the registry's message
    settings = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(
                f"mechanism settings must look like key=value, got {item!r} in {spec!r}"
            )
        settings[key.strip()] = _parse_value(value.strip())
    return name, settings


def _status_kib(field: str) -> int:
    """A field of ``/proc/self/status`` (Linux), in KiB.

    ``VmSize``, ``VmRSS`` or ``VmHWM`` (the peak RSS).
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _reset_peak_rss() -> float:
    """Restart the peak-RSS counter at the current RSS; returns that baseline in MB.

    Writing ``5`` to ``/proc/self/clear_refs`` resets ``VmHWM`` (Linux ≥ 4.0), so the peak of
    the computation is not hidden below an earlier peak (importing torch, building inputs).
    Where that is not allowed, the baseline is the peak so far (a smaller run then reads 0).
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kib("VmRSS") / 1024
    except OSError:
        return _status_kib("VmHWM") / 1024


def _build(name: str, settings: dict, length: int):
    """The mechanism ``name`` with ``settings``; ``max_len`` follows the length unless given."""
    if (
        "max_len" in inspect.signature(get_mechanism_class(name).__init__).parameters
        and "max_len" not in settings
    ):
        settings = {**settings, "max_len": length}
    return make_mechanism(name, **settings)


def _worker(job: dict) -> dict:
    """Runs inside the subprocess: build, warm up, time, measure memory."""
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    device = torch.device(job["device"])
    dtype = getattr(torch, job["dtype"])
    name, settings = parse_spec(job["spec"])
    mech = _build(name, settings, job["length"]).to(device=device, dtype=dtype)
    if job["causal"] and not mech.supports_causal:
        return {"status": "no causal"}
    train = job["mode"] == "train"
    mech.train(train)
    g = torch.Generator(device="cpu").manual_seed(job["seed"])
    shape = (job["batch"], job["heads"], job["length"], job["head_dim"])
    q, k, v = (
        torch.randn(shape, generator=g)
        .to(device=device, dtype=dtype)
        .requires_grad_(train)
        for _ in range(3)
    )

    def step():
        with torch.set_grad_enabled(train):
            out = mech(q, k, v, causal=job["causal"])  # (B, H, L, D)
            if train:
                out.sum().backward()

    return measure_step(
        step,
        device=device,
        warmup=job["warmup"],
        repeats=job["repeats"],
        budget_bytes=job["budget_bytes"],
    )


def measure_step(
    step, *, device, warmup: int, repeats: int, budget_bytes: int = 0
) -> dict:
    """Time ``step()`` and measure its peak memory, inside a benchmark's own process.

    ``warmup`` untimed calls, then ``repeats`` timed ones (the median is reported);
    the peak is what a call allocates on top of what was there before: on CPU the bytes
    its tensors hold at their peak (:class:`~attnkit.bench.memory.PeakMemory`, one more
    untimed call; ``rss_mb`` is the peak resident set over all calls, for reference), on
    CUDA ``max_memory_allocated``. A ``budget_bytes`` over
    that is enforced with a memory limit: going over it returns ``{"status": "over
    budget"}``. Call it once per process: the CPU limit stays set.

    Returns:
        ``{"status": "ok", "time_s": median seconds, "peak_mb": MB}`` or the over-budget
        status.
    """
    device = torch.device(device)

    def synced_step():
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    with PeakMemory():  # its first use imports modules: before the memory limit
        torch.zeros(1)
    if device.type == "cpu" and budget_bytes:
        limit = _status_kib("VmSize") * 1024 + budget_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    base_rss = _reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
        if budget_bytes:  # the budget counts on top of what is already allocated
            total = torch.cuda.get_device_properties(device).total_memory
            torch.cuda.set_per_process_memory_fraction(
                min(1.0, (base_cuda + budget_bytes) / total), device
            )
    try:
        for _ in range(warmup):
            synced_step()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            synced_step()
            times.append(time.perf_counter() - t0)
        rss_mb = _status_kib("VmHWM") / 1024 - base_rss
        if device.type == "cpu":
            # one more call, untimed, counting the bytes its tensors hold at the peak:
            # the resident set also holds one-time set-up (the first call's) and what
            # the C allocator keeps after a free, so it differs between codes that
            # allocate the same tensors
            with PeakMemory() as mem:
                step()
    except (MemoryError, RuntimeError) as err:  # the memory limit (or CUDA OOM) was hit
        if "memory" not in str(err).lower() and not isinstance(err, MemoryError):
            raise
        return {"status": "over budget"}
    if device.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20
    else:
        peak_mb = mem.peak / 2**20
    return {
        "status": "ok",
        "time_s": statistics.median(times),
        "peak_mb": peak_mb,
        "rss_mb": rss_mb,
    }


def measure(
    spec: str,
    length: int,
    *,
    batch=1,
    heads=4,
    head_dim=64,
    causal=False,
    dtype="float32",
    device="cpu",
    mode="forward",
    repeats=3,
    warmup=1,
    budget_gb=8.0,
    seed=0,
    threads=0,
    timeout=900,
) -> dict:
    """Measure one (mechanism, length) in a fresh Python process; returns a result dict.

    ``status`` is ``"ok"`` (with ``time_s``, the median, and ``peak_mb``), ``"over budget"``
    or ``"no causal"``.
    """
    if mode not in ("forward", "train"):
        raise ValueError(f"mode must be 'forward' or 'train', got {mode!r}")
    job = dict(
        spec=spec,
        length=length,
        batch=batch,
        heads=heads,
        head_dim=head_dim,
        causal=causal,
        dtype=dtype,
        device=device,
        mode=mode,
        repeats=repeats,
        warmup=warmup,
        seed=seed,
        threads=threads,
        budget_bytes=int(budget_gb * 2**30) if budget_gb else 0,
    )
    if sys.platform.startswith("linux"):
        returncode, result, tail = _run_forked(job, timeout)
    else:
        returncode, result, tail = _run_interpreter(job, timeout)
    if returncode != 0:
        if returncode < 0 or any("memory" in line.lower() for line in tail):
            return {"status": "over budget"}
        raise RuntimeError(
            f"benchmark worker failed for {spec} at n={length}:\n" + "\n".join(tail)
        )
    return result


def _run_interpreter(job: dict, timeout: float):
    """``_worker(job)`` in a new Python interpreter: ``(returncode, result, error tail)``."""
    proc = subprocess.run(
        [sys.executable, "-m", "attnkit.bench", "_worker", json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        return (
            proc.returncode,
            None,
            (proc.stderr or proc.stdout).strip().splitlines()[-3:],
        )
    return 0, json.loads(proc.stdout.strip().splitlines()[-1]), []


_FORKSERVER = None


def _forkserver():
    """The fork server, started on first use, with this module (torch, attnkit) imported."""
    global _FORKSERVER
    if _FORKSERVER is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        _FORKSERVER = ctx
    return _FORKSERVER


def _forked_worker(job: dict, conn) -> None:
    """In the forked process: the result, or the error's last lines, back to the parent."""
    try:
        conn.send((0, _worker(job), []))
    except BaseException:  # reported, as a failed interpreter's stderr would be
        conn.send((1, None, traceback.format_exc().strip().splitlines()[-3:]))


def _run_forked(job: dict, timeout: float):
    """``_worker(job)`` in a process forked from the fork server: ``(returncode, result,
    error tail)``; a process killed before it answers (the memory limit's SIGKILL, a crash)
    returns its negative exit code."""
    ctx = _forkserver()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_forked_worker, args=(job, send), daemon=True)
    proc.start()
    send.close()
    try:
        if not receive.poll(timeout):
            proc.kill()
            proc.join()
            raise subprocess.TimeoutExpired(f"benchmark worker {job['spec']}", timeout)
        try:
            answer = receive.recv()
        except EOFError:  # died without answering
            answer = None
    finally:
        receive.close()
    proc.join()
    if answer is None:
        return proc.exitcode if proc.exitcode else -9, None, []
    return answer


def run_benchmark(
    specs, lengths, *, baselines=DEFAULT_BASELINES, progress=True, **settings
) -> list[dict]:
    """Measure every spec (baselines first) at every length; returns rows with ratios.

    Each row: spec, length, status, time_s, peak_mb, and for each baseline b
    ``speedup_vs_<b>`` (baseline time / time) and ``memory_ratio_vs_<b>``
    (baseline memory / memory),
    ``<b>`` being :func:`ratio_key` of b. ``settings`` go to :func:`measure`.
    """
    for s in list(specs) + list(baselines):
        parse_spec(s)
    if not lengths or any((not isinstance(n, int)) or n <= 0 for n in lengths):
        raise ValueError(f"lengths must be positive integers, got {lengths}")
    order = list(dict.fromkeys(list(baselines) + list(specs)))
    jobs = [(s, n) for s in order for n in sorted(lengths)]
    results, stopped = {}, {}  # stopped: spec → status given to its longer lengths
    bar = tqdm(jobs, desc="benchmark", disable=not progress)
    for spec, n in bar:
        bar.set_postfix_str(f"{spec} n={n}")
        if spec in stopped:
            results[spec, n] = {"status": stopped[spec]}
            continue
        results[spec, n] = measure(spec, n, **settings)
        status = results[spec, n]["status"]
        if status != "ok":
            stopped[spec] = "skipped (budget)" if status == "over budget" else status
    rows = []
    for spec, n in jobs:
        r = {"spec": spec, "length": n, "time_s": "", "peak_mb": "", **results[spec, n]}
        for b in baselines:
            base = results[b, n]
            ok = r["status"] == "ok" and base["status"] == "ok"
            r[f"speedup_vs_{ratio_key(b)}"] = base["time_s"] / r["time_s"] if ok else ""
            r[f"memory_ratio_vs_{ratio_key(b)}"] = (
                base["peak_mb"] / r["peak_mb"] if ok and r["peak_mb"] > 0 else ""
            )
        rows.append(r)
    return rows


def approximation_errors(
    specs, *, length=512, batch=1, heads=4, head_dim=64, causal=(False, True), seed=0
) -> list[dict]:
    """Relative error ‖out − exact‖ / ‖exact‖ of each mechanism against exact softmax attention.

    Every spec sees the same ``q, k, v`` (B, H, L, D) at ``L = length``, once per value in
    ``causal`` (a bool or a tuple of bools); a mechanism with parameters (the Synthesizers)
    is built with the global RNG seeded by ``seed``, so the table does not depend on what ran
    before it (the caller's RNG state is left as it was). Returns rows ``spec, length,
    causal, relative_error`` (``relative_error`` is ``""`` for a mechanism that has no
    causal form).
    """
    g = torch.Generator().manual_seed(seed)
    q, k, v = (
        torch.randn(batch, heads, length, head_dim, generator=g) for _ in range(3)
    )  # (B, H, L, D)
    rows = []
    for is_causal in (causal,) if isinstance(causal, bool) else causal:
        exact, _ = softmax_attention_naive(q, k, v, causal=is_causal)  # (B, H, L, D)
        for spec in specs:
            name, settings = parse_spec(spec)
            err = ""
            with torch.random.fork_rng(), torch.no_grad():  # weights drawn when built
                torch.manual_seed(seed)  # or at the first call: seeded too
                mech = _build(name, settings, length).eval()
                if mech.supports_causal or not is_causal:
                    out = mech(q, k, v, causal=is_causal)  # (B, H, L, D)
                    err = float((out - exact).norm() / exact.norm())
            rows.append(
                {
                    "spec": spec,
                    "length": length,
                    "causal": is_causal,
                    "relative_error": err,
                }
            )
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def _print_table(rows: list[dict]) -> None:
    ratio_cols = [
        c
        for c in rows[0]
        if c.startswith("speedup_vs_") or c.startswith("memory_ratio_vs_")
    ]
    head = f"{'mechanism':38s} {'n':>7s} {'time ms':>10s} {'peak MB':>9s} " + " ".join(
        f"{c[:26]:>26s}" for c in ratio_cols
    )
    print(head)
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['spec']:38s} {r['length']:7d} {r['status']:>20s}")
            continue
        ratios = " ".join(
            f"{r[c]:26.2f}" if r[c] != "" else f"{'':26s}" for c in ratio_cols
        )
        print(
            f"{r['spec']:38s} {r['length']:7d} {r['time_s'] * 1e3:10.2f} "
            f"{r['peak_mb']:9.1f} {ratios}"
        )


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_worker"]:
        print(json.dumps(_worker(json.loads(argv[1]))))
        return 0
    p = argparse.ArgumentParser(
        prog="python -m attnkit.bench", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--mechanisms",
        nargs="+",
        default=sorted(MECHANISMS),
        help="names or name:key=value,... specs (default: every registered mechanism)",
    )
    p.add_argument("--lengths", nargs="+", type=int, default=[256, 1024, 4096])
    p.add_argument("--baselines", nargs="*", default=list(DEFAULT_BASELINES))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--causal", action="store_true")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float64", "float16", "bfloat16"],
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--mode",
        default="forward",
        choices=["forward", "train"],
        help="time the forward pass, or forward + backward (a training step)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads per run (0: torch's default)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--budget-gb", type=float, default=8.0)
    p.add_argument(
        "--error-length",
        type=int,
        default=512,
        help="length for the approximation-error table, causal and not (0: skip)",
    )
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    for name, value in (
        ("--batch", a.batch),
        ("--heads", a.heads),
        ("--head-dim", a.head_dim),
        ("--repeats", a.repeats),
    ):
        if value <= 0:
            p.error(f"{name} must be positive, got {value}")
    if any(n <= 0 for n in a.lengths):
        p.error(f"--lengths must be positive, got {a.lengths}")
    try:
        for s in a.mechanisms + a.baselines:
            parse_spec(s)
    except ValueError as err:
        p.error(str(err))
    a.out.mkdir(parents=True, exist_ok=True)
    rows = run_benchmark(
        a.mechanisms,
        a.lengths,
        baselines=a.baselines,
        progress=not a.no_progress,
        batch=a.batch,
        heads=a.heads,
        head_dim=a.head_dim,
        causal=a.causal,
        dtype=a.dtype,
        device=a.device,
        mode=a.mode,
        repeats=a.repeats,
        warmup=a.warmup,
        budget_gb=a.budget_gb,
        threads=a.threads,
    )
    _print_table(rows)
    _write_csv(a.out / "bench.csv", rows)
    step = "forward" if a.mode == "forward" else "forward + backward"
    plot_rows(rows, "time_s", f"median {step} time (s)", a.out / "time.png")
    plot_rows(rows, "peak_mb", "peak memory (MB)", a.out / "memory.png")
    for baseline in a.baselines:
        try:
            summary = budget_summary(rows, baseline)
        except ValueError:
            continue
        print(
            f"at n = {summary['length']}, the longest {baseline} ran at within {a.budget_gb} GB:"
        )
        for r in summary["rows"]:
            ratios = (
                "did not run" if r["speedup"] is None else f"{r['speedup']:.2f}x faster"
            )
            ratios += (
                ""
                if r["memory_ratio"] is None
                else f", {r['memory_ratio']:.2f}x less memory"
            )
            print(f"  {r['spec']:38s} {ratios:40s} longest n run: {r['longest']}")
    if a.error_length:
        errors = approximation_errors(
            a.mechanisms,
            length=a.error_length,
            batch=a.batch,
            heads=a.heads,
            head_dim=a.head_dim,
        )
        _write_csv(a.out / "error.csv", errors)
        for e in errors:
            err = (
                "no causal form"
                if e["relative_error"] == ""
                else f"{e['relative_error']:.3g}"
            )
            print(
                f"relative error vs exact softmax at n={e['length']}, causal={e['causal']!s:5s}: "
                f"{e['spec']:38s} {err}"
            )
    print(
        f"wrote {a.out / 'bench.csv'}, time.png, memory.png"
        + (", error.csv" if a.error_length else "")
    )
    return 0
