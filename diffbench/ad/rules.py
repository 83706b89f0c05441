"""Vector-Jacobian products: one table, one line per op and argument.

``RULES[op][i]`` is a maker ``(ns, ans, *args) -> vjp`` for argument ``i`` of ``op``.  The tape
calls it while recording, and only for traced arguments, so constants get no cotangents.  The
maker keeps only what ``vjp`` reads: the forward values it closes over, and shapes or masks
bound as default arguments (so every other forward value is freed during the forward pass).
``vjp(g)`` returns the cotangent of argument ``i`` (an array, an :class:`Indexed` or a
:class:`Deferred`); the engine un-broadcasts it where it is accumulated.  ``None`` marks an
argument with no derivative.

Cotangents may be held in any shape that broadcasts to their value's (a sum hands back its
scalar cotangent as is, not spread over an array).  The rules of the ``ELEMENTWISE`` ops and of
``getitem`` accept such a ``g`` and return results that broadcast to their argument's shape;
every other rule gets ``g`` in the exact shape of the op's output.

Rules call the namespace ``ns`` (numpy or mpmath_ops) for math, so one table serves float64 and
mpmath object arrays; numpy is used for structure only (reshape, broadcast, swap axes).
Temporaries come first in a product (``ns.cos(x) * g``) so numpy can reuse them in place, and
scalar factors meet ``g`` first (``2.0 * g * x``), which is cheap when ``g`` is a scalar.

Shapes, masks and sizes are bound as default arguments, evaluated once at record time (hence
the file-wide ``B008`` exemption below).

Conventions at kinks: ``abs'(0) = 0``; at a tie of ``maximum``/``minimum`` the cotangent goes to
the second argument, so ``maximum(x, 0)`` has derivative 0 at ``x = 0`` (like ``torch.relu``)
and ``maximum(x, x)`` has derivative 1.
"""

# ruff: noqa: B008

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from diffbench.ops import ARITHMETIC, BINARY, SELECTION, UNARY


class Indexed:
    """A cotangent ``value`` that lands on ``x[index]``: the cotangent store adds it there in
    place."""

    __slots__ = ("index", "value")
    shape = None  # not an array: the engine adds it where it lands

    def __init__(self, index: object, value: object) -> None:
        self.index = index
        self.value = value


class Deferred:
    """The cotangent ``fn(*args)`` (an array of shape ``made``, seen in the shape ``dims``; ``fn``
    takes numpy's ``out=``), not yet computed: where it lands on rows of a new buffer, the
    cotangent store computes it there (``fn(*args, out=...)``) instead of making it and copying
    it in; anywhere else it is made (:meth:`value`).  ``np.reshape`` of it (the reshape rule) is
    deferred too.

    Only the rules of the :data:`DEFERRING` ops receive one; ``dims`` is exactly the shape of
    the value whose cotangent it is (nothing to un-broadcast)."""

    __slots__ = ("fn", "args", "made", "dims")
    shape = None  # not an array: the sweep makes it unless it is reshaped or indexed

    def __init__(self, fn: Callable, args: tuple, shape: tuple[int, ...],
                 dims: tuple[int, ...] | None = None) -> None:
        self.fn, self.args, self.made = fn, args, shape
        self.dims = shape if dims is None else dims

    @property
    def dtype(self) -> np.dtype:
        """The dtype it is computed in."""
        return np.result_type(*self.args)

    def value(self) -> object:
        """The cotangent, computed into a new array."""
        made = self.fn(*self.args)
        return made if self.dims == self.made else made.reshape(self.dims)

    def into(self, out: object) -> None:
        """Compute the cotangent into ``out``, a C-contiguous array of shape ``dims``."""
        self.fn(*self.args, out=out if self.dims == self.made else out.reshape(self.made))

    def reshape(self, dims: tuple[int, ...], order: str = "C") -> Deferred:
        """The same cotangent seen in the shape ``dims``, still deferred (``np.reshape`` calls
        this with the C order of the reshape rule)."""
        return Deferred(self.fn, self.args, self.made, tuple(dims))


def _expand(g, axis):
    """The cotangent of a reduction over ``axis``, with the reduced axes put back as size 1."""
    return g if axis is None else np.expand_dims(g, axis)


def _others_product(x, axis) -> np.ndarray:
    """For each entry, the product of the other entries along ``axis`` (exact at zeros)."""
    x = x if hasattr(x, "ndim") else np.asarray(x)  # an array, or a symbol of a replay
    if x.ndim == 0:
        return np.ones_like(x)
    axes = tuple(range(x.ndim)) if axis is None else tuple(np.atleast_1d(axis) % x.ndim)
    last = tuple(range(-len(axes), 0))
    moved = np.moveaxis(x, axes, last)
    rows = moved.reshape(moved.shape[: moved.ndim - len(axes)] + (-1,))
    ones = np.ones_like(rows[..., :1])
    left = np.cumprod(np.concatenate([ones, rows[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, rows[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return np.moveaxis((left * right).reshape(moved.shape), last, axes)


_EINSUM = frozenset(map(np.dtype, (np.float64, np.float32)))
EINSUM_MIN = 8192
"""The fewest entries of an outer product that :func:`outer` computes by einsum, whose call
costs about 1.3 µs more than the multiply's and wins from about 10^4 entries."""


def outer(a, b, out=None):
    """``a[..., None] * b`` for arrays ``a`` and ``b`` (1-d), each entry one rounded product.
    Of :data:`EINSUM_MIN` entries or more in float64 and float32, by einsum's outer-product loop,
    1.4-1.6 times as fast as numpy's broadcast multiply on wide matrices (a zero product comes
    out +0.0 there); otherwise (small, 16-bit floats, mpmath objects) by the multiply."""
    if a.size * b.size >= EINSUM_MIN and a.dtype in _EINSUM and b.dtype in _EINSUM:
        return np.einsum("...i,j->...ij", a, b, out=out)
    return np.multiply(a[..., None], b, out=out)


def _matmul_left(g, a_ndim: int, b):
    """The cotangent of ``a`` in ``a @ b`` (numpy's rules for 1-d operands)."""
    if np.ndim(b) == 1:  # an outer product as large as a: deferred to where it lands
        if a_ndim == 1:
            return g * b
        b = b if hasattr(b, "dtype") else np.asarray(b)  # a constant given as a list
        return Deferred(outer, (g, b), (*np.shape(g), len(b)))
    if a_ndim == 1:
        return (b @ g[..., None])[..., 0]
    return g @ np.swapaxes(b, -1, -2)


def _matmul_right(g, a, b_ndim: int):
    """The cotangent of ``b`` in ``a @ b`` (numpy's rules for 1-d operands)."""
    if np.ndim(a) == 1:
        return g * a if b_ndim == 1 else a[:, None] * g[..., None, :]
    if b_ndim == 1:
        return (np.swapaxes(a, -1, -2) @ g[..., None])[..., 0]
    return np.swapaxes(a, -1, -2) @ g


Maker = Callable[..., Callable[[object], object]]

RULES: dict[str, tuple[Maker | None, ...]] = {
    # ---- elementwise, one argument ---------------------------------------------------------
    "negative": (lambda ns, ans, x: lambda g: -g,),
    "square": (lambda ns, ans, x: lambda g: 2.0 * g * x,),
    "sin": (lambda ns, ans, x: lambda g: ns.cos(x) * g,),
    "cos": (lambda ns, ans, x: lambda g: -ns.sin(x) * g,),
    "tan": (lambda ns, ans, x: lambda g: (1.0 + ans * ans) * g,),
    "exp": (lambda ns, ans, x: lambda g: ans * g,),
    "expm1": (lambda ns, ans, x: lambda g: (ans + 1.0) * g,),
    "log": (lambda ns, ans, x: lambda g: g / x,),
    "log1p": (lambda ns, ans, x: lambda g: g / (1.0 + x),),
    "sqrt": (lambda ns, ans, x: lambda g: 0.5 / ans * g,),
    "tanh": (lambda ns, ans, x: lambda g: (1.0 - ans * ans) * g,),
    "arctan": (lambda ns, ans, x: lambda g: g / (1.0 + x * x),),
    "abs": (lambda ns, ans, x: lambda g: ns.sign(x) * g,),
    # ---- elementwise, two arguments (broadcasting) -----------------------------------------
    "add": (
        lambda ns, ans, x, y: lambda g: g,
        lambda ns, ans, x, y: lambda g: g,
    ),
    "subtract": (
        lambda ns, ans, x, y: lambda g: g,
        lambda ns, ans, x, y: lambda g: -g,
    ),
    "multiply": (
        lambda ns, ans, x, y: lambda g: y * g,
        lambda ns, ans, x, y: lambda g: x * g,
    ),
    "divide": (
        lambda ns, ans, x, y: lambda g: g / y,
        lambda ns, ans, x, y: lambda g: -ans / y * g,
    ),
    "power": (
        lambda ns, ans, x, y: lambda g: y * x ** (y - 1.0) * g,
        lambda ns, ans, x, y: lambda g: ans * ns.log(x) * g,
    ),
    "maximum": (
        lambda ns, ans, x, y: lambda g, first=x > y: ns.where(first, g, 0.0),
        lambda ns, ans, x, y: lambda g, first=x > y: ns.where(first, 0.0, g),
    ),
    "minimum": (
        lambda ns, ans, x, y: lambda g, first=x < y: ns.where(first, g, 0.0),
        lambda ns, ans, x, y: lambda g, first=x < y: ns.where(first, 0.0, g),
    ),
    "where": (
        None,
        lambda ns, ans, c, a, b: lambda g: ns.where(c, g, 0.0),
        lambda ns, ans, c, a, b: lambda g: ns.where(c, 0.0, g),
    ),
    # ---- reductions ------------------------------------------------------------------------
    "sum": (lambda ns, ans, x, axis: lambda g: _expand(g, axis),),
    "mean": (
        lambda ns, ans, x, axis: lambda g, n=np.size(x) // np.size(ans): _expand(g, axis) / n,
    ),
    "prod": (lambda ns, ans, x, axis: lambda g: _expand(g, axis) * _others_product(x, axis),),
    # ---- linear algebra --------------------------------------------------------------------
    "matmul": (
        lambda ns, ans, a, b: lambda g, n=np.ndim(a): _matmul_left(g, n, b),
        lambda ns, ans, a, b: lambda g, n=np.ndim(b): _matmul_right(g, a, n),
    ),
    # ---- structure -------------------------------------------------------------------------
    "getitem": (lambda ns, ans, x, index: lambda g: Indexed(index, g),),
    "reshape": (lambda ns, ans, x, shape: lambda g, s=np.shape(x): np.reshape(g, s),),
    "astype": (lambda ns, ans, x, dtype: lambda g, d=x.dtype: ns.astype(g, d),),
}
"""The vector-Jacobian product of every op, by op name and argument index."""

ELEMENTWISE = frozenset((*UNARY, *BINARY, *SELECTION, *ARITHMETIC, "square"))
"""Ops applied entry by entry, whose rules accept a cotangent that broadcasts to the output:
the op list's elementwise functions and operators, and ``square`` (how ``x ** 2`` is recorded)."""

DEFERRING = frozenset(("reshape", "getitem"))
"""Ops whose rules hand a :class:`Deferred` cotangent on, still deferred: ``reshape`` reshapes
it, ``getitem`` lands it on its slice; the sweep makes it for every other op."""
