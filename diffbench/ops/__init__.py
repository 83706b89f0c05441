"""Numeric namespaces that give a family's function its meaning, and the op list they share.

A family is written once as ``fn(x, ops)``; every namespace (numpy, :mod:`.mpmath_ops`,
:mod:`.sympy_ops`, :mod:`diffbench.ad`, the torch wrapper) provides the names in ``CONTRACT``
with numpy's semantics, so the same source runs in float64, at high precision, symbolically or
traced.

The op list is written here once, by kind.  The namespaces generate their elementwise functions
from ``UNARY``; the engine takes its set of elementwise ops from these lists and the tests check
its rule table against them; ``diffbench explain`` takes its functions from them.
"""

from __future__ import annotations

UNARY: tuple[str, ...] = (
    "sin", "cos", "tan", "exp", "log", "log1p", "expm1", "sqrt", "tanh", "arctan", "abs",
)
"""Elementwise functions of one argument."""

BINARY: tuple[str, ...] = ("maximum", "minimum")
"""Elementwise functions of two arguments, which broadcast (ties follow each namespace)."""

SELECTION: tuple[str, ...] = ("where",)
"""``where(condition, a, b)``: ``a`` where the condition holds, else ``b``, broadcasting."""

REDUCTIONS: tuple[str, ...] = ("sum", "prod", "mean")
"""Reductions ``f(x, axis=None)`` over ``axis`` (every axis by default)."""

PRODUCTS: tuple[str, ...] = ("dot", "matmul")
"""numpy's ``dot`` and ``matmul`` (``@``)."""

STRUCTURE: tuple[str, ...] = ("reshape",)
"""Functions that move entries without computing: ``reshape(x, shape)``."""

CONVERSION: tuple[str, ...] = ("astype",)
"""``astype(x, dtype)``: ``x``'s values in a float dtype (numpy's name); the namespaces of
exact numbers (mpmath, SymPy) have no float dtype and return ``x``."""

CONTRACT: tuple[str, ...] = (UNARY + BINARY + SELECTION + REDUCTIONS + PRODUCTS + STRUCTURE
                             + CONVERSION)
"""Functions every ops namespace provides (besides operators, indexing and broadcasting)."""

ARITY: dict[str, int] = {
    **dict.fromkeys(UNARY, 1), **dict.fromkeys(BINARY, 2), **dict.fromkeys(SELECTION, 3),
}
"""The number of arguments of each elementwise function."""

ARITHMETIC: tuple[str, ...] = ("negative", "add", "subtract", "multiply", "divide", "power")
"""The operators unary ``-`` and ``+ - * / **`` by numpy's names for them (elementwise,
broadcasting); a traced array records them under these names."""

OPERATORS: tuple[str, ...] = ARITHMETIC + ("matmul", "getitem")
"""Every differentiable operator of an array: arithmetic, ``@`` and indexing ``x[index]``.
Comparisons (for ``where``) are operators too, never differentiated."""


def missing_names(namespace: object) -> list[str]:
    """The contract's names that ``namespace`` does not provide."""
    return [name for name in CONTRACT if not callable(getattr(namespace, name, None))]
