"""Wall-clock timing: a calibrated inner loop, several samples, every raw sample kept.

Functions compared with each other (a gradient and f) are timed interleaved: each is
calibrated on its own, then every round takes one sample of each, so that drift of the machine
(another load, a clock change) reaches all of them alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

UNSTABLE_SPREAD = 0.10
"""An IQR at or above this fraction of the median marks a timing unstable (as pyperf warns)."""
OUTLIER_MADS = 5.0
"""A sample further than this many scaled MADs from the median is an outlier."""
OUTLIER_MIN_SAMPLES = 5
"""Outliers are looked for among this many samples or more (a MAD of fewer says little)."""
RESOLUTION_FACTOR = 1000
"""A sample shorter than this many timer ticks is too short to trust."""
TIMER_RESOLUTION_S = time.get_clock_info("perf_counter").resolution
MIN_SAMPLES = 3
"""Fewer samples than this give no spread to judge a timing by: it is flagged."""
CALIBRATION_MARGIN = 1.25
"""Samples are calibrated to this multiple of ``min_sample_s``, so that their ordinary jitter
keeps them above it (a sample shorter than ``min_sample_s`` is flagged)."""


@dataclass(frozen=True)
class Timing:
    """Seconds per call: ``samples`` are per-call means of ``loops`` calls each.

    ``min_sample_s`` is the duration a sample was calibrated to reach; ``cut`` says the time
    budget ended the timing before every sample asked for was taken.
    """

    samples: tuple[float, ...]
    loops: int
    min_sample_s: float = 0.0
    cut: bool = False

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
        if samples.size < OUTLIER_MIN_SAMPLES:
            return 0
        mad = 1.4826 * np.median(np.abs(samples - self.median))
        if mad == 0.0:
            return 0
        return int(np.sum(np.abs(samples - self.median) > OUTLIER_MADS * mad))

    def warnings(self) -> list[str]:
        """Why this timing should not be trusted, if it should not; empty when it is fine."""
        notes = []
        if len(self.samples) < MIN_SAMPLES:
            cause = " (the time budget ended the timing)" if self.cut else ""
            notes.append(f"only {len(self.samples)} sample(s){cause}: no spread to judge by")
        elif self.iqr >= UNSTABLE_SPREAD * self.median:
            notes.append(f"spread (IQR) {self.iqr / self.median:.0%} of the median")
        if self.outliers:
            notes.append(f"{self.outliers} outlier sample(s) by median/MAD")
        if self.min * self.loops < self.min_sample_s:
            notes.append(f"a sample lasts {self.min * self.loops:.2g} s, shorter than "
                         f"min_sample_s = {self.min_sample_s:g} s")
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
    """One call took longer than the time budget: ``seconds``, over ``budget_s``."""

    def __init__(self, seconds: float, budget_s: float):
        super().__init__(f"one call took {seconds:.3g} s, over the budget of {budget_s:.3g} s")
        self.seconds, self.budget_s = seconds, budget_s


def _calibrate(fn: Callable[[], object], min_sample_s: float, budget_s: float) -> int:
    """Loops per sample so that one sample, measured after the first call, lasts at least
    ``CALIBRATION_MARGIN`` × ``min_sample_s``; raises ``BudgetExceeded`` when a single call
    exceeds ``budget_s``."""
    start = time.perf_counter_ns()
    fn()
    first = (time.perf_counter_ns() - start) * 1e-9
    if first > budget_s:
        raise BudgetExceeded(first, budget_s)
    target = CALIBRATION_MARGIN * min_sample_s
    loops = max(1, int(np.ceil(target / max(first, 1e-9))))
    while True:
        duration = _sample(fn, loops) * loops
        if duration >= target:
            return loops
        loops = max(loops * 2, int(np.ceil(target * loops / max(duration, 1e-9))))


def _sample(fn: Callable[[], object], loops: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(loops):
        fn()
    return (time.perf_counter_ns() - start) * 1e-9 / loops


def time_calls(
    fns: Mapping[str, Callable[[], object]],
    *,
    min_sample_s: float = 0.01,
    repeats: int = 5,
    budget_s: float = float("inf"),
) -> dict[str, Timing]:
    """Time each of ``fns``, interleaved: ``repeats`` rounds of one sample of each.

    Each function gets its own loop count, so that one of its samples lasts >=
    ``min_sample_s``.  When the rounds would not fit in ``budget_s`` (counted from the start,
    calibration included) fewer are taken, at least one: a round is not begun when one more
    like the last would end past the budget, and the timings say so (``cut``); raises
    ``BudgetExceeded`` when a single call already exceeds the budget.
    """
    settle_allocator()
    deadline = time.perf_counter() + budget_s
    loops = {name: _calibrate(fn, min_sample_s, budget_s) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        started = time.perf_counter()
        for name, fn in fns.items():
            samples[name].append(_sample(fn, loops[name]))
        now = time.perf_counter()
        if now + (now - started) > deadline:
            break
    cut = len(next(iter(samples.values()))) < repeats
    return {name: Timing(tuple(samples[name]), loops[name], min_sample_s, cut) for name in fns}


def time_call(
    fn: Callable[[], object],
    *,
    min_sample_s: float = 0.01,
    repeats: int = 5,
    budget_s: float = float("inf"),
) -> Timing:
    """Time ``fn()`` alone; see :func:`time_calls`."""
    return time_calls({"fn": fn}, min_sample_s=min_sample_s, repeats=repeats,
                      budget_s=budget_s)["fn"]
