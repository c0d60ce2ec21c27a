"""Shared pytest setup: a headless matplotlib backend and a figure-closing fixture."""
import os

import pytest

# Tests never open windows; choose the file-only backend before anything imports pyplot.
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def close_figures():
    """Close every matplotlib figure a test opened (pyplot keeps them alive otherwise)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
