"""Small synthetic sequence tasks, seeded, that run on a laptop CPU.

A task is a :class:`SequenceTask`: ``inputs (N, T)`` token ids, ``targets (N, T)`` (the token
to predict at each position) and ``scored (N, T)`` (``True`` where a prediction counts in the
loss and the accuracy).

* :func:`duplication_task`: the Reformer paper's ``0w0w`` copy task (Kitaev et al., 2020, §2.1).
* :func:`reorder_task` and :func:`recall_task`: chapter 9's fixed-position reordering (where to
  look depends on the position only) and associative recall (it depends on the content).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["SequenceTask", "duplication_task", "reorder_task", "recall_task"]


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
        if (
            self.inputs.shape != self.targets.shape
            or self.inputs.shape != self.scored.shape
        ):
            raise ValueError(
                "inputs, targets and scored must have the same shape (N, T), got "
                f"{tuple(self.inputs.shape)}, {tuple(self.targets.shape)} "
                f"and {tuple(self.scored.shape)}"
            )

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def subset(self, index: torch.Tensor) -> "SequenceTask":
        """The samples at ``index`` (a 1-D index tensor), as a new task."""
        return SequenceTask(
            self.inputs[index], self.targets[index], self.scored[index], self.vocab_size
        )


def duplication_task(
    n_samples: int, word_len: int, vocab: int, *, seed: int = 0
) -> SequenceTask:
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
        raise ValueError(
            f"n_samples and word_len must be ≥ 1, got {n_samples} and {word_len}"
        )
    if vocab < 2:
        raise ValueError(f"vocab must be ≥ 2 (0 is the separator), got {vocab}")
    gen = torch.Generator().manual_seed(seed)
    word = torch.randint(1, vocab, (n_samples, word_len), generator=gen)  # (N, W)
    zero = torch.zeros(n_samples, 1, dtype=torch.long)
    seq = torch.cat([zero, word, zero, word], dim=1)  # (N, 2W+2)
    inputs, targets = seq[:, :-1], seq[:, 1:]  # (N, T) each, T = 2W+1
    scored = torch.zeros_like(targets, dtype=torch.bool)
    scored[:, word_len + 1 :] = True  # the second copy of w
    return SequenceTask(inputs, targets, scored, vocab)


def reorder_task(
    n_samples: int, seq_len: int, vocab: int, *, seed: int = 0, perm_seed: int = 1234
) -> SequenceTask:
    """A fixed-position reordering: output ``t`` copies input position ``π(t)``.

    ``π`` is one random permutation of ``0 … seq_len-1`` (drawn from ``perm_seed``), the
    same for every sample, and the tokens are uniform in ``0 … vocab-1``. *Where* to
    look depends only on the position, never on the content: a Random Synthesizer can
    learn ``π`` outright. Every position is scored (use a non-causal model).

    Returns:
        A :class:`SequenceTask` with ``T = seq_len``.
    """
    if n_samples < 1 or seq_len < 1 or vocab < 2:
        raise ValueError(
            "need n_samples ≥ 1, seq_len ≥ 1, vocab ≥ 2; "
            f"got {n_samples}, {seq_len}, {vocab}"
        )
    perm = torch.randperm(
        seq_len, generator=torch.Generator().manual_seed(perm_seed)
    )  # (T,)
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, vocab, (n_samples, seq_len), generator=gen)  # (N, T)
    targets = inputs[:, perm]  # (N, T)
    return SequenceTask(
        inputs, targets, torch.ones_like(inputs, dtype=torch.bool), vocab
    )


def recall_task(
    n_samples: int, n_pairs: int, n_keys: int, n_values: int, *, seed: int = 0
) -> SequenceTask:
    """Associative recall: key–value pairs, then a query key; answer its value.

    Each pair is one token, id ``key·n_values + value`` (distinct keys per sample); the
    last token is the query, id ``n_keys·n_values + key`` for one of the sample's keys.
    Only the last position is scored, and its target is the value id of the matching
    pair. *Where* to look depends on the content (which position holds the queried key):
    weights that ignore ``q·k`` cannot find it.

    Returns:
        A :class:`SequenceTask` with ``T = n_pairs + 1`` and vocabulary
        ``n_keys·(n_values + 1)``.
    """
    if n_pairs < 1 or n_pairs > n_keys or n_values < 2:
        raise ValueError(
            "need 1 ≤ n_pairs ≤ n_keys and n_values ≥ 2; "
            f"got {n_pairs}, {n_keys}, {n_values}"
        )
    gen = torch.Generator().manual_seed(seed)
    keys = torch.rand(n_samples, n_keys, generator=gen).argsort(dim=1)[
        :, :n_pairs
    ]  # (N, P) distinct
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
