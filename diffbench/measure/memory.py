"""Peak memory of one call, two ways.

``traced_peak``: what ``tracemalloc`` sees (Python objects and numpy's buffers, which numpy
reports to it); blind to memory that other libraries allocate themselves (XLA, torch).
``rss_peak``: the process's resident-set high-water mark during the call above its resident
size before it, the one figure measured alike for every backend.  On Linux the high-water mark
is reset before the call (``/proc/self/clear_refs``) and memory the allocator keeps free is
handed back first (glibc's ``malloc_trim``), so that the figure counts pages the call touches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_HIGH_WATER_MARK = "5"
"""What ``clear_refs`` takes to reset VmHWM to the current resident size (Linux >= 4.0)."""


def traced_peak(fn: Callable[[], object]) -> int:
    """Peak bytes allocated during ``fn()`` beyond what was live before it, result included."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return max(peak - before, 0)


def _status_bytes(key: str) -> int | None:
    for line in STATUS.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


def _trim_heap() -> None:
    """Return the allocator's free memory to the system, where the C library is glibc."""
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


def rss_peak(fn: Callable[[], object]) -> int | None:
    """Resident bytes the call ``fn()`` added at its peak, result included; None where the
    system cannot reset the high-water mark (not Linux, or /proc not writable).  Garbage not
    yet collected stays resident, in the baseline (a collection of SymPy's many objects would
    cost more than the call)."""
    _trim_heap()
    try:
        CLEAR_REFS.write_text(RESET_HIGH_WATER_MARK)
        before = _status_bytes("VmRSS")
    except OSError:
        return None
    result = fn()
    peak = _status_bytes("VmHWM")
    del result
    if before is None or peak is None:
        return None
    return max(peak - before, 0)
