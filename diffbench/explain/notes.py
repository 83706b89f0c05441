"""What ``explain`` says beside its tables: where the expression has a kink at the point (an
``abs`` at 0, a ``maximum`` or ``minimum`` whose arguments tie), whose one-sided derivatives
differ, so that any single gradient there is a convention; and where a local derivative is
infinite or undefined, so that every path through it is too."""

from __future__ import annotations

import ast
import math

import numpy as np

from .graph import Trace
from .parse import FUNCTIONS, Expression, evaluate, function_name, shown

SIDES = {"abs": "−1 and 1; the engine takes 0 (SymPy's sign(0) is 0 too)",
         "maximum": "those of its two arguments; the engine takes the second's",
         "minimum": "those of its two arguments; the engine takes the second's"}
"""The one-sided derivatives at each kind of kink, and the engine's convention there."""


def _values(expression: Expression, point: dict[str, float]) -> dict[int, float]:
    """Every subexpression's float64 value at ``point``, by the id of its node."""
    values: dict[int, float] = {}
    with np.errstate(all="ignore"):
        evaluate(expression, point, {name: getattr(np, name) for name in FUNCTIONS}, float,
                 lambda node, value: values.__setitem__(id(node), float(value)))
    return values


def kinks(expression: Expression, point: dict[str, float]) -> list[str]:
    """One note per call that is not differentiable at ``point``."""
    values, found = _values(expression, point), []
    for node in ast.walk(expression.tree):
        if not isinstance(node, ast.Call):
            continue
        name = function_name(node.func.id)
        args = [values[id(arg)] for arg in node.args]
        tie = (name == "abs" and args[0] == 0.0) or (
            name in ("maximum", "minimum") and args[0] == args[1])
        if tie:
            where = " = ".join(dict.fromkeys(shown(ast.unparse(arg)) for arg in node.args))
            found.append(f"kink: {shown(ast.unparse(node))} is not differentiable here "
                         f"({where} = {args[0]:g}); its one-sided derivatives are "
                         f"{SIDES[name]}")
    return found


def infinite_derivatives(trace: Trace) -> list[str]:
    """One note per edge of the graph whose local derivative is not finite."""
    found = []
    for node in trace.nodes:
        for operand, local in zip(node.operands, node.local, strict=True):
            if not math.isfinite(local):
                found.append(f"infinite derivative: ∂({shown(node.label)})/∂("
                             f"{shown(trace.nodes[operand].label)}) = {local} here, and so is "
                             "every path through it")
    return found
