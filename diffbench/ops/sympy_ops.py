"""Symbolic namespace over object arrays of SymPy expressions.

Arrays are ``SymbolicArray``: object ndarrays whose comparisons give SymPy relationals
elementwise (a plain object array would call ``bool`` on each ``x0 > 0`` and raise), so
``where(x > 0, a, b)`` builds a ``Piecewise``.  The elementwise functions of the op list
(:data:`diffbench.ops.ARITY`) are SymPy's, generated through ``np.frompyfunc``; operators,
slicing, ``sum`` and ``@`` already work on object arrays.  ``log1p`` and ``expm1`` are SymPy's
codegen functions, which differentiate and print to numpy and mpmath as themselves.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy
from sympy.codegen.cfunctions import expm1 as _expm1
from sympy.codegen.cfunctions import log1p as _log1p

from diffbench.ops import ARITY


class SymbolicArray(np.ndarray):
    """An object array whose ``< <= > >=`` return object arrays of SymPy relationals."""

    def __lt__(self, other):
        return np.less(self, other, dtype=object)

    def __le__(self, other):
        return np.less_equal(self, other, dtype=object)

    def __gt__(self, other):
        return np.greater(self, other, dtype=object)

    def __ge__(self, other):
        return np.greater_equal(self, other, dtype=object)


def asarray(values) -> SymbolicArray:
    """An object ``SymbolicArray`` of the values (numbers are kept as they are)."""
    return np.asarray(values, dtype=object).view(SymbolicArray)


def symbols(n: int, prefix: str = "x") -> SymbolicArray:
    """The inputs ``x0 … x{n-1}`` as real symbols, in a ``SymbolicArray``."""
    return asarray(sympy.symbols(f"{prefix}0:{n}", real=True))


def as_expr(value) -> sympy.Expr:
    """A family's scalar result (a 0-d array, a number or an expression) as one expression."""
    return sympy.sympify(np.asarray(value, dtype=object).item())


def _piecewise(condition, a, b):
    return sympy.Piecewise((a, condition), (b, True))


_SPELLING = {
    "log1p": _log1p, "expm1": _expm1, "arctan": sympy.atan, "abs": sympy.Abs,
    "maximum": sympy.Max, "minimum": sympy.Min, "where": _piecewise,
}
"""The functions of the op list that SymPy names differently (or lacks: ``where``)."""

SCALAR_FUNCTIONS: dict[str, Callable[..., sympy.Expr]] = {
    name: _SPELLING.get(name) or getattr(sympy, name) for name in ARITY
}
"""The SymPy function of each elementwise op, applied to single expressions."""


def _elementwise(name: str) -> Callable[..., object]:
    ufunc = np.frompyfunc(SCALAR_FUNCTIONS[name], ARITY[name], 1)

    def apply(*args):
        return ufunc(*args)

    apply.__name__ = name
    apply.__doc__ = f"Elementwise {name} over expressions or object arrays of them."
    return apply


globals().update({name: _elementwise(name) for name in ARITY})

def astype(x, dtype):
    """``x`` itself: an expression has no float dtype to be cast to."""
    return x


# Reductions, products and reshapes work on object arrays as they are.
from numpy import dot, matmul, mean, prod, reshape, sum  # noqa: A004, E402, F401
