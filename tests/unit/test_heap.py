"""Freed heap memory goes back to the system: what keeps a matching process's resident memory near what
its indexes hold after builds and evictions."""

from __future__ import annotations

import os
import sys

import pytest

from shared import heap

MB = 1024 * 1024


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; trimming is glibc's")
def test_freed_blocks_below_a_live_one_are_given_back():
    if not heap.give_back_freed_memory():
        pytest.skip("this C library has no malloc_trim")
    # Blocks below the allocator's mmap threshold come from the heap; the last one, kept alive, sits above
    # the freed ones, so free() alone cannot shrink the heap and the pages stay resident.
    blocks = [b"\x01" * 100_000 for _ in range(1_500)]
    keeper = b"\x02" * 100_000
    del blocks
    before = _resident_bytes()

    assert heap.give_back_freed_memory()

    given_back = before - _resident_bytes()
    assert given_back > 100 * MB, f"only {given_back / MB:.0f} MiB of about 143 MiB freed went back"
    assert keeper[0] == 2
