"""diffbench's own reverse-mode engine: one forward pass recorded on a tape, one backward."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..families import Problem
from .base import Backend, Prepared


class ReverseGradient(Prepared):
    """``ad.grad`` of the family's function; ``stats()`` has the last call's tape length."""

    def __init__(self, problem: Problem):
        super().__init__(problem)
        from .. import ad

        fn = problem.fn
        self._grad = ad.grad(lambda x: fn(x, ad))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._grad(x)

    def stats(self) -> dict[str, Any]:
        stats = self._grad.stats()
        return {"tape_len": stats.length, "cotangent_peak_bytes": stats.peak_cotangent_bytes}


class Reverse(Backend):
    name = "reverse"
    description = "diffbench.ad: the native reverse-mode engine (tape, one backward sweep)"

    def prepare(self, problem: Problem, **options: Any) -> ReverseGradient:
        return ReverseGradient(problem)
