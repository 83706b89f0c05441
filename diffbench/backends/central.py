"""Central differences, one component at a time: 2n evaluations of f."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..families import Problem
from .base import Backend

EPS = np.finfo(float).eps


def central_steps(x: np.ndarray) -> np.ndarray:
    """The textbook step h_i = eps^(1/3) · max(1, |x_i|)."""
    return EPS ** (1.0 / 3.0) * np.maximum(1.0, np.abs(x))


class CentralGradient:
    """(f(x + h e_i) − f(x − h e_i)) / (2h), with h made exactly representable as (x+h) − x."""

    def __init__(self, problem: Problem):
        self._f = problem.fn
        self._evals = 0

    def gradient(self, x: np.ndarray) -> np.ndarray:
        steps = central_steps(x)
        grad = np.empty_like(x)
        probe = x.copy()
        for i, h in enumerate(steps):
            probe[i] = x[i] + h
            forward = self._f(probe, np)
            h_exact = probe[i] - x[i]
            probe[i] = x[i] - h_exact
            backward = self._f(probe, np)
            probe[i] = x[i]
            grad[i] = (forward - backward) / (2.0 * h_exact)
        self._evals = 2 * x.size
        return grad

    def stats(self) -> dict[str, Any]:
        return {"f_evals": self._evals}


class Central(Backend):
    name = "central"
    description = "central differences, h = eps^(1/3)·max(1, |x|), 2n evaluations of f"

    def relative_cost(self, size: int) -> float:
        return float(size) ** 2

    def prepare(self, problem: Problem, **options: Any) -> CentralGradient:
        return CentralGradient(problem)
