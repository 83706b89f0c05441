"""A scalar expression in the ops contract's functions, read with Python's ``ast`` (nothing is
executed): one tree, evaluated over any number type by :func:`evaluate`.

The tree keeps the expression as written: ``(x*x)*(x*x)`` is three products, ``a - b`` a
subtraction, ``a / b`` a division.  ``^`` is read as ``**`` (with its precedence); ``pi`` is
the constant; every other name is a variable.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..ops import ARITY, BINARY, UNARY

FUNCTIONS: tuple[str, ...] = UNARY + BINARY
"""The contract's scalar functions an expression may call (the op list's elementwise ones)."""
ALIASES = {"atan": "arctan", "Abs": "abs", "max": "maximum", "Max": "maximum",
           "min": "minimum", "Min": "minimum"}
CONSTANTS = {"pi": math.pi}
OPERATORS: dict[type[ast.operator], Callable[[object, object], object]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow,
}
ARITHMETIC_ERRORS = {OverflowError: "the result is too large for float64",
                     ZeroDivisionError: "division by zero"}


class ExplainError(ValueError):
    """Input that cannot be explained; the message names what is wrong."""


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, its tree, and its variables in order of appearance."""

    text: str
    tree: ast.expr
    variables: tuple[str, ...]


def parse_expression(text: str) -> Expression:
    """Parse ``text``; raise :class:`ExplainError` on anything outside the supported syntax."""
    if not text.strip():
        raise ExplainError("the expression is empty")
    source = text.strip().replace("^", "**")
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise ExplainError(f"cannot parse {text!r}: {exc.msg}{where}") from None
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    names = []
    for node in ast.walk(tree):
        _check(node)
        if isinstance(node, ast.Name) and id(node) not in called and node.id not in CONSTANTS:
            if _function(node.id) is not None:
                raise ExplainError(f"{node.id} is a function: call it, as in {node.id}(x)")
            names.append(node)
    names.sort(key=lambda node: (node.lineno, node.col_offset))
    variables = tuple(dict.fromkeys(node.id for node in names))
    if not variables:
        raise ExplainError(f"{text!r} has no variables: there is nothing to differentiate")
    return Expression(source, tree, variables)


def _function(name: str) -> str | None:
    name = ALIASES.get(name, name)
    return name if name in FUNCTIONS else None


def _check(node: ast.AST) -> None:
    """Reject every node outside numbers, names, + - * / **, unary ± and function calls."""
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise ExplainError(f"{ast.unparse(node)} is not a real number")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in OPERATORS:
            raise ExplainError(f"unsupported operator in {ast.unparse(node)}: use + - * / **")
    elif isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        function = _function(name)
        if function is None:
            known = ", ".join((*FUNCTIONS, *ALIASES))
            raise ExplainError(f"unknown function {name!r} (known: {known})")
        if node.keywords or len(node.args) != ARITY[function]:
            raise ExplainError(f"{name} takes {ARITY[function]} argument(s): "
                               f"{ast.unparse(node)}")
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.UAdd, ast.USub)):
            raise ExplainError(f"unsupported operator in {ast.unparse(node)}: use + or -")
    elif not isinstance(node, (ast.Name, ast.operator, ast.unaryop, ast.expr_context)):
        raise ExplainError(f"unsupported syntax: {ast.unparse(node)}")


def parse_point(text: str | None) -> dict[str, float]:
    """``"a=2,b=3"`` as ``{"a": 2.0, "b": 3.0}``; ``None`` or blank gives no values."""
    point: dict[str, float] = {}
    if text is None or not text.strip():
        return point
    for item in text.split(","):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name.isidentifier():
            raise ExplainError(f"--at expects name=value pairs separated by commas, e.g. "
                               f"a=2,b=3; got {item.strip()!r}")
        if name in point:
            raise ExplainError(f"--at gives {name} twice")
        try:
            number = float(value)
        except ValueError:
            raise ExplainError(f"--at {name}={value}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise ExplainError(f"--at {name}={value}: the value must be finite")
        point[name] = number
    return point


def evaluate(expression: Expression, names: Mapping[str, object],
             functions: Mapping[str, Callable[..., object]],
             number: Callable[[int | float], object],
             visit: Callable[[ast.expr, object], None] = lambda node, value: None) -> object:
    """The expression's value with variables bound by ``names``, the contract's functions by
    ``functions`` and literals made by ``number``; ``visit(node, value)`` sees every
    subexpression after its operands (the order in which a tape records them)."""

    def value(node: ast.expr) -> object:
        if isinstance(node, ast.Constant):
            result = number(node.value)
        elif isinstance(node, ast.Name):
            result = number(CONSTANTS[node.id]) if node.id in CONSTANTS else names[node.id]
        elif isinstance(node, ast.UnaryOp):
            operand = value(node.operand)
            result = -operand if isinstance(node.op, ast.USub) else operand
        elif isinstance(node, ast.BinOp):
            left, right = value(node.left), value(node.right)
            try:
                result = OPERATORS[type(node.op)](left, right)
            except ArithmeticError as exc:
                reason = ARITHMETIC_ERRORS.get(type(exc), str(exc))
                raise ExplainError(f"{ast.unparse(node)}: {reason}") from None
        else:
            args = [value(arg) for arg in node.args]
            result = functions[_function(node.func.id)](*args)
        visit(node, result)
        return result

    return value(expression.tree)
