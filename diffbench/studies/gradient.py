"""The gradient study: every family × size × backend, timed, sized and checked."""

from __future__ import annotations

import statistics
import time
import traceback
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np

from .. import ad, deadline
from ..backends import Backend, Prepared, UnsupportedCase, registry, variant_label
from ..backends.base import PRECISION_OPTIONS, STATS_COLUMNS, precision_of
from ..backends.scaling import LossScaled
from ..families import Problem, lowered
from ..measure.error import (
    GradientError,
    correct_digits,
    gradient_error,
    kept,
    mp_normwise_error,
)
from ..measure.memory import rss_peak, traced_peak
from ..measure.timing import UNSTABLE_SPREAD, BudgetExceeded, Timing, time_calls
from ..ops import mpmath_ops
from ..ops.precision import NATIVE, Precision, eps, finfo, tiny
from ..reference import NoReference, Reference
from ..results import append_json_line, file_name, write_arrays
from .base import Case, Study, sized_name

COLUMNS = (
    "study", "family", "family_variant", "size", "n_inputs", "backend", "variant", "dtype",
    "accumulate", "loss_scale", "status", "message", "setup_s", "time_s", "time_min_s",
    "time_iqr_s", "samples", "loops", "unstable",
    "timing_note", "processes", "process_spread",
    "f_method", "f_time_s", "omega", "f_numpy_time_s", "omega_numpy",
    "peak_bytes", "memory_method", "f_peak_bytes", "rss_peak_bytes", "f_rss_peak_bytes",
    "err_norm", "digits", "err_max", "digits_component", "err_median", "err_abs", "err_scale",
    "kappa", "digits_attainable", "underflow", "overflow", "reference_method",
    "reference_same_engine",
    "f_evals", "tape_len", "cotangent_peak_bytes", "expr_nodes", "err_estimate",
    "err_estimate_ratio",
    "build_s", "diff_s", "cse_s", "compile_s", "digits_mp",
)
"""``gradient.csv``'s columns, in order (the README documents each)."""
MEMORY_CALLS = 3
"""Gradient calls the case makes after its timing (memory, twice, plus slack): what the
timing leaves of the budget, in units of the first call's time."""


class CaseFailed(Exception):
    """Ends a case early with a status other than ``ok``."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def _finite(values, what: str, precision: Precision = NATIVE,
            as_written: Callable[[], object] | None = None) -> None:
    """Fail the case, as :func:`not_finite` says, where ``values`` are not all finite."""
    if not np.all(np.isfinite(values)):
        raise CaseFailed(*not_finite(values, what, precision, as_written))


def not_finite(values, what: str, precision: Precision = NATIVE,
               as_written: Callable[[], object] | None = None) -> tuple[str, str]:
    """The status and message of values that are not all finite: ``nan``, or in a lower
    precision ``overflow`` (NaN included: inf − inf), unless ``as_written`` (the same values
    from f as written, in float64, at the same x0) is not finite either: then they are f's
    own, a ``nan``."""
    if precision.native:
        return "nan", f"{what} is not finite: {np.asarray(values).ravel()[:4]}"
    own = _not_finite(as_written)
    if own is None:
        largest = float(finfo(precision.dtype).max)
        return "overflow", (f"{what} is not finite in {precision.label} (its largest number "
                            f"is {largest:g})")
    return "nan", _own_message(what, precision, own)


def _own_message(what: str, precision: Precision, own: np.ndarray, whose: str = "") -> str:
    """The message of values not finite in ``precision`` that f as written, in float64 at the
    same x0, does not make finite either (``own``: those float64 values)."""
    return (f"{what} is not finite in {precision.label}, nor {whose}with f as written in "
            f"float64 at x0 rounded to {precision.dtype}: {own[:4]}")


def _not_finite(compute: Callable[[], object] | None) -> np.ndarray | None:
    """The values ``compute`` returns, flattened, where some are not finite; None where all
    are, or where there is nothing to compute or it fails."""
    if compute is None:
        return None
    try:
        values = np.ravel(np.asarray(compute(), dtype=float))
    except Exception:  # f as written cannot tell: the dtype's overflow stands
        return None
    return None if np.all(np.isfinite(values)) else values


def _float64_gradient(problem: Problem) -> Callable[[], object]:
    """The engine's float64 gradient of f as written at ``problem.x0`` (to tell f's own
    infinite derivatives from a dtype's overflow), as a function to call when needed."""
    return lambda: ad.grad(lambda x: problem.fn(x, ad))(problem.x0.copy())


def _fraction(mask: np.ndarray) -> float:
    return float(np.mean(mask)) if mask.size else 0.0


def underflow(computed: np.ndarray, reference: np.ndarray, kinks, dtype: str) -> float:
    """The fraction of the components (kinks left out) whose reference is not 0 where the
    gradient as computed in ``dtype`` (of S·f, before the division by a loss scale S) is zero
    or subnormal: below the dtype's least normal number."""
    keep = kept(reference.size, kinks) & (np.ravel(reference) != 0.0)
    return _fraction(np.abs(np.ravel(computed)[keep]) < tiny(dtype))


def _first_gradient(prepared: Prepared, x: np.ndarray, precision: Precision) -> np.ndarray:
    """The first gradient; in a lower precision, a failure of the method's own library to run
    the dtype (torch has no such kernel, say) makes the case ``unsupported``, saying why."""
    try:
        return prepared.gradient(x)
    except (TypeError, NotImplementedError, RuntimeError) as exc:
        if precision.native:
            raise
        raise CaseFailed("unsupported", f"{precision.label}: {type(exc).__name__}: "
                         f"{exc}") from exc


def _as_computed(prepared: Prepared, gradient: np.ndarray) -> np.ndarray:
    """The gradient as the method computed it: of S·f where a loss scale S was used."""
    scaled = prepared.scaled_gradient()
    return gradient if scaled is None else scaled


def _scaled(prepared: Prepared) -> str:
    note = prepared.note() if prepared.scaled_gradient() is not None else ""
    return f" ({note})" if note else ""


def estimated_error(gradient: np.ndarray, estimates: np.ndarray, error: GradientError,
                    kinks) -> float | None:
    """The backend's own estimate of ``err_max``: max_i estimate_i / |g_i| over the components
    ``err_max`` measures, a component with g_i = 0 against the same scale as ``err_max``."""
    estimates = np.asarray(estimates, dtype=float).ravel()
    keep = kept(gradient.size, kinks)
    g = np.abs(np.asarray(gradient, dtype=float).ravel()[keep])
    if g.size == 0:
        return None
    return float(np.max(estimates[keep] / np.where(g != 0.0, g, error.scale)))


def kink_note(gradient: np.ndarray, reference: np.ndarray, kinks) -> str:
    """What the method gives at each kink, beside the reference (both left out of the error)."""
    return "; ".join(f"kink x[{i}]: gives {gradient[i]:.6g}, reference {reference[i]:.6g}"
                     for i in kinks)


def _digits_mp(prepared: Prepared, problem: Problem, reference: Reference,
               error: GradientError, kinks) -> float:
    """Correct digits of ``prepared.gradient_mp`` at the reference's precision, normwise over
    the components and against the scale of the float64 error."""
    with mpmath.workdps(reference.digits):
        gradient = prepared.gradient_mp(mpmath_ops.asarray(problem.x0))
        norm = mp_normwise_error(gradient, reference.as_mpf(), error.scale, skip=kinks)
    return correct_digits(norm, max_digits=reference.digits)


def _out_of_memory(exc: Exception) -> bool:
    """numpy's MemoryError, or XLA's failed allocation (RESOURCE_EXHAUSTED)."""
    return isinstance(exc, MemoryError) or "RESOURCE_EXHAUSTED" in str(exc)


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


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
                    precision = precision_of(spec.options)
                    identity = {**self.family_identity(family), "size": size,
                                "backend": spec.name, "variant": variant,
                                "dtype": precision.dtype, "accumulate": precision.accumulate or "",
                                "loss_scale": "" if precision.loss_scale is None
                                else precision.loss_scale}
                    cases.append(Case(key, label, identity, {"options": dict(spec.options)},
                                      cost=backend.relative_cost(size or 1),
                                      isolate=backend.isolate_by_default))
        return cases

    @property
    def processes(self) -> int:
        return self.workspace.config.timing.processes

    def combine(self, runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The case's row from its runs in several processes: medians of the per-process
        medians, and ``process_spread`` = (max − min) / median of the gradient's."""
        rows = [row for rows in runs for row in rows]
        failed = next((row for row in rows if row["status"] != "ok"), None)
        if failed is not None:
            return [failed]
        times = [row["time_s"] for row in rows]
        spread = (max(times) - min(times)) / statistics.median(times)
        combined = {**rows[0], "processes": len(rows), "process_spread": spread,
                    "samples": sum(row["samples"] for row in rows),
                    "time_min_s": min(row["time_min_s"] for row in rows),
                    "unstable": any(row["unstable"] for row in rows)
                                or spread >= UNSTABLE_SPREAD,
                    "timing_note": "; ".join(dict.fromkeys(
                        row["timing_note"] for row in rows if row["timing_note"]))}
        for column in ("time_s", "time_iqr_s", "f_time_s", "f_numpy_time_s"):
            combined[column] = statistics.median(row[column] for row in rows)
        combined["omega"] = combined["time_s"] / combined["f_time_s"]
        combined["omega_numpy"] = combined["time_s"] / combined["f_numpy_time_s"]
        return [combined]

    def precompute(self, case: Case) -> dict[tuple, Any]:
        """The reference gradient (or why there is none), for the worker to take as it is;
        nothing for a precision the backend cannot run."""
        if registry()[case.identity["backend"]].lacks_precision(case.params["options"]):
            return {}
        try:
            problem = self.problem(case.identity)
            self.workspace.reference(problem)
        except Exception:  # the case itself reports it, in its row
            return {}
        return self.workspace.known("reference", problem.key, problem.size)

    def load(self, case: Case) -> None:
        backend = registry()[case.identity["backend"]]
        try:
            if backend.unavailable() is None:
                backend.load()
        except Exception:  # the case itself reports it, in its row
            pass

    def run(self, case: Case) -> list[dict[str, Any]]:
        row: dict[str, Any] = {"study": self.kind, **case.identity, "status": "ok",
                               "message": ""}
        try:
            problem = self.problem(row)
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

    def _time(self, fns, reserve_s: float) -> dict[str, Timing]:
        """``time_calls`` within what is left of the case's budget, less ``reserve_s`` for
        what the case still does after the timing."""
        timing = self.workspace.config.timing
        left = min(timing.budget_s, deadline.remaining()) - reserve_s
        budget = f"the budget of {timing.budget_s:g} s (timing.budget_s)"
        if left <= 0:
            raise CaseFailed("timeout", f"{budget} leaves no time to time the gradient, with "
                             f"{reserve_s:.3g} s kept for its memory measurements")
        try:
            return time_calls(fns, min_sample_s=timing.min_sample_s, repeats=timing.repeats,
                              budget_s=left)
        except BudgetExceeded as exc:
            raise CaseFailed("timeout", f"one call took {exc.seconds:.3g} s, more than the "
                             f"{exc.budget_s:.3g} s of {budget} left for timing") from exc

    def _measure(self, problem: Problem, backend: Backend, options, row, case: Case) -> None:
        """Measure ``backend`` on ``problem`` (the reference's: at x0 rounded to the dtype the
        options ask for), running f at that precision."""
        reason = backend.lacks_precision(options) or backend.unavailable()
        if reason:
            raise CaseFailed("unsupported", reason)
        backend.load()
        precision = precision_of(options)
        options = {k: v for k, v in options.items() if k not in PRECISION_OPTIONS}
        if backend.takes_precision:
            options["precision"] = precision
        method = lowered(problem, precision)
        x = method.x0.copy()
        f_value = method.f(x)
        _finite(f_value, f"f(x0) = {f_value}", precision, lambda: problem.f(problem.x0.copy()))
        start = time.perf_counter()
        try:
            if precision.loss_scale is None:
                prepared = backend.prepare(method, **options)
            else:
                prepared = LossScaled(method, lambda scale: backend.prepare(
                    lowered(problem, precision, scale), **options), precision.loss_scale)
        except UnsupportedCase as exc:
            raise CaseFailed("unsupported", str(exc)) from exc
        row["setup_s"] = time.perf_counter() - start
        gradient = np.asarray(_first_gradient(prepared, x, precision),
                              dtype=float).reshape(problem.x0.shape)
        one_call = time.perf_counter() - start - row["setup_s"]
        if not precision.native:
            row["overflow"] = _fraction(~np.isfinite(_as_computed(prepared, gradient)))
            if row["overflow"]:
                own = _not_finite(_float64_gradient(problem))
                if own is not None:
                    raise CaseFailed("nan", _own_message("the gradient", precision, own,
                                                         "the engine's "))
                raise CaseFailed("overflow", f"{row['overflow']:.3g} of the gradient's "
                                 f"components are not finite in {precision.label}"
                                 f"{_scaled(prepared)}")
        _finite(gradient, "the gradient")
        if self.workspace.options.save_gradients:
            self._save(case, problem, gradient)
        self._time_gradient(method, prepared, x, row, case, MEMORY_CALLS * one_call)
        self._measure_memory(method, backend, prepared, x, row)
        stats = prepared.stats()
        unknown = set(stats) - STATS_COLUMNS
        if unknown:
            raise ValueError(f"backend {backend.name!r}: stats() set columns it may not: "
                             f"{sorted(unknown)} (allowed: {sorted(STATS_COLUMNS)})")
        row.update(stats)
        row["message"] = _join(row["message"], prepared.note())
        self._check(problem, backend, prepared, gradient, row, precision)

    def _save(self, case: Case, problem: Problem, gradient: np.ndarray) -> None:
        """``gradients/<case>.npz``: x0, the gradient, and the reference where there is one."""
        try:
            reference = {"reference": self.workspace.reference(problem).as_float()}
        except NoReference:
            reference = {}
        write_arrays(self.run_dir / "gradients" / f"{file_name(case.key)}.npz",
                     {"x": problem.x0, "gradient": gradient, **reference})

    def _time_gradient(self, problem: Problem, prepared: Prepared, x: np.ndarray, row,
                       case: Case, reserve_s: float) -> None:
        """The gradient, f as the backend runs it, and numpy's f, timed interleaved, leaving
        ``reserve_s`` of the budget for the rest of the case."""
        calls = {"gradient": prepared.timed_gradient(x), "f": prepared.timed_function(x)}
        if prepared.function_method != "numpy":
            fn, x_numpy = problem.fn, x.copy()
            calls["f_numpy"] = lambda: fn(x_numpy, np)
        timings = self._time(calls, reserve_s)
        gradient, f = timings["gradient"], timings["f"]
        f_numpy = timings.get("f_numpy", f)
        notes = [f"{name}: {'; '.join(t.warnings())}" for name, t in timings.items()
                 if t.warnings()]
        row.update(time_s=gradient.median, time_min_s=gradient.min, time_iqr_s=gradient.iqr,
                   samples=len(gradient.samples), loops=gradient.loops,
                   unstable=any(t.unstable for t in timings.values()),
                   timing_note="; ".join(notes), processes=1, f_method=prepared.function_method,
                   f_time_s=f.median, omega=gradient.median / f.median,
                   f_numpy_time_s=f_numpy.median, omega_numpy=gradient.median / f_numpy.median)
        append_json_line(self.run_dir / "gradient_samples.jsonl", {
            "case": case.key, **{f"{name}_s": list(t.samples) for name, t in timings.items()},
            **{f"{name}_loops": t.loops for name, t in timings.items()}})

    def _measure_memory(self, problem: Problem, backend: Backend, prepared: Prepared,
                        x: np.ndarray, row) -> None:
        """The backend's own memory figure for the gradient and for f, measured alike, and the
        resident-set figure that is measured alike for every backend."""
        if backend.memory_method == "tracemalloc":
            row["peak_bytes"] = traced_peak(lambda: prepared.gradient(x))
            row["f_peak_bytes"] = self.workspace.f_peak(problem)
        else:
            row["peak_bytes"] = backend.measure_memory(prepared.measured, x)
            row["f_peak_bytes"] = backend.measure_function_memory(prepared.measured, x)
        row["memory_method"] = backend.memory_method if row["peak_bytes"] is not None else "none"
        row["rss_peak_bytes"] = rss_peak(lambda: prepared.gradient(x))
        row["f_rss_peak_bytes"] = rss_peak(prepared.timed_function(x))

    def _check(self, problem: Problem, backend: Backend, prepared: Prepared,
               gradient: np.ndarray, row, precision: Precision) -> None:
        """The error figures against the reference gradient, and in a lower precision the
        components lost to underflow."""
        try:
            reference = self.workspace.reference(problem)
        except NoReference as exc:
            raise CaseFailed("no-reference", str(exc)) from exc
        expected = reference.as_float()
        kinks = reference.kinks
        error = gradient_error(gradient, expected, skip=kinks, sensitivity=reference.sensitivity,
                               eps=eps(precision.dtype))
        if not precision.native:
            row["underflow"] = underflow(_as_computed(prepared, gradient), expected, kinks,
                                         precision.dtype)
        same_engine = reference.engine == backend.name
        row.update(err_norm=error.norm, digits=error.digits, err_max=error.max,
                   digits_component=error.digits_component, err_median=error.median,
                   err_abs=error.abs, err_scale=error.scale, kappa=error.kappa,
                   digits_attainable=error.digits_attainable,
                   reference_method=reference.method, reference_same_engine=same_engine)
        estimates = prepared.error_estimates()
        if estimates is not None:
            row["err_estimate"] = estimated_error(gradient, estimates, error, kinks)
            if row["err_estimate"] is not None and error.max > 0.0:
                row["err_estimate_ratio"] = row["err_estimate"] / error.max
        if prepared.has_gradient_mp:
            row["digits_mp"] = _digits_mp(prepared, problem, reference, error, kinks)
        row["message"] = _join(
            "reference: same engine (the engine's own rules in mpmath numbers: this row checks "
            "rounding, not the rules)" if same_engine else "",
            row["message"], error.note(), *reference.kink_notes,
            kink_note(gradient, expected, kinks))
