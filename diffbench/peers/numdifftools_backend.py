"""numdifftools: ``numdifftools.Gradient`` over the numpy f, with its adaptive steps and
Richardson extrapolation, counting the evaluations of f it makes."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from ..backends.base import Backend, Prepared
from ..families import Problem
from .autograd_backend import INSTALL_HINT


class NumdifftoolsGradient(Prepared):
    """``numdifftools.Gradient(f, method, order, …, full_output=True)`` of the numpy f.

    Every call of f is counted (``f_evals`` is the count of the last gradient, f(x) included);
    ``error_estimates`` is numdifftools' own absolute estimate per component.
    """

    def __init__(self, problem: Problem, method: str, order: int, num_steps: int,
                 richardson_terms: int):
        super().__init__(problem)
        import numdifftools

        fn = problem.fn
        self._evals = 0
        self._errors: np.ndarray | None = None

        def f(x: np.ndarray) -> object:
            self._evals += 1
            return fn(x, np)

        self._gradient = numdifftools.Gradient(f, method=method, order=order,
                                               num_steps=num_steps,
                                               richardson_terms=richardson_terms,
                                               full_output=True)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        self._evals = 0
        result = self._gradient(x)
        self._errors = np.abs(np.asarray(result.error_estimate, dtype=float)).reshape(x.shape)
        return np.asarray(result.estimate, dtype=float).reshape(x.shape)

    def error_estimates(self) -> np.ndarray | None:
        """numdifftools' absolute error estimate per component, of the last gradient."""
        return self._errors

    def stats(self) -> dict[str, Any]:
        return {"f_evals": self._evals}


class Numdifftools(Backend):
    name = "numdifftools"
    description = ("numdifftools.Gradient: central differences at 15 steps per input, halving "
                   "from about 2·ln(e + |x_i|), Richardson extrapolation, the estimate with "
                   "the smallest error estimate (30n + 1 evaluations of f)")
    options = {"method": "central", "order": 2, "num_steps": 15, "richardson_terms": 2}
    choices = {"method": ("central", "forward", "backward"),
               "order": (2, 4, 6, 8), "richardson_terms": (0, 1, 2, 3, 4)}

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("numdifftools") is None:
            return f"numdifftools is not installed: {INSTALL_HINT}"
        return None

    def load(self) -> None:
        import numdifftools  # noqa: F401

    def relative_cost(self, size: int) -> float:
        return float(size) ** 2

    def prepare(self, problem: Problem, method: str = "central", order: int = 2,
                num_steps: int = 15, richardson_terms: int = 2,
                **options: Any) -> NumdifftoolsGradient:
        return NumdifftoolsGradient(problem, method, order, num_steps, richardson_terms)
