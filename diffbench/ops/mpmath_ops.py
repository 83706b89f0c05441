"""High-precision namespace over object arrays of ``mpmath.mpf``.

The elementwise functions of :data:`diffbench.ops.UNARY` are mpmath's, generated through
``np.frompyfunc`` (``np.sin`` on an ``mpf`` array raises); operators, slicing, ``sum`` and ``@``
already work on object arrays.  Precision is mpmath's working precision at call time: wrap
evaluations in ``mpmath.workdps(digits)``.
"""

from __future__ import annotations

import mpmath
import numpy as np

from diffbench.ops import UNARY

_SPELLING = {"arctan": "atan", "abs": "fabs"}
"""The functions of the op list that mpmath names differently."""


def _elementwise(name: str):
    spelled = _SPELLING.get(name, name)
    ufunc = np.frompyfunc(getattr(mpmath, spelled), 1, 1)

    def apply(x):
        return ufunc(x)

    apply.__name__ = name
    apply.__doc__ = f"Elementwise mpmath.{spelled} over mpf values or object arrays."
    return apply


_to_mpf = np.frompyfunc(mpmath.mpf, 1, 1)


def asarray(x) -> np.ndarray:
    """An object array of ``mpf`` at the current precision (floats are converted exactly)."""
    return np.asarray(_to_mpf(np.asarray(x, dtype=object)), dtype=object)


def tofloat(x) -> np.ndarray:
    """Round an ``mpf`` scalar or array to float64."""
    return np.asarray(np.frompyfunc(float, 1, 1)(np.asarray(x, dtype=object)), dtype=float)


globals().update({name: _elementwise(name) for name in UNARY})


def _mpf(x):
    return x if isinstance(x, np.ndarray) and x.dtype == object else asarray(x)


def where(condition, a, b):
    """numpy.where with both branches as mpf, so results never mix floats in."""
    result = np.where(condition, _mpf(a), _mpf(b))
    return result[()] if result.ndim == 0 else result


def maximum(a, b):
    """Elementwise max; at a tie the first argument is returned, as numpy does."""
    a, b = np.broadcast_arrays(_mpf(a), _mpf(b))
    return where(a >= b, a, b)


def minimum(a, b):
    """Elementwise min; at a tie the first argument is returned, as numpy does."""
    a, b = np.broadcast_arrays(_mpf(a), _mpf(b))
    return where(a <= b, a, b)


def astype(x, dtype):
    """``x`` itself: mpf values have no float dtype to be cast to."""
    return x


# Reductions, products and reshapes work on object arrays as they are.
from numpy import dot, matmul, mean, prod, reshape, sum  # noqa: A004, E402, F401
