"""How much memory a tenant's index holds, estimated from what it is made of.

Arrays and sparse matrices count with their buffers. A large list or mapping (the profiles, the phrase
vocabulary) counts as its length times the average of a few of its items measured in depth, since walking
twenty thousand profiles on every swap would cost more than the estimate is worth. Objects reached twice
(the text model every chunk shares) count once.
"""

from __future__ import annotations

import sys
from itertools import islice

import numpy as np
import scipy.sparse as sp

# Items measured in depth per container; the rest are taken to be like them.
SAMPLED_ITEMS = 8
# Below this length a container is walked in full.
WALKED_IN_FULL = 64
_SPARSE_BUFFERS = ("data", "indices", "indptr", "row", "col", "offsets")
_SCALARS = (str, bytes, int, float, bool, complex, type(None))


def estimated_bytes(value: object) -> int:
    """The bytes held by ``value`` and everything it refers to, estimated."""
    return _measure(value, set())


def _measure(value: object, seen: set[int]) -> int:
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        # A view shares its base's buffer: count the base once, wherever it is first reached.
        return _measure(value.base, seen) if isinstance(value.base, np.ndarray) else int(value.nbytes)
    if sp.issparse(value):
        return sum(_measure(getattr(value, name), seen) for name in _SPARSE_BUFFERS if hasattr(value, name))
    if isinstance(value, _SCALARS):
        return sys.getsizeof(value)
    if isinstance(value, dict):
        # Keys and values apart: an items() pair is made for the occasion, and its id would be reused by
        # the next one, which the seen set would then skip.
        keys, values = list(value.keys()), list(value.values())
        return sys.getsizeof(value) + _measure_items(keys, len(keys), seen) + _measure_items(values, len(values), seen)
    if isinstance(value, list | tuple | set | frozenset):
        return sys.getsizeof(value) + _measure_items(value, len(value), seen)
    if hasattr(value, "__dict__"):
        return sys.getsizeof(value) + _measure(vars(value), seen)
    slots = [name for cls in type(value).__mro__ for name in getattr(cls, "__slots__", ())]
    return sys.getsizeof(value) + sum(_measure(getattr(value, name, None), seen) for name in slots)


def _measure_items(items, length: int, seen: set[int]) -> int:
    if length <= WALKED_IN_FULL:
        return sum(_measure(item, seen) for item in items)
    # Spread the sample over the container: its first items may be unlike the rest (a header, a default).
    step = max(1, length // SAMPLED_ITEMS)
    sample = list(islice(items, 0, None, step))[:SAMPLED_ITEMS]
    return sum(_measure(item, seen) for item in sample) * length // len(sample)
