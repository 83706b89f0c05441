"""HIPS autograd: ``autograd.grad`` of the family's function over ``autograd.numpy``."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..families import Problem

INSTALL_HINT = "pip install -e '.[peers]'"


class AutogradGradient:
    """``autograd.grad`` of ``fn(x, autograd.numpy)``: a fresh trace on every call."""

    def __init__(self, problem: Problem):
        import autograd
        import autograd.numpy as anp

        fn = problem.fn
        self._grad = autograd.grad(lambda x: fn(x, anp))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._grad(x)

    def stats(self) -> dict[str, Any]:
        return {}


class Autograd(Backend):
    name = "autograd"
    description = ("HIPS autograd: autograd.grad over autograd.numpy (numpy calls traced on "
                   "every call, then one reverse sweep)")

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("autograd") is None:
            return f"autograd is not installed: {INSTALL_HINT}"
        return None

    def prepare(self, problem: Problem, **options: Any) -> AutogradGradient:
        return AutogradGradient(problem)
