"""What a step sweep says: the measured optimum, the slopes on each side, and the theory.

Round-off makes the error of a difference grow like σ/h for small h, truncation like h^p for
large h (p = 2 central, 1 forward/backward); the textbook optimum balances the two with
σ = eps·|f|, the noise-aware one with σ measured (``measure.noise``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fit import loglog_fit

WINDOW_DECADES = 0.5
"""Half-width, in decades of h, of the window whose median error is ``err_near``."""
SATURATED = 0.5
"""Errors at or above this carry no digit of the derivative; slope fits leave them out."""
MIN_FIT_POINTS = 4


@dataclass(frozen=True)
class SweepSummary:
    """The measured optimum of one sweep; a slope is None where too few points remain."""

    h_opt: float | None
    err_min: float | None
    err_near: float | None
    slope_roundoff: float | None
    slope_truncation: float | None


def loglog_slope(h: np.ndarray, err: np.ndarray) -> float | None:
    """Least-squares slope of log10(err) against log10(h); None below ``MIN_FIT_POINTS``."""
    if h.size < MIN_FIT_POINTS or np.ptp(np.log10(h)) == 0.0:
        return None
    return loglog_fit(h, err).slope


def summarize(h: np.ndarray, err: np.ndarray) -> SweepSummary:
    """Summarize errors ``err`` measured at steps ``h`` (NaN where the step vanished).

    ``h_opt`` minimizes the median error over ±``WINDOW_DECADES`` (a lucky single step does
    not move it); ``err_near`` is that median, ``err_min`` the smallest error seen.  The slopes
    are fitted on each side of the window, over errors in (0, ``SATURATED``).
    """
    h, err = np.asarray(h, dtype=float), np.asarray(err, dtype=float)
    keep = np.isfinite(err)
    h, err = h[keep], err[keep]
    if h.size == 0:
        return SweepSummary(None, None, None, None, None)
    logs = np.log10(h)
    medians = np.array([np.median(err[np.abs(logs - center) <= WINDOW_DECADES])
                        for center in logs])
    best = int(np.argmin(medians))
    fit = (err > 0.0) & (err < SATURATED)
    below = fit & (logs < logs[best] - WINDOW_DECADES)
    above = fit & (logs > logs[best] + WINDOW_DECADES)
    return SweepSummary(
        h_opt=float(h[best]),
        err_min=float(err.min()),
        err_near=float(medians[best]),
        slope_roundoff=loglog_slope(h[below], err[below]),
        slope_truncation=loglog_slope(h[above], err[above]),
    )


def _positive(value: float) -> float | None:
    return value if math.isfinite(value) and value > 0.0 else None


def textbook_optimum(rule: str, sigma: float, d2: float, d3: float) -> tuple[float | None,
                                                                              float | None]:
    """(h*, E*) for noise ``sigma`` and |f''| = ``d2``, |f'''| = ``d3``; absolute error.

    Central: h* = (3σ/|f'''|)^(1/3), E* = 1.5σ/h*.  Forward and backward:
    h* = 2(σ/|f''|)^(1/2), E* = 2(σ|f''|)^(1/2).  The complex step has no round-off term:
    (None, None), as where a derivative or σ is zero.
    """
    base = rule.removesuffix("-exact")
    if base == "central" and sigma > 0.0 and d3 > 0.0:
        h = (3.0 * sigma / d3) ** (1.0 / 3.0)
        return _positive(h), _positive(1.5 * sigma / h)
    if base in ("forward", "backward") and sigma > 0.0 and d2 > 0.0:
        return _positive(2.0 * math.sqrt(sigma / d2)), _positive(2.0 * math.sqrt(sigma * d2))
    return None, None
