"""The same expression in SymPy, differentiated symbolically: an independent check of the
engine's gradient and of the sum over paths."""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy.codegen.cfunctions import expm1, log1p

from .parse import Expression, evaluate

SYMPY_FUNCTIONS = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp, "log": sympy.log,
    "log1p": log1p, "expm1": expm1, "sqrt": sympy.sqrt, "tanh": sympy.tanh,
    "arctan": sympy.atan, "abs": sympy.Abs, "maximum": sympy.Max, "minimum": sympy.Min,
}


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
