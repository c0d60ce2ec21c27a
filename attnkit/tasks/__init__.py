"""Small synthetic sequence tasks, a tiny attention model and a training loop.

Modules: ``data`` (the tasks), ``model`` (the small model), ``training`` (the loop),
``experiments`` (the chapters' experiments), ``cli`` (``python -m attnkit.tasks``).
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
* :func:`reversal_task` and :class:`Seq2SeqAttention` (module ``seq2seq``): chapter 1's learned
  alignment, a GRU encoder–decoder with additive attention trained to reverse sequences.

Command line (writes a CSV; shows a progress bar)::

    python -m attnkit.tasks duplication --out book/data/ch06_duplication.csv
"""

from .cli import main
from .data import SequenceTask, duplication_task, recall_task, reorder_task
from .experiments import (
    CAPSTONE_MECHANISMS,
    SYNTHESIZER_VARIANTS,
    capstone_experiment,
    duplication_experiment,
    synthesizer_experiment,
    write_csv,
)
from .model import TinyAttentionModel, use_mechanism
from .seq2seq import (
    Seq2SeqAttention,
    antidiagonal_mass,
    reversal_task,
    seq2seq_accuracy,
    train_seq2seq,
)
from .training import evaluate, train

__all__ = [
    "CAPSTONE_MECHANISMS",
    "SYNTHESIZER_VARIANTS",
    "Seq2SeqAttention",
    "SequenceTask",
    "TinyAttentionModel",
    "antidiagonal_mass",
    "capstone_experiment",
    "duplication_experiment",
    "duplication_task",
    "evaluate",
    "main",
    "recall_task",
    "reorder_task",
    "reversal_task",
    "seq2seq_accuracy",
    "synthesizer_experiment",
    "train",
    "train_seq2seq",
    "use_mechanism",
    "write_csv",
]
