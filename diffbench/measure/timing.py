"""Wall-clock timing: a calibrated inner loop, several samples, every raw sample kept."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

UNSTABLE_SPREAD = 0.10
"""An IQR at or above this fraction of the median marks a timing unstable (as pyperf warns)."""
OUTLIER_MADS = 5.0
"""A sample further than this many scaled MADs from the median is an outlier."""
RESOLUTION_FACTOR = 1000
"""A sample shorter than this many timer ticks is too short to trust."""
TIMER_RESOLUTION_S = time.get_clock_info("perf_counter").resolution


@dataclass(frozen=True)
class Timing:
    """Seconds per call: ``samples`` are per-call means of ``loops`` calls each."""

    samples: tuple[float, ...]
    loops: int

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def min(self) -> float:
        return float(np.min(self.samples))

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    @property
    def outliers(self) -> int:
        """Samples further than ``OUTLIER_MADS`` scaled median absolute deviations out."""
        samples = np.asarray(self.samples)
        mad = 1.4826 * np.median(np.abs(samples - self.median))
        if mad == 0.0:
            return 0
        return int(np.sum(np.abs(samples - self.median) > OUTLIER_MADS * mad))

    def warnings(self) -> list[str]:
        """Why this timing should not be trusted, if it should not; empty when it is fine."""
        notes = []
        if len(self.samples) > 1 and self.iqr >= UNSTABLE_SPREAD * self.median:
            notes.append(f"spread (IQR) {self.iqr / self.median:.0%} of the median")
        if self.outliers:
            notes.append(f"{self.outliers} outlier sample(s) by median/MAD")
        if self.min * self.loops < RESOLUTION_FACTOR * TIMER_RESOLUTION_S:
            notes.append(f"a sample lasts {self.min * self.loops:.2g} s, too close to the "
                         f"timer's resolution of {TIMER_RESOLUTION_S:.2g} s")
        return notes

    @property
    def unstable(self) -> bool:
        return bool(self.warnings())


_SETTLED = False


def settle_allocator() -> None:
    """Allocate and free one 32 MB array, once per process, before anything is timed.

    glibc then serves arrays of a few MB from its heap instead of mapping fresh pages for each
    (its mmap threshold adapts to the largest block freed), the state of any process that has
    run for a while; without it, whether f and a gradient pay page faults on every call depends
    on what the process did before, and ω with it.
    """
    global _SETTLED
    if not _SETTLED:
        np.ones(4_000_000)
        _SETTLED = True


class BudgetExceeded(Exception):
    """One call took longer than the case's time budget."""


def time_call(
    fn: Callable[[], object],
    *,
    min_sample_s: float = 0.01,
    repeats: int = 5,
    budget_s: float = float("inf"),
) -> Timing:
    """Time ``fn()``: loops per sample chosen so one sample lasts >= ``min_sample_s``.

    Takes fewer samples (at least one) when ``repeats`` samples would not fit in ``budget_s``;
    raises ``BudgetExceeded`` when a single call already exceeds it.
    """
    settle_allocator()
    start = time.perf_counter_ns()
    fn()
    first = (time.perf_counter_ns() - start) * 1e-9
    if first > budget_s:
        raise BudgetExceeded(f"one call took {first:.3g} s, over the budget of {budget_s:g} s")
    loops = 1
    per_call = first
    while per_call * loops < min_sample_s:
        loops = max(loops * 2, int(np.ceil(min_sample_s / max(per_call, 1e-9))))
        start = time.perf_counter_ns()
        for _ in range(loops):
            fn()
        per_call = (time.perf_counter_ns() - start) * 1e-9 / loops
    samples = []
    deadline = time.perf_counter() + max(budget_s - first, 0.0)
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter_ns() - start) * 1e-9 / loops)
        if time.perf_counter() > deadline:
            break
    return Timing(tuple(samples), loops)
