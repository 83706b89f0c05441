"""Every path from an input to the output of a traced graph, and the product of the local
derivatives along each: their sum is the derivative (the chain rule, path by path).

Paths can be exponentially many (``y = x*x`` squared k times has 2^k), so they are listed up to
a limit, walking only nodes that depend on the input (every walk then ends at the input, so
listing ``limit`` paths costs ``limit`` times the depth), and counted exactly apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from .graph import Node


@dataclass(frozen=True)
class Path:
    """Node indices from the input to the output; for each edge, the operand position it
    enters its result by (``x * x`` has two edges from ``x``) and its local derivative."""

    nodes: tuple[int, ...]
    slots: tuple[int, ...]
    factors: tuple[float, ...]

    @property
    def product(self) -> float:
        return math.prod(self.factors)


def dependents(nodes: Sequence[Node], source: int) -> set[int]:
    """The nodes whose value depends on node ``source``, itself included."""
    reached = {source}
    for node in nodes[source + 1:]:
        if any(operand in reached for operand in node.operands):
            reached.add(node.index)
    return reached


def count_paths(nodes: Sequence[Node], source: int, target: int) -> int:
    """The number of paths from ``source`` to ``target`` (a repeated operand counts twice)."""
    counts = {source: 1}
    for node in nodes[source + 1: target + 1]:
        counts[node.index] = sum(counts.get(operand, 0) for operand in node.operands)
    return counts.get(target, 0)


def _walk(nodes: Sequence[Node], source: int, target: int) -> Iterator[Path]:
    """Paths in depth-first order from the output, first operands first."""
    reached = dependents(nodes, source)
    stack = [((target,), (), ())]
    while stack:
        trail, slots, factors = stack.pop()
        head = nodes[trail[-1]]
        if head.index == source:
            yield Path(trail[::-1], slots[::-1], factors[::-1])
            continue
        edges = [(slot, operand, local)
                 for slot, (operand, local) in enumerate(zip(head.operands, head.local,
                                                             strict=True))
                 if operand in reached]
        for slot, operand, local in reversed(edges):
            stack.append(((*trail, operand), (*slots, slot), (*factors, local)))


def list_paths(nodes: Sequence[Node], source: int, target: int, limit: int) -> list[Path]:
    """At most ``limit`` paths from ``source`` to ``target``."""
    return list(islice(_walk(nodes, source, target), limit))
