"""``diffbench explain``: one scalar expression traced by the native engine and taken apart.

The graph with each node's value, the backward sweep one VJP at a time, and for each input
every path to the output with the product of its local derivatives; the paths' sum stands
beside the engine's gradient and SymPy's derivative at the same point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .graph import Node, Step, Trace, trace
from .notes import infinite_derivatives, kinks
from .parse import ExplainError, parse_expression, parse_point, shown, too_deep
from .paths import Path, count_paths, list_paths
from .symbolic import Derivative, derivatives

DEFAULT_MAX_PATHS = 64


@dataclass(frozen=True)
class InputPaths:
    """One input's paths (at most ``max_paths`` of ``total``) and three values of ∂f/∂input:
    the sum over the listed paths, the engine's gradient and SymPy's derivative."""

    name: str
    paths: tuple[Path, ...]
    total: int
    path_sum: float
    engine: float
    symbolic: Derivative

    @property
    def capped(self) -> bool:
        return len(self.paths) < self.total


@dataclass(frozen=True)
class Explanation:
    """The expression as parsed, the point, the traced graph and sweep, one
    :class:`InputPaths` per variable in order of appearance, and ``notes``: the kinks and the
    infinite derivatives at the point."""

    text: str
    point: dict[str, float]
    trace: Trace
    inputs: tuple[InputPaths, ...]
    max_paths: int
    notes: tuple[str, ...] = ()

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.trace.nodes

    @property
    def value(self) -> float:
        return self.trace.nodes[self.trace.output].value


def explain(text: str, point: dict[str, float],
            max_paths: int = DEFAULT_MAX_PATHS) -> Explanation:
    """Trace ``text`` at ``point`` and take it apart; :class:`ExplainError` on bad input (an
    unparsable expression, a variable without a value, a value for no variable, one nested
    deeper than Python's parser and SymPy recurse)."""
    try:
        return _explain(text, point, max_paths)
    except (RecursionError, MemoryError):
        raise too_deep(text) from None


def _explain(text: str, point: dict[str, float], max_paths: int) -> Explanation:
    expression = parse_expression(text)
    missing = [name for name in expression.variables if name not in point]
    if missing:
        example = ",".join(f"{name}=…" for name in expression.variables)
        raise ExplainError(f"no value for {', '.join(missing)}: give every variable one with "
                           f"--at {example}")
    unused = [name for name in point if name not in expression.variables]
    if unused:
        raise ExplainError(f"--at gives {', '.join(unused)}, which {shown(text)} does not use")
    traced = trace(expression, point)
    symbolic = derivatives(expression, point)
    inputs = []
    for name, index in traced.inputs.items():
        paths = tuple(list_paths(traced.nodes, index, traced.output, max_paths))
        inputs.append(InputPaths(
            name, paths, count_paths(traced.nodes, index, traced.output),
            math.fsum(path.product for path in paths), traced.gradient[name], symbolic[name]))
    notes = (*kinks(expression, point), *infinite_derivatives(traced))
    return Explanation(expression.text, dict(point), traced, tuple(inputs), max_paths, notes)


__all__ = ["DEFAULT_MAX_PATHS", "Explanation", "ExplainError", "InputPaths", "Node", "Path",
           "Step", "explain", "parse_point"]
