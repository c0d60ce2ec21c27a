"""The command line of :mod:`attnkit.tasks`:
``python -m attnkit.tasks duplication|synthesizer|transfer|capstone``."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .experiments import (
    capstone_experiment,
    duplication_experiment,
    synthesizer_experiment,
    transfer_experiment,
    write_csv,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m attnkit.tasks",
        description="the chapters' experiments (small synthetic tasks)",
    )
    sub = parser.add_subparsers(dest="task", required=True)
    dup = sub.add_parser(
        "duplication", help="Reformer's 0w0w task: full vs LSH attention (Table 2)"
    )
    dup.add_argument("--out", type=Path, required=True, help="CSV file to write")
    dup.add_argument("--word-len", type=int, default=24)
    dup.add_argument("--vocab", type=int, default=32)
    dup.add_argument("--bucket-size", type=int, default=4)
    dup.add_argument("--steps", type=int, default=800)
    dup.add_argument(
        "--train-with",
        nargs="+",
        default=["full", "lsh-4", "lsh-2", "lsh-1"],
        help="attentions to train with (each model is seeded on its own, "
        "so the rows do not depend on which others run)",
    )
    dup.add_argument("--seed", type=int, default=0)
    syn = sub.add_parser(
        "synthesizer",
        help="chapter 9: vanilla vs Synthesizer variants on reorder and recall",
    )
    syn.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for ch09_results/curves/weights.csv",
    )
    syn.add_argument("--steps", type=int, default=600)
    syn.add_argument("--seed", type=int, default=0)
    tra = sub.add_parser(
        "transfer",
        help="chapter 9: pre-train on reorder, fine-tune on a new "
        "order and on recall (vanilla vs Synthesizers)",
    )
    tra.add_argument("--out", type=Path, required=True, help="CSV file to write")
    tra.add_argument("--pretrain-steps", type=int, default=300)
    tra.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    cap = sub.add_parser(
        "capstone", help="chapter 10: every mechanism trained on associative recall"
    )
    cap.add_argument("--out", type=Path, required=True, help="CSV file to write")
    cap.add_argument(
        "--mechanisms",
        nargs="+",
        default=None,
        help="default: every one in CAPSTONE_MECHANISMS",
    )
    cap.add_argument("--steps", type=int, default=1500)
    cap.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.task == "capstone":
        torch.set_num_threads(1)
        rows = capstone_experiment(
            mechanisms=args.mechanisms, steps=args.steps, seed=args.seed
        )
        write_csv(args.out, rows)
        for row in rows:
            print(
                f"{row['mechanism']:>30}  accuracy {row['accuracy']:6.2f} %  "
                f"{row['train_seconds']:6.1f} s"
            )
    if args.task == "duplication":
        torch.set_num_threads(1)
        rows = duplication_experiment(
            word_len=args.word_len,
            vocab=args.vocab,
            bucket_size=args.bucket_size,
            steps=args.steps,
            train_with=tuple(args.train_with),
            seed=args.seed,
        )
        write_csv(args.out, rows)
        for row in rows:
            print(
                f"trained {row['trained']:>6}  evaluated {row['evaluated']:>6}  "
                f"accuracy {row['accuracy']:6.2f} %"
            )
    if args.task == "synthesizer":
        torch.set_num_threads(1)
        tables = synthesizer_experiment(steps=args.steps, seed=args.seed)
        for table, rows in tables.items():
            write_csv(args.out / f"ch09_{table}.csv", rows)
        for row in tables["results"]:
            print(
                f"{row['task']:>8}  {row['variant']:>18}  accuracy {row['accuracy']:6.2f} %  "
                f"{row['mechanism_params']:6d} mechanism parameters  {row['train_seconds']:5.1f} s"
            )
    if args.task == "transfer":
        torch.set_num_threads(1)
        rows = [
            row
            for seed in args.seeds
            for row in transfer_experiment(
                pretrain_steps=args.pretrain_steps, seed=seed, progress=False
            )
        ]
        write_csv(args.out, rows)
        for row in rows:
            print(
                f"seed {row['seed']}  {row['task']:>10} {row['steps']:4d} steps  "
                f"{row['variant']:>16}  scratch {row['scratch']:6.2f} %  "
                f"fine-tuned {row['finetuned']:6.2f} %  gain {row['gain']:+6.2f}"
            )
    return 0
