"""The exponent p of a cost that grows as n^p above a fixed overhead: y = a + b·n^p.

A plain log-log line through costs that carry a fixed overhead a (Python dispatch, a call
into XLA) bends at small n, and its slope and interval are biased low.  Here the overhead is
part of the model: for each p on a fine grid, a ≥ 0 and b > 0 are fitted by least squares in
relative terms (weights 1/y², the scale of log residuals), and the log residuals' sum of
squares S(p) is kept; p̂ minimises it.  The 95 % interval is the profile-likelihood one,
{p : S(p) ≤ S(p̂)·(1 + F₁,ₘ₋₃/(m − 3))}, F the 95 % quantile of Fisher's F with 1 and m − 3
degrees of freedom (m points, three parameters); it is infinite above where the set reaches
the grid's end (p is not determined there), and a fit needs four sizes.  Its coverage under
multiplicative noise with a fixed overhead is checked by simulation in the tests.

:func:`cost_exponent` is what studies report: this fit where its growth term is real (it
improves significantly on a constant, by an F test, and the fitted local slope at the largest
size is at least ``FLAT_SLOPE``), else the log-log line's slope, the growth over the measured
range (a constant fits every p of the model: its exponent is not determined by it), which is
also what fewer than four sizes give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fit import loglog_fit, t_quantile

P_GRID = np.round(np.arange(0.0, 4.0 + 1e-9, 0.002), 6)
"""The exponents tried: from 0 (a cost does not shrink as n grows) to beyond every claim
tested, fine enough (0.002) that the grid adds nothing to the interval."""
MIN_POINTS = 4
FLAT_SLOPE = 0.05
"""A fitted cost whose local slope at the largest size is below this does not visibly grow."""
SIGNIFICANCE = 0.05
"""The growth term must improve on a constant at this level (an F test) to count."""


@dataclass(frozen=True)
class OverheadFit:
    """y ≈ ``overhead`` + ``coefficient``·n^``exponent`` over ``points`` sizes; ``ci`` is the
    exponent's 95 % interval (±inf where the data do not bound it); ``overhead_share`` is the
    overhead's share of the fitted cost at the smallest size."""

    exponent: float
    ci: tuple[float, float]
    overhead: float
    coefficient: float
    points: int
    overhead_share: float
    local_slope: float
    """d log y / d log n of the fitted curve at the largest size."""
    grows: bool
    """The growth term improves significantly on a constant (F test at ``SIGNIFICANCE``)."""


def _profile(n: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every p of the grid at once: S(p) and the a ≥ 0, b ≥ 0 minimising
    Σ ((y − a − b·n^p) / y)² (the unconstrained solution, else the better of a = 0 and
    b = 0)."""
    x = np.exp(np.outer(P_GRID, np.log(n)))  # one row per p
    w = 1.0 / y**2
    sw, sy = np.sum(w), np.sum(w * y)
    sx, sxx, sxy = x @ w, (x * x) @ w, x @ (w * y)
    det = sw * sxx - sx * sx
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (sxx * sy - sx * sxy) / det
        b = (sw * sxy - sx * sy) / det
        b_only = np.maximum(sxy / sxx, 0.0)
    a_only = sy / sw
    sse_b = np.sum(w * (y - b_only[:, None] * x) ** 2, axis=1)
    sse_a = np.sum(w * (y - a_only) ** 2)
    free = (det > 0) & (a >= 0) & (b >= 0)
    pure_power = ~free & (sse_b <= sse_a)
    a = np.where(free, a, np.where(pure_power, 0.0, a_only))
    b = np.where(free, b, np.where(pure_power, b_only, 0.0))
    model = a[:, None] + b[:, None] * x
    with np.errstate(divide="ignore", invalid="ignore"):
        sse = np.sum((np.log(y) - np.log(model)) ** 2, axis=1)
    return np.where(np.all(model > 0, axis=1), sse, np.inf), a, b


def overhead_fit(n, y) -> OverheadFit | None:
    """Fit y = a + b·n^p (see the module docstring); None below ``MIN_POINTS`` distinct sizes
    with positive values."""
    n, y = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    keep = (n > 0) & (y > 0) & np.isfinite(y)
    n, y = n[keep], y[keep]
    if np.unique(n).size < MIN_POINTS:
        return None
    sse, aa, bb = _profile(n, y)
    best = int(np.argmin(sse))
    dof = n.size - 3
    inside = sse <= sse[best] * (1.0 + t_quantile(dof) ** 2 / dof) + 1e-300
    low_index, high_index = np.flatnonzero(inside)[[0, -1]]
    low = float(P_GRID[low_index])
    high = math.inf if high_index == P_GRID.size - 1 else float(P_GRID[high_index])
    a, b, p = float(aa[best]), float(bb[best]), float(P_GRID[best])
    at_smallest = a + b * float(np.min(n)) ** p
    growth_at_largest = b * float(np.max(n)) ** p
    constant = float(np.sum((np.log(y) - np.mean(np.log(y))) ** 2))
    f_statistic = (constant - sse[best]) / 2.0 / max(sse[best] / dof, 1e-300)
    return OverheadFit(p, (low, high), a, b, int(n.size),
                       a / at_smallest if at_smallest > 0 else 0.0,
                       p * growth_at_largest / (a + growth_at_largest),
                       bool(f_statistic > _f2_quantile(dof)))


def _f2_quantile(dof: int) -> float:
    """The (1 − SIGNIFICANCE) quantile of Fisher's F with 2 and ``dof`` degrees of freedom,
    in closed form: P(F > f) = (1 + 2f/dof)^(−dof/2)."""
    return dof / 2.0 * (SIGNIFICANCE ** (-2.0 / dof) - 1.0)


@dataclass(frozen=True)
class Exponent:
    """A cost's exponent with its 95 % interval; ``method`` says how it was fitted:
    ``overhead`` (y = a + b·n^p), ``line`` (log-log line: the cost does not visibly grow) or
    ``line-few`` (log-log line: fewer than four sizes); ``overhead_share`` is the fixed
    overhead's share of the cost at the smallest size (0 for a line)."""

    value: float
    ci: tuple[float, float]
    method: str
    points: int
    overhead_share: float = 0.0


def cost_exponent(n, y) -> Exponent | None:
    """The exponent of a cost (time or memory) over sizes ``n``: None below two sizes."""
    n, y = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    keep = (n > 0) & (y > 0) & np.isfinite(y)
    n, y = n[keep], y[keep]
    if np.unique(n).size < 2:
        return None
    fit = overhead_fit(n, y)
    if fit is not None and fit.grows and fit.local_slope >= FLAT_SLOPE:
        return Exponent(fit.exponent, fit.ci, "overhead", fit.points, fit.overhead_share)
    line = loglog_fit(n, y)
    return Exponent(line.slope, line.ci, "line" if fit is not None else "line-few", line.points)
