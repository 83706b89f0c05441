"""The swell study: how big f and its gradient are as a tree, a DAG, after cse, by count_ops,
and as a reverse-mode tape, family by family and size by size.

Each case's symbolic work runs in a forked child killed at ``timing.budget_s``; rows arrive
one representation at a time, so those finished before the budget keep their numbers and the
rest end as ``timeout``.  The order puts ``count_ops`` last: its cost follows the tree.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import sympy
from rich.console import Console

from .. import ad
from ..backends.sympy_backend import build, differentiate
from ..families import Problem
from ..measure.budget import run_in_child
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
    unused = [i for i, (record, readers) in enumerate(zip(tape.records, tape.consumers,
                                                          strict=True))
              if record[1] and readers == 0 and i != output.index]
    if unused:
        raise RuntimeError(f"f computes {len(unused)} values it does not use")
    sizes = [math.prod(record[3]) for record in tape.records]
    read = sum(sizes[parent] for record in tape.records for parent in record[1])
    return read, 2 * read


def _sizes(measure: Callable[[list], int], f, gradient) -> tuple[int, int, float]:
    start = time.perf_counter()
    sizes = measure([f]), measure(list(gradient))
    return (*sizes, time.perf_counter() - start)


def _swell_rows(problem: Problem, send: Callable[[dict[str, Any]], None]) -> None:
    """Send one partial row per representation, in ``REPRESENTATIONS`` order."""

    def row(representation, nodes_f, nodes_df, diff_s, measure_s=None, status="ok",
            message=""):
        send({"representation": representation, "status": status, "message": message,
              "nodes_f": nodes_f, "nodes_df": nodes_df,
              "ratio": nodes_df / nodes_f if nodes_f else None,
              "diff_s": diff_s, "measure_s": measure_s})

    xs, f = build(problem)
    start = time.perf_counter()
    gradient = differentiate(f, xs)
    diff_s = time.perf_counter() - start
    for representation, measure in (("tree", tree_size), ("dag", dag_size)):
        nodes_f, nodes_df, measure_s = _sizes(measure, f, gradient)
        row(representation, nodes_f, nodes_df, diff_s, measure_s)

    start = time.perf_counter()
    reduced_df = sympy.cse(list(gradient))
    cse_s = time.perf_counter() - start
    start = time.perf_counter()
    nodes_f, nodes_df = cse_size(*sympy.cse([f])), cse_size(*reduced_df)
    row("cse", nodes_f, nodes_df, diff_s + cse_s, time.perf_counter() - start)

    start = time.perf_counter()
    try:
        nodes_f, nodes_df = tape_sizes(problem)
    except Exception as exc:  # a failing engine is this row's status, not the case's
        row("tape", None, None, None, status="error", message=f"{type(exc).__name__}: {exc}")
    else:
        row("tape", nodes_f, nodes_df, time.perf_counter() - start)

    nodes_f, nodes_df, measure_s = _sizes(ops_count, f, gradient)
    row("count_ops", nodes_f, nodes_df, diff_s, measure_s)


class SwellStudy(Study):
    kind = "swell"
    needs_backends = False
    csv_name = "swell.csv"
    fit_name = "swell_fit.csv"
    files = {csv_name: COLUMNS}

    def cases(self) -> list[Case]:
        return self.family_cases()

    def run(self, case: Case) -> list[dict[str, Any]]:
        problem = self.workspace.problem(case.identity["family"], case.identity["size"])
        budget_s = self.workspace.config.timing.budget_s
        outcome = run_in_child(lambda send: _swell_rows(problem, send), budget_s)
        common = {"study": self.kind, "family": problem.family, "size": case.identity["size"],
                  "n_inputs": problem.n}
        rows = {item["representation"]: {**common, **item} for item in outcome.items}
        if outcome.timed_out:
            status, message = "timeout", f"over the budget of {budget_s:g} s"
        else:
            status, message = "error", outcome.error or ""
        for representation in REPRESENTATIONS:
            rows.setdefault(representation, {**common, "representation": representation,
                                             "status": status, "message": message})
        return [rows[representation] for representation in REPRESENTATIONS]

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
