"""The gradient study: every family × size × backend, timed, sized and checked."""

from __future__ import annotations

import time
import traceback
from typing import Any

import mpmath
import numpy as np

from ..backends import Backend, UnsupportedCase, registry, variant_label
from ..families import Problem
from ..measure.error import correct_digits, gradient_error, mp_max_relative_error
from ..measure.memory import traced_peak
from ..measure.timing import BudgetExceeded, Timing, time_call
from ..ops import mpmath_ops
from ..reference import NoReference, Reference
from ..results import append_json_line
from .base import Case, Study, sized_name

COLUMNS = (
    "study", "family", "size", "n_inputs", "backend", "variant", "status", "message",
    "setup_s", "time_s", "time_min_s", "time_iqr_s", "samples", "loops", "unstable",
    "timing_note",
    "f_time_s", "omega", "peak_bytes", "memory_method", "err_max", "err_median", "digits",
    "f_peak_bytes", "reference_method", "f_evals", "tape_len", "cotangent_peak_bytes",
    "expr_nodes", "err_estimate",
    "err_estimate_ratio",
    "build_s", "diff_s", "cse_s", "compile_s", "digits_mp",
)


class CaseFailed(Exception):
    """Ends a case early with a status other than ``ok``."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def _finite(values, what: str) -> None:
    if not np.all(np.isfinite(values)):
        raise CaseFailed("nan", f"{what} is not finite: {np.asarray(values).ravel()[:4]}")


def estimated_error(gradient: np.ndarray, estimates, kinks) -> float | None:
    """The backend's own estimate of ``err_max``: max_i estimate_i / |g_i|.

    Kinks are left out, as in ``err_max``, and so are components where g_i is exactly 0
    (their relative error is 0 or undefined).
    """
    estimates = np.asarray(estimates, dtype=float).ravel()
    keep = [i for i in range(gradient.size) if i not in kinks and gradient.ravel()[i] != 0.0]
    if not keep:
        return None
    return float(np.max(estimates[keep] / np.abs(gradient.ravel()[keep])))


def _kink_note(gradient: np.ndarray, reference: np.ndarray, kinks) -> str:
    return "; ".join(f"kink x[{i}]: gives {gradient[i]:.6g}, reference {reference[i]:.6g}"
                     for i in kinks)


def _digits_mp(prepared, problem: Problem, reference: Reference) -> float:
    """Correct digits of ``prepared.gradient_mp`` at the reference's precision, kinks skipped."""
    with mpmath.workdps(reference.digits):
        gradient = prepared.gradient_mp(mpmath_ops.asarray(problem.x0))
        error = mp_max_relative_error(gradient, reference.as_mpf(), skip=problem.kinks)
    return correct_digits(error, max_digits=reference.digits)


def _out_of_memory(exc: Exception) -> bool:
    """numpy's MemoryError, or XLA's failed allocation (RESOURCE_EXHAUSTED)."""
    return isinstance(exc, MemoryError) or "RESOURCE_EXHAUSTED" in str(exc)


class GradientStudy(Study):
    kind = "gradient"
    files = {"gradient.csv": COLUMNS}
    csv_name = "gradient.csv"

    def cases(self) -> list[Case]:
        cases = []
        for family in self.spec.families:
            for size in dict.fromkeys(self.sizes_for(family)):
                for spec in self.spec.backends:
                    variant = variant_label(spec.options)
                    key = f"{self.index}:{self.kind}:{family}:{size}:{spec.name}:{variant}"
                    label = f"{sized_name(family, size)} · {spec.name}"
                    if variant != "default":
                        label += f" ({variant})"
                    backend = registry()[spec.name]
                    identity = {"family": family, "size": size, "backend": spec.name,
                                "variant": variant}
                    cases.append(Case(key, label, identity, {"options": dict(spec.options)},
                                      cost=backend.relative_cost(size or 1),
                                      isolate=backend.isolate_by_default))
        return cases

    def precompute(self, case: Case) -> None:
        """The reference gradient, cached on disk, so that the worker only reads it."""
        try:
            self.workspace.reference(self.workspace.problem(case.identity["family"],
                                                            case.identity["size"]))
        except Exception:  # the case itself reports it, in its row
            pass

    def run(self, case: Case) -> list[dict[str, Any]]:
        row: dict[str, Any] = {"study": self.kind, **case.identity, "status": "ok",
                               "message": ""}
        try:
            problem = self.workspace.problem(row["family"], row["size"])
            row["n_inputs"] = problem.n
            backend = registry()[row["backend"]]
            self._measure(problem, backend, case.params["options"], row, case)
        except CaseFailed as exc:
            row.update(status=exc.status, message=str(exc))
        except Exception as exc:  # one failing case is a row, never a crash of the run
            where = traceback.extract_tb(exc.__traceback__)[-1]
            row.update(status="out-of-memory" if _out_of_memory(exc) else "error",
                       message=f"{type(exc).__name__}: {exc} ({where.name}, line "
                               f"{where.lineno})")
        return [row]

    def _time(self, fn) -> Timing:
        timing = self.workspace.config.timing
        try:
            return time_call(fn, min_sample_s=timing.min_sample_s, repeats=timing.repeats,
                             budget_s=timing.budget_s)
        except BudgetExceeded as exc:
            raise CaseFailed("timeout", str(exc)) from exc

    def _measure(self, problem: Problem, backend: Backend, options, row, case: Case) -> None:
        reason = backend.unavailable()
        if reason:
            raise CaseFailed("unsupported", reason)
        x = problem.x0.copy()
        f_value = problem.f(x)
        _finite(f_value, f"f(x0) = {f_value}")
        start = time.perf_counter()
        try:
            prepared = backend.prepare(problem, **options)
        except UnsupportedCase as exc:
            raise CaseFailed("unsupported", str(exc)) from exc
        row["setup_s"] = time.perf_counter() - start
        gradient = np.asarray(prepared.gradient(x), dtype=float).reshape(problem.x0.shape)
        _finite(gradient, "the gradient")

        timed = getattr(prepared, "timed", None)
        timing = self._time(timed(x) if timed else lambda: prepared.gradient(x))
        f_timing = self.workspace.f_timing(problem, self._time)
        row.update(time_s=timing.median, time_min_s=timing.min, time_iqr_s=timing.iqr,
                   samples=len(timing.samples), loops=timing.loops, unstable=timing.unstable,
                   timing_note="; ".join(timing.warnings()),
                   f_time_s=f_timing.median, omega=timing.median / f_timing.median)
        append_json_line(self.run_dir / "gradient_samples.jsonl", {
            "case": case.key, "gradient_s": list(timing.samples), "loops": timing.loops,
            "f_s": list(f_timing.samples), "f_loops": f_timing.loops})

        if backend.memory_method == "tracemalloc":
            row["peak_bytes"] = traced_peak(lambda: prepared.gradient(x))
        else:
            row["peak_bytes"] = backend.measure_memory(prepared, x)
        row["memory_method"] = backend.memory_method if row["peak_bytes"] is not None else "none"
        row["f_peak_bytes"] = self.workspace.f_peak(problem)
        stats = prepared.stats()
        row.update({k: v for k, v in stats.items() if k in COLUMNS})

        try:
            reference = self.workspace.reference(problem)
        except NoReference as exc:
            raise CaseFailed("no-reference", str(exc)) from exc
        expected = reference.as_float()
        error = gradient_error(gradient, expected, skip=problem.kinks)
        row.update(err_max=error.max, err_median=error.median, digits=error.digits,
                   reference_method=reference.method)
        if "err_estimates" in stats:
            row["err_estimate"] = estimated_error(gradient, stats["err_estimates"],
                                                  problem.kinks)
            if row["err_estimate"] is not None and error.max > 0.0:
                row["err_estimate_ratio"] = row["err_estimate"] / error.max
        if hasattr(prepared, "gradient_mp"):
            row["digits_mp"] = _digits_mp(prepared, problem, reference)
        if problem.kinks:
            notes = (row["message"], _kink_note(gradient, expected, problem.kinks))
            row["message"] = "; ".join(note for note in notes if note)
