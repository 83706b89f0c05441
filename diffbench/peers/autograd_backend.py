"""HIPS autograd: ``autograd.grad`` of the family's function over ``autograd.numpy``."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from ..backends.base import Backend, Prepared
from ..families import Problem

INSTALL_HINT = "pip install -e '.[peers]'"


class AutogradGradient(Prepared):
    """``autograd.grad`` of ``fn(x, autograd.numpy)``: a fresh trace on every call; f runs
    through ``autograd.numpy`` on a plain array (no trace), as autograd runs it."""

    function_method = "autograd.numpy"

    def __init__(self, problem: Problem):
        super().__init__(problem)
        import autograd
        import autograd.numpy as anp

        fn = problem.fn
        self._anp = anp
        self._grad = autograd.grad(lambda x: fn(x, anp))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._grad(x)

    def timed_function(self, x: np.ndarray):
        fn, anp = self.problem.fn, self._anp
        return lambda: fn(x, anp)


class Autograd(Backend):
    name = "autograd"
    description = ("HIPS autograd: autograd.grad over autograd.numpy (numpy calls traced on "
                   "every call, then one reverse sweep)")

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("autograd") is None:
            return f"autograd is not installed: {INSTALL_HINT}"
        return None

    def load(self) -> None:
        import autograd  # noqa: F401

    def prepare(self, problem: Problem, **options: Any) -> AutogradGradient:
        return AutogradGradient(problem)
