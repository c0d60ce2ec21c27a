"""Measuring attention mechanisms: the benchmark runner, its statistics, plots and timing.

``python -m attnkit.bench --help`` runs the benchmark (:mod:`attnkit.bench.runner`);
``python -m attnkit.bench.mha`` times multi-head attention against PyTorch's
(:mod:`attnkit.bench.mha`). The chapters time their small examples with :func:`time_call`.

Modules: ``runner`` (one process per (mechanism, length), budgets, ratios, CSV),
``stats`` (growth exponent, ratio columns, budget summary), ``plots`` (log–log growth,
ratio bars, bubble chart), ``timing`` (warm-up, repeats, interleaving), ``mha``,
``memory`` (peak bytes allocated, tensors saved for backward: :class:`PeakMemory`).
"""

from .memory import PeakMemory, saved_tensor_count
from .plots import bubble_chart, plot_ratios, plot_rows
from .runner import (
    DEFAULT_BASELINES,
    approximation_errors,
    main,
    measure,
    measure_step,
    parse_spec,
    run_benchmark,
)
from .stats import budget_summary, fit_exponent, ratio_key
from .timing import time_call, time_interleaved

__all__ = [
    "DEFAULT_BASELINES",
    "approximation_errors",
    "bubble_chart",
    "budget_summary",
    "fit_exponent",
    "main",
    "measure",
    "measure_step",
    "parse_spec",
    "PeakMemory",
    "plot_ratios",
    "plot_rows",
    "ratio_key",
    "run_benchmark",
    "saved_tensor_count",
    "time_call",
    "time_interleaved",
]
