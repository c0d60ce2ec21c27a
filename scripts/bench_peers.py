"""attnkit's mechanisms against the public packages that implement them, in one run.

    PYTHONPATH=/tmp/peers .venv/bin/python scripts/bench_peers.py --mode forward
    PYTHONPATH=/tmp/peers .venv/bin/python scripts/bench_peers.py --mode train --causal

Each attnkit mechanism is paired with its public peer, with the same settings:

* ``performer:n_features=256``  ↔ performer-pytorch ``FastAttention(nb_features=256)``
* ``lsh:bucket_size=64,n_hashes=2,shared_qk=true`` ↔ reformer-pytorch
  ``LSHAttention(bucket_size=64, n_hashes=2)``: both shared-QK (the keys are the
  normalised queries, hashed once; reformer-pytorch has no other form), batch and heads
  merged for the peer
* ``local:window=256`` ↔ local-attention ``LocalAttention(window_size=256,
  look_backward=1, look_forward=1)`` (``look_forward=0`` when causal)
* ``linear`` ↔ linear-attention-transformer ``linear_attn`` (``causal_linear_attn``)
* ``softmax:fast=false`` ↔ the plain three lines ``softmax(q @ kᵀ / √D) @ v``
* ``softmax`` ↔ plain ``F.scaled_dot_product_attention``

and two plain matrix multiplies of comparable size give the machine's reachable GFLOP/s
(``x (B, H, L, D) @ w (D, 256)``, Performer's feature map, and ``xᵀ y`` with
``(B, H, D, L) @ (B, H, L, D)``, linear attention's key–value summary).

Every (implementation, length) runs in its own process (for its peak memory), with the
machinery of :mod:`attnkit.bench` (:func:`~attnkit.bench.measure`,
:func:`~attnkit.bench.measure_step`); the whole list is run ``--rounds`` times, round after
round (interleaved, so load hits every implementation alike), and each row keeps its
fastest round's median and its largest peak.

The peers are optional and never a dependency of attnkit: install them in a scratch
folder and put it on ``PYTHONPATH`` (``--peers-path`` does the same)::

    .venv/bin/pip install --target /tmp/peers --no-deps performer-pytorch \\
        reformer-pytorch local-attention linear-attention-transformer einops \\
        axial-positional-embedding product-key-memory linformer hyper-connections \\
        colt5-attention

A peer that cannot be imported is reported as ``missing (…)`` and the rest still runs.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from attnkit.bench import measure, measure_step

# (attnkit spec, peer name): the pairs compared, in the order printed
PAIRS = [
    ("softmax:fast=false", "textbook"),
    ("softmax", "sdpa"),
    ("performer:n_features=256", "performer-pytorch"),
    ("linear", "linear-attention-transformer"),
    ("local:window=256", "local-attention"),
    ("lsh:bucket_size=64,n_hashes=2,shared_qk=true", "reformer-pytorch"),
]
MATMULS = ["matmul:LxD@Dx256", "matmul:DxL@LxD"]
N_FEATURES = 256


def _peer(name: str, causal: bool, head_dim: int):
    """``fn(q, k, v) -> out`` on ``(B, H, L, D)`` for a peer (or a plain baseline)."""
    if name == "textbook":

        def textbook(q, k, v):
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, L, S)
            if causal:
                future = torch.ones(
                    scores.shape[-2:], dtype=torch.bool, device=q.device
                ).triu(1)
                scores = scores.masked_fill(future, float("-inf"))
            return torch.softmax(scores, dim=-1) @ v  # (B, H, L, D)

        return textbook
    if name == "sdpa":
        return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    if name == "performer-pytorch":
        from performer_pytorch import FastAttention

        return FastAttention(dim_heads=head_dim, nb_features=N_FEATURES, causal=causal)
    if name == "linear-attention-transformer":
        from linear_attention_transformer.linear_attention_transformer import (
            causal_linear_attn,
            linear_attn,
        )

        return causal_linear_attn if causal else linear_attn
    if name == "local-attention":
        from local_attention import LocalAttention

        return LocalAttention(
            window_size=256,
            causal=causal,
            look_backward=1,
            look_forward=0 if causal else 1,
        )
    if name == "reformer-pytorch":
        from reformer_pytorch import LSHAttention

        lsh = LSHAttention(bucket_size=64, n_hashes=2, causal=causal)

        def reformer(q, k, v):
            B, H, L, D = q.shape
            out, _, _ = lsh(q.reshape(B * H, L, D), v.reshape(B * H, L, D))
            return out.reshape(B, H, L, D)

        return reformer
    raise ValueError(f"unknown peer {name!r}")


def _matmul(name: str, shape, dtype, device, train):
    """A plain matrix multiply the size of a mechanism's main products."""
    B, H, L, D = shape
    g = torch.Generator().manual_seed(1)
    other = (D, N_FEATURES) if name == "matmul:LxD@Dx256" else (B, H, L, D)
    a, b = (
        torch.randn(size, generator=g)
        .to(device=device, dtype=dtype)
        .requires_grad_(train)
        for size in (shape, other)
    )
    if name == "matmul:LxD@Dx256":
        return lambda: a @ b  # (B, H, L, 256)
    return lambda: a.transpose(-2, -1) @ b  # (B, H, D, D)


def nominal_flops(impl: str, B, H, L, D, causal: bool, mode: str) -> float | None:
    """Multiply–adds × 2 of an implementation's matrix products (forward; × 3 to train).

    ``None`` where no simple count applies (causal forms, LSH, local windows).
    """
    BH = B * H
    forward = {
        "matmul:LxD@Dx256": 2 * BH * L * D * N_FEATURES,
        "matmul:DxL@LxD": 2 * BH * L * D * D,
    }
    if not causal:
        forward.update(
            {
                # q ωᵀ, k ωᵀ, φ(k)ᵀ v, φ(q) (φ(k)ᵀ v): four (L × D × M) products
                "performer:n_features=256": 8 * BH * L * D * N_FEATURES,
                "performer-pytorch": 8 * BH * L * D * N_FEATURES,
                # φ(k)ᵀ v and φ(q) (φ(k)ᵀ v): two (L × D × D) products
                "linear": 4 * BH * L * D * D,
                "linear-attention-transformer": 4 * BH * L * D * D,
                # q kᵀ and weights @ v: two (L × L × D) products
                "softmax:fast=false": 4 * BH * L * L * D,
                "textbook": 4 * BH * L * L * D,
                "softmax": 4 * BH * L * L * D,
                "sdpa": 4 * BH * L * L * D,
            }
        )
    f = forward.get(impl)
    return None if f is None else f * (3 if mode == "train" else 1)


def _worker(job: dict) -> dict:
    """Runs in its own process: one peer, plain baseline or matmul at one length."""
    if job["peers_path"]:
        sys.path.append(job["peers_path"])
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    device, dtype = torch.device(job["device"]), getattr(torch, job["dtype"])
    train = job["mode"] == "train"
    shape = (job["batch"], job["heads"], job["length"], job["head_dim"])
    if job["impl"].startswith("matmul:"):
        fn = _matmul(job["impl"], shape, dtype, device, train)
    else:
        try:
            peer = _peer(job["impl"], job["causal"], job["head_dim"])
        except ImportError as err:
            return {"status": f"missing ({err})"}
        if isinstance(peer, torch.nn.Module):
            peer = peer.to(device=device, dtype=dtype).train(train)
        g = torch.Generator().manual_seed(job["seed"])
        q, k, v = (
            torch.randn(shape, generator=g)
            .to(device=device, dtype=dtype)
            .requires_grad_(train)
            for _ in range(3)
        )
        fn = lambda: peer(q, k, v)  # noqa: E731  (B, H, L, D)

    def step():
        with torch.set_grad_enabled(train):
            out = fn()
            if train:
                out.sum().backward()

    return measure_step(
        step,
        device=device,
        warmup=job["warmup"],
        repeats=job["repeats"],
        budget_bytes=job["budget_bytes"],
    )


def _run_one(impl: str, length: int, a) -> dict:
    settings = dict(
        batch=a.batch,
        heads=a.heads,
        head_dim=a.head_dim,
        causal=a.causal,
        dtype=a.dtype,
        device=a.device,
        mode=a.mode,
        repeats=a.repeats,
        warmup=a.warmup,
        threads=a.threads,
    )
    if impl in dict(PAIRS):  # an attnkit mechanism: attnkit.bench's own worker
        return measure(impl, length, budget_gb=a.budget_gb, **settings)
    job = {
        **settings,
        "impl": impl,
        "length": length,
        "seed": 0,
        "peers_path": a.peers_path,
        "budget_bytes": int(a.budget_gb * 2**30) if a.budget_gb else 0,
    }
    proc = subprocess.run(
        [sys.executable, __file__, "_worker", json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        if proc.returncode < 0 or any("memory" in line.lower() for line in tail):
            return {"status": "over budget"}
        return {"status": "failed: " + " | ".join(tail)[-200:]}
    lines = proc.stdout.strip().splitlines()
    if not lines:  # the worker printed no result line
        return {"status": "failed: no result; " + proc.stderr.strip()[-200:]}
    return json.loads(lines[-1])


def _merge(old: dict | None, new: dict) -> dict:
    """Keep the fastest round's time and the largest peak."""
    if old is None or old["status"] != "ok":
        return new
    if new["status"] != "ok":
        return old
    return {
        "status": "ok",
        "time_s": min(old["time_s"], new["time_s"]),
        "peak_mb": max(old["peak_mb"], new["peak_mb"]),
    }


def run_meta(started: datetime.datetime, load_before: float, a) -> dict:
    """When, where and at what load (1-minute average, read as it started) a run was made."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent,
    ).stdout.strip()
    return {
        "mode": a.mode,
        "causal": a.causal,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": load_before,
        "commit": commit or "unknown",
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, torch {torch.__version__}",
        "settings": (
            f"batch {a.batch}, {a.heads} heads, head dim {a.head_dim}, {a.dtype}, "
            f"{a.device}, {f'{a.threads} thread(s)' if a.threads else 'default threads'}, "
            f"median of "
            f"{a.repeats} after {a.warmup} warm-up, best of {a.rounds} interleaved rounds"
        ),
    }


def _cell(x, spec: str) -> str:
    return "" if x in ("", None) else format(float(x), spec)


def markdown_table(rows: list[dict], meta: dict, peer_of: dict) -> str:
    """The rows of one run (as written to the CSV) as a Markdown table, with a caption
    line saying how, when and at what load it was measured."""
    kind = ("causal " if meta["causal"] in (True, "True") else "") + meta["mode"]
    lines = [
        f"**{kind}**, {meta['settings']}; {meta['machine']}; measured {meta['date']} "
        f"at commit `{meta['commit']}`, load average {meta['load_before']:.2f} before, "
        f"{meta['load_after']:.2f} after.",
        "",
        "| implementation | n | ms | MB | GFLOP/s | peer ÷ attnkit, time "
        "| peer ÷ attnkit, memory | × textbook | × SDPA |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    peers = set(peer_of.values())
    for row in rows:
        name = f"`{row['spec']}`" + (" (peer)" if row["spec"] in peers else "")
        if row["status"] != "ok":
            lines.append(f"| {name} | {row['length']} | {row['status']} |||||||")
            continue
        lines.append(
            f"| {name} | {row['length']} | {_cell(1e3 * float(row['time_s']), '.1f')} "
            f"| {_cell(row['peak_mb'], '.1f')} | {_cell(row['gflops'], '.1f')} "
            f"| {_cell(row['peer_time_ratio'], '.2f')} "
            f"| {_cell(row['peer_memory_ratio'], '.2f')} "
            f"| {_cell(row['speedup_vs_textbook'], '.2f')} "
            f"| {_cell(row['speedup_vs_sdpa'], '.2f')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        print(json.dumps(_worker(json.loads(argv[1]))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=["forward", "train"], default="forward")
    p.add_argument("--causal", action="store_true")
    p.add_argument("--lengths", nargs="+", type=int, default=[4096, 16384])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--budget-gb", type=float, default=8.0)
    p.add_argument(
        "--pairs",
        nargs="+",
        default=[s for s, _ in PAIRS],
        help="attnkit specs to compare (default: all six)",
    )
    p.add_argument("--no-matmul", action="store_true")
    p.add_argument("--peers-path", default="", help="folder the peers are installed in")
    p.add_argument("--out", type=Path, default=Path("bench-peers.csv"))
    p.add_argument(
        "--table",
        type=Path,
        default=None,
        help="also write the table as Markdown (the appendix includes these files)",
    )
    a = p.parse_args(argv)
    peer_of = dict(PAIRS)
    unknown = [s for s in a.pairs if s not in peer_of]
    if unknown:
        p.error(f"unknown pair(s) {unknown}; choose from {list(peer_of)}")
    impls = [x for s in a.pairs for x in (s, peer_of[s])]
    impls += [] if a.no_matmul else MATMULS
    started, load_before = datetime.datetime.now(datetime.timezone.utc), os.getloadavg()[0]
    best: dict[tuple[str, int], dict] = {}
    for r in range(a.rounds):
        for n in sorted(a.lengths):
            for impl in impls:
                if best.get((impl, n), {}).get("status", "ok") != "ok":
                    continue  # missing or over budget: once is enough
                res = _run_one(impl, n, a)
                best[impl, n] = _merge(best.get((impl, n)), res)
                print(f"round {r + 1} n={n} {impl}: {res}", file=sys.stderr)
    rows = []
    for n in sorted(a.lengths):
        for impl in impls:
            res = best[impl, n]
            row = {"spec": impl, "length": n, "mode": a.mode, "causal": a.causal}
            row.update(status=res["status"], time_s="", peak_mb="", gflops="")
            row.update(peer_time_ratio="", peer_memory_ratio="")
            row.update(speedup_vs_textbook="", speedup_vs_sdpa="")
            if res["status"] == "ok":
                row.update(time_s=res["time_s"], peak_mb=res["peak_mb"])
                flops = nominal_flops(
                    impl, a.batch, a.heads, n, a.head_dim, a.causal, a.mode
                )
                row["gflops"] = "" if flops is None else flops / res["time_s"] / 1e9
                other = best.get((peer_of.get(impl), n), {})
                if other.get("status") == "ok":
                    row["peer_time_ratio"] = other["time_s"] / res["time_s"]
                    if res["peak_mb"] > 0:
                        row["peer_memory_ratio"] = other["peak_mb"] / res["peak_mb"]
                for base in ("textbook", "sdpa"):
                    b = best.get((base, n), {})
                    if b.get("status") == "ok":
                        row[f"speedup_vs_{base}"] = b["time_s"] / res["time_s"]
            rows.append(row)
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    if a.table:
        meta = dict(run_meta(started, load_before, a), load_after=os.getloadavg()[0])
        a.table.write_text(markdown_table(rows, meta, peer_of), encoding="utf-8")
        print(f"wrote {a.table}")
    print(
        f"{a.mode}, causal={a.causal}, batch {a.batch}, {a.heads} heads, head dim "
        f"{a.head_dim}, {a.dtype}, {a.device}; best of {a.rounds} interleaved rounds"
    )
    print(
        f"{'implementation':34s} {'n':>6s} {'ms':>9s} {'MB':>8s} {'GFLOP/s':>8s} "
        f"{'peer/ak t':>9s} {'peer/ak m':>9s} {'×textbk':>8s} {'×sdpa':>7s}"
    )

    def fmt(x, spec):
        return format(x, spec) if x != "" else format("", spec.split(".")[0] + "s")

    for row in rows:
        if row["status"] != "ok":
            print(f"{row['spec']:34s} {row['length']:6d} {row['status']}")
            continue
        print(
            f"{row['spec']:34s} {row['length']:6d} {row['time_s'] * 1e3:9.1f} "
            f"{row['peak_mb']:8.1f} {fmt(row['gflops'], '8.1f')} "
            f"{fmt(row['peer_time_ratio'], '9.2f')} "
            f"{fmt(row['peer_memory_ratio'], '9.2f')} "
            f"{fmt(row['speedup_vs_textbook'], '8.2f')} "
            f"{fmt(row['speedup_vs_sdpa'], '7.2f')}"
        )
    print(
        "peer/ak t, m: the peer's time and memory over attnkit's (≥ 1: attnkit ahead)"
    )
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
