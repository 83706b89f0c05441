"""The same expression in SymPy, differentiated symbolically: an independent check of the
engine's gradient and of the sum over paths."""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..ops.sympy_ops import SCALAR_FUNCTIONS
from .parse import FUNCTIONS, Expression, evaluate

SYMPY_FUNCTIONS = {name: SCALAR_FUNCTIONS[name] for name in FUNCTIONS}
"""The SymPy function of each function an expression may call."""


@dataclass(frozen=True)
class Derivative:
    """∂f/∂variable as SymPy writes it, and its value at the point (``None`` where it is not
    a real number there)."""

    formula: str
    value: float | None


def derivatives(expression: Expression, point: dict[str, float]) -> dict[str, Derivative]:
    """``sympy.diff`` of the expression by each variable (real symbols), evaluated at
    ``point``."""
    symbols = {name: sympy.Symbol(name, real=True) for name in expression.variables}
    f = evaluate(expression, symbols, SYMPY_FUNCTIONS, sympy.sympify)
    at = {symbols[name]: sympy.Float(value) for name, value in point.items()}
    result = {}
    for name, symbol in symbols.items():
        formula = sympy.diff(f, symbol)
        value = formula.subs(at).evalf()
        result[name] = Derivative(str(formula),
                                  float(value) if value.is_real and value.is_finite else None)
    return result
