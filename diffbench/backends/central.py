"""Central differences, one component at a time.

``step = "default"``: the textbook step h_i = eps^(1/3)·max(1, |x_i|), 2n evaluations of f.
``step = "auto"``: Richardson extrapolation of central differences at ``LEVELS`` steps
h_0·2^-k, h_0 the power of two nearest 0.2·max(1, |x_i|), 2·``LEVELS`` evaluations per
component; the entry of the Neville tableau with the smallest error estimate is taken, with that
estimate.  Steps that are powers of two divide exactly, and keep x ± h a short binary fraction
where x is one (a polynomial's differences are then often exact).

Every difference is ``measure.differences.real_difference`` with the rule ``central-exact``: the
step is made exact as (x + h) − x.  x is perturbed in place, one component at a time, and
restored (``coordinate_section``): a gradient makes no copy of x.  ``dtype``: f runs in that
dtype (the problem comes lowered), eps is the dtype's, and x + h is rounded to the dtype before
the step is taken from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..families import Problem, coordinate_section
from ..measure.differences import real_difference
from ..ops.precision import DTYPES, NATIVE, Precision, eps, snap
from .base import Backend, Prepared

EPS = np.finfo(float).eps
LEVELS = 7
RATIO = 2.0
FIRST_STEP = 0.2
"""h_0 of the auto step, relative to max(1, |x_i|) (then rounded to a power of two): f is
assumed smooth on that scale."""


def central_step(x: float, eps: float = EPS) -> float:
    """The textbook step h = eps^(1/3) · max(1, |x|) at the point ``x``."""
    return eps ** (1.0 / 3.0) * max(1.0, abs(x))


def richardson(g: Callable[[float], float], x: float, eps: float = EPS,
               snap: Callable[[float], float] = float) -> tuple[float, float]:
    """g'(x) and an estimate of its absolute error, from ``LEVELS`` central differences.

    Column j of the tableau removes the h^(2j) term.  An entry's change is the larger change
    from its two parents; its error estimate is that change plus the round-off eps·max|g|/h of
    its smallest step.  A change of exactly 0 is a coincidence of rounding unless the tableau
    is exact there (a polynomial): such an entry takes its neighbour's change instead (the entry
    above it in its column; on the diagonal, the one left of it).  Entries that are not finite
    (a step left f's domain) are never chosen.
    """
    h = 2.0 ** round(math.log2(FIRST_STEP * max(1.0, abs(x))))
    table: list[list[float]] = []
    changes: list[list[float]] = []
    best, best_error, largest = float("nan"), float("inf"), 0.0
    for i in range(LEVELS):
        estimate = real_difference(g, x, "central-exact", h, snap)
        largest = max(largest, estimate.scale)
        roundoff = eps * largest / estimate.step
        row, moved = [estimate.value], [0.0]
        factor = RATIO**2
        for j in range(1, i + 1):
            row.append(row[j - 1] + (row[j - 1] - table[i - 1][j - 1]) / (factor - 1.0))
            factor *= RATIO**2
            moved.append(max(abs(row[j] - row[j - 1]), abs(row[j] - table[i - 1][j - 1])))
            change = moved[j] or (changes[i - 1][j] if j < i else moved[j - 1])
            error = change + roundoff
            if np.isfinite(row[j]) and error < best_error:
                best, best_error = row[j], error
        table.append(row)
        changes.append(moved)
        h /= RATIO
    return best, best_error


class CentralGradient(Prepared):
    """A central-difference gradient with the textbook (``default``) or ``auto`` step."""

    def __init__(self, problem: Problem, step: str, precision: Precision):
        super().__init__(problem)
        self._f = problem.fn
        self._step = step
        self._eps = eps(precision.dtype)
        self._snap = snap(precision.dtype)
        self._evals = 0
        self._err_estimates: np.ndarray | None = None

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._auto(x) if self._step == "auto" else self._default(x)

    def _along(self, x: np.ndarray, i: int) -> Callable[[float], float]:
        """f along x_i, perturbing ``x`` in place and restoring it: no copy of x."""
        along = coordinate_section(self._f, x, i)
        return lambda t: float(along(t))

    def _default(self, x: np.ndarray) -> np.ndarray:
        """Component by component into the output: no array or list of n entries but it."""
        grad = np.empty(x.size)
        for i in range(x.size):
            at = float(x[i])
            grad[i] = real_difference(self._along(x, i), at, "central-exact",
                                      central_step(at, self._eps), self._snap).value
        self._evals = 2 * x.size
        return grad

    def _auto(self, x: np.ndarray) -> np.ndarray:
        grad, errors = np.empty(x.size), np.empty(x.size)
        for i in range(x.size):
            grad[i], errors[i] = richardson(self._along(x, i), float(x[i]), self._eps,
                                            self._snap)
        self._evals = 2 * LEVELS * x.size
        self._err_estimates = errors
        return grad

    def error_estimates(self) -> np.ndarray | None:
        """For ``auto``: Richardson's absolute error estimate per component of the last call."""
        return self._err_estimates

    def stats(self) -> dict[str, Any]:
        return {"f_evals": self._evals}


class Central(Backend):
    name = "central"
    description = ("central differences; step = default: h = eps^(1/3)·max(1, |x|), 2n "
                   "evaluations of f; step = auto: Richardson extrapolation, 14n evaluations")
    options = {"step": "default", "dtype": "float64"}
    choices = {"step": ("default", "auto"), "dtype": tuple(DTYPES)}

    def relative_cost(self, size: int) -> float:
        return float(size) ** 2

    def prepare(self, problem: Problem, step: str = "default", precision: Precision = NATIVE,
                **options: Any) -> CentralGradient:
        return CentralGradient(problem, step, precision)
