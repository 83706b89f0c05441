"""Numeric namespaces that give a family's function its meaning.

A family is written once as ``fn(x, ops)``; every namespace here provides the names in
``CONTRACT`` with numpy's semantics, so the same source runs in float64, at high precision,
symbolically or traced.
"""

from __future__ import annotations

CONTRACT: tuple[str, ...] = (
    "sin", "cos", "tan", "exp", "log", "log1p", "expm1", "sqrt", "tanh", "arctan", "abs",
    "maximum", "minimum", "where", "sum", "prod", "mean", "dot", "matmul", "reshape",
)
"""Functions every ops namespace provides (besides operators, indexing and broadcasting)."""


def missing_names(namespace: object) -> list[str]:
    """The contract's names that ``namespace`` does not provide."""
    return [name for name in CONTRACT if not callable(getattr(namespace, name, None))]
