"""Giving freed heap memory back to the operating system.

glibc's allocator keeps memory a process freed for its next allocations, and its threshold for serving
large blocks from the heap instead of their own mappings rises after large blocks are freed. A process that
builds large structures, drops them and builds others (the matching service's per-region indexes under a
memory budget) then keeps the high-water mark of everything it built at once as resident memory, whatever
it still holds. ``malloc_trim`` hands the free pages back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim():
    # Only glibc has it; on other C libraries (musl, macOS) freed memory is left to the allocator.
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def give_back_freed_memory() -> bool:
    """Return the heap's free pages to the operating system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
