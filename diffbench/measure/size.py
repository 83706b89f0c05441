"""Sizes of SymPy expressions as a tree, as a DAG, after ``cse``, and by ``count_ops``.

A node's weight is what it costs as binary operations: an atom (symbol, number) is 1; an
n-ary ``Add`` or ``Mul`` of k arguments is k − 1 (the binary operations it stands for, as a
tape would record them); any other node (a function, a power, a Piecewise) is 1.  Sizes sum
these weights over the expression as SymPy stores it.  Every traversal is iterative and
memoised on structurally equal subexpressions, so its cost is the DAG's size even when the
tree is exponentially larger (no ``str`` and no ``preorder_traversal``).  SymPy itself is
imported only by ``ops_count``: the others read the expressions they are given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sympy


def weight(node: sympy.Basic) -> int:
    """Binary operations a node stands for; an atom counts 1."""
    if not node.args:
        return 1
    if node.is_Add or node.is_Mul:
        return max(len(node.args) - 1, 1)
    return 1


def tree_size(exprs: Iterable[sympy.Basic]) -> int:
    """Nodes counted with repetition, summed over ``exprs`` (each a tree of its own)."""
    sizes: dict[sympy.Basic, int] = {}
    total = 0
    for root in exprs:
        stack = [root]
        while stack:
            node = stack[-1]
            if node in sizes:
                stack.pop()
                continue
            pending = [arg for arg in node.args if arg not in sizes]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            sizes[node] = weight(node) + sum(sizes[arg] for arg in node.args)
        total += sizes[root]
    return total


def distinct_nodes(exprs: Iterable[sympy.Basic]) -> set[sympy.Basic]:
    """Every structurally distinct subexpression of ``exprs``, shared across them."""
    seen: set[sympy.Basic] = set()
    stack = list(exprs)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(arg for arg in node.args if arg not in seen)
    return seen


def dag_size(exprs: Iterable[sympy.Basic]) -> int:
    """Distinct subexpressions, each counted once with its weight, across all of ``exprs``."""
    return sum(weight(node) for node in distinct_nodes(exprs))


def cse_size(replacements: Sequence[tuple[sympy.Symbol, sympy.Basic]],
             reduced: Sequence[sympy.Basic]) -> int:
    """Size of ``sympy.cse``'s output: the tree sizes of every replacement's right-hand side
    plus those of the reduced expressions, each introduced symbol a leaf where it is used."""
    return tree_size(rhs for _, rhs in replacements) + tree_size(reduced)


def ops_count(exprs: Iterable[sympy.Basic]) -> int:
    """``sympy.count_ops`` summed over ``exprs`` (it counts with repetition, as a tree)."""
    import sympy

    return sum(int(sympy.count_ops(expr)) for expr in exprs)
