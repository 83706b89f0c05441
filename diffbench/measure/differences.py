"""Difference rules for one derivative along a coordinate, at a given step h.

A real rule divides by the nominal step h, so the rounding of x + h adds an error of about
eps·|x|/h; its ``-exact`` variant first rounds the step to h' = (x + h) − x (x − h for
``backward``), the step the arguments really differ by, and divides by h'.  The complex step
needs no subtraction: Im f(x + ih) / h, valid only where f is analytic (complex-safe).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..families import Problem, coordinate_section

REAL_RULES = ("central", "forward", "backward")
DIFFERENCE_RULES = (*REAL_RULES, *(f"{rule}-exact" for rule in REAL_RULES), "complex")
"""Every rule a step sweep measures, in table order."""

_NOT_ANALYTIC = frozenset({
    "absolute", "fabs", "maximum", "minimum", "fmax", "fmin", "sign", "floor", "ceil", "trunc",
    "rint", "greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
    "heaviside", "clip", "remainder", "fmod", "mod",
})
"""Ufuncs whose meaning on complex numbers is not the analytic continuation of the real one."""


class NotAnalytic(Exception):
    """The function used an operation that breaks the complex step (abs, max, comparisons)."""


class AnalyticArray(np.ndarray):
    """A complex array that refuses non-analytic ufuncs; indexing keeps 0-d results guarded."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc.__name__ in _NOT_ANALYTIC:
            raise NotAnalytic(f"np.{ufunc.__name__} is not analytic on complex input")
        plain = [np.asarray(a) if isinstance(a, AnalyticArray) else a for a in inputs]
        result = getattr(ufunc, method)(*plain, **kwargs)
        return _guard(result) if isinstance(result, np.ndarray | np.generic) else result

    def __getitem__(self, key):
        return _guard(np.asarray(self)[key])


def _guard(value: Any) -> AnalyticArray:
    return np.asarray(value).view(AnalyticArray)


class CoordinateLine:
    """f along coordinate ``index`` through ``problem.x0``: t ↦ f(x0 with x0[index] = t).

    It evaluates on private copies of x0 (real and complex), so ``problem.x0`` is never written.
    ``snap`` rounds a point to the numbers f is evaluated at (float64, or the dtype of a
    lowered problem), for the exact steps.
    """

    def __init__(self, problem: Problem, index: int,
                 snap: Callable[[float], float] = float):
        self.problem = problem
        self.index = index
        self.snap = snap
        self.x = float(problem.x0[index])
        self._real = coordinate_section(problem.fn, problem.x0.copy(), index)
        self._complex = coordinate_section(problem.fn, _guard(problem.x0.astype(complex)), index)

    def __call__(self, t: float) -> float:
        return float(self._real(t))

    def complex(self, t: complex) -> complex:
        """f at a complex argument; raises ``NotAnalytic`` where the complex step is invalid."""
        return complex(np.asarray(self._complex(t)))


@dataclass(frozen=True)
class Difference:
    """One estimate: ``value`` from a step that really is ``step`` (0: x ± h rounded to x);
    ``scale`` is the largest |f| the rule evaluated, the size of its round-off."""

    value: float
    step: float
    scale: float


def exact_step(x: float, h: float, rule: str, snap: Callable[[float], float] = float) -> float:
    """The step the arguments of ``rule`` really differ by: (x + h) − x, or x − (x − h), with
    x ± h rounded by ``snap`` to the numbers f is evaluated at (float64 by default)."""
    return x - snap(x - h) if rule.startswith("backward") else snap(x + h) - x


def real_difference(g: Callable[[float], float], x: float, rule: str, h: float,
                    snap: Callable[[float], float] = float) -> Difference:
    """g'(x) by a real ``rule`` with step ``h``, on any scalar function ``g``.

    A plain rule divides by the nominal h, so the rounding of x ± h enters the estimate; an
    ``-exact`` rule steps by and divides by h' = ``exact_step``, the distance x + h (x − h for
    backward) really lies from x (NaN, step 0, where h' vanished), x + h rounded by ``snap``
    (to float16, say, for an f run in float16).  ``central-exact`` is the central difference
    of the ``central`` backend.
    """
    base = rule.removesuffix("-exact")
    if base not in REAL_RULES:
        raise ValueError(f"unknown difference rule {rule!r}; valid: {', '.join(DIFFERENCE_RULES)}")
    step = exact_step(x, h, base, snap)
    exact = rule.endswith("-exact")
    if exact and step == 0.0:
        return Difference(float("nan"), 0.0, float("nan"))
    taken = step if exact else h
    if base == "central":
        up, down = g(x + taken), g(x - taken)
        return Difference((up - down) / (2.0 * taken), step, max(abs(up), abs(down)))
    here = g(x)
    if base == "forward":
        up = g(x + taken)
        return Difference((up - here) / taken, step, max(abs(up), abs(here)))
    down = g(x - taken)
    return Difference((here - down) / taken, step, max(abs(here), abs(down)))


def difference(line: CoordinateLine, rule: str, h: float) -> Difference:
    """The derivative of ``line`` at its point by any of ``DIFFERENCE_RULES`` with step ``h``."""
    if rule == "complex":
        value = line.complex(complex(line.x, h))
        return Difference(value.imag / h, h, abs(value.real))
    return real_difference(line, line.x, rule, h, line.snap)
