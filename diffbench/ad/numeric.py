"""The two number types the engine runs on, as namespaces that the tape and the rules call.

``FLOAT64`` wraps numpy (arrays of any float dtype: float64, float32, float16, bfloat16) and
``MPMATH`` wraps :mod:`diffbench.ops.mpmath_ops` (object arrays of ``mpf``).
Each provides the ops contract, the operators as functions (so the tape can run any op by
name), and the few names the engine and rules need besides: ``square``, ``sign``, ``zeros``
and ``one``.  FLOAT64's ``sum`` is :func:`add_reduce`.
"""

from __future__ import annotations

import functools
import operator
from types import ModuleType, SimpleNamespace

import ml_dtypes
import mpmath
import numpy as np

from diffbench.ops import CONTRACT, mpmath_ops

_OPERATORS = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": operator.truediv,
    "power": operator.pow,
    "negative": operator.neg,
    "getitem": operator.getitem,
}


ROW_MAX = 128
"""The longest last axis that :func:`add_reduce` sums as a matrix-vector product: up to this
length numpy's own loop adds in eight running sums (its pairwise sum starts above it), so the
two orders have like error bounds."""
_FLOAT64 = np.dtype(np.float64)


@functools.cache
def _ones(n: int) -> np.ndarray:
    ones = np.ones(n)
    ones.flags.writeable = False
    return ones


def add_reduce(x: object, axis: object = None, keepdims: bool = False) -> object:
    """``np.add.reduce(x, axis, keepdims=keepdims)``, what ``np.sum`` calls after checking its
    arguments; but over the last axis alone of a C-contiguous float64 array of two or more
    dimensions, at most :data:`ROW_MAX` long, ``x @ ones`` (BLAS): numpy's reduction pays a
    loop call per row, 3-6x the product's time there.  The same terms, added in another order
    (they may differ in the last bits)."""
    if axis is not None and getattr(x, "dtype", None) == _FLOAT64:
        ndim = x.ndim
        if type(axis) is tuple and len(axis) == 1:
            axis = axis[0]
        if (ndim >= 2 and axis in (-1, ndim - 1) and 1 < x.shape[-1] <= ROW_MAX
                and x.flags.c_contiguous):
            total = np.matmul(x, _ones(x.shape[-1]))
            return total[..., None] if keepdims else total
    return np.add.reduce(x, axis, keepdims=keepdims)


def unbroadcast(c: object, shape: tuple[int, ...]) -> object:
    """Sum ``c`` over the axes that broadcasting added to or stretched in ``shape``.

    A ``c`` that merely broadcasts to ``shape`` (fewer or size-1 axes) is returned as is.
    """
    extra = np.ndim(c) - len(shape)
    if extra > 0:
        c = _sum(c, tuple(range(extra)), False)
    offset = len(shape) - np.ndim(c)
    stretched = tuple(k for k, n in enumerate(np.shape(c)) if n != 1 and shape[offset + k] == 1)
    if stretched:
        c = _sum(c, stretched, True)
    return c


_NARROW = frozenset(np.dtype(t) for t in (np.float16, ml_dtypes.bfloat16))


def _sum(c: object, axis: tuple[int, ...], keepdims: bool) -> object:
    """``np.sum`` (by :func:`add_reduce`); a 16-bit float accumulates in float32 and is rounded
    back once (numpy's own float16 sum does so, ml_dtypes' bfloat16 sum adds left to right in
    bfloat16)."""
    dtype = getattr(c, "dtype", None)
    if dtype in _NARROW:
        return np.sum(c, axis=axis, keepdims=keepdims, dtype=np.float32).astype(dtype)
    return add_reduce(c, axis, keepdims)


def _namespace(name: str, module: ModuleType, **extra: object) -> SimpleNamespace:
    contract = {op: getattr(module, op) for op in CONTRACT}
    return SimpleNamespace(name=name, **{**contract, **_OPERATORS, **extra})


def _mpf_zeros(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, mpmath.mpf(0), dtype=object)


def _astype(x: object, dtype: object) -> np.ndarray:
    return np.astype(x if hasattr(x, "dtype") else np.asarray(x), dtype, copy=False)


FLOAT64 = _namespace(
    "float64", np, sum=add_reduce, square=np.square, sign=np.sign, zeros=np.zeros,
    one=np.float64(1.0), astype=_astype,
)
MPMATH = _namespace(
    "mpmath", mpmath_ops, square=lambda x: x * x, sign=np.frompyfunc(mpmath.sign, 1, 1),
    zeros=_mpf_zeros, one=mpmath.mpf(1),
)


_OBJECT = np.dtype(object)
FLOATS = frozenset(np.dtype(t) for t in (np.float64, np.float32, np.float16, ml_dtypes.bfloat16))
"""The dtypes the FLOAT64 namespace runs in (an input of another dtype is made float64)."""


def namespace_of(*values: object) -> SimpleNamespace:
    """``MPMATH`` if any value is an ``mpf`` or an object array, else ``FLOAT64``."""
    for value in values:
        if isinstance(value, mpmath.mpf) or getattr(value, "dtype", None) == _OBJECT:
            return MPMATH
    return FLOAT64
