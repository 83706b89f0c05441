"""The swell study: how big f and its gradient are as a tree, a DAG, after cse, by count_ops,
and as a reverse-mode tape, family by family and size by size.

One case per family × size × representation, each isolated (killed at ``timing.budget_s`` or
``run.memory_mb``), so a representation that explodes ends as ``timeout`` or ``out-of-memory``
while those that fit keep their numbers; once one does, its larger sizes are ``skipped``.  The
worker derives f's gradient once per family and size and measures every representation of it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import ad
from ..families import Problem
from ..measure.growth import FIT_COLUMNS, growth_fits
from ..measure.size import cse_size, dag_size, ops_count, tree_size
from .base import Case, Study

if TYPE_CHECKING:
    from ..backends.sympy_derivation import Derivation

REPRESENTATIONS = ("tree", "dag", "cse", "tape", "count_ops")
COLUMNS = (
    "study", "family", "family_variant", "size", "n_inputs", "representation", "status",
    "message", "nodes_f", "nodes_df", "ratio", "diff_s", "measure_s",
)


def tape_sizes(problem: Problem) -> tuple[int, int]:
    """The native engine on f at x0, counted in scalar elements like the expressions' nodes.

    f's size is the elements its recorded ops read (an op on n-vectors counts n, a reduction
    of n entries counts n); the gradient's adds what the backward sweep's vector-Jacobian
    products write, one cotangent element per element read.  Every recorded op but the output
    is checked to be read by another, so the sweep runs them all: the count is that of the
    program actually executed.
    """
    tape = ad.Tape()
    output = problem.fn(tape.leaf(problem.x0.copy()), ad)
    records = list(tape)
    unused = [i for i, (record, readers) in enumerate(zip(records, tape.consumers, strict=True))
              if record.parents and readers == 0 and i != output.index]
    if unused:
        raise RuntimeError(f"f computes {len(unused)} values it does not use")
    sizes = [math.prod(record.shape) for record in records]
    read = sum(sizes[parent] for record in records for parent in record.parents)
    return read, 2 * read


def _sizes(measure: Callable[[list], int], derivation: Derivation, extra_s: float = 0.0):
    """``(nodes_f, nodes_df, diff_s, measure_s)`` of one expression-size measure."""
    start = time.perf_counter()
    sizes = measure([derivation.f]), measure(list(derivation.gradient))
    return (*sizes, derivation.phases["diff_s"] + extra_s, time.perf_counter() - start)


def _cse_sizes(derivation: Derivation):
    import sympy

    start = time.perf_counter()
    reduced = sympy.cse(list(derivation.gradient))
    cse_s = time.perf_counter() - start
    start = time.perf_counter()
    sizes = cse_size(*sympy.cse([derivation.f])), cse_size(*reduced)
    return (*sizes, derivation.phases["diff_s"] + cse_s, time.perf_counter() - start)


MEASURES: dict[str, Callable[[Derivation], tuple]] = {
    "tree": lambda derivation: _sizes(tree_size, derivation),
    "dag": lambda derivation: _sizes(dag_size, derivation),
    "cse": _cse_sizes,
    "count_ops": lambda derivation: _sizes(ops_count, derivation),
}
"""Each symbolic representation: sizes of f and its gradient, derivation and measuring time."""


class SwellStudy(Study):
    kind = "swell"
    needs_backends = False
    csv_name = "swell.csv"
    files = {csv_name: COLUMNS}
    summaries = {"swell_fit.csv": (FIT_COLUMNS, growth_fits)}

    series_columns = ("representation",)

    def cases(self) -> list[Case]:
        """Sizes ascending within each family, every representation of a size together."""
        return [replace(case, key=f"{case.key}:{representation}",
                        label=f"{case.label} · {representation}",
                        identity={**case.identity, "representation": representation},
                        isolate=True)
                for case in self.by_size(self.family_cases())
                for representation in REPRESENTATIONS]

    def load(self, case: Case) -> None:
        if case.identity["representation"] != "tape":
            from ..backends import sympy_derivation  # noqa: F401

    def run(self, case: Case) -> list[dict[str, Any]]:
        size = case.identity["size"]
        representation = case.identity["representation"]
        row: dict[str, Any] = {"study": self.kind, **case.identity, "status": "ok",
                               "message": ""}
        try:
            problem = self.problem(case.identity)
            row["n_inputs"] = problem.n
            if representation == "tape":
                start = time.perf_counter()
                nodes_f, nodes_df = tape_sizes(problem)
                diff_s, measure_s = time.perf_counter() - start, None
            else:
                from ..backends.sympy_derivation import derive

                derivation = self.workspace.memo("derivation", problem.key, size,
                                                 lambda: derive(problem))
                nodes_f, nodes_df, diff_s, measure_s = MEASURES[representation](derivation)
        except Exception as exc:  # one failing case is a row, never a crash of the run
            row.update(status="error", message=f"{type(exc).__name__}: {exc}")
            return [row]
        row.update(nodes_f=nodes_f, nodes_df=nodes_df,
                   ratio=nodes_df / nodes_f if nodes_f else None, diff_s=diff_s,
                   measure_s=measure_s)
        return [row]
