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
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import sympy
from rich.console import Console

from .. import ad
from ..backends.sympy_backend import build, differentiate
from ..families import Problem
from ..measure.growth import fit_growth
from ..measure.size import cse_size, dag_size, ops_count, tree_size
from ..report.tables import swell_fit_table, swell_table
from ..results import read_rows, write_csv
from .base import Case, Study

REPRESENTATIONS = ("tree", "dag", "cse", "tape", "count_ops")
COLUMNS = (
    "study", "family", "size", "n_inputs", "representation", "status", "message",
    "nodes_f", "nodes_df", "ratio", "diff_s", "measure_s",
)
FIT_COLUMNS = (
    "family", "representation", "points", "size_min", "size_max", "factor_per_step",
    "exponent", "rms_exponential", "rms_power", "growth",
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


@dataclass(frozen=True)
class Derivation:
    """f as a SymPy expression, its gradient by ``sympy.diff``, and the seconds that took."""

    f: sympy.Expr
    gradient: tuple[sympy.Expr, ...]
    diff_s: float


def derive(problem: Problem) -> Derivation:
    xs, f = build(problem)
    start = time.perf_counter()
    gradient = differentiate(f, xs)
    return Derivation(f, gradient, time.perf_counter() - start)


def _sizes(measure: Callable[[list], int], derivation: Derivation, extra_s: float = 0.0):
    """``(nodes_f, nodes_df, diff_s, measure_s)`` of one expression-size measure."""
    start = time.perf_counter()
    sizes = measure([derivation.f]), measure(list(derivation.gradient))
    return (*sizes, derivation.diff_s + extra_s, time.perf_counter() - start)


def _cse_sizes(derivation: Derivation):
    start = time.perf_counter()
    reduced = sympy.cse(list(derivation.gradient))
    cse_s = time.perf_counter() - start
    start = time.perf_counter()
    sizes = cse_size(*sympy.cse([derivation.f])), cse_size(*reduced)
    return (*sizes, derivation.diff_s + cse_s, time.perf_counter() - start)


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
    fit_name = "swell_fit.csv"
    files = {csv_name: COLUMNS}

    series_columns = ("representation",)

    def cases(self) -> list[Case]:
        """Sizes ascending within each family, every representation of a size together."""
        return [replace(case, key=f"{case.key}:{representation}",
                        label=f"{case.label} · {representation}",
                        identity={**case.identity, "representation": representation},
                        isolate=True)
                for case in self.by_size(self.family_cases())
                for representation in REPRESENTATIONS]

    def run(self, case: Case) -> list[dict[str, Any]]:
        family, size = case.identity["family"], case.identity["size"]
        representation = case.identity["representation"]
        row: dict[str, Any] = {"study": self.kind, **case.identity, "status": "ok",
                               "message": ""}
        try:
            problem = self.workspace.problem(family, size)
            row["n_inputs"] = problem.n
            if representation == "tape":
                start = time.perf_counter()
                nodes_f, nodes_df = tape_sizes(problem)
                diff_s, measure_s = time.perf_counter() - start, None
            else:
                derivation = self.workspace.memo("derivation", family, size,
                                                 lambda: derive(problem))
                nodes_f, nodes_df, diff_s, measure_s = MEASURES[representation](derivation)
        except Exception as exc:  # one failing case is a row, never a crash of the run
            row.update(status="error", message=f"{type(exc).__name__}: {exc}")
            return [row]
        row.update(nodes_f=nodes_f, nodes_df=nodes_df,
                   ratio=nodes_df / nodes_f if nodes_f else None, diff_s=diff_s,
                   measure_s=measure_s)
        return [row]

    def finish(self, console: Console) -> None:
        path = self.run_dir / self.csv_name
        if not path.exists():
            return
        rows = read_rows(path)
        fit_path = self.run_dir / self.fit_name
        write_csv(fit_path, FIT_COLUMNS, growth_fits(rows))
        console.print(swell_table(rows, title=f"swell study · {path}"))
        console.print(swell_fit_table(read_rows(fit_path),
                                      title=f"growth of the gradient's size · {fit_path}"))


def growth_fits(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One fit of ``nodes_df`` against ``size`` per family and representation (ok rows)."""
    series: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        if row["status"] == "ok" and row["size"] and float(row["nodes_df"] or 0) > 0:
            series[row["family"], row["representation"]].append(
                (int(row["size"]), float(row["nodes_df"])))
    fits = []
    for (family, representation), points in series.items():
        sizes, values = zip(*sorted(points), strict=True)
        growth = fit_growth(sizes, values)
        if growth is None:
            continue
        fits.append({"family": family, "representation": representation,
                     "points": growth.points, "size_min": int(growth.size_min),
                     "size_max": max(sizes),
                     "factor_per_step": growth.factor_per_step, "exponent": growth.exponent,
                     "rms_exponential": growth.rms_exponential, "rms_power": growth.rms_power,
                     "growth": growth.model})
    return fits
