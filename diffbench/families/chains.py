"""Chain families: x_{k+1} = step(x_k) for L steps, f = Σ x_L, where checkpointing trades
memory for time.

Each family is built at a size and a depth L into a :class:`Chain` (the step, x_0 in its own
shape, and the closed-form adjoint); as an ordinary family (any study) it has the depth
``DEFAULT_DEPTH`` and x flat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .base import Family, Problem, seeded_rng

DEFAULT_DEPTH = 8
"""The depth of a chain family built as an ordinary family (by size alone)."""


@dataclass(frozen=True)
class Chain:
    """x_{k+1} = ``step(x_k, ops)`` for k < ``depth`` from ``x0`` (in the state's shape), and
    f = Σ x_depth; ``gradient(x0, ops)`` is ∂f/∂x0 in closed form, written over ``ops`` (numpy
    on ``np.longdouble`` arrays gives an extended-precision reference)."""

    family: str
    size: int
    depth: int
    step: Callable[[object, object], object]
    x0: np.ndarray
    gradient: Callable[[np.ndarray, object], np.ndarray]

    def run(self, x: object, ops: object) -> object:
        """x_depth from x_0 = ``x``."""
        for _ in range(self.depth):
            x = self.step(x, ops)
        return x

    def problem(self) -> Problem:
        """The chain as an ordinary problem of a flat x: f(x) = Σ x_depth."""
        shape = self.x0.shape

        def fn(x, ops):
            return ops.sum(self.run(ops.reshape(x, shape), ops))

        def gradient(x, ops):
            return np.ravel(self.gradient(np.reshape(x, shape), ops))

        return Problem(self.family, self.size, fn=fn, x0=np.ravel(self.x0).copy(),
                       gradient=gradient)


@dataclass(frozen=True)
class ChainFamily(Family):
    """A family whose problems are chains: ``chain(size, depth)``; as an ordinary family, at
    the depth its ``depth`` option says (``DEFAULT_DEPTH`` unless set)."""

    chain: Callable[[int, int], Chain] | None = None



def _sin_tanh_step(x, ops):
    return 0.5 * (ops.sin(x) + ops.tanh(x))


def _sin_tanh(size: int, depth: int) -> Chain:
    """x ← (sin x + tanh x) / 2 elementwise on n values seeded in [−2, 2]: the values shrink
    towards 0 like k^(−1/2) and the derivative of the chain like k^(−3/2), so no depth
    underflows."""
    n = int(size)

    def gradient(x, ops):
        total = 1.0
        for _ in range(depth):
            t = ops.tanh(x)
            total = total * (0.5 * (ops.cos(x) + (1.0 - t * t)))
            x = _sin_tanh_step(x, ops)
        return total

    return Chain("sin_tanh_chain", n, depth, _sin_tanh_step,
                 seeded_rng("sin_tanh_chain", n).uniform(-2.0, 2.0, n), gradient)


def _residual_mlp(size: int, depth: int) -> Chain:
    """h ← h + tanh(h W + b), one W (w×w) and b shared by the layers, on a batch of w rows of
    width w (w² inputs).  W = (G/√w − I) / 2 with G standard normal: each layer contracts, so
    h stays bounded and tanh away from saturation, where its derivative 1 − tanh² would lose
    its digits."""
    width = int(size)
    rng = seeded_rng("residual_mlp", width)
    weights = 0.5 * (rng.standard_normal((width, width)) / np.sqrt(width) - np.eye(width))
    bias = 0.1 * rng.standard_normal(width)

    def step(h, ops):
        return h + ops.tanh(h @ weights + bias)

    def gradient(h, ops):
        saved = []
        for _ in range(depth):
            saved.append(ops.tanh(h @ weights + bias))
            h = h + saved[-1]
        g = np.ones_like(h)
        for t in reversed(saved):
            g = g + ((1.0 - t * t) * g) @ weights.T
        return g

    return Chain("residual_mlp", width, depth, step,
                 rng.standard_normal((width, width)), gradient)


def _as_family(name: str, description: str, chain: Callable[[int, int], Chain],
               size_param: str, example_sizes: tuple[int, ...]) -> ChainFamily:
    return ChainFamily(name, description,
                       lambda size, depth=DEFAULT_DEPTH: chain(size, depth).problem(),
                       size_param, example_sizes, options={"depth": DEFAULT_DEPTH},
                       limits={"depth": (1, 100_000)}, chain=chain)


FAMILIES = (
    _as_family("sin_tanh_chain", f"x ← (sin x + tanh x) / 2 on n values, {DEFAULT_DEPTH} "
               "steps (deeper in the checkpoint study); f = Σ x_L", _sin_tanh, "n", (3, 50)),
    _as_family("residual_mlp", f"h ← h + tanh(h W + b) on a batch of w rows of width w (w² "
               f"inputs), {DEFAULT_DEPTH} layers sharing W, b (deeper in the checkpoint study); "
               "f = Σ h_L", _residual_mlp, "width", (2, 8)),
)
