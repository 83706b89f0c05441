"""SymPy's side of the symbolic backend: f built as an expression, its gradient by
``sympy.diff`` (or SymEngine), optional cse, and the compiled gradient.

Every phase is timed apart (``Derivation.phases``).  Imported only where a case derives: it
loads SymPy, which the command line does not need to list the backends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import mpmath
import numpy as np
import sympy

from ..families import Problem
from ..measure.size import cse_size, dag_size, distinct_nodes, tree_size
from ..ops import CONTRACT, sympy_ops
from ..ops.precision import DTYPES
from .base import Prepared, UnsupportedCase

KINK_EXPR_MAX_NODES = 40
"""A derivative at a kink is quoted in the row's message when its tree is at most this big."""

PLAIN_OPS = SimpleNamespace(**{
    **{name: getattr(sympy_ops, name) for name in CONTRACT},
    "log1p": lambda t: sympy_ops.log(1 + t),
    "expm1": lambda t: sympy_ops.exp(t) - 1,
})
"""The sympy namespace with log1p and expm1 spelled out, for SymEngine, which takes SymPy's
codegen functions for opaque ones whose derivative is 0."""


def build(problem: Problem, ops: object = sympy_ops) -> tuple[tuple[sympy.Symbol, ...],
                                                             sympy.Expr]:
    """The inputs as real symbols and f as one expression over them."""
    xs = sympy_ops.symbols(problem.n)
    return tuple(xs), sympy_ops.as_expr(problem.fn(xs, ops))


def differentiate(f: sympy.Expr, xs: tuple[sympy.Symbol, ...]) -> tuple[sympy.Expr, ...]:
    """∂f/∂x_i for every input, by ``sympy.diff``."""
    return tuple(sympy.diff(f, x) for x in xs)


def differentiate_symengine(f: sympy.Expr,
                            xs: tuple[sympy.Symbol, ...]) -> tuple[sympy.Expr, ...]:
    """∂f/∂x_i in SymEngine, converted back to SymPy over the same real symbols ``xs``;
    raises ``UnsupportedCase`` when SymEngine cannot convert f or leaves a derivative
    unevaluated (``Max``, ``Abs``)."""
    import symengine

    own_symbols = {sympy.Symbol(x.name): x for x in xs}  # SymEngine drops the assumptions
    try:
        g = symengine.sympify(f)
        gradient = tuple(sympy.sympify(g.diff(symengine.sympify(x))).xreplace(own_symbols)
                         for x in xs)
    except (TypeError, ValueError, RuntimeError, NotImplementedError) as exc:
        raise UnsupportedCase(f"symengine cannot differentiate this f: {exc}") from exc
    if any(isinstance(node, sympy.Derivative) for node in distinct_nodes(gradient)):
        raise UnsupportedCase("symengine leaves a derivative unevaluated (Max, Min or Abs)")
    return gradient


@dataclass
class Derivation:
    """The gradient's expressions and the time of each symbolic phase, in seconds.

    ``cse`` is ``(replacements, reduced)`` when common subexpressions were eliminated.
    """

    inputs: tuple[sympy.Symbol, ...]
    f: sympy.Expr
    gradient: tuple[sympy.Expr, ...]
    cse: tuple[list, list] | None
    phases: dict[str, float] = field(default_factory=dict)
    kink_note: str = ""

    def size(self) -> int:
        """Nodes of the compiled gradient: its DAG, or its cse form when eliminated."""
        if self.cse is None:
            return dag_size(self.gradient)
        return cse_size(*self.cse)


def _kink_note(problem: Problem, xs, gradient) -> str:
    notes = []
    point = {x: sympy.Float(value) for x, value in zip(xs, problem.x0, strict=True)}
    for i in problem.kinks:
        value = gradient[i].xreplace(point)
        formula = (f" = {gradient[i]}" if tree_size([gradient[i]]) <= KINK_EXPR_MAX_NODES
                   else "")
        notes.append(f"sympy: ∂f/∂x[{i}]{formula} = {value} at x[{i}] = {problem.x0[i]:g}")
    return "; ".join(notes)


def compile_gradient(derivation: Derivation, modules: str):
    """The gradient as a function of the inputs, by ``lambdify`` to ``modules`` (with the
    cse form where common subexpressions were eliminated)."""
    if derivation.cse is None:
        return sympy.lambdify(derivation.inputs, list(derivation.gradient), modules=modules)
    replacements, reduced = derivation.cse
    return sympy.lambdify(derivation.inputs, list(derivation.gradient), modules=modules,
                          cse=lambda exprs: (replacements, reduced))


def derive(problem: Problem, cse: bool = False, engine: str = "sympy") -> Derivation:
    """The symbolic phases in order (build, diff, and cse when asked), each timed."""
    phases = {}
    start = time.perf_counter()
    xs, f = build(problem, PLAIN_OPS if engine == "symengine" else sympy_ops)
    phases["build_s"] = time.perf_counter() - start
    start = time.perf_counter()
    if engine == "symengine":
        gradient = differentiate_symengine(f, xs)
    else:
        gradient = differentiate(f, xs)
    phases["diff_s"] = time.perf_counter() - start
    eliminated = None
    if cse:
        start = time.perf_counter()
        eliminated = sympy.cse(list(gradient))
        phases["cse_s"] = time.perf_counter() - start
    return Derivation(xs, f, gradient, eliminated, phases, _kink_note(problem, xs, gradient))


class SympyGradient(Prepared):
    """The lambdified gradient: ``gradient(x)`` in numpy at ``dtype`` (float64 unless the
    problem comes lowered to another), ``gradient_mp(x)`` in mpmath at the caller's working
    precision (float64 only); f is lambdified the same way (with cse when the gradient is),
    for ω."""

    function_method = "lambdify"

    def __init__(self, problem: Problem, derivation: Derivation, dtype: str = "float64"):
        """Compiles the gradient to numpy, timed as the ``compile_s`` phase."""
        super().__init__(problem)
        self.derivation = derivation
        self.has_gradient_mp = dtype == "float64"
        self._dtype = DTYPES[dtype]
        start = time.perf_counter()
        self._numpy = compile_gradient(derivation, "numpy")
        derivation.phases["compile_s"] = time.perf_counter() - start
        self._mpmath = None

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return np.array(self._numpy(*np.asarray(x).astype(self._dtype)), dtype=float)

    def timed_gradient(self, x: np.ndarray):
        """The lambdified gradient on the inputs unpacked once, as f is timed."""
        gradient, args = self._numpy, tuple(np.asarray(x).astype(self._dtype))
        return lambda: gradient(*args)

    def timed_function(self, x: np.ndarray):
        derivation = self.derivation
        f = sympy.lambdify(derivation.inputs, derivation.f, modules="numpy",
                           cse=derivation.cse is not None)
        args = tuple(np.asarray(x).astype(self._dtype))
        return lambda: f(*args)

    def gradient_mp(self, x: np.ndarray) -> np.ndarray:
        if self._mpmath is None:
            self._mpmath = compile_gradient(self.derivation, "mpmath")
        values = self._mpmath(*(mpmath.mpf(v) for v in x))
        return np.array([mpmath.mpf(v) for v in values], dtype=object)

    def stats(self) -> dict[str, Any]:
        return {**self.derivation.phases, "expr_nodes": self.derivation.size()}

    def note(self) -> str:
        return self.derivation.kink_note
