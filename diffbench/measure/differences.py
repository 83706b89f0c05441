"""Difference rules for one derivative along a coordinate, at a given step h.

A real rule divides by the nominal step h, so the rounding of x + h adds an error of about
eps·|x|/h; its ``-exact`` variant first rounds the step to h' = (x + h) − x (x − h for
``backward``), the step the arguments really differ by, and divides by h'.  The complex step
needs no subtraction: Im f(x + ih) / h, valid only where f is analytic (complex-safe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..families import Problem, coordinate_section

REAL_RULES = ("central", "forward", "backward")
RULES = (*REAL_RULES, *(f"{rule}-exact" for rule in REAL_RULES), "complex")
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


@dataclass(frozen=True)
class Section:
    """f along coordinate ``index`` through ``x0``: t ↦ f(x0 with x0[index] replaced by t)."""

    problem: Problem
    index: int

    @property
    def x(self) -> float:
        return float(self.problem.x0[self.index])

    def __call__(self, t: float) -> float:
        return float(coordinate_section(self.problem.fn, self.problem.x0.copy(), self.index)(t))

    def complex(self, t: complex) -> complex:
        """f at a complex argument; raises ``NotAnalytic`` where the complex step is invalid."""
        along = coordinate_section(self.problem.fn, _guard(self.problem.x0.astype(complex)),
                                   self.index)
        return complex(np.asarray(along(t)))


@dataclass(frozen=True)
class Difference:
    """One estimate: ``value`` from a step that really is ``step`` (0: x ± h rounded to x)."""

    value: float
    step: float


def exact_step(x: float, h: float, rule: str) -> float:
    """The step the arguments of ``rule`` really differ by: (x + h) − x, or x − (x − h)."""
    return x - (x - h) if rule.startswith("backward") else (x + h) - x


def difference(section: Section, rule: str, h: float) -> Difference:
    """The derivative of ``section`` at its point by ``rule`` with step ``h``."""
    x = section.x
    if rule == "complex":
        return Difference(section.complex(complex(x, h)).imag / h, h)
    base = rule.removesuffix("-exact")
    if base not in REAL_RULES:
        raise ValueError(f"unknown difference rule {rule!r}; valid: {', '.join(RULES)}")
    step = exact_step(x, h, base)
    exact = rule.endswith("-exact")
    if exact and step == 0.0:
        return Difference(float("nan"), 0.0)
    taken = step if exact else h
    if base == "central":
        return Difference((section(x + taken) - section(x - taken)) / (2.0 * taken), step)
    if base == "forward":
        return Difference((section(x + taken) - section(x)) / taken, step)
    return Difference((section(x) - section(x - taken)) / taken, step)
