"""Import ``d2l.torch`` (d2l 1.0.3) for the parity tests, with or without torchvision.

``d2l/torch.py`` runs ``import torchvision`` and ``from torchvision import transforms`` at
import time, for its image-dataset helpers. torchvision wheels are built against one exact
torch version, and none matches the CPU torch this course pins, so torchvision is not
installed here (and a mismatched one fails to load its C++ operators). The parity tests
only use d2l's attention code (``masked_softmax``, ``AdditiveAttention``,
``DotProductAttention``, ``show_heatmaps``), which never touches torchvision.

So, only when the real torchvision cannot be imported, :func:`import_d2l_torch` puts a
minimal, empty stand-in ``torchvision`` (with the ``transforms`` submodule d2l imports)
into ``sys.modules`` before importing ``d2l.torch``. Anything that really used it (the
FashionMNIST loaders, image I/O) would fail with an ``AttributeError``; nothing here does.
"""

from __future__ import annotations

import importlib
import sys
import types

# the torchvision modules d2l/torch.py imports:
# `import torchvision`, `from torchvision import transforms`
_TORCHVISION_SUBMODULES = ("transforms",)


def _install_torchvision_stand_in() -> None:
    """Register an empty ``torchvision`` package and its imported submodules in ``sys.modules``."""
    root = types.ModuleType("torchvision")
    root.__doc__ = (
        "Stand-in inserted by tests/d2l_compat.py: "
        "the real torchvision is not installed."
    )
    root.__path__ = []  # a package, so `from torchvision import transforms` resolves the submodule
    sys.modules["torchvision"] = root
    for name in _TORCHVISION_SUBMODULES:
        sub = types.ModuleType(f"torchvision.{name}")
        setattr(root, name, sub)
        sys.modules[f"torchvision.{name}"] = sub


def import_d2l_torch():
    """Return the ``d2l.torch`` module, inserting the torchvision stand-in only if needed."""
    try:
        importlib.import_module("torchvision")
    except Exception:  # not installed, or installed but built for another torch
        sys.modules.pop("torchvision", None)
        _install_torchvision_stand_in()
    return importlib.import_module("d2l.torch")
