"""diffbench's own reverse-mode engine: one forward pass recorded on a tape, one backward;
``replay = true``: ``ad.compile``, the program traced once in ``prepare`` and replayed on
buffers allocated once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..families import Chain, Problem
from ..ops.precision import DTYPES, NATIVE, Precision
from .base import PRECISION_OPTIONS, Backend, ChainGradient, Prepared, UnsupportedCase

if TYPE_CHECKING:
    from ..ad.checkpointing import Schedule


class ReverseGradient(Prepared):
    """``ad.grad`` of the family's function (``replay``: ``ad.compile`` at the problem's x0);
    ``stats()`` has the tape length of the last call (of the traced program for a replay)."""

    def __init__(self, problem: Problem, replay: bool = False):
        super().__init__(problem)
        from .. import ad

        fn = problem.fn
        if replay:
            try:
                self._grad = ad.compile(lambda x: fn(x, ad), problem.x0, retrace=True)
            except ad.ReplayError as error:
                raise UnsupportedCase(f"replay: {error}") from error
        else:
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
    description = ("diffbench.ad: the native reverse-mode engine (tape, one backward sweep); "
                   "replay = true: ad.compile, traced once, replayed on reused buffers")
    options = {"replay": False, **PRECISION_OPTIONS}
    choices = {"dtype": tuple(DTYPES)}

    def prepare(self, problem: Problem, replay: bool = False, precision: Precision = NATIVE,
                **options: Any) -> ReverseGradient:
        if replay and not precision.native:
            raise UnsupportedCase(f"replay = true runs float64 only (ad.compile), not "
                                  f"{precision.label}")
        return ReverseGradient(problem, replay)

    def prepare_chain(self, chain: Chain, schedule: Schedule, replay: bool = False,
                      **options: Any) -> ReverseChain:
        """Every schedule: ``ad.checkpoint_chain`` (recorded: a replay has no checkpoints)."""
        if replay:
            raise UnsupportedCase("replay = true has no checkpointing schedules: ad.compile "
                                  "refuses checkpoint and checkpoint_chain")
        return ReverseChain(chain, schedule)
