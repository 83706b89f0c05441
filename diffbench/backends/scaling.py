"""Loss scaling: the gradient of S·f divided by S, so that small cotangents stay normal numbers
of a 16-bit dtype.

A static scale is used as it is; ``"dynamic"`` is the scheme of PyTorch's GradScaler within one
gradient: start at ``DYNAMIC_START`` and halve while the gradient of S·f is not finite (an
overflow), keeping the scale found for the next call.  The division by S is in float64: exact
for a power of two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..families import Problem
from ..ops.precision import DYNAMIC, DYNAMIC_LEAST, DYNAMIC_START
from .base import Prepared


class LossScaled(Prepared):
    """The gradient of a backend prepared, by ``prepare(S)``, for S·f at each scale S tried."""

    def __init__(self, problem: Problem, prepare: Callable[[float], Prepared],
                 loss_scale: float | str):
        super().__init__(problem)
        self._prepare = prepare
        self.dynamic = loss_scale == DYNAMIC
        self.scale = DYNAMIC_START if self.dynamic else float(loss_scale)
        self.halvings = 0
        self._at: dict[float, Prepared] = {}
        self._scaled: np.ndarray | None = None

    @property
    def inner(self) -> Prepared:
        """The backend's gradient of S·f at the current scale (prepared once per scale)."""
        if self.scale not in self._at:
            self._at[self.scale] = self._prepare(self.scale)
        return self._at[self.scale]

    @property
    def measured(self) -> Prepared:
        return self.inner

    @property
    def function_method(self) -> str:
        return self.inner.function_method

    def gradient(self, x: np.ndarray) -> np.ndarray:
        while True:
            scaled = np.asarray(self.inner.gradient(x), dtype=np.float64)
            if not self.dynamic or np.all(np.isfinite(scaled)) \
                    or self.scale / 2.0 < DYNAMIC_LEAST:
                break
            self.scale /= 2.0
            self.halvings += 1
        self._scaled = scaled
        return scaled / self.scale

    def timed_function(self, x: np.ndarray) -> Callable[[], object]:
        return self.inner.timed_function(x)

    def scaled_gradient(self) -> np.ndarray | None:
        return self._scaled

    def error_estimates(self) -> np.ndarray | None:
        return self.inner.error_estimates()

    def stats(self) -> dict[str, Any]:
        return self.inner.stats()

    def note(self) -> str:
        scale = f"loss scale S = {self.scale:g}"
        if self.dynamic:
            scale += (f" (dynamic: from {DYNAMIC_START:g}, halved {self.halvings} times on "
                      "overflow)")
        return "; ".join(part for part in (scale, self.inner.note()) if part)
