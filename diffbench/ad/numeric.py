"""The two number types the engine runs on, as namespaces that the tape and the rules call.

``FLOAT64`` wraps numpy (arrays of any float dtype: float64, float32, float16, bfloat16) and
``MPMATH`` wraps :mod:`diffbench.ops.mpmath_ops` (object arrays of ``mpf``).
Each provides the ops contract, the operators as functions (so the tape can run any op by
name), and the few names the engine and rules need besides: ``square``, ``sign``, ``zeros``
and ``one``.  FLOAT64's ``sum`` is ``np.add.reduce``, which ``np.sum`` calls after
checking its arguments.
"""

from __future__ import annotations

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


def _namespace(name: str, module: ModuleType, **extra: object) -> SimpleNamespace:
    contract = {op: getattr(module, op) for op in CONTRACT}
    return SimpleNamespace(name=name, **{**contract, **_OPERATORS, **extra})


def _mpf_zeros(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, mpmath.mpf(0), dtype=object)


def _astype(x: object, dtype: object) -> np.ndarray:
    return np.astype(x if hasattr(x, "dtype") else np.asarray(x), dtype, copy=False)


FLOAT64 = _namespace(
    "float64", np, sum=np.add.reduce, square=np.square, sign=np.sign, zeros=np.zeros,
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
