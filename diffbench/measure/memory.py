"""Peak memory of one call, as ``tracemalloc`` sees it (numpy reports its buffers to it)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable


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
