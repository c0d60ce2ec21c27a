"""Memory measurements: the bytes a computation allocates at its peak, and the tensors
autograd saves for the backward pass.

:class:`PeakMemory` records every storage an operator makes, forward and backward, so it
counts what a computation allocates on any device without depending on the allocator
or on timing; :func:`saved_tensor_count` counts what autograd keeps. Chapter 6 uses both
to compare reversible layers (:mod:`attnkit.reversible`) with ordinary ones.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["PeakMemory", "saved_tensor_count"]


class PeakMemory(TorchDispatchMode):
    """The largest number of bytes that tensors made inside ``with PeakMemory() as m:``
    held at one time (``m.peak``), forward and backward alike; tensors made before do
    not count.

    Every storage an operator returns is counted from its creation until it is freed (a
    finaliser on the storage), so it measures what the computation allocates, on any
    device, without depending on the allocator or on timing. Views and in-place results
    share an input's storage and add nothing.
    """

    def __init__(self):
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live = set()

    def _free(self, key, nbytes):
        self._live.discard(key)
        self.current -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {
            t.untyped_storage()._cdata
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor)
        }
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage._cdata
            if key in self._live or key in inputs:  # a view or an in-place result
                continue
            self._live.add(key)
            self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._free, key, storage.nbytes())
        return out


def saved_tensor_count(fn, *args) -> int:
    """How many tensors autograd keeps for the backward pass of ``fn(*args)``."""
    count = 0

    def pack(t):
        nonlocal count
        count += 1
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*args)
    return count
