"""One thread count for every backend, so that their times compare like with like.

numpy's BLAS is limited through threadpoolctl; the process is pinned to that many CPUs (from
the one it runs on when the run starts), which also bounds XLA's thread pool (its flags for
this are ignored by current JAX on the CPU) and everything else; torch reads :func:`current`
and sets its own pool to it.  Child processes
inherit the CPU pinning and apply the same limits when they start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import threadpoolctl

_CURRENT: int | None = None


def current() -> int | None:
    """The thread count in force, or None outside :func:`limited_threads`."""
    return _CURRENT


def _current_cpu() -> int | None:
    """The CPU this process runs on now (Linux: field 39 of /proc/self/stat), or None."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[36])
    except (OSError, IndexError, ValueError):
        return None


def _pin(count: int) -> list[int] | None:
    """Pin this process to ``count`` of the CPUs it may run on, starting from the one the
    scheduler runs it on now (so that several runs on one machine do not all crowd onto the
    first CPU); the CPUs kept, or None where the system has no CPU affinity."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    now = _current_cpu()
    start = allowed.index(now) if now in allowed else 0
    chosen = (allowed[start:] + allowed[:start])[:count]
    os.sched_setaffinity(0, chosen)
    return chosen


@contextmanager
def limited_threads(count: int) -> Iterator[dict[str, Any]]:
    """Run the block with ``count`` threads for numerical work; yields what was set, for the
    manifest.  The previous CPU set and thread pools are restored afterwards."""
    global _CURRENT
    previous_cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    previous, _CURRENT = _CURRENT, count
    limits = threadpoolctl.threadpool_limits(count)
    try:
        cpus = _pin(count)
        pools = [{"library": info.get("internal_api"), "threads": info.get("num_threads")}
                 for info in threadpoolctl.threadpool_info()]
        yield {"threads": count, "cpus": cpus, "thread_pools": pools}
    finally:
        limits.restore_original_limits()
        _CURRENT = previous
        if previous_cpus is not None:
            os.sched_setaffinity(0, previous_cpus)
