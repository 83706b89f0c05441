"""An expression traced by the native engine, read back from its tape: the graph, each
node's forward value and local derivatives, and the backward sweep step by step.

Invariants: nodes are the tape's records in order (a topological order: every operand comes
before its result); ``local[k]`` is ∂node/∂operands[k], the record's own vector-Jacobian
product applied to a unit cotangent; a repeated operand (``x * x``) is two edges.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from itertools import islice

import numpy as np

from .. import ad
from .parse import FUNCTIONS, ExplainError, Expression, brief, evaluate, shown

ONE = np.float64(1.0)


@dataclass(frozen=True)
class Node:
    """One value: an input (``op == "input"``, labelled by its name) or a recorded op."""

    index: int
    op: str
    label: str
    value: float
    operands: tuple[int, ...] = ()
    local: tuple[float, ...] = ()


@dataclass(frozen=True)
class Step:
    """One vector-Jacobian product of the backward sweep: ``node``'s cotangent carried to
    ``operand``, ``contribution = vjp(cotangent) = cotangent · local``."""

    node: int
    cotangent: float
    operand: int
    local: float
    contribution: float


@dataclass(frozen=True)
class Trace:
    """The traced expression: ``inputs`` maps each variable to its node; ``cotangents`` are
    the totals the sweep reached, ``gradient`` what the engine's own backward set."""

    nodes: tuple[Node, ...]
    inputs: dict[str, int]
    output: int
    steps: tuple[Step, ...]
    cotangents: dict[int, float]
    gradient: dict[str, float]


def trace(expression: Expression, point: dict[str, float]) -> Trace:
    """Evaluate ``expression`` at ``point`` over traced values, replay the backward sweep one
    VJP at a time, then run the engine's backward for its gradient."""
    tape = ad.Tape()
    leaves = {name: tape.leaf(np.float64(point[name])) for name in expression.variables}
    labels = {leaf.index: name for name, leaf in leaves.items()}
    values = {leaf.index: float(leaf.value) for leaf in leaves.values()}

    def visit(node: ast.expr, result: object) -> None:
        if type(result) is ad.Box and result.index not in labels:
            labels[result.index] = ast.unparse(node)
            values[result.index] = float(result.value)

    functions = {name: getattr(ad, name) for name in FUNCTIONS}
    with np.errstate(all="ignore"):
        out = evaluate(expression, leaves, functions, float, visit)
        if type(out) is not ad.Box:
            raise ExplainError(f"{shown(expression.text)} does not depend on its variables")
        records = tuple(islice(tape, out.index + 1))
        nodes = tuple(_node(i, record, labels[i], values[i]) for i, record in enumerate(records))
        for node in nodes:
            if not math.isfinite(node.value):
                raise ExplainError(f"{brief(node.label)} = {node.value} at this point: the "
                                   "expression is not finite there")
        steps, cotangents = _sweep(records)
        tape.backward(out)
    gradient = {name: float(leaf.grad) for name, leaf in leaves.items()}
    return Trace(nodes, {name: leaf.index for name, leaf in leaves.items()}, out.index,
                 steps, cotangents, gradient)


def _node(index: int, record: ad.Record, label: str, value: float) -> Node:
    if not record.parents:
        return Node(index, record.op, label, value)
    return Node(index, record.op, label, value, record.parents,
                tuple(float(vjp(ONE)) for vjp in record.vjps))


def _sweep(records: tuple[ad.Record, ...]) -> tuple[tuple[Step, ...], dict[int, float]]:
    """The engine's sweep, one step per VJP: from the output's (the last record's) cotangent
    1, records in reverse order, each cotangent complete before its record runs."""
    output = len(records) - 1
    cotangents = {output: 1.0}
    steps = []
    for i in range(output, -1, -1):
        record = records[i]
        if i not in cotangents or not record.parents:
            continue
        g = cotangents[i]
        for operand, vjp in zip(record.parents, record.vjps, strict=True):
            contribution = float(vjp(np.float64(g)))
            steps.append(Step(i, g, operand, float(vjp(ONE)), contribution))
            cotangents[operand] = cotangents.get(operand, 0.0) + contribution
    return tuple(steps), cotangents
