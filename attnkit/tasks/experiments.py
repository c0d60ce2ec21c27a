"""The chapters' experiments: every one trains small models on a synthetic task and returns rows.

* :func:`duplication_experiment`: chapter 6, the Reformer's Table 2 at small scale.
* :func:`synthesizer_experiment`: chapter 9, vanilla attention against the Synthesizer variants.
* :func:`transfer_experiment`: chapter 9, pre-training on one task and fine-tuning on another.
* :func:`capstone_experiment`: chapter 10, every mechanism trained on associative recall.
"""

from __future__ import annotations

import copy
import csv
import time
from pathlib import Path

import torch

from ..registry import MECHANISMS
from .data import duplication_task, recall_task, reorder_task
from .model import TinyAttentionModel, use_mechanism
from .training import evaluate, train

__all__ = [
    "CAPSTONE_MECHANISMS",
    "SYNTHESIZER_VARIANTS",
    "TRANSFER_FINETUNING",
    "TRANSFER_VARIANTS",
    "capstone_experiment",
    "duplication_experiment",
    "synthesizer_experiment",
    "transfer_experiment",
    "write_csv",
]


def _duplication_attention(
    label: str, seq_len: int, bucket_size: int, seed: int
) -> dict:
    """Settings of the shared-QK attention named ``label``: ``"full"`` or ``"lsh-R"`` (R rounds).

    ``"full"`` is shared-QK attention over the whole sequence (one bucket, one chunk), the
    Reformer paper's full-attention baseline.
    """
    if label == "full":
        return {
            "bucket_size": seq_len,
            "n_hashes": 1,
            "n_buckets": 1,
            "shared_qk": True,
            "seed": seed,
        }
    rounds = int(label.split("-")[1])
    return {
        "bucket_size": bucket_size,
        "n_hashes": rounds,
        "shared_qk": True,
        "seed": seed,
        "redraw": True,
    }


def duplication_experiment(
    *,
    word_len: int = 24,
    vocab: int = 32,
    d_model: int = 64,
    num_heads: int = 4,
    bucket_size: int = 4,
    steps: int = 800,
    n_train: int = 20000,
    n_test: int = 1000,
    train_with=("full", "lsh-4", "lsh-2", "lsh-1"),
    eval_with=("full", "lsh-8", "lsh-4", "lsh-2", "lsh-1"),
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Reformer's Table 2 at small scale: train on ``0w0w`` with one attention, evaluate with each.

    Every model is one causal attention block with shared-QK attention; ``"lsh-R"`` means
    :class:`~attnkit.lsh.LSHAttention` with R hash rounds (rotations redrawn at each training
    step, fixed and seeded in evaluation).

    Returns:
        One row per (trained, evaluated) pair: ``{"trained": …, "evaluated": …, "accuracy": …}``
        (accuracy in percent, on a held-out test set).
    """
    train_data = duplication_task(n_train, word_len, vocab, seed=seed)
    test_data = duplication_task(n_test, word_len, vocab, seed=seed + 1)
    seq_len = train_data.inputs.shape[1]
    rows = []
    for trained in train_with:
        torch.manual_seed(seed)
        model = TinyAttentionModel(
            vocab,
            d_model,
            num_heads,
            mechanism="lsh",
            mechanism_settings=_duplication_attention(
                trained, seq_len, bucket_size, seed
            ),
            max_len=seq_len,
            causal=True,
        )
        train(
            model,
            train_data,
            steps=steps,
            seed=seed,
            progress=progress,
            desc=f"train {trained}",
        )
        for evaluated in eval_with:
            use_mechanism(
                model,
                "lsh",
                _duplication_attention(evaluated, seq_len, bucket_size, seed + 7),
            )
            acc = evaluate(model, test_data)["accuracy"]
            rows.append(
                {
                    "trained": trained,
                    "evaluated": evaluated,
                    "accuracy": round(100 * acc, 2),
                }
            )
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` (dicts with the same keys) to the CSV file ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# Synthesizer variants compared in chapter 9: label → (mechanism, settings given T, H, D)
SYNTHESIZER_VARIANTS = (
    "vanilla",
    "dense",
    "random",
    "fixed random",
    "factorized random",
    "factorized dense",
    "random + vanilla",
)


def _synthesizer_mechanism(
    label: str, seq_len: int, num_heads: int, head_dim: int, seed: int
):
    if label == "vanilla":
        return "softmax", {"fast": False, "need_weights": True}
    if label == "dense":
        return "synthesizer_dense", {
            "max_len": seq_len,
            "hidden": 32,
            "head_dim": head_dim,
        }
    if label == "factorized dense":
        return "synthesizer_factorized_dense", {
            "max_len": seq_len,
            "hidden": 32,
            "head_dim": head_dim,
        }
    if label == "random":
        return "synthesizer_random", {
            "max_len": seq_len,
            "num_heads": num_heads,
            "seed": seed,
        }
    if label == "fixed random":
        return "synthesizer_random", {
            "max_len": seq_len,
            "num_heads": num_heads,
            "seed": seed,
            "trainable": False,
        }
    if label == "factorized random":
        return "synthesizer_factorized_random", {
            "max_len": seq_len,
            "num_heads": num_heads,
            "rank": 8,
            "seed": seed,
        }
    if label == "random + vanilla":
        return "synthesizer_mixture", {
            "max_len": seq_len,
            "num_heads": num_heads,
            "seed": seed,
        }
    raise ValueError(
        f"unknown Synthesizer variant {label!r}; known: {', '.join(SYNTHESIZER_VARIANTS)}"
    )


def synthesizer_experiment(
    *,
    tasks=("reorder", "recall"),
    variants=SYNTHESIZER_VARIANTS,
    d_model: int = 32,
    num_heads: int = 2,
    steps: int = 600,
    lr: float = 1e-2,
    n_train: int = 10000,
    n_test: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Chapter 9's comparison: train one attention block per (task, variant) and score it.

    Tasks: ``"reorder"`` (:func:`reorder_task`, 24 positions, 16 symbols: position decides)
    and ``"recall"`` (:func:`recall_task`, 6 pairs of 8 keys × 8 values: content decides).
    Models are non-causal :class:`TinyAttentionModel` blocks whose mechanism is the variant's.

    Returns:
        ``{"results": [...], "curves": [...], "weights": [...]}``: one results row per run
        (task, variant, test accuracy in %, parameters of the mechanism alone, of the whole
        attention layer with its W_q, W_k, W_v, W_o, of the model, training seconds);
        the training loss every 10 steps; and every head's attention weights on the first test
        sample (``head``, ``row``, ``col``, ``weight``), for heatmaps.
    """
    data = {
        "reorder": (
            reorder_task(n_train, 24, 16, seed=seed),
            reorder_task(n_test, 24, 16, seed=seed + 1),
        ),
        "recall": (
            recall_task(n_train, 6, 8, 8, seed=seed),
            recall_task(n_test, 6, 8, 8, seed=seed + 1),
        ),
    }
    results, curves, weights = [], [], []
    for task in tasks:
        train_data, test_data = data[task]
        seq_len = train_data.inputs.shape[1]
        for label in variants:
            name, settings = _synthesizer_mechanism(
                label, seq_len, num_heads, d_model // num_heads, seed
            )
            torch.manual_seed(seed)
            model = TinyAttentionModel(
                train_data.vocab_size,
                d_model,
                num_heads,
                mechanism=name,
                mechanism_settings=settings,
                max_len=seq_len,
                causal=False,
            )
            start = time.perf_counter()
            losses = train(
                model,
                train_data,
                steps=steps,
                lr=lr,
                seed=seed,
                progress=progress,
                desc=f"{task}: {label}",
            )
            seconds = time.perf_counter() - start
            acc = evaluate(model, test_data)["accuracy"]
            results.append(
                {
                    "task": task,
                    "variant": label,
                    "accuracy": round(100 * acc, 2),
                    "mechanism_params": sum(
                        p.numel() for p in model.attention.attention.parameters()
                    ),
                    "attention_params": sum(
                        p.numel() for p in model.attention.parameters()
                    ),
                    "params": sum(p.numel() for p in model.parameters()),
                    "train_seconds": round(seconds, 2),
                }
            )
            for step in range(10, len(losses) + 1, 10):
                curves.append(
                    {
                        "task": task,
                        "variant": label,
                        "step": step,
                        "loss": float(f"{sum(losses[step - 10 : step]) / 10:.4g}"),
                    }
                )
            with torch.no_grad():
                model(test_data.inputs[:1])
            w = model.attention.attention_weights[
                0
            ]  # (H, L, S) for the first test sample
            for h in range(w.shape[0]):
                for i in range(w.shape[1]):
                    for j in range(w.shape[2]):
                        weights.append(
                            {
                                "task": task,
                                "variant": label,
                                "head": h,
                                "row": i,
                                "col": j,
                                "weight": round(float(w[h, i, j]), 4),
                            }
                        )
    return {"results": results, "curves": curves, "weights": weights}


# --- chapter 9: does what was learned on one task help on another?

TRANSFER_VARIANTS = ("vanilla", "dense", "random", "random + vanilla")
TRANSFER_FINETUNING = (
    ("new order", 50),
    ("new order", 100),
    ("new order", 200),
    ("recall", 400),
)


def _transfer_tasks(n_samples: int, seed: int) -> dict:
    """The pre-training task and the fine-tuning tasks, as ``name → SequenceTask``."""
    return {
        "reorder": reorder_task(n_samples, 24, 16, seed=seed),  # π from perm_seed 1234
        "new order": reorder_task(
            n_samples, 24, 16, seed=seed, perm_seed=4321
        ),  # another π
        "recall": recall_task(n_samples, 6, 8, 8, seed=seed),  # content decides; T = 7
    }


def transfer_experiment(
    *,
    variants=TRANSFER_VARIANTS,
    finetune=TRANSFER_FINETUNING,
    d_model: int = 32,
    num_heads: int = 2,
    pretrain_steps: int = 300,
    lr: float = 1e-2,
    batch_size: int = 32,
    n_train: int = 4000,
    n_test: int = 500,
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Pre-train on ``"reorder"``, then fine-tune on another task for a few steps, and compare
    with the same number of steps from scratch.

    ``finetune`` lists ``(task, steps)`` pairs. Tasks: ``"new order"`` (:func:`reorder_task`
    with another permutation: the same skill, other positions) and ``"recall"``
    (:func:`recall_task`, 6 pairs: the content decides). One vocabulary (72 ids) and
    ``max_len = 24`` serve all tasks, so a model moves from one to another unchanged (recall's
    7 positions use the Synthesizers' top-left block). The scratch model starts from the same
    seeded initialisation as the pre-trained one.

    Returns:
        One row per (task, steps, variant), with its ``seed``: test accuracies in % after
        pre-training (``pretrained``), of that model on the new task before fine-tuning
        (``zero_shot``), after ``steps`` steps from scratch (``scratch``) and from the
        pre-trained model (``finetuned``), their difference ``gain``, and the row's seconds
        (indicative only: the pre-training time is in each variant's first row).
    """
    train_sets, test_sets = (
        _transfer_tasks(n_train, seed),
        _transfer_tasks(n_test, seed + 1),
    )
    vocab, seq_len = (
        train_sets["recall"].vocab_size,
        train_sets["reorder"].inputs.shape[1],
    )
    rows = []
    for label in variants:
        head_dim = d_model // num_heads
        name, settings = _synthesizer_mechanism(
            label, seq_len, num_heads, head_dim, seed
        )
        torch.manual_seed(seed)
        start = time.perf_counter()
        init = TinyAttentionModel(
            vocab,
            d_model,
            num_heads,
            mechanism=name,
            mechanism_settings=settings,
            max_len=seq_len,
            causal=False,
        )
        pre = copy.deepcopy(init)
        train(
            pre,
            train_sets["reorder"],
            steps=pretrain_steps,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            progress=progress,
            desc=f"pre-train {label}",
        )
        pre_acc = evaluate(pre, test_sets["reorder"])["accuracy"]
        seconds = (
            time.perf_counter() - start
        )  # the pre-training time goes into the first row
        for task, steps in finetune:
            start = time.perf_counter()
            acc = {"zero_shot": evaluate(pre, test_sets[task])["accuracy"]}
            for start_from, base in (("scratch", init), ("finetuned", pre)):
                model = copy.deepcopy(base)
                train(
                    model,
                    train_sets[task],
                    steps=steps,
                    lr=lr,
                    batch_size=batch_size,
                    seed=seed + 1,
                    progress=progress,
                    desc=f"{task}: {label} ({start_from}, {steps})",
                )
                acc[start_from] = evaluate(model, test_sets[task])["accuracy"]
            rows.append(
                {
                    "seed": seed,
                    "task": task,
                    "steps": steps,
                    "variant": label,
                    "pretrained": round(100 * pre_acc, 2),
                    **{k: round(100 * v, 2) for k, v in acc.items()},
                    "gain": round(100 * (acc["finetuned"] - acc["scratch"]), 2),
                    "seconds": round(seconds + time.perf_counter() - start, 1),
                }
            )
            seconds = 0.0
    return rows


# --- chapter 10 (comparison): one content-decided task every mechanism trains on

# mechanism → settings for the capstone's recall sequences of T = 9 positions (window, bucket
# and landmark counts a fraction of T, so that locality and hashing matter, as at long lengths)
CAPSTONE_MECHANISMS = {
    "softmax": {},
    "local": {"window": 2},
    "lsh": {"bucket_size": 4, "n_hashes": 2, "seed": 0},
    "linear": {},
    "performer": {"n_features": 32, "seed": 0},
    "rfa": {"n_features": 32, "seed": 0},
    "nystrom": {"num_landmarks": 3},
    "synthesizer_dense": {"hidden": 32},
    "synthesizer_random": {"seed": 0},
    "synthesizer_factorized_random": {"rank": 8, "seed": 0},
    "synthesizer_mixture": {"seed": 0},
}


def capstone_experiment(
    *,
    mechanisms=None,
    n_pairs: int = 8,
    n_keys: int = 16,
    n_values: int = 8,
    d_model: int = 32,
    num_heads: int = 2,
    steps: int = 1500,
    lr: float = 1e-2,
    n_train: int = 20000,
    n_test: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Chapter 10's capstone: the same non-causal attention block, trained with each mechanism.

    The task is :func:`recall_task` with ``n_pairs`` pairs (``T = n_pairs + 1``): the last
    token must fetch the value stored beside a matching key anywhere in the sequence, so
    the attention must be *content*-based and reach the whole sequence. (Longer sequences
    need more steps than a few CPU minutes allow for a one-layer model to learn recall.)

    Args:
        mechanisms: names of :data:`CAPSTONE_MECHANISMS` (default: all of them that are registered).

    Returns:
        One row per mechanism: ``mechanism``, test ``accuracy`` (%), ``train_seconds``,
        ``steps_per_second`` and ``params`` (of the whole model).
    """
    names = (
        [m for m in CAPSTONE_MECHANISMS if m in MECHANISMS]
        if mechanisms is None
        else list(mechanisms)
    )
    train_data = recall_task(n_train, n_pairs, n_keys, n_values, seed=seed)
    test_data = recall_task(n_test, n_pairs, n_keys, n_values, seed=seed + 1)
    seq_len = train_data.inputs.shape[1]
    rows = []
    for name in names:
        settings = dict(CAPSTONE_MECHANISMS.get(name, {}))
        if name.startswith("synthesizer"):
            settings["max_len"] = seq_len
        torch.manual_seed(seed)
        model = TinyAttentionModel(
            train_data.vocab_size,
            d_model,
            num_heads,
            mechanism=name,
            mechanism_settings=settings,
            max_len=seq_len,
            causal=False,
        )
        start = time.perf_counter()
        train(
            model,
            train_data,
            steps=steps,
            lr=lr,
            seed=seed,
            progress=progress,
            desc=f"recall: {name}",
        )
        seconds = time.perf_counter() - start
        acc = evaluate(model, test_data)["accuracy"]
        rows.append(
            {
                "mechanism": name,
                "accuracy": round(100 * acc, 2),
                "train_seconds": round(seconds, 2),
                "steps_per_second": round(steps / seconds, 2),
                "params": sum(p.numel() for p in model.parameters()),
            }
        )
    return rows
