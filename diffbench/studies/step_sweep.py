"""The step-sweep study: the error of every difference rule over grids of steps h.

One case is a family at a size in one dtype (``dtypes``: float64 by default; in another, f runs
lowered to it, x0 is rounded to it and so is every x ± h); it sweeps the partial derivative
along a few components of x (all of them for one input), each against the 50-digit reference,
over ``h_shifts`` copies of the grid shifted by fractions of a grid step, and summarizes each
component × rule: the measured optimum with its spread over the shifts, the slopes, the fitted
error model, the textbook and noise-aware theory with the dtype's eps, and the rule of thumb
h = eps^(1/3)·max(1, |x|) (eps^(1/2) for one-sided rules).  For a family of one input without
kinks it also compares (in float64) the adaptive differences (``COMPARED``): each method's
derivative, its error against the 50-digit reference and its evaluations of f.
"""

from __future__ import annotations

import traceback
from dataclasses import replace
from typing import Any

import mpmath
import numpy as np

from ..backends import UnsupportedCase, registry, variant_label
from ..families import Problem, lowered
from ..measure.differences import DIFFERENCE_RULES, CoordinateLine, NotAnalytic, difference
from ..measure.error import relative_errors
from ..measure.noise import estimate_noise
from ..measure.sweep import summarize, textbook_optimum, truncation_order
from ..ops.precision import DTYPES, Precision, eps, snap
from ..reference import NoReference, Reference, section_derivatives
from .base import Case, Study
from .gradient import not_finite

SWEEP_COLUMNS = (
    "study", "family", "family_variant", "size", "dtype", "component", "point", "rule", "h",
    "shift",
    "step", "vanished", "value", "reference", "err", "status", "message",
)
SUMMARY_COLUMNS = (
    "study", "family", "family_variant", "size", "dtype", "component", "point", "rule",
    "status", "message", "h_opt", "h_opt_low", "h_opt_high", "h_opt_method", "h_rule",
    "err_min", "err_near",
    "slope_roundoff", "slope_truncation",
    "f_value", "d2", "d3", "sigma_eps", "h_theory", "err_theory",
    "sigma_noise", "h_noise", "err_noise",
)
METHODS_COLUMNS = (
    "study", "family", "family_variant", "size", "dtype", "component", "point", "backend",
    "variant", "status", "message", "value", "reference", "err", "f_evals", "err_estimate",
)
COMPARED: tuple[tuple[str, dict[str, Any]], ...] = (
    ("central", {}), ("central", {"step": "auto"}), ("numdifftools", {}), ("scipy", {}),
)
"""The methods of ``step_methods.csv``, each with its defaults: the textbook step (for scale),
diffbench's adaptive step, and the adaptive peers."""


def step_grid(extra: dict[str, Any], x: float) -> tuple[np.ndarray, np.ndarray]:
    """The steps of the sweep at the point ``x``, smallest first, and the grid of each (shift).

    Grid k (0 … ``h_shifts`` − 1) is the ``h_points`` grid from ``h_min`` to ``h_max`` moved up
    by k/``h_shifts`` of its step (in log h for a log grid): its last step may pass ``h_max`` by
    under one grid step.
    """
    low, high, points, shifts = (extra["h_min"], extra["h_max"], extra["h_points"],
                                 extra["h_shifts"])
    if extra["h_log"]:
        step = (np.log10(high) - np.log10(low)) / (points - 1)
        grids = [np.logspace(np.log10(low), np.log10(high), points) * 10.0 ** (step * k / shifts)
                 for k in range(shifts)]
    else:
        step = (high - low) / (points - 1)
        grids = [np.linspace(low, high, points) + step * k / shifts for k in range(shifts)]
    scale = max(1.0, abs(x)) if extra["h_relative"] else 1.0
    steps, shift = np.concatenate(grids) * scale, np.repeat(np.arange(shifts), points)
    order = np.argsort(steps, kind="stable")
    return steps[order], shift[order]


def swept_components(reference: Reference, count: int) -> list[int]:
    """Up to ``count`` components, evenly spread, skipping the reference's kinks (declared and
    detected) and zero derivatives."""
    values = reference.as_float()
    candidates = [i for i in range(values.size)
                  if i not in reference.kinks and values[i] != 0.0]
    if len(candidates) <= count:
        return candidates
    picks = np.unique(np.linspace(0, len(candidates) - 1, count).round().astype(int))
    return [candidates[i] for i in picks]


class StepSweepStudy(Study):
    kind = "step-sweep"
    needs_backends = False
    settings = {"h_min": 1e-16, "h_max": 0.1, "h_points": 121, "h_log": True,
                "h_relative": True, "h_shifts": 4, "components": 3, "dtypes": ["float64"]}
    files = {"step_sweep.csv": SWEEP_COLUMNS, "step_summary.csv": SUMMARY_COLUMNS,
             "step_methods.csv": METHODS_COLUMNS}
    csv_name = "step_sweep.csv"
    summary_name = "step_summary.csv"

    @classmethod
    def validate(cls, extra, fail) -> None:
        for key in ("h_min", "h_max"):
            if extra[key] <= 0.0:
                fail(f"must be > 0, got {extra[key]}", key)
        if extra["h_min"] >= extra["h_max"]:
            fail(f"must be < h_max = {extra['h_max']}, got {extra['h_min']}", "h_min")
        if extra["h_points"] < 2:
            fail(f"must be >= 2, got {extra['h_points']}", "h_points")
        if extra["h_shifts"] < 1:
            fail(f"must be >= 1, got {extra['h_shifts']}", "h_shifts")
        if extra["components"] < 1:
            fail(f"must be >= 1, got {extra['components']}", "components")
        dtypes = extra["dtypes"]
        if not dtypes or not all(isinstance(d, str) for d in dtypes) \
                or len(set(dtypes)) != len(dtypes):
            fail(f"must be a list of distinct dtype names, got {dtypes}", "dtypes")
        for dtype in dtypes:
            if dtype not in DTYPES:
                fail(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}", "dtypes")

    def cases(self) -> list[Case]:
        """One case per family × size × dtype (float64's keys as without dtypes)."""
        cases = []
        for case in self.family_cases():
            for dtype in self.spec.extra["dtypes"]:
                identity = {**case.identity, "dtype": dtype}
                if dtype == "float64":
                    cases.append(replace(case, identity=identity))
                else:
                    cases.append(replace(case, key=f"{case.key}:{dtype}",
                                         label=f"{case.label} · {dtype}", identity=identity))
        return cases

    def run(self, case: Case) -> dict[str, list[dict[str, Any]]]:
        """The case's sweep rows, summary rows and compared methods; where it cannot be swept
        (f not finite at x0 in the dtype, no reference, an error), one row saying why, in both
        the sweep and the summary."""
        head = {"study": self.kind, **case.identity}
        dtype = head.get("dtype") or "float64"

        def failed(status: str, message: str) -> dict[str, list[dict[str, Any]]]:
            row = {**head, "status": status, "message": message}
            return {self.csv_name: [row], self.summary_name: [row]}

        try:
            problem = self.problem(case.identity)
            method = lowered(problem, Precision(dtype))
            f_value = method.f(method.x0.copy())
            if not np.all(np.isfinite(f_value)):
                return failed(*not_finite(f_value, f"f(x0) = {f_value}", Precision(dtype),
                                          lambda: problem.f(problem.x0.copy())))
            found = self.workspace.reference(problem)
        except NoReference as exc:
            return failed("no-reference", str(exc))
        except Exception as exc:  # one failing case is a row, never a crash of the run
            return failed("error", failure(exc))
        sweep, summary = [], []
        reference = found.as_float()
        for index in swept_components(found, self.spec.extra["components"]):
            section = CoordinateLine(method, index, snap(dtype))
            at = {**head, "component": index, "point": section.x}
            rows, sums = self._sweep(section, problem, dtype, float(reference[index]), at)
            sweep += rows
            summary += sums
        compared = compare_methods(problem, found, head) if dtype == "float64" else []
        return {self.csv_name: sweep, self.summary_name: summary, "step_methods.csv": compared}

    def _sweep(self, section: CoordinateLine, problem: Problem, dtype: str, reference: float,
               at: dict[str, Any]):
        """Rows for every rule × h at one component, smallest h first, and one summary row per
        rule; ``problem`` is f as written (for the derivatives of the theory)."""
        steps, shift = step_grid(self.spec.extra, section.x)
        theory = self._theory(section, problem, dtype, reference)
        rows, summaries = [], []
        for rule in DIFFERENCE_RULES:
            if rule == "complex" and dtype != "float64":
                message = f"the complex step runs in float64 only, not {dtype}"
                rows.append({**at, "rule": rule, "status": "unsupported", "message": message})
                summaries.append({**at, "rule": rule, "status": "unsupported",
                                  "message": message})
                continue
            try:
                estimates = [difference(section, rule, h) for h in steps]
            except NotAnalytic as exc:
                message = f"the complex step needs an analytic f: {exc}"
                rows.append({**at, "rule": rule, "status": "unsupported", "message": message})
                summaries.append({**at, "rule": rule, "status": "unsupported",
                                  "message": message})
                continue
            values = np.array([e.value for e in estimates])
            errors = relative_errors(values, np.full(values.size, reference))
            for h, k, estimate, err in zip(steps, shift, estimates, errors, strict=True):
                vanished = rule != "complex" and estimate.step == 0.0
                status = "ok" if np.isfinite(err) else ("skipped" if vanished else "nan")
                rows.append({**at, "rule": rule, "h": float(h), "shift": int(k),
                             "step": estimate.step, "vanished": vanished, "value": estimate.value,
                             "reference": reference, "err": float(err), "status": status,
                             "message": "x ± h == x: the step vanished" if vanished else ""})
            vanished = np.array([rule != "complex" and e.step == 0.0 for e in estimates])
            found = summarize(steps, np.where(vanished, np.nan, errors), shift,
                              truncation_order(rule))
            summaries.append({**at, "rule": rule, "status": "ok", "message": "",
                              **vars(found), "h_rule": rule_of_thumb(rule, dtype, section.x),
                              **self._predicted(rule, theory, reference)})
        return rows, summaries

    def _theory(self, section: CoordinateLine, problem: Problem, dtype: str,
                reference: float) -> dict[str, float | None]:
        """|f|, |f''|, |f'''| (50-digit reference), σ = eps·|f| with the dtype's eps, and σ
        measured (ECnoise) on f as it runs in the dtype."""
        digits = self.workspace.config.reference.digits
        d2, d3 = section_derivatives(problem, section.index, (2, 3), digits)
        f_value = abs(section(section.x))
        noise = estimate_noise(section, section.x, snap=section.snap)
        return {"f_value": f_value, "d2": abs(d2), "d3": abs(d3),
                "sigma_eps": eps(dtype) * f_value,
                "sigma_noise": None if noise is None else noise.sigma}

    @staticmethod
    def _predicted(rule: str, theory: dict[str, float | None], reference: float):
        """h* and the relative E* with the textbook σ and with the measured σ."""
        scale = abs(reference)
        row: dict[str, Any] = dict(theory)
        for sigma_key, h_key, err_key in (("sigma_eps", "h_theory", "err_theory"),
                                          ("sigma_noise", "h_noise", "err_noise")):
            sigma = theory[sigma_key]
            h, err = (None, None) if sigma is None else textbook_optimum(
                rule, sigma, theory["d2"], theory["d3"])
            row[h_key], row[err_key] = h, None if err is None else err / scale
        return row


def rule_of_thumb(rule: str, dtype: str, x: float) -> float | None:
    """The textbook step of ``rule`` in ``dtype``: eps^(1/3)·max(1, |x|) for a central rule,
    eps^(1/2)·max(1, |x|) for a one-sided one; None for the complex step."""
    order = truncation_order(rule)
    if order is None:
        return None
    return eps(dtype) ** (1.0 / (order + 1)) * max(1.0, abs(x))


def failure(exc: Exception) -> str:
    """An exception as a row's message: its type, text, and where it was raised."""
    where = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {exc} ({where.name}, line {where.lineno})"


def compare_methods(problem: Problem, reference: Reference,
                    head: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per method of ``COMPARED`` for a family of one input without kinks and with a
    non-zero derivative (none otherwise): its derivative at x0, the relative error against
    the reference at the reference's precision, its evaluations of f and its own relative
    error estimate.  A method that cannot run here is a row with its status and why."""
    if problem.n != 1 or reference.kinks or mpmath.mpf(reference.values[0]) == 0:
        return []
    at = {**head, "component": 0, "point": float(problem.x0[0]),
          "reference": float(reference.values[0])}
    return [_method_row(problem, reference, name, options, at) for name, options in COMPARED]


def _method_row(problem: Problem, reference: Reference, name: str, options: dict[str, Any],
                at: dict[str, Any]) -> dict[str, Any]:
    """The row of one method: status ``ok``, ``unsupported``, ``nan`` or ``error``."""
    row = {**at, "backend": name, "variant": variant_label(options), "status": "ok",
           "message": ""}
    backend = registry().get(name)
    reason = (f"{name} is not a registered backend: pip install -e '.[peers]'"
              if backend is None else backend.unavailable())
    if reason:
        return {**row, "status": "unsupported", "message": reason}
    try:
        backend.load()
        prepared = backend.prepare(problem, **options)
        value = float(np.asarray(prepared.gradient(problem.x0.copy()), dtype=float).ravel()[0])
    except UnsupportedCase as exc:
        return {**row, "status": "unsupported", "message": str(exc)}
    except Exception as exc:  # one failing method is a row, never a crash of the run
        return {**row, "status": "error", "message": failure(exc)}
    row.update(value=value, f_evals=prepared.stats().get("f_evals"), message=prepared.note())
    if not np.isfinite(value):
        return {**row, "status": "nan", "message": row["message"] or "the derivative is not finite"}
    estimates = prepared.error_estimates()
    if estimates is not None and value != 0.0:
        row["err_estimate"] = float(np.ravel(estimates)[0]) / abs(value)
    with mpmath.workdps(reference.digits):
        exact = mpmath.mpf(reference.values[0])
        row["err"] = float(abs(mpmath.mpf(value) - exact) / abs(exact))
    return row
