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
import sys
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
SHOWN_CHARACTERS = 60
"""Messages show at most about this much of an expression."""


class ExplainError(ValueError):
    """Input that cannot be explained; the message names what is wrong."""


def shown(text: str) -> str:
    """``text`` quoted for a message, its middle left out when it is long: a message names
    the expression, it does not repeat 25 KB of it."""
    if len(text) <= SHOWN_CHARACTERS:
        return repr(text)
    half = SHOWN_CHARACTERS // 2
    return f"{text[:half]!r} … {text[-half:]!r} ({len(text)} characters)"


def brief(text: str) -> str:
    """``text`` as it is when short, else as :func:`shown` gives it."""
    return text if len(text) <= SHOWN_CHARACTERS else shown(text)


def _source(node: ast.AST) -> str:
    return brief(ast.unparse(node))


def too_deep(text: str) -> ExplainError:
    """The error for an expression nested deeper than Python's parser and SymPy recurse."""
    return ExplainError(f"the expression {shown(text)} is nested too deeply to take apart "
                        "(Python's parser and SymPy recurse over it)")


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
        raise ExplainError(f"cannot parse {shown(text)}: {exc.msg}{where}") from None
    except (RecursionError, MemoryError):
        raise too_deep(text) from None
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    names = []
    for node in ast.walk(tree):
        _check(node, source)
        if isinstance(node, ast.Name) and id(node) not in called and node.id not in CONSTANTS:
            if function_name(node.id) is not None:
                raise ExplainError(f"{node.id} is a function: call it, as in {node.id}(x)")
            names.append(node)
    names.sort(key=lambda node: (node.lineno, node.col_offset))
    variables = tuple(dict.fromkeys(node.id for node in names))
    if not variables:
        raise ExplainError(f"{shown(text)} has no variables: there is nothing to differentiate")
    return Expression(source, tree, variables)


def _float(value: int | float) -> float:
    """A literal as float64: inf where it is beyond float64's range."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def function_name(name: str) -> str | None:
    """The contract's name of the function ``name`` calls (aliases resolved), if any."""
    name = ALIASES.get(name, name)
    return name if name in FUNCTIONS else None


def _check(node: ast.AST, source: str) -> None:
    """Reject every node outside numbers, names, + - * / **, unary ± and function calls (and
    a number beyond float64's range: ``source`` is the text it was read from)."""
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise ExplainError(f"{_source(node)} is not a real number")
        if not math.isfinite(_float(node.value)):
            written = ast.get_source_segment(source, node) or ast.unparse(node)
            raise ExplainError(f"the number {shown(written)} is too large for float64 (at "
                               f"most about {sys.float_info.max:.3g})")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in OPERATORS:
            raise ExplainError(f"unsupported operator in {_source(node)}: use + - * / **")
    elif isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else _source(node.func)
        function = function_name(name)
        if function is None:
            known = ", ".join((*FUNCTIONS, *ALIASES))
            raise ExplainError(f"unknown function {name!r} (known: {known})")
        if node.keywords or len(node.args) != ARITY[function]:
            raise ExplainError(f"{name} takes {ARITY[function]} argument(s): "
                               f"{_source(node)}")
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.UAdd, ast.USub)):
            raise ExplainError(f"unsupported operator in {_source(node)}: use + or -")
    elif not isinstance(node, (ast.Name, ast.operator, ast.unaryop, ast.expr_context)):
        raise ExplainError(f"unsupported syntax: {_source(node)}")


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
                raise ExplainError(f"{_source(node)}: {reason}") from None
        else:
            args = [value(arg) for arg in node.args]
            result = functions[function_name(node.func.id)](*args)
        visit(node, result)
        return result

    return value(expression.tree)
