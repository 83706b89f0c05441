"""``diffbench advise``: one function, every method, one answer with its evidence.

:mod:`.target` reads the target and writes the config of an ordinary run that measures it;
:mod:`.verdict` turns the run's rows into the advice.  :func:`summarize` assembles the advice
as one JSON-ready object (the schema the README documents), written to ``advice.json`` in the
run directory, from which ``diffbench.report.advice`` renders it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..families import BUILTIN
from ..schema import read_rows
from .target import (
    BUDGET_KEY,
    CONFIG_NAME,
    MEMORY_MB,
    MIN_SAMPLE_S,
    AdviceError,
    Plan,
    Target,
    parse_point,
    read_point,
    resolve,
    write_config,
)
from .verdict import (
    ACCURACY_MARGIN,
    Method,
    break_even,
    choose,
    scaling,
    textbook,
    verdict_text,
)

ADVICE_NAME = "advice.json"
SCHEMA_VERSION = 1


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _n_inputs(target: Target, methods: list[Method]) -> int:
    found = next((m.n_inputs for m in methods if m.n_inputs), None)
    if found is not None:
        return found
    if target.point is not None:
        return int(target.point.size)
    family = BUILTIN[target.base or target.family].with_options(**target.options)
    return family.make(target.size).n


def summarize(run_dir: Path, target: Target, calls: int | None, plan: Plan,
              wall_s: float) -> dict[str, Any]:
    """The advice from the rows of the run in ``run_dir``, as one JSON-ready object."""
    csv = run_dir / ("scaling.csv" if target.scaled else "gradient.csv")
    methods = [Method.from_row(row) for row in (read_rows(csv) if csv.exists() else [])]
    here = [m for m in methods if m.size == target.size]
    verdict = choose(here, calls)
    scaled = scaling(methods, calls, target.size_param) if target.scaled else None
    n_inputs = _n_inputs(target, here)
    book = textbook(n_inputs, verdict, here, scaled)
    baseline = verdict.baseline
    rows = []
    for m in here:
        pays = (break_even(m, baseline) if m.measured and baseline is not None
                and m is not baseline else None)
        rows.append({
            "backend": m.backend, "variant": m.variant, "kind": m.kind, "status": m.status,
            "message": m.message, "digits": m.digits, "digits_attainable": m.digits_attainable,
            "accurate": m in verdict.accurate, "time_s": m.time_s, "omega": m.omega,
            "omega_numpy": m.omega_numpy, "f_time_s": m.f_time_s,
            "one_off_s": m.setup_s, "break_even_calls": pays,
            "total_s": m.total_s(calls) if calls is not None and m.measured else None,
            "rss_peak_bytes": m.rss_peak_bytes, "samples": m.samples,
            "reference_method": m.reference_method,
            "reference_same_engine": m.reference_same_engine, "caveats": m.caveats(),
        })
    advice: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "target": target.text, "family": target.family, "size": target.size,
        "size_param": target.size_param, "n_inputs": n_inputs, "calls": calls,
        "budget_s": plan.budget_s, "case_budget_s": plan.case_s, "wall_s": wall_s,
        "min_sample_s": MIN_SAMPLE_S, "memory_mb": MEMORY_MB,
        "run_dir": str(run_dir),
        "verdict": {
            "backend": verdict.choice.backend if verdict.choice else None,
            "variant": verdict.choice.variant if verdict.choice else None,
            "text": verdict_text(verdict, here),
            "rule": ("least total time, one-off cost + calls × per gradient"
                     if calls is not None else "least time per gradient")
                    + f", among the methods within {ACCURACY_MARGIN:g} digit of the best",
            "best_digits": verdict.best_digits,
            "accurate": [m.label for m in verdict.accurate],
            "break_even_baseline": baseline.label if baseline else None,
        },
        "methods": rows,
        "scaling": None,
        "textbook": {"branch": book.branch, "expects": book.expects, "agrees": book.agrees,
                     "reasons": list(book.reasons)},
    }
    if scaled is not None:
        advice["scaling"] = {
            "axis": scaled.axis, "sizes": list(scaled.sizes),
            "winners": [{"size": size, "backend": label} for size, label in scaled.winners],
            "exponents": [{"backend": e.backend, "metric": e.metric, "exponent": e.value,
                           "ci_low": _number(e.ci[0]), "ci_high": _number(e.ci[1]),
                           "fit": e.fit, "points": e.points} for e in scaled.exponents],
            "ranking_changes": [{"from_size": c.low, "to_size": c.high, "before": c.before,
                                 "after": c.after, "near": c.near} for c in scaled.changes],
            "rows": [{"size": m.size, "n_inputs": m.n_inputs, "backend": m.label,
                      "status": m.status, "time_s": m.time_s, "one_off_s": m.setup_s,
                      "digits": m.digits} for m in sorted(
                          methods, key=lambda m: (m.size or 0, m.label))],
        }
    return advice


def write_advice(run_dir: Path, advice: dict[str, Any]) -> None:
    (run_dir / ADVICE_NAME).write_text(json.dumps(advice, indent=1) + "\n")


__all__ = ["ADVICE_NAME", "BUDGET_KEY", "CONFIG_NAME", "AdviceError", "Plan", "Target",
           "parse_point", "read_point", "resolve", "summarize", "write_advice",
           "write_config"]
