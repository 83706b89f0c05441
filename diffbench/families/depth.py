"""Families of one input whose size is a depth of composition: where expressions swell."""

from __future__ import annotations

import numpy as np

from .base import Family, Problem, as_vector


def _nested(size: int | None) -> Problem:
    """sin(exp(sin(exp(… x)))): ``depth`` functions, sin outermost."""
    depth = int(size)
    layers = ["sin" if k % 2 == 0 else "exp" for k in range(depth)][::-1]  # innermost first

    def fn(x, ops):
        y = x[0]
        for name in layers:
            y = getattr(ops, name)(y)
        return y

    def gradient(x, ops):
        y, dy = x[0], 1.0
        for name in layers:
            dy = dy * (ops.cos(y) if name == "sin" else ops.exp(y))
            y = getattr(ops, name)(y)
        return np.array([dy], dtype=object)

    return Problem("nested", depth, fn=fn, gradient=gradient, x0=as_vector(0.5))


def _logistic(size: int | None) -> Problem:
    """The logistic map l ← 4 l (1 − l), ``depth`` steps from l = x."""
    depth = int(size)

    def fn(x, ops):
        y = x[0]
        for _ in range(depth):
            y = 4.0 * y * (1.0 - y)
        return y

    def gradient(x, ops):
        y, dy = x[0], 1.0
        for _ in range(depth):
            dy = dy * (4.0 - 8.0 * y)
            y = 4.0 * y * (1.0 - y)
        return np.array([dy], dtype=object)

    return Problem("logistic", depth, fn=fn, gradient=gradient, x0=as_vector(0.3))


FAMILIES = (
    Family("nested", "sin(exp(sin(exp(… x)))), depth functions deep, at x = 0.5", _nested,
           "depth", (2, 8)),
    Family("logistic", "logistic map l ← 4 l (1 - l), depth steps from x = 0.3", _logistic,
           "depth", (2, 6)),
)
