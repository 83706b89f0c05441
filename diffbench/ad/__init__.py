"""diffbench's native reverse-mode automatic differentiation engine.

The module is an ops namespace of the families' contract (its elementwise functions generated
from :data:`diffbench.ops.UNARY`), so ``fn(x, ad)`` traces::

    import diffbench.ad as ad
    g = ad.grad(lambda x: rosenbrock(x, ad))(x0)        # float64 in, float64 gradient out
    g = ad.grad(lambda x: rosenbrock(x, ad))(mpmath_ops.asarray(x0))   # mpmath, at workdps

``ad.value_and_grad(f)`` returns ``(f(x), gradient)``.  After a call, ``gradient.stats()`` gives
the tape length and the peak bytes of live cotangents of that call; ``ad.grad(f, release=False)``
keeps every cotangent and saved value alive instead (to measure what release saves).

Lower level: ``tape = ad.Tape(); x = tape.leaf(v); ad.backward(f(x), seed)`` sets ``x.grad``;
a non-scalar output needs a seed, and a second backward needs ``retain_graph=True`` on the first.
Iterating a tape gives its records in order (``ad.Record``: op, parents, vjps, shape).  Other
values' cotangents are released as the sweep goes, unless ``y.retain_grad()`` asked to keep
``y.grad``; ``ad.detach(y)`` (also ``ad.stop_gradient``) is ``y``'s value as a constant.

Trace once, replay: ``ad.compile(f, example_x)`` (``value=True``: like ``value_and_grad``) traces
``f`` once at the example's shape and float64 dtype and returns a function that replays the
recorded numpy calls on each new input, forward and backward, on buffers allocated once: bitwise
the recording engine's gradient, without its boxes, closures and fresh arrays.  Replay is valid
when ``f`` runs the same numpy operations whatever the values of ``x``: comparisons, ``where``
and ``maximum``'s masks are recomputed on every call, but a value read into Python (``if x[0] >
0``, ``float(...)``) is frozen, so ``compile`` traces ``f`` at two more points and refuses it
if the program differs there.  Other shapes are refused (or traced again, ``retrace=True``), as
are other dtypes, boolean indexing by a mask of ``x``, checkpointing and ``retain_grad``; see
:mod:`diffbench.ad.replay`.

Memory for time: ``ad.checkpoint(fn)`` recomputes ``fn`` in the backward sweep instead of keeping
its intermediates; ``ad.checkpoint_chain(step, x, length, schedule)`` checkpoints a chain of
steps by a schedule (``none``, ``every:K``, ``sqrt``, ``revolve`` with ``snapshots``); see
:mod:`diffbench.ad.checkpointing`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from diffbench.ad.checkpointing import checkpoint, checkpoint_chain
from diffbench.ad.engine import (
    BOTH,
    FIRST,
    SECOND,
    Box,
    GradientFunction,
    Record,
    Tape,
    TapeStats,
    apply,
    backward,
    grad,
    value_and_grad,
)
from diffbench.ad.replay import Replay, ReplayError, compile
from diffbench.ops import CONTRACT, UNARY


def _elementwise(op: str) -> Callable[[object], object]:
    def fn(x: object) -> object:
        return x.tape.record(op, FIRST, x) if type(x) is Box else apply(op, x)

    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"Elementwise {op}, traced when ``x`` is."
    return fn


globals().update({op: _elementwise(op) for op in UNARY})


def _binary(op: str, doc: str) -> Callable[[object, object], object]:
    """``op(x, y)`` for an op with a rule for each argument, recorded as the operators are."""

    def fn(x: object, y: object) -> object:
        if type(x) is Box:
            return x.tape.record(op, BOTH if type(y) is Box else FIRST, x, y)
        if type(y) is Box:
            return y.tape.record(op, SECOND, x, y)
        return apply(op, x, y)

    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = doc
    return fn


maximum = _binary("maximum", "Elementwise max; at a tie the cotangent goes to ``y`` (so "
                  "relu'(0) = 0).")
minimum = _binary("minimum", "Elementwise min; at a tie the cotangent goes to ``y``.")
matmul = _binary("matmul", "``a @ b`` with numpy's rules for 1-d operands and batch "
                 "broadcasting.")


def where(condition: object, a: object, b: object) -> object:
    """``a`` where ``condition`` holds, else ``b``; the condition is never differentiated."""
    return apply("where", condition, a, b)


def sum(x: object, axis: int | tuple[int, ...] | None = None) -> object:  # noqa: A001
    """Sum over ``axis`` (all axes by default)."""
    return x.tape.record("sum", FIRST, x, axis) if type(x) is Box else apply("sum", x, axis)


def mean(x: object, axis: int | tuple[int, ...] | None = None) -> object:
    """Mean over ``axis`` (all axes by default)."""
    return x.tape.record("mean", FIRST, x, axis) if type(x) is Box else apply("mean", x, axis)


def prod(x: object, axis: int | tuple[int, ...] | None = None) -> object:
    """Product over ``axis`` (all axes by default); its gradient is exact at zeros."""
    return x.tape.record("prod", FIRST, x, axis) if type(x) is Box else apply("prod", x, axis)


def dot(a: object, b: object) -> object:
    """numpy's dot for operands of at most 2 dimensions (a product when one is a scalar)."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return apply("multiply", a, b)
    if np.ndim(a) > 2 or np.ndim(b) > 2:
        raise ValueError(f"ad.dot takes operands of at most 2 dimensions, got shapes "
                         f"{np.shape(a)} and {np.shape(b)}: use matmul")
    return matmul(a, b)


def reshape(x: object, shape: int | tuple[int, ...]) -> object:
    """``x`` with a new shape (same number of elements)."""
    if type(x) is Box:
        return x.tape.record("reshape", FIRST, x, shape)
    return apply("reshape", x, shape)


def astype(x: object, dtype: object) -> object:
    """``x``'s values in the float ``dtype``; the cotangent is cast back to ``x``'s dtype."""
    if type(x) is Box:
        return x.tape.record("astype", FIRST, x, np.dtype(dtype))
    return apply("astype", x, dtype)


def detach(x: object) -> object:
    """``x``'s value as a constant the tape does not follow: no cotangent flows back through
    it (a read-only view of a traced array; anything else as it is)."""
    if type(x) is not Box:
        return x
    value = x.value
    if isinstance(value, np.ndarray):
        value = value.view()
        value.flags.writeable = False
    return value


stop_gradient = detach
"""JAX's name for :func:`detach`."""


__all__ = [
    "Box", "GradientFunction", "Record", "Replay", "ReplayError", "Tape", "TapeStats",
    "backward", "checkpoint", "checkpoint_chain", "compile", "detach", "grad", "stop_gradient",
    "value_and_grad", *CONTRACT,
]
