"""Working precision: a family's f run with its values in float32, float16 or bfloat16.

A :class:`Precision` names the dtype f's values are kept in, the dtype its reductions
accumulate in, and a loss scale.  :func:`lower` turns ``fn(x, ops)`` into the same function run
at that precision in any numeric ops namespace (numpy, the engine, JAX, torch): ``x`` is cast
to the dtype on entry, every float constant f meets (a Python float, a float array it closes
over) is rounded to the dtype before it is used, and the result is f's value in the dtype.
The arithmetic, the same in every namespace:

* elementwise functions and operators are the namespace's own on dtype values: each result is
  rounded to the dtype;
* reductions (``sum``, ``mean``, ``prod``) and products (``dot``, ``matmul``): with
  ``accumulate``, the operands are cast to it, reduced by the namespace and the result rounded
  to the dtype once (what autocast and tensor cores do); without, they accumulate in the dtype,
  every partial result rounded to it: a product sums its k terms left to right (a kernel with
  one dtype accumulator), a reduction in runs of ``RUN`` terms left to right, the runs'
  results combined the same way (numpy's own float16 and bfloat16 kernels differ from one
  another, so they are not used); float64, with nothing to emulate, uses the namespace's own
  (a float64 run with a loss scale).

The backward pass is each method's own, in the dtypes the forward values have.  The reference
of a lowered f is the exact gradient of f as written at x0 rounded to the dtype: the input's
rounding is not charged to a method; the rounding of f's constants and operations is.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import ml_dtypes
import numpy as np

from diffbench.ops import UNARY

DTYPES: dict[str, np.dtype] = {
    "float64": np.dtype(np.float64), "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16),
}
"""The working precisions, by name."""
RUN = 128
"""Terms a reduction in the dtype accumulates left to right before starting a new run."""
DYNAMIC = "dynamic"
DYNAMIC_START = 2.0**16
"""The first scale of ``loss_scale = "dynamic"`` (PyTorch's GradScaler's ``init_scale``)."""
DYNAMIC_LEAST = 2.0**-24
"""The dynamic scale stops halving below this (the gradient stays non-finite)."""


def finfo(name: str):
    """numpy's (or ml_dtypes') ``finfo`` of the dtype ``name``."""
    dtype = DTYPES[name]
    return ml_dtypes.finfo(dtype) if dtype == DTYPES["bfloat16"] else np.finfo(dtype)


def eps(name: str) -> float:
    """The machine epsilon of ``name`` (the spacing of its numbers just above 1)."""
    return float(finfo(name).eps)


def tiny(name: str) -> float:
    """The least positive normal number of ``name``: below it a value is subnormal."""
    return float(finfo(name).tiny)


def holds(wide: str, narrow: str) -> bool:
    """Whether every ``narrow`` number is a ``wide`` number (as many significand bits and at
    least its exponent range): accumulating ``narrow`` values in ``wide`` loses nothing."""
    a, b = finfo(wide), finfo(narrow)
    return a.nmant >= b.nmant and a.maxexp >= b.maxexp and a.minexp <= b.minexp


def snap(name: str) -> Callable[[float], float]:
    """A function rounding a float to the nearest number of the dtype ``name`` (as a float)."""
    if name == "float64":
        return float
    dtype = DTYPES[name]
    return lambda t: float(np.float64(t).astype(dtype))


def round_to(values, name: str) -> np.ndarray:
    """``values`` rounded to the dtype ``name`` (to nearest, ties to even), as float64."""
    return np.asarray(values, dtype=np.float64).astype(DTYPES[name]).astype(np.float64)


@dataclass(frozen=True)
class Precision:
    """The precision of a run of f: values in ``dtype``, reductions accumulating in
    ``accumulate`` (None: in ``dtype``), and ``loss_scale`` (None, a positive number, or
    ``"dynamic"``: the gradient of S·f divided by S)."""

    dtype: str = "float64"
    accumulate: str | None = None
    loss_scale: float | str | None = None

    @property
    def native(self) -> bool:
        """float64 with nothing else: f as it is written."""
        return self.dtype == "float64" and self.accumulate in (None, "float64")

    @property
    def reductions(self) -> str:
        return self.accumulate or self.dtype

    @property
    def label(self) -> str:
        """``float16``, or ``float16+float32`` with an accumulation dtype (no loss scale)."""
        wide = self.accumulate not in (None, self.dtype)
        return f"{self.dtype}+{self.accumulate}" if wide else self.dtype


NATIVE = Precision()
"""float64, reductions in float64, no loss scale: f as written."""


def check(dtype: str, accumulate: str | None, loss_scale: object) -> tuple[str, str] | None:
    """What is wrong with a combination of precision options, as (message, option), or None."""
    if dtype not in DTYPES:
        return f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}", "dtype"
    if accumulate is not None:
        if accumulate not in DTYPES:
            return f"unknown dtype {accumulate!r}; valid: {', '.join(DTYPES)}", "accumulate"
        if not holds(accumulate, dtype):
            return (f"{accumulate!r} is lower than dtype {dtype!r}: accumulate in a type "
                    "that holds every value of the dtype", "accumulate")
    if isinstance(loss_scale, str):
        if loss_scale != DYNAMIC:
            return f"must be a number > 0 or {DYNAMIC!r}, got {loss_scale!r}", "loss_scale"
    elif loss_scale is not None and not (isinstance(loss_scale, int | float)
                                         and not isinstance(loss_scale, bool)
                                         and math.isfinite(loss_scale) and loss_scale > 0):
        return f"must be a number > 0 or {DYNAMIC!r}, got {loss_scale!r}", "loss_scale"
    return None


class Lowered:
    """A value of a lowered f: ``v``, an array of ``context``'s namespace in its dtype, with
    numpy's operators, which round the constants they meet to the dtype."""

    __slots__ = ("v", "context")
    __array_ufunc__ = None  # numpy defers to the reflected operators below

    def __init__(self, v: object, context: Context) -> None:
        self.v, self.context = v, context

    shape = property(lambda self: tuple(np.shape(self.v)))
    ndim = property(lambda self: len(np.shape(self.v)))
    size = property(lambda self: math.prod(np.shape(self.v)))
    dtype = property(lambda self: getattr(self.v, "dtype", None))

    def __len__(self) -> int:
        return len(self.v)

    def __repr__(self) -> str:
        return f"Lowered({self.v!r})"

    def __getitem__(self, index):
        return Lowered(self.v[index], self.context)

    def __neg__(self):
        return Lowered(-self.v, self.context)

    def __pos__(self):
        return self

    def __abs__(self):
        return Lowered(abs(self.v), self.context)

    def __pow__(self, other):
        return Lowered(self.v ** self.context.operand(other), self.context)

    def __rpow__(self, other):
        return Lowered(self.context.operand(other) ** self.v, self.context)

    def __matmul__(self, other):
        return self.context.matmul(self, other)

    def __rmatmul__(self, other):
        return self.context.matmul(other, self)


def _operator(name: str, reflected: bool) -> Callable:
    op = getattr(operator, name)

    if reflected:
        def method(self, other):
            return Lowered(op(self.context.operand(other), self.v), self.context)
    else:
        def method(self, other):
            return Lowered(op(self.v, self.context.operand(other)), self.context)
    return method


for _name in ("add", "sub", "mul", "truediv"):
    setattr(Lowered, f"__{_name}__", _operator(_name, False))
    setattr(Lowered, f"__r{_name}__", _operator(_name, True))


def _comparison(name: str) -> Callable:
    op = getattr(operator, name)

    def method(self, other):
        return op(self.v, self.context.operand(other))
    return method


for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(Lowered, f"__{_name}__", _comparison(_name))
Lowered.__hash__ = None


class Context:
    """The namespace a lowered f is handed: the contract over ``base`` at ``precision``."""

    def __init__(self, base: object, precision: Precision) -> None:
        self.base, self.precision = base, precision
        self.dtype = DTYPES[precision.dtype]
        self.wide = DTYPES[precision.reductions]
        for name in UNARY:
            setattr(self, name, self._unary(getattr(base, name)))

    # ---- values in and out -------------------------------------------------------------

    def operand(self, value: object) -> object:
        """``value`` as an operand of an operator: a lowered value's array, a Python float or
        a float array rounded to the dtype; integers, booleans and other arrays as they are."""
        if type(value) is Lowered:
            return value.v
        if type(value) is float:
            return float(np.float64(value).astype(self.dtype))
        if isinstance(value, np.ndarray | np.floating) and value.dtype.kind == "f":
            return np.asarray(value).astype(self.dtype, copy=False)
        return value

    def argument(self, value: object) -> object:
        """``value`` as an argument of a function: like :meth:`operand`, with a Python float
        made a 0-d value of the dtype (a namespace's function may widen a bare float)."""
        value = self.operand(value)
        if type(value) is float:
            return self.base.astype(np.asarray(value), self.dtype)
        return value

    def enter(self, x: object) -> Lowered:
        return Lowered(self.base.astype(x, self.dtype), self)

    def _unary(self, fn: Callable) -> Callable:
        return lambda x: Lowered(fn(self.argument(x)), self)

    def _cast(self, v: object, dtype: np.dtype) -> object:
        return self.base.astype(v, dtype)

    # ---- the contract ----------------------------------------------------------------

    def maximum(self, a, b):
        return Lowered(self.base.maximum(self.argument(a), self.argument(b)), self)

    def minimum(self, a, b):
        return Lowered(self.base.minimum(self.argument(a), self.argument(b)), self)

    def where(self, condition, a, b):
        condition = condition.v if type(condition) is Lowered else condition
        return Lowered(self.base.where(condition, self.argument(a), self.argument(b)), self)

    def reshape(self, x, shape):
        return Lowered(self.base.reshape(self.argument(x), shape), self)

    def astype(self, x, dtype):
        return Lowered(self.base.astype(self.argument(x), dtype), self)

    def sum(self, x, axis=None):
        return self._reduce("sum", x, axis)

    def mean(self, x, axis=None):
        return self._reduce("mean", x, axis)

    def prod(self, x, axis=None):
        return self._reduce("prod", x, axis)

    def dot(self, a, b):
        a, b = self.argument(a), self.argument(b)
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            return Lowered(a * b, self)
        return self.matmul(a, b)

    def matmul(self, a, b):
        a, b = self.argument(a), self.argument(b)
        if self.dtype == _FLOAT64:
            return Lowered(self.base.matmul(a, b), self)
        if self.wide != self.dtype:
            wide = self.base.matmul(self._cast(a, self.wide), self._cast(b, self.wide))
            return Lowered(self._cast(wide, self.dtype), self)
        left, right = np.ndim(a) == 1, np.ndim(b) == 1
        a = a[None, :] if left else a
        b = b[:, None] if right else b
        products = a[..., :, :, None] * b[..., None, :, :]  # (…, m, k, n)
        out = _fold(products, len(np.shape(products)) - 2, _ADD, self.base, run=None)
        if right:
            out = out[..., 0]
        if left:
            out = out[..., 0, :] if np.ndim(out) > 1 else out[0]
        return Lowered(out, self)

    def _reduce(self, op: str, x, axis):
        v = self.argument(x)
        if self.dtype == _FLOAT64:
            return Lowered(getattr(self.base, op)(v, axis=axis), self)
        if self.wide != self.dtype:
            wide = getattr(self.base, op)(self._cast(v, self.wide), axis=axis)
            return Lowered(self._cast(wide, self.dtype), self)
        if axis is None:
            v, axes = self.base.reshape(v, (math.prod(np.shape(v)),)), (0,)
        else:
            axes = tuple(sorted((a % np.ndim(v) for a in np.atleast_1d(axis)), reverse=True))
        count = math.prod(np.shape(v)[a] for a in axes)
        for a in axes:
            v = _fold(v, a, _MULTIPLY if op == "prod" else _ADD, self.base)
        return Lowered(v / float(count) if op == "mean" else v, self)


_FLOAT64 = DTYPES["float64"]
_ADD = "add"
_MULTIPLY = "multiply"


def _fold(v, axis: int, combine: str, base, run: int | None = RUN) -> object:
    """``v`` reduced over ``axis`` by ``combine``, left to right in runs of ``run`` terms (one
    run: None), the runs' results reduced the same way; every partial result in ``v``'s
    dtype."""
    shape = tuple(np.shape(v))
    n = shape[axis]
    if n == 0:
        raise ValueError("a reduction over an empty axis in a lowered precision")
    head = (slice(None),) * axis
    if run is None or n <= run:
        acc = v[(*head, 0)]
        for j in range(1, n):
            term = v[(*head, j)]
            acc = acc + term if combine == _ADD else acc * term
        return acc
    runs = n // run
    main = v[(*head, slice(0, runs * run))]
    blocks = base.reshape(main, shape[:axis] + (runs, run) + shape[axis + 1:])
    partial = _fold(_fold(blocks, axis + 1, combine, base, run), axis, combine, base, run)
    if runs * run == n:
        return partial
    rest = _fold(v[(*head, slice(runs * run, n))], axis, combine, base, run)
    return partial + rest if combine == _ADD else partial * rest


@cache
def context(base: object, precision: Precision) -> Context:
    """The lowered namespace over ``base`` (a module or a namespace object) at ``precision``."""
    return Context(base, precision)


def lower(fn: Callable, precision: Precision, scale: float = 1.0) -> Callable:
    """``fn(x, ops)`` at ``precision``, times ``scale`` (rounded to the dtype, as f's value is):
    ``fn`` itself for float64 with no scale."""
    if precision.native and scale == 1.0:
        return fn

    def lowered(x, ops):
        ctx = context(ops, precision)
        value = fn(ctx.enter(x), ctx)
        if scale != 1.0:
            value = value * scale if type(value) is Lowered else value * ctx.operand(scale)
        return value.v if type(value) is Lowered else value

    lowered.__name__ = getattr(fn, "__name__", "f")
    return lowered
