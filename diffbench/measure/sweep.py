"""What a step sweep says: the measured optimum with its spread, the slopes, and the model.

One error model serves the theory, the fit and the plot: a difference rule of truncation order p
errs by about E(h) = a·h^p + b/h, truncation plus round-off, least at h* = (b/(p·a))^(1/(p+1))
where E* = (1 + 1/p)·b/h*.  The textbook coefficients (``error_model``) are, with noise σ in f,
central a = |f'''|/6, b = σ, and forward or backward a = |f''|/2, b = 2σ; σ = eps·|f| in the
textbook, or measured (``measure.noise``).  ``fit_model`` measures a and b from a sweep instead.
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
EXACT = 1e-17
"""An error of 0 counts as this in a log (below eps/2, the least relative rounding error)."""
MIN_FIT_POINTS = 4
SLOPE_TOLERANCE = 0.5
"""How far a side's fitted slope may lie from the model's (−1 below, p above) in ``fit_model``."""
SETTLED_DECADES = 0.01
MAX_PASSES = 10
"""``fit_model`` recentres its sides until the optimum moves less than ``SETTLED_DECADES``."""


def truncation_order(rule: str) -> int | None:
    """p of the rule's truncation error h^p: 2 central, 1 forward and backward; None for the
    complex step, which has no round-off term to balance."""
    base = rule.removesuffix("-exact")
    return {"central": 2, "forward": 1, "backward": 1}.get(base)


@dataclass(frozen=True)
class ErrorModel:
    """E(h) = a·h^p + b/h (p = ``order``): truncation plus round-off, a, b ≥ 0 and finite."""

    a: float
    b: float
    order: int

    def __call__(self, h):
        """E at ``h`` (a float or an array)."""
        return self.a * h**self.order + self.b / h

    def optimum(self) -> tuple[float | None, float | None]:
        """(h*, E*); (None, None) where a term is 0 and E has no interior minimum."""
        if self.a <= 0.0 or self.b <= 0.0:
            return None, None
        h = (self.b / (self.order * self.a)) ** (1.0 / (self.order + 1))
        return float(h), float(self(h))


def error_model(rule: str, sigma: float, d2: float, d3: float) -> ErrorModel | None:
    """The textbook model of ``rule`` (absolute error) for noise ``sigma``, |f''| = ``d2`` and
    |f'''| = ``d3``; None for the complex step, or where σ is not positive or a coefficient is
    not a finite number ≥ 0 (only the derivative the rule needs is read)."""
    order = truncation_order(rule)
    if order is None or not (math.isfinite(sigma) and sigma > 0.0):
        return None
    a, b = (d3 / 6.0, sigma) if order == 2 else (d2 / 2.0, 2.0 * sigma)
    return ErrorModel(a, b, order) if math.isfinite(a) and a >= 0.0 else None


def textbook_optimum(rule: str, sigma: float, d2: float, d3: float) -> tuple[float | None,
                                                                              float | None]:
    """(h*, E*) of ``error_model``: central h* = (3σ/|f'''|)^(1/3), E* = 1.5σ/h*; forward and
    backward h* = 2(σ/|f''|)^(1/2), E* = 2(σ|f''|)^(1/2); (None, None) where it has none."""
    model = error_model(rule, sigma, d2, d3)
    return (None, None) if model is None else model.optimum()


def loglog_slope(h: np.ndarray, err: np.ndarray) -> float | None:
    """Least-squares slope of log10(err) against log10(h); None below ``MIN_FIT_POINTS``."""
    if h.size < MIN_FIT_POINTS or np.ptp(np.log10(h)) == 0.0:
        return None
    return loglog_fit(h, err).slope


def fit_model(h: np.ndarray, err: np.ndarray, order: int, around: float) -> ErrorModel | None:
    """a·h^p + b/h measured from errors ``err`` at steps ``h`` (relative or absolute alike).

    Over errors in (0, ``SATURATED``): b is the median of err·h on the round-off side, more than
    ``WINDOW_DECADES`` below the centre, a the median of err/h^p on the truncation side, as far
    above it.  The centre starts at ``around`` and moves to the model's optimum until it settles,
    so that each side is ruled by its own term.  None where a side has fewer than
    ``MIN_FIT_POINTS`` points, a slope lies more than ``SLOPE_TOLERANCE`` from the model's
    (−1, p), or the optimum falls outside the steps: there the error is not this model's (a
    truncation error of 0, a plateau of exact results, a function that is not smooth there).
    """
    h, err = np.asarray(h, dtype=float), np.asarray(err, dtype=float)
    usable = np.isfinite(err) & (err > 0.0) & (err < SATURATED)
    h, err = h[usable], err[usable]
    logs = np.log10(h)
    centre = math.log10(around)
    for _ in range(MAX_PASSES):
        below, above = logs < centre - WINDOW_DECADES, logs > centre + WINDOW_DECADES
        if np.count_nonzero(below) < MIN_FIT_POINTS or np.count_nonzero(above) < MIN_FIT_POINTS:
            return None
        model = ErrorModel(float(np.median(err[above] / h[above] ** order)),
                           float(np.median(err[below] * h[below])), order)
        optimum = model.optimum()[0]
        if optimum is None or not h.min() <= optimum <= h.max():
            return None
        moved, centre = abs(math.log10(optimum) - centre), math.log10(optimum)
        if moved < SETTLED_DECADES:
            break
    slope_below = loglog_slope(h[below], err[below])
    slope_above = loglog_slope(h[above], err[above])
    if (slope_below is None or slope_above is None or abs(slope_below + 1.0) > SLOPE_TOLERANCE
            or abs(slope_above - order) > SLOPE_TOLERANCE):
        return None
    return model


def window_optimum(h: np.ndarray, err: np.ndarray) -> float:
    """The step whose ±``WINDOW_DECADES`` window has the smallest mean log10 error (``err``
    finite; 0 counted as ``EXACT``): a lucky single step does not move it much, and on a
    minimum symmetric in log h it is the minimum.  (Not the window's median: that is the same
    for every centre whose window holds all the steps below it, half a decade of centres
    around the minimum.)  On a lopsided
    minimum (round-off ∝ 1/h, truncation ∝ h²) it leans to the gentler side, about 1/3 of
    ``WINDOW_DECADES`` below the optimum."""
    logs, log_err = np.log10(h), np.log10(np.maximum(err, EXACT))
    means = [np.mean(log_err[np.abs(logs - centre) <= WINDOW_DECADES]) for centre in logs]
    return float(h[int(np.argmin(means))])


@dataclass(frozen=True)
class SweepSummary:
    """The optimum of one sweep, its range over the shifted grids and how it was found
    (``fit`` or ``window``), the errors near it and the slopes on each side; a field is None
    where it cannot be measured."""

    h_opt: float | None
    h_opt_low: float | None
    h_opt_high: float | None
    h_opt_method: str | None
    err_min: float | None
    err_near: float | None
    slope_roundoff: float | None
    slope_truncation: float | None


def grid_optima(h: np.ndarray, err: np.ndarray, shift: np.ndarray,
                order: int | None) -> tuple[list[float], str]:
    """The optimum on each shifted grid (finite ``err``), and how it was found: ``fit``, the
    optimum of ``fit_model``, where the model fits every grid; else ``window``."""
    grids = [(h[shift == k], err[shift == k]) for k in np.unique(shift)]
    starts = [window_optimum(h_k, err_k) for h_k, err_k in grids]
    if order is not None:
        models = [fit_model(h_k, err_k, order, start)
                  for (h_k, err_k), start in zip(grids, starts, strict=True)]
        if all(model is not None for model in models):
            return [model.optimum()[0] for model in models], "fit"
    return starts, "window"


def summarize(h: np.ndarray, err: np.ndarray, shift: np.ndarray,
              order: int | None) -> SweepSummary:
    """Summarize errors ``err`` at steps ``h`` (NaN where the step vanished), each point on the
    shifted grid numbered ``shift``; ``order`` is the rule's truncation order (None: no fit).

    ``h_opt`` is the median, in log h, of the optima of ``grid_optima``, ``h_opt_low`` and
    ``h_opt_high`` their range: how far the optimum moves with the grid.  Over all grids
    together: ``err_near`` is the median error within ±``WINDOW_DECADES`` of ``h_opt``,
    ``err_min`` the smallest error, and the slopes are fitted over errors in (0, ``SATURATED``)
    on each side of that window.
    """
    h, err, shift = (np.asarray(h, dtype=float), np.asarray(err, dtype=float),
                     np.asarray(shift))
    keep = np.isfinite(err)
    h, err, shift = h[keep], err[keep], shift[keep]
    if h.size == 0:
        return SweepSummary(*(None,) * 8)
    optima, method = grid_optima(h, err, shift, order)
    logs_opt = np.log10(optima)
    centre = float(np.median(logs_opt))
    logs = np.log10(h)
    near = np.abs(logs - centre) <= WINDOW_DECADES
    fit = (err > 0.0) & (err < SATURATED)
    below = fit & (logs < centre - WINDOW_DECADES)
    above = fit & (logs > centre + WINDOW_DECADES)
    return SweepSummary(
        h_opt=float(10.0**centre),
        h_opt_low=float(10.0 ** logs_opt.min()),
        h_opt_high=float(10.0 ** logs_opt.max()),
        h_opt_method=method,
        err_min=float(err.min()),
        err_near=float(np.median(err[near])) if near.any() else None,
        slope_roundoff=loglog_slope(h[below], err[below]),
        slope_truncation=loglog_slope(h[above], err[above]),
    )
