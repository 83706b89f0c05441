"""diffbench's own reverse-mode engine: one forward pass recorded on a tape, one backward."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..families import Chain, Problem
from .base import Backend, ChainGradient, Prepared

if TYPE_CHECKING:
    from ..ad.checkpointing import Schedule


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


class ReverseChain(ChainGradient):
    """``ad.checkpoint_chain`` under the schedule, with the step's evaluations counted."""

    def __init__(self, chain: Chain, schedule: Schedule):
        super().__init__(chain.problem())
        from .. import ad

        def step(x):
            self._count += 1
            return chain.step(x, ad)

        self._count = 0
        self._grad = ad.grad(lambda x: ad.sum(ad.checkpoint_chain(
            step, x, chain.depth, str(schedule), schedule.snapshots)))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        self._count = 0
        gradient = self._grad(x)
        self.forward_steps = self._count
        return gradient


class Reverse(Backend):
    name = "reverse"
    description = "diffbench.ad: the native reverse-mode engine (tape, one backward sweep)"

    def prepare(self, problem: Problem, **options: Any) -> ReverseGradient:
        return ReverseGradient(problem)

    def prepare_chain(self, chain: Chain, schedule: Schedule, **options: Any) -> ReverseChain:
        """Every schedule: ``ad.checkpoint_chain``."""
        return ReverseChain(chain, schedule)
