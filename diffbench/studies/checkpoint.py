"""The checkpoint study: memory against time of a chain's gradient under checkpointing schedules.

One case per chain family × size × depth × backend: the gradient under every schedule the
study lists (and ``none``, which the ratios divide by), timed interleaved in one process, then
each one's memory, forward steps and digits against the family's closed-form adjoint in
extended precision.  Rows go to ``checkpoint.csv``; ``checkpoint_frontier.csv`` tabulates
revolve's theoretical frontier, the fewest forward steps for each number of snapshots, at every
depth the rows have.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..ad.checkpointing import Schedule, parse_schedule
from ..backends import Backend, ChainGradient, UnsupportedCase, registry, variant_label
from ..backends.base import PRECISION_OPTIONS, precision_of
from ..families import Chain, ChainFamily
from ..measure.error import gradient_error
from ..measure.memory import rss_peak, traced_peak
from ..measure.timing import BudgetExceeded, time_calls
from .base import Case, Study, sized_name

COLUMNS = (
    "family", "depth", "size", "backend", "schedule", "snapshots", "forward_steps", "time_s",
    "peak_bytes", "rss_peak_bytes", "memory_method", "time_ratio", "memory_ratio", "digits",
    "status", "message",
)
"""``checkpoint.csv``'s columns, in order (the README documents each)."""

FRONTIER_COLUMNS = ("depth", "snapshots", "forward_steps")
"""``checkpoint_frontier.csv``: revolve's fewest forward steps for each number of snapshots."""

NONE = Schedule("none")


def frontier(rows: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """Revolve's forward steps for 1 … depth − 1 snapshots (with depth − 1, no step runs more
    than twice), at each depth of ``rows``."""
    depths = sorted({int(row["depth"]) for row in rows if row.get("depth")})
    return [{"depth": depth, "snapshots": s,
             "forward_steps": Schedule("revolve", snapshots=s).forward_steps(depth)}
            for depth in depths for s in range(1, max(depth, 2))]


def _whole_numbers(values: list, key: str, fail: Callable[[str, str], None]) -> None:
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(f"must be a whole number >= 1, got {value!r}", f"{key}[{i}]")


class CheckpointStudy(Study):
    """Settings: ``depths`` (L), ``schedules`` (none, every:K, sqrt, revolve) and
    ``snapshots`` (revolve's budgets, one row each)."""

    kind = "checkpoint"
    csv_name = "checkpoint.csv"
    files = {csv_name: COLUMNS}
    summaries = {"checkpoint_frontier.csv": (FRONTIER_COLUMNS, frontier)}
    settings = {"depths": [64], "schedules": ["none", "sqrt"], "snapshots": []}

    @classmethod
    def validate(cls, extra: dict[str, Any], fail: Callable[[str, str], None]) -> None:
        for key in ("depths", "schedules"):
            if not extra[key]:
                fail("must not be empty", key)
        _whole_numbers(extra["depths"], "depths", fail)
        _whole_numbers(extra["snapshots"], "snapshots", fail)
        for i, spec in enumerate(extra["schedules"]):
            try:
                parse_schedule(spec, 1 if spec == "revolve" else None)
            except ValueError as exc:
                fail(str(exc), f"schedules[{i}]")
            if spec == "revolve" and not extra["snapshots"]:
                fail(f"missing: schedules[{i}] is revolve, which needs the states it may store, "
                     "as snapshots = [8] (one row each)", "snapshots")

    def schedules(self) -> list[Schedule]:
        """``none`` first (the ratios' denominator), then the study's own, revolve once per
        number of snapshots."""
        plans = [NONE]
        for spec in self.spec.extra["schedules"]:
            budgets = self.spec.extra["snapshots"] if spec == "revolve" else [None]
            plans += [parse_schedule(spec, s) for s in budgets]
        return list(dict.fromkeys(plans))

    def cases(self) -> list[Case]:
        cases = []
        for family in self.spec.families:
            for size in dict.fromkeys(self.sizes_for(family)):
                for depth in dict.fromkeys(self.spec.extra["depths"]):
                    for spec in self.spec.backends:
                        variant = variant_label(spec.options)
                        backend = spec.name if variant == "default" else f"{spec.name} ({variant})"
                        key = f"{self.index}:{self.kind}:{family}:{size}:{depth}:{backend}"
                        label = f"{sized_name(family, size)} · L={depth} · {backend}"
                        identity = {"family": family, "depth": depth, "size": size,
                                    "backend": backend}
                        cases.append(Case(key, label, identity,
                                          {"name": spec.name, "options": dict(spec.options)},
                                          cost=float((size or 1) * depth)))
        return cases

    def failure_row(self, case: Case, status: str, message: str) -> dict[str, Any]:
        return {**case.identity, "status": status, "message": message}

    def run(self, case: Case) -> list[dict[str, Any]]:
        rows = {plan: {**case.identity, "schedule": str(plan), "snapshots": plan.stored(
            case.identity["depth"]), "status": "ok", "message": ""} for plan in self.schedules()}
        try:
            self._measure(case, rows)
        except Exception as exc:  # one failing case is rows with a status, never a crash
            where = traceback.extract_tb(exc.__traceback__)[-1]
            status = "out-of-memory" if isinstance(exc, MemoryError) else "error"
            for row in rows.values():
                if row["status"] == "ok":
                    row.update(status=status, message=f"{type(exc).__name__}: {exc} "
                                                      f"({where.name}, line {where.lineno})")
        return list(rows.values())

    def _chain(self, case: Case) -> tuple[Chain, np.ndarray]:
        """The case's chain and its reference gradient, each built once per run."""
        name, size, depth = (case.identity[k] for k in ("family", "size", "depth"))
        family = self.workspace.config.families[name]
        if not isinstance(family, ChainFamily):
            raise UnsupportedCase(f"{name} is not a chain family (the checkpoint study runs "
                                  "sin_tanh_chain and residual_mlp)")
        chain = self.workspace.memo("chain", name, (size, depth),
                                    lambda: family.chain(size, depth))
        reference = self.workspace.memo(
            "chain_reference", name, (size, depth),
            lambda: np.asarray(chain.gradient(chain.x0.astype(np.longdouble), np), dtype=float))
        return chain, reference

    def _measure(self, case: Case, rows: dict[Schedule, dict[str, Any]]) -> None:
        backend = registry()[case.params["name"]]
        options = {k: v for k, v in case.params["options"].items() if k not in PRECISION_OPTIONS}
        try:
            reason = backend.unavailable() or _float64_only(case.params["options"])
            if reason:
                raise UnsupportedCase(reason)
            chain, reference = self._chain(case)
        except UnsupportedCase as exc:
            for row in rows.values():
                row.update(status="unsupported", message=str(exc))
            return
        backend.load()
        prepared: dict[Schedule, ChainGradient] = {}
        for plan, row in rows.items():
            try:
                prepared[plan] = backend.prepare_chain(chain, plan, **options)
            except UnsupportedCase as exc:
                row.update(status="unsupported", message=str(exc))
        self._time(prepared, rows, chain)
        for plan, chain_gradient in prepared.items():
            if rows[plan]["status"] == "ok":
                self._measure_one(backend, chain_gradient, chain.x0.copy(), reference,
                                  rows[plan])
        base = rows[NONE]
        for plan in prepared:
            row = rows[plan]
            if base["status"] == "ok" and row["status"] == "ok":
                row["time_ratio"] = row["time_s"] / base["time_s"]
                if row["peak_bytes"] is not None and base["peak_bytes"]:
                    row["memory_ratio"] = row["peak_bytes"] / base["peak_bytes"]

    def _time(self, prepared: Mapping[Schedule, ChainGradient],
              rows: dict[Schedule, dict[str, Any]], chain: Chain) -> None:
        """Every schedule's gradient, timed interleaved (the ratios compare like with like)."""
        timing = self.workspace.config.timing
        calls = {repr(plan): p.timed_gradient(chain.x0.copy()) for plan, p in prepared.items()}
        try:
            timings = time_calls(calls, min_sample_s=timing.min_sample_s,
                                 repeats=timing.repeats, budget_s=timing.budget_s)
        except BudgetExceeded as exc:
            for plan in prepared:
                rows[plan].update(status="timeout", message=str(exc))
            return
        for plan in prepared:
            measured = timings[repr(plan)]
            rows[plan]["time_s"] = measured.median
            if measured.warnings():
                rows[plan]["message"] = f"timing: {'; '.join(measured.warnings())}"

    @staticmethod
    def _measure_one(backend: Backend, prepared: ChainGradient, x: np.ndarray,
                     reference: np.ndarray, row: dict[str, Any]) -> None:
        """One schedule's memory (the backend's own figure, and the resident-set one), and the
        forward steps and digits of the gradient whose resident set was measured."""
        if backend.memory_method == "tracemalloc":
            peak = traced_peak(lambda: prepared.gradient(x))
        else:
            peak = backend.measure_memory(prepared, x)
        held = []
        row.update(peak_bytes=peak, memory_method=backend.memory_method if peak is not None
                   else "none", rss_peak_bytes=rss_peak(lambda: held.append(prepared.gradient(x))),
                   forward_steps=prepared.forward_steps)
        gradient = held.pop() if held else prepared.gradient(x)
        if not np.all(np.isfinite(gradient)):
            row.update(status="nan", message="the gradient is not finite")
            return
        row["digits"] = gradient_error(gradient, reference).digits


def _float64_only(options: Mapping[str, Any]) -> str | None:
    """Why a chain cannot run at the precision ``options`` ask for (the study's chains and
    their references are float64), or None for float64 as written."""
    precision = precision_of(options)
    if precision.native and precision.loss_scale is None:
        return None
    asked = ", ".join(f"{k} = {options[k]}" for k in PRECISION_OPTIONS if k in options)
    return f"the checkpoint study runs its chains in float64 only, not {asked}"
