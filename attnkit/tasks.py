"""Small synthetic sequence tasks, a tiny attention model and a training loop.

Everything here runs on a laptop CPU in minutes and is seeded:

* a **task** is a :class:`SequenceTask`: ``inputs (N, T)`` token ids, ``targets (N, T)`` (the
  token to predict at each position) and ``scored (N, T)`` (``True`` where a prediction
  counts in the loss and the accuracy);
* :class:`TinyAttentionModel` is one attention block (embeddings + learned positions,
  :class:`~attnkit.multihead.MultiHeadAttention` with any registered mechanism, a
  feed-forward layer, a linear read-out) that maps ``(N, T)`` ids to ``(N, T, V)`` logits;
* :func:`train` and :func:`evaluate` fit and score a model on a task;
* :func:`use_mechanism` swaps the attention mechanism of a trained model, to evaluate it
  with a different attention than the one it was trained with.

Tasks:

* :func:`duplication_task`: the Reformer paper's ``0w0w`` copy task (Kitaev et al., 2020, §2.1).
* :func:`reorder_task` and :func:`recall_task`: chapter 9's fixed-position reordering (where to
  look depends on the position only) and associative recall (it depends on the content).
* :func:`capstone_experiment`: chapter 10's comparison, every mechanism trained on a longer recall.

Command line (writes a CSV; shows a progress bar)::

    python -m attnkit.tasks duplication --out book/data/ch06_duplication.csv
"""
from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .multihead import MultiHeadAttention
from .registry import make_mechanism

__all__ = [
    "SequenceTask",
    "duplication_task",
    "TinyAttentionModel",
    "use_mechanism",
    "train",
    "evaluate",
    "duplication_experiment",
    "reorder_task",
    "recall_task",
    "synthesizer_experiment",
    "capstone_experiment",
]


@dataclass
class SequenceTask:
    """A batch of token sequences with the token to predict at each position.

    Attributes:
        inputs: ``(N, T)`` int64 token ids fed to the model.
        targets: ``(N, T)`` int64 token ids to predict at each position.
        scored: ``(N, T)`` bool, ``True`` where the prediction counts (loss and accuracy).
        vocab_size: number of token ids (ids lie in ``[0, vocab_size)``).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    scored: torch.Tensor
    vocab_size: int

    def __post_init__(self):
        if self.inputs.shape != self.targets.shape or self.inputs.shape != self.scored.shape:
            raise ValueError(
                "inputs, targets and scored must have the same shape (N, T), got "
                f"{tuple(self.inputs.shape)}, {tuple(self.targets.shape)} and {tuple(self.scored.shape)}"
            )

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def subset(self, index: torch.Tensor) -> "SequenceTask":
        """The samples at ``index`` (a 1-D index tensor), as a new task."""
        return SequenceTask(self.inputs[index], self.targets[index], self.scored[index], self.vocab_size)


def duplication_task(n_samples: int, word_len: int, vocab: int, *, seed: int = 0) -> SequenceTask:
    """Reformer's duplication task: the sequence ``0 w 0 w`` for a random word ``w``.

    ``w`` has ``word_len`` symbols drawn uniformly from ``1 … vocab-1`` (0 is the separator).
    The model reads the sequence left to right and predicts the next token; only the
    predictions of the *second* copy of ``w`` are scored — they can be found by looking back
    ``word_len + 1`` positions, which is what an attention layer must learn.

    Returns:
        A :class:`SequenceTask` with ``T = 2·word_len + 1``: ``inputs = seq[:-1]``,
        ``targets = seq[1:]``, ``scored`` true on the last ``word_len`` positions.
    """
    if n_samples < 1 or word_len < 1:
        raise ValueError(f"n_samples and word_len must be ≥ 1, got {n_samples} and {word_len}")
    if vocab < 2:
        raise ValueError(f"vocab must be ≥ 2 (0 is the separator), got {vocab}")
    gen = torch.Generator().manual_seed(seed)
    word = torch.randint(1, vocab, (n_samples, word_len), generator=gen)  # (N, W)
    zero = torch.zeros(n_samples, 1, dtype=torch.long)
    seq = torch.cat([zero, word, zero, word], dim=1)  # (N, 2W+2)
    inputs, targets = seq[:, :-1], seq[:, 1:]  # (N, T) each, T = 2W+1
    scored = torch.zeros_like(targets, dtype=torch.bool)
    scored[:, word_len + 1:] = True  # the second copy of w
    return SequenceTask(inputs, targets, scored, vocab)


class TinyAttentionModel(nn.Module):
    """One attention block over token embeddings: ``(N, T)`` ids → ``(N, T, V)`` logits.

    ``x = tok(ids) + pos(t)``; ``x = x + MHA(LN(x))``; ``x = x + FF(LN(x))``; ``logits = out(LN(x))``.

    Args:
        vocab_size: V.
        d_model: model width (``num_heads · D``).
        num_heads: H.
        mechanism: a registered mechanism name (``"softmax"``, ``"lsh"`` …).
        mechanism_settings: its keyword settings (a dict) or ``None``.
        max_len: longest sequence (size of the learned position table).
        causal: let position ``t`` see only positions ``≤ t`` (a left-to-right model).
    """

    def __init__(self, vocab_size: int, d_model: int = 64, num_heads: int = 4, *,
                 mechanism: str = "softmax", mechanism_settings: dict | None = None,
                 max_len: int = 512, causal: bool = True):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} must be a multiple of num_heads={num_heads}")
        self.max_len = max_len
        self.causal = causal
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = MultiHeadAttention(
            d_model, num_heads, mechanism=mechanism, mechanism_settings=mechanism_settings,
            query_size=d_model, key_size=d_model, value_size=d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.norm3 = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids (N, T)`` int64 → logits ``(N, T, V)``."""
        if ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(f"ids must be a (N, T) int64 tensor, got {tuple(ids.shape)} {ids.dtype}")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"sequence length {ids.shape[1]} exceeds max_len={self.max_len}")
        t = torch.arange(ids.shape[1], device=ids.device)
        x = self.tok(ids) + self.pos(t)  # (N, T, d_model)
        h = self.norm1(x)
        x = x + self.attention(h, h, h, causal=self.causal)  # (N, T, d_model)
        x = x + self.ff(self.norm2(x))
        return self.out(self.norm3(x))  # (N, T, V)


def use_mechanism(model: TinyAttentionModel, mechanism: str, mechanism_settings: dict | None = None):
    """Replace the attention mechanism of ``model`` (in place) and return the model.

    Mechanisms without parameters (softmax, LSH, …) can be swapped after training.
    """
    new = make_mechanism(mechanism, **(mechanism_settings or {}))
    new.train(model.training)
    model.attention.attention = new.to(next(model.parameters()).device)
    return model


def _loss_and_hits(model, task: SequenceTask):
    logits = model(task.inputs)  # (N, T, V)
    picked = logits[task.scored]  # (n, V)
    wanted = task.targets[task.scored]  # (n,)
    loss = F.cross_entropy(picked, wanted)
    hits = (picked.argmax(-1) == wanted).sum()
    return loss, hits, wanted.numel()


def train(model: nn.Module, data: SequenceTask, *, steps: int = 1000, lr: float = 3e-3,
          batch_size: int = 64, seed: int = 0, progress: bool = True, desc: str = "train") -> list[float]:
    """Fit ``model`` on ``data`` with Adam on random mini-batches; returns the loss per step.

    Args:
        model: maps ``(N, T)`` ids to ``(N, T, V)`` logits.
        data: the training task.
        steps, lr, batch_size: optimisation settings (a cosine-decayed learning rate).
        seed: seeds the mini-batch order (and PyTorch's global RNG, for dropout and hashing).
        progress: show a tqdm progress bar with the running loss.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    model.train()
    losses = []
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        index = torch.randint(0, len(data), (batch_size,), generator=gen)
        batch = data.subset(index)
        batch = SequenceTask(batch.inputs.to(device), batch.targets.to(device), batch.scored.to(device),
                             batch.vocab_size)
        loss, _, _ = _loss_and_hits(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if len(losses) % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / 50:.3f}")
    model.eval()
    return losses


@torch.no_grad()
def evaluate(model: nn.Module, data: SequenceTask, *, batch_size: int = 256) -> dict:
    """Mean loss and accuracy of ``model`` on the scored positions of ``data`` (eval mode).

    Returns:
        ``{"loss": float, "accuracy": float}`` (accuracy in ``[0, 1]``, per scored token).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, total_hits, total = 0.0, 0, 0
    for start in range(0, len(data), batch_size):
        batch = data.subset(torch.arange(start, min(start + batch_size, len(data))))
        batch = SequenceTask(batch.inputs.to(device), batch.targets.to(device), batch.scored.to(device),
                             batch.vocab_size)
        loss, hits, n = _loss_and_hits(model, batch)
        total_loss += loss.item() * n
        total_hits += int(hits)
        total += n
    model.train(was_training)
    return {"loss": total_loss / total, "accuracy": total_hits / total}


def _duplication_attention(label: str, seq_len: int, bucket_size: int, seed: int) -> dict:
    """Settings of the shared-QK attention named ``label``: ``"full"`` or ``"lsh-R"`` (R rounds).

    ``"full"`` is shared-QK attention over the whole sequence (one bucket, one chunk), the
    Reformer paper's full-attention baseline.
    """
    if label == "full":
        return {"bucket_size": seq_len, "n_hashes": 1, "n_buckets": 1, "shared_qk": True, "seed": seed}
    rounds = int(label.split("-")[1])
    return {"bucket_size": bucket_size, "n_hashes": rounds, "shared_qk": True, "seed": seed, "redraw": True}


def duplication_experiment(*, word_len: int = 24, vocab: int = 32, d_model: int = 64, num_heads: int = 4,
                           bucket_size: int = 4, steps: int = 800, n_train: int = 20000, n_test: int = 1000,
                           train_with=("full", "lsh-1", "lsh-2"),
                           eval_with=("full", "lsh-8", "lsh-4", "lsh-2", "lsh-1"),
                           seed: int = 0, progress: bool = True) -> list[dict]:
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
        model = TinyAttentionModel(vocab, d_model, num_heads, mechanism="lsh",
                                   mechanism_settings=_duplication_attention(trained, seq_len, bucket_size, seed),
                                   max_len=seq_len, causal=True)
        train(model, train_data, steps=steps, seed=seed, progress=progress, desc=f"train {trained}")
        for evaluated in eval_with:
            use_mechanism(model, "lsh", _duplication_attention(evaluated, seq_len, bucket_size, seed + 7))
            acc = evaluate(model, test_data)["accuracy"]
            rows.append({"trained": trained, "evaluated": evaluated, "accuracy": round(100 * acc, 2)})
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# --- chapter 9 (Synthesizer): position-decided vs content-decided tasks


def reorder_task(n_samples: int, seq_len: int, vocab: int, *, seed: int = 0, perm_seed: int = 1234) -> SequenceTask:
    """A fixed-position reordering: output position ``t`` must copy input position ``π(t)``.

    ``π`` is one random permutation of ``0 … seq_len-1`` (drawn from ``perm_seed``), the same
    for every sample, and the tokens are uniform in ``0 … vocab-1``. *Where* to look depends
    only on the position, never on the content: a Random Synthesizer can learn ``π`` outright.
    Every position is scored (use a non-causal model).

    Returns:
        A :class:`SequenceTask` with ``T = seq_len``.
    """
    if n_samples < 1 or seq_len < 1 or vocab < 2:
        raise ValueError(f"need n_samples ≥ 1, seq_len ≥ 1, vocab ≥ 2; got {n_samples}, {seq_len}, {vocab}")
    perm = torch.randperm(seq_len, generator=torch.Generator().manual_seed(perm_seed))  # (T,)
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, vocab, (n_samples, seq_len), generator=gen)  # (N, T)
    targets = inputs[:, perm]  # (N, T)
    return SequenceTask(inputs, targets, torch.ones_like(inputs, dtype=torch.bool), vocab)


def recall_task(n_samples: int, n_pairs: int, n_keys: int, n_values: int, *, seed: int = 0) -> SequenceTask:
    """Associative recall: ``n_pairs`` key–value pairs, then a query key; answer its value.

    Each pair is one token, id ``key·n_values + value`` (distinct keys per sample); the last
    token is the query, id ``n_keys·n_values + key`` for one of the sample's keys. Only the
    last position is scored, and its target is the value id of the matching pair. *Where* to
    look depends on the content (which position holds the queried key): weights that ignore
    ``q·k`` cannot find it.

    Returns:
        A :class:`SequenceTask` with ``T = n_pairs + 1`` and vocabulary ``n_keys·(n_values + 1)``.
    """
    if n_pairs < 1 or n_pairs > n_keys or n_values < 2:
        raise ValueError(f"need 1 ≤ n_pairs ≤ n_keys and n_values ≥ 2; got {n_pairs}, {n_keys}, {n_values}")
    gen = torch.Generator().manual_seed(seed)
    keys = torch.rand(n_samples, n_keys, generator=gen).argsort(dim=1)[:, :n_pairs]  # (N, P) distinct
    values = torch.randint(0, n_values, (n_samples, n_pairs), generator=gen)  # (N, P)
    pick = torch.randint(0, n_pairs, (n_samples,), generator=gen)  # (N,)
    rows = torch.arange(n_samples)
    query = n_keys * n_values + keys[rows, pick]  # (N,)
    inputs = torch.cat([keys * n_values + values, query[:, None]], dim=1)  # (N, P+1)
    targets = torch.zeros_like(inputs)
    targets[:, -1] = values[rows, pick]
    scored = torch.zeros_like(inputs, dtype=torch.bool)
    scored[:, -1] = True
    return SequenceTask(inputs, targets, scored, n_keys * (n_values + 1))


# Synthesizer variants compared in chapter 9: label → (mechanism, settings given T, H, D)
SYNTHESIZER_VARIANTS = ("vanilla", "dense", "random", "fixed random", "factorized random",
                        "factorized dense", "random + vanilla")


def _synthesizer_mechanism(label: str, seq_len: int, num_heads: int, head_dim: int, seed: int):
    if label == "vanilla":
        return "softmax", {"fast": False, "need_weights": True}
    if label == "dense":
        return "synthesizer_dense", {"max_len": seq_len, "hidden": 32, "head_dim": head_dim}
    if label == "factorized dense":
        return "synthesizer_factorized_dense", {"max_len": seq_len, "hidden": 32, "head_dim": head_dim}
    if label == "random":
        return "synthesizer_random", {"max_len": seq_len, "num_heads": num_heads, "seed": seed}
    if label == "fixed random":
        return "synthesizer_random", {"max_len": seq_len, "num_heads": num_heads, "seed": seed,
                                      "trainable": False}
    if label == "factorized random":
        return "synthesizer_factorized_random", {"max_len": seq_len, "num_heads": num_heads, "rank": 8,
                                                 "seed": seed}
    if label == "random + vanilla":
        return "synthesizer_mixture", {"max_len": seq_len, "num_heads": num_heads, "seed": seed}
    raise ValueError(f"unknown Synthesizer variant {label!r}; known: {', '.join(SYNTHESIZER_VARIANTS)}")


def synthesizer_experiment(*, tasks=("reorder", "recall"), variants=SYNTHESIZER_VARIANTS, d_model: int = 32,
                           num_heads: int = 2, steps: int = 600, lr: float = 1e-2, n_train: int = 10000, n_test: int = 1000,
                           seed: int = 0, progress: bool = True) -> dict:
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
    import time

    data = {
        "reorder": (reorder_task(n_train, 24, 16, seed=seed), reorder_task(n_test, 24, 16, seed=seed + 1)),
        "recall": (recall_task(n_train, 6, 8, 8, seed=seed), recall_task(n_test, 6, 8, 8, seed=seed + 1)),
    }
    results, curves, weights = [], [], []
    for task in tasks:
        train_data, test_data = data[task]
        seq_len = train_data.inputs.shape[1]
        for label in variants:
            name, settings = _synthesizer_mechanism(label, seq_len, num_heads, d_model // num_heads, seed)
            torch.manual_seed(seed)
            model = TinyAttentionModel(train_data.vocab_size, d_model, num_heads, mechanism=name,
                                       mechanism_settings=settings, max_len=seq_len, causal=False)
            start = time.perf_counter()
            losses = train(model, train_data, steps=steps, lr=lr, seed=seed, progress=progress, desc=f"{task}: {label}")
            seconds = time.perf_counter() - start
            acc = evaluate(model, test_data)["accuracy"]
            results.append({"task": task, "variant": label, "accuracy": round(100 * acc, 2),
                            "mechanism_params": sum(p.numel() for p in model.attention.attention.parameters()),
                            "attention_params": sum(p.numel() for p in model.attention.parameters()),
                            "params": sum(p.numel() for p in model.parameters()),
                            "train_seconds": round(seconds, 2)})
            for step in range(10, len(losses) + 1, 10):
                curves.append({"task": task, "variant": label, "step": step,
                               "loss": float(f"{sum(losses[step - 10:step]) / 10:.4g}")})
            with torch.no_grad():
                model(test_data.inputs[:1])
            w = model.attention.attention_weights[0]  # (H, L, S) for the first test sample
            for h in range(w.shape[0]):
                for i in range(w.shape[1]):
                    for j in range(w.shape[2]):
                        weights.append({"task": task, "variant": label, "head": h, "row": i, "col": j,
                                        "weight": round(float(w[h, i, j]), 4)})
    return {"results": results, "curves": curves, "weights": weights}


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


def capstone_experiment(*, mechanisms=None, n_pairs: int = 8, n_keys: int = 16, n_values: int = 8,
                        d_model: int = 32, num_heads: int = 2, steps: int = 1500, lr: float = 1e-2,
                        n_train: int = 20000, n_test: int = 1000, seed: int = 0, progress: bool = True) -> list[dict]:
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
    import time

    from .registry import MECHANISMS

    names = [m for m in CAPSTONE_MECHANISMS if m in MECHANISMS] if mechanisms is None else list(mechanisms)
    train_data = recall_task(n_train, n_pairs, n_keys, n_values, seed=seed)
    test_data = recall_task(n_test, n_pairs, n_keys, n_values, seed=seed + 1)
    seq_len = train_data.inputs.shape[1]
    rows = []
    for name in names:
        settings = dict(CAPSTONE_MECHANISMS.get(name, {}))
        if name.startswith("synthesizer"):
            settings["max_len"] = seq_len
        torch.manual_seed(seed)
        model = TinyAttentionModel(train_data.vocab_size, d_model, num_heads, mechanism=name,
                                   mechanism_settings=settings, max_len=seq_len, causal=False)
        start = time.perf_counter()
        train(model, train_data, steps=steps, lr=lr, seed=seed, progress=progress, desc=f"recall: {name}")
        seconds = time.perf_counter() - start
        acc = evaluate(model, test_data)["accuracy"]
        rows.append({"mechanism": name, "accuracy": round(100 * acc, 2), "train_seconds": round(seconds, 2),
                     "steps_per_second": round(steps / seconds, 2),
                     "params": sum(p.numel() for p in model.parameters())})
    return rows


# Command line: keep this block last in the file; add new tasks above and a sub-command below.
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attnkit.tasks", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="task", required=True)
    dup = sub.add_parser("duplication", help="Reformer's 0w0w task: full vs LSH attention (Table 2)")
    dup.add_argument("--out", type=Path, required=True, help="CSV file to write")
    dup.add_argument("--word-len", type=int, default=24)
    dup.add_argument("--vocab", type=int, default=32)
    dup.add_argument("--bucket-size", type=int, default=4)
    dup.add_argument("--steps", type=int, default=800)
    dup.add_argument("--seed", type=int, default=0)
    syn = sub.add_parser("synthesizer", help="chapter 9: vanilla vs Synthesizer variants on reorder and recall")
    syn.add_argument("--out", type=Path, required=True, help="folder for ch09_results/curves/weights.csv")
    syn.add_argument("--steps", type=int, default=600)
    syn.add_argument("--seed", type=int, default=0)
    cap = sub.add_parser("capstone", help="chapter 10: every mechanism trained on associative recall")
    cap.add_argument("--out", type=Path, required=True, help="CSV file to write")
    cap.add_argument("--mechanisms", nargs="+", default=None, help="default: every one in CAPSTONE_MECHANISMS")
    cap.add_argument("--steps", type=int, default=1500)
    cap.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.task == "capstone":
        torch.set_num_threads(1)
        rows = capstone_experiment(mechanisms=args.mechanisms, steps=args.steps, seed=args.seed)
        _write_csv(args.out, rows)
        for row in rows:
            print(f"{row['mechanism']:>30}  accuracy {row['accuracy']:6.2f} %  {row['train_seconds']:6.1f} s")
    if args.task == "duplication":
        torch.set_num_threads(1)
        rows = duplication_experiment(word_len=args.word_len, vocab=args.vocab, bucket_size=args.bucket_size,
                                      steps=args.steps, seed=args.seed)
        _write_csv(args.out, rows)
        for row in rows:
            print(f"trained {row['trained']:>6}  evaluated {row['evaluated']:>6}  accuracy {row['accuracy']:6.2f} %")
    if args.task == "synthesizer":
        torch.set_num_threads(1)
        tables = synthesizer_experiment(steps=args.steps, seed=args.seed)
        for table, rows in tables.items():
            _write_csv(args.out / f"ch09_{table}.csv", rows)
        for row in tables["results"]:
            print(f"{row['task']:>8}  {row['variant']:>18}  accuracy {row['accuracy']:6.2f} %  "
                  f"{row['mechanism_params']:6d} mechanism parameters  {row['train_seconds']:5.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
