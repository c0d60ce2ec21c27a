"""Forward time of attnkit's ``MultiHeadAttention`` against ``torch.nn.MultiheadAttention``.

Run ``python -m attnkit.bench.mha`` (defaults: batch 8, length 512, width 512, 8 heads,
self-attention, eval mode, no autograd). All three models get the same weights and
inputs in the same process; each is warmed up, then the models are timed in turn,
round after round (``--repeats`` rounds), so that background load hits all of them alike;
the table gives medians and ratios to PyTorch. ``--out FILE.csv`` also writes the table.
"""

from __future__ import annotations

import argparse
import csv

import torch
from torch import nn

from ..multihead import MultiHeadAttention
from .timing import time_interleaved

__all__ = ["bench_mha", "main"]


def bench_mha(batch=8, length=512, width=512, heads=8, *, warmup=2, repeats=7, seed=0):
    """Time the three models on one ``(batch, length, width)`` self-attention input.

    Returns a list of rows ``{"model", "median_ms", "ratio_to_torch"}``.
    """
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(width, heads, bias=False, batch_first=True).eval()
    fast = MultiHeadAttention(
        width, heads, 0.0, query_size=width, key_size=width, value_size=width
    ).eval()
    explicit = MultiHeadAttention(
        width,
        heads,
        0.0,
        mechanism_settings={"fast": False},
        query_size=width,
        key_size=width,
        value_size=width,
    ).eval()
    with torch.no_grad():
        for model in (fast, explicit):
            W_q, W_k, W_v = ref.in_proj_weight.chunk(3)
            model.W_q.weight.copy_(W_q)
            model.W_k.weight.copy_(W_k)
            model.W_v.weight.copy_(W_v)
            model.W_o.weight.copy_(ref.out_proj.weight)
    X = torch.randn(batch, length, width)
    models = {
        "torch.nn.MultiheadAttention": lambda: ref(X, X, X, need_weights=False)[0],
        "attnkit fast path (SDPA)": lambda: fast(X, X, X),
        "attnkit explicit path": lambda: explicit(X, X, X),
    }
    with torch.no_grad():
        outs = {name: fn() for name, fn in models.items()}
        base = outs["torch.nn.MultiheadAttention"]
        for name, out in outs.items():
            if not torch.allclose(out, base, atol=1e-4, rtol=1e-4):
                raise RuntimeError(f"{name} disagrees with torch.nn.MultiheadAttention")
        medians = time_interleaved(models, warmup=warmup, repeats=repeats)
    t_ref = medians["torch.nn.MultiheadAttention"]
    return [
        {
            "model": name,
            "median_ms": round(1000 * t, 3),
            "ratio_to_torch": round(t / t_ref, 3),
        }
        for name, t in medians.items()
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the table as CSV here")
    args = parser.parse_args(argv)
    rows = bench_mha(
        args.batch,
        args.length,
        args.width,
        args.heads,
        warmup=args.warmup,
        repeats=args.repeats,
    )
    print(
        f"batch {args.batch}, length {args.length}, width {args.width}, heads {args.heads}, "
        f"threads {torch.get_num_threads()}, median of {args.repeats}"
    )
    print(f"{'model':32s} {'median ms':>10s} {'ratio':>7s}")
    for row in rows:
        print(
            f"{row['model']:32s} {row['median_ms']:10.2f} {row['ratio_to_torch']:7.2f}"
        )
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(
                f,
                fieldnames=[
                    "batch",
                    "length",
                    "width",
                    "heads",
                    "threads",
                    "model",
                    "median_ms",
                    "ratio_to_torch",
                ],
            )
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {
                        "batch": args.batch,
                        "length": args.length,
                        "width": args.width,
                        "heads": args.heads,
                        "threads": torch.get_num_threads(),
                        **row,
                    }
                )


if __name__ == "__main__":
    main()
