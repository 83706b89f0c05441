"""Families of n inputs: the sizes at which the cost of a gradient shows its exponent."""

from __future__ import annotations

import numpy as np

from .base import Family, Problem, seeded_rng


def _dot(size: int | None) -> Problem:
    n = int(size)
    rng = seeded_rng("dot", n)
    c = rng.standard_normal(n)
    return Problem(
        "dot", n,
        fn=lambda x, ops: ops.dot(x, c),
        gradient=lambda x, ops: c,
        x0=rng.standard_normal(n),
    )


def _product(size: int | None) -> Problem:
    n = int(size)
    return Problem(
        "product", n,
        fn=lambda x, ops: ops.prod(x),
        gradient=lambda x, ops: ops.prod(x) / x,
        x0=seeded_rng("product", n).uniform(0.5, 1.5, n),
    )


def rosenbrock(x, ops):
    return ops.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _rosenbrock_grad(x, ops):
    inner = x[1:] - x[:-1] ** 2
    head = -400.0 * x[:-1] * inner - 2.0 * (1.0 - x[:-1])
    tail = 200.0 * inner
    return np.concatenate([head, [0.0]]) + np.concatenate([[0.0], tail])


def _rosenbrock(size: int | None) -> Problem:
    n = int(size)
    return Problem("rosenbrock", n, fn=rosenbrock, gradient=_rosenbrock_grad,
                   x0=seeded_rng("rosenbrock", n).uniform(-2.0, 2.0, n))


def _mlp(size: int | None) -> Problem:
    """½‖relu(W u + b) − t‖² with W (n×n) and b packed as x = [W.ravel(), b]."""
    n = int(size)
    rng = seeded_rng("mlp", n)
    u = rng.standard_normal(n)
    target = rng.standard_normal(n)
    w0 = rng.standard_normal((n, n)) / np.sqrt(n)
    b0 = 0.1 * rng.standard_normal(n)

    def fn(x, ops):
        w = ops.reshape(x[: n * n], (n, n))
        hidden = ops.maximum(w @ u + x[n * n:], 0.0)
        return 0.5 * ops.sum((hidden - target) ** 2)

    def gradient(x, ops):
        w = np.reshape(x[: n * n], (n, n))
        z = w @ u + x[n * n:]
        residual = ops.where(z > 0, ops.maximum(z, 0.0) - target, 0.0 * z)
        return np.concatenate([np.outer(residual, u).ravel(), residual])

    return Problem("mlp", n, fn=fn, gradient=gradient, x0=np.concatenate([w0.ravel(), b0]))


FAMILIES = (
    Family("dot", "Σ w_i c_i for a fixed seeded vector c", _dot, "n", (10, 1000)),
    Family("product", "Π x_i, x seeded in [0.5, 1.5]", _product, "n", (10, 100)),
    Family("rosenbrock", "Σ 100(x_{i+1} - x_i^2)^2 + (1 - x_i)^2, x seeded in [-2, 2]",
           _rosenbrock, "n", (10, 1000), min_size=2),
    Family("mlp", "½‖relu(W u + b) - t‖² over W (n×n) and b: n² + n inputs", _mlp, "width",
           (4, 32)),
)
