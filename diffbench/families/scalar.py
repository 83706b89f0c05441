"""Fixed families of one to three inputs: the classics every tutorial differentiates."""

from __future__ import annotations

import numpy as np

from .base import Family, Problem, as_vector


def _scalar(name: str, description: str, fn, grad, x0: float) -> Family:
    """A family of one input t = x[0], with its closed-form derivative ``grad(t, ops)``."""

    def build(size: int | None) -> Problem:
        return Problem(
            family=name,
            size=None,
            fn=lambda x, ops: fn(x[0], ops),
            gradient=lambda x, ops: np.array([grad(x[0], ops)], dtype=object),
            x0=as_vector(x0),
        )

    return Family(name, description, build)


EXP = _scalar("exp", "e^x at x = 20", lambda t, ops: ops.exp(t), lambda t, ops: ops.exp(t), 20.0)
SIN = _scalar("sin", "sin x at x = 1", lambda t, ops: ops.sin(t), lambda t, ops: ops.cos(t), 1.0)
CANCEL = _scalar(
    "cancel",
    "sqrt(x^2 + 1) - x at x = 1e4: f itself loses digits to cancellation",
    lambda t, ops: ops.sqrt(t * t + 1.0) - t,
    lambda t, ops: t / ops.sqrt(t * t + 1.0) - 1.0,
    1e4,
)
QUADRATIC = _scalar(
    "quadratic",
    "θ^2 + 2θ at θ = 1.5: two paths from θ to the output",
    lambda t, ops: t**2 + 2.0 * t,
    lambda t, ops: 2.0 * t + 2.0,
    1.5,
)
LOG_SIN = _scalar(
    "log_sin",
    "ln(θ^3 · sin θ) at θ = 1",
    lambda t, ops: ops.log(t**3 * ops.sin(t)),
    lambda t, ops: 3.0 / t + ops.cos(t) / ops.sin(t),
    1.0,
)


def _affine_square(x, ops):
    return (x[0] * x[1] + 1.0) ** 2


def _affine_square_grad(x, ops):
    outer = 2.0 * (x[0] * x[1] + 1.0)
    return np.array([outer * x[1], outer * x[0]], dtype=object)


AFFINE_SQUARE = Family(
    "affine_square",
    "(a·b + 1)^2 at a = 2, b = 3 (gradient 42, 28)",
    lambda size: Problem("affine_square", None, _affine_square, as_vector([2.0, 3.0]),
                         gradient=_affine_square_grad),
)


def _relu(x, ops):
    return ops.sum(ops.maximum(x, 0.0))


def _relu_grad(x, ops):
    return ops.where(x > 0, 1.0, 0.0)


RELU = Family(
    "relu",
    "Σ max(x_i, 0) at x = [-1, 0, 2]: a kink at 0, where the subgradient 0 is taken",
    lambda size: Problem("relu", None, _relu, as_vector([-1.0, 0.0, 2.0]),
                         gradient=_relu_grad, kinks=(1,)),
)

FAMILIES = (EXP, SIN, CANCEL, QUADRATIC, LOG_SIN, AFFINE_SQUARE, RELU)
