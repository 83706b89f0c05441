"""The advice read from measurements: which method to use, and the evidence for it.

Everything here works on rows as a study writes them (``gradient.csv`` / ``scaling.csv``,
read back as strings) and on ``scaling_fit``-style exponents computed by ``measure``; nothing
is measured or rendered here.

The rule, for one size: among the methods whose case is ``ok``, those within
``ACCURACY_MARGIN`` digits of the most accurate one (normwise digits against the reference)
are *accurate*; the advice is the accurate method with the least time per gradient, or, when
the number of gradient calls K is given, the least total time setup + K × per-gradient (so a
one-off cost such as a JAX compile or a SymPy derivation counts only when K says it must).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..measure.exponent import cost_exponent

ACCURACY_MARGIN = 1.0
"""Digits within which of the best a method counts as accurate."""
TEXTBOOK_SMALL_N = 100
"""The textbook's boundary: below this many inputs, symbolic differentiation."""
NOTABLE_DIGITS = 0.5
"""A more accurate method than the choice is named beside it from this many digits more."""
OVERHEAD_S = 20e-6
"""An f faster than this: per-call overhead (Python, dispatch) weighs on every time and ω."""

FINITE_DIFFERENCES = "finite differences"
SYMBOLIC = "symbolic"
AUTOMATIC = "automatic differentiation"
OTHER = "other"
KINDS = {
    "central": FINITE_DIFFERENCES, "numdifftools": FINITE_DIFFERENCES,
    "scipy": FINITE_DIFFERENCES, "sympy": SYMBOLIC, "reverse": AUTOMATIC, "jax": AUTOMATIC,
    "autograd": AUTOMATIC, "torch": AUTOMATIC,
}
"""Which branch of the textbook's tree each backend stands for (a plugin not listed: other)."""
NAMES = {
    "central": "central differences", "reverse": "reverse mode (diffbench.ad)",
    "jax": "JAX", "sympy": "SymPy", "autograd": "HIPS autograd", "torch": "PyTorch",
    "numdifftools": "numdifftools", "scipy": "scipy.differentiate",
}


def _float(row: Mapping[str, str], key: str) -> float | None:
    text = row.get(key, "")
    if text in ("", None):
        return None
    value = float(text)
    return None if math.isnan(value) else value


def _int(row: Mapping[str, str], key: str) -> int | None:
    value = _float(row, key)
    return None if value is None else int(value)


@dataclass(frozen=True)
class Method:
    """One backend's row at one size, as numbers."""

    backend: str
    status: str
    variant: str = "default"
    message: str = ""
    size: int | None = None
    n_inputs: int | None = None
    digits: float | None = None
    digits_attainable: float | None = None
    time_s: float | None = None
    setup_s: float | None = None
    omega: float | None = None
    omega_numpy: float | None = None
    f_time_s: float | None = None
    rss_peak_bytes: float | None = None
    samples: int | None = None
    timing_note: str = ""
    reference_method: str = ""
    reference_same_engine: bool = False
    expr_nodes: float | None = None
    f_evals: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> Method:
        return cls(
            backend=row["backend"], status=row["status"], variant=row.get("variant") or "default",
            message=row.get("message", ""), size=_int(row, "size"),
            n_inputs=_int(row, "n_inputs"), digits=_float(row, "digits"),
            digits_attainable=_float(row, "digits_attainable"), time_s=_float(row, "time_s"),
            setup_s=_float(row, "setup_s"), omega=_float(row, "omega"),
            omega_numpy=_float(row, "omega_numpy"), f_time_s=_float(row, "f_time_s"),
            rss_peak_bytes=_float(row, "rss_peak_bytes"), samples=_int(row, "samples"),
            timing_note=row.get("timing_note", ""),
            reference_method=row.get("reference_method", ""),
            reference_same_engine=row.get("reference_same_engine", "").lower() == "true",
            expr_nodes=_float(row, "expr_nodes"), f_evals=_float(row, "f_evals"))

    @property
    def label(self) -> str:
        return self.backend if self.variant == "default" else f"{self.backend} ({self.variant})"

    @property
    def name(self) -> str:
        """The method in words, for the verdict."""
        return NAMES.get(self.backend, self.backend) + (
            "" if self.variant == "default" else f" ({self.variant})")

    @property
    def kind(self) -> str:
        return KINDS.get(self.backend, OTHER)

    @property
    def measured(self) -> bool:
        """The case is ``ok`` and has a time per gradient."""
        return self.status == "ok" and self.time_s is not None

    @property
    def one_off_s(self) -> float:
        return self.setup_s or 0.0

    def total_s(self, calls: int) -> float:
        """The time of ``calls`` gradients: the one-off cost once, then each gradient."""
        return self.one_off_s + calls * self.time_s

    def caveats(self) -> list[str]:
        """Where this row's figures could mislead."""
        notes = []
        if self.samples is not None and self.samples < 3:
            notes.append(f"{self.samples} timing sample(s): no spread to judge the time by")
        elif self.timing_note:
            notes.append("unstable timing (timing_note in the run's CSV says why)")
        if self.f_time_s is not None and self.f_time_s < OVERHEAD_S:
            notes.append(f"f takes {self.f_time_s * 1e6:.2g} µs: per-call overhead weighs on "
                         "the time and ω")
        if self.omega is not None and self.omega < 1:
            notes.append("ω < 1: the gradient ran faster than f as this backend runs it (a "
                         "compiler fused or dropped work); omega_numpy compares across backends")
        if self.reference_same_engine:
            notes.append("the reference comes from this engine (in mpmath numbers): its digits "
                         "check rounding, not the derivative rules")
        return notes


def break_even(method: Method, baseline: Method) -> int | None:
    """The number of gradient calls from which ``method`` in total (one-off cost included)
    takes no longer than ``baseline``: 1 where it does from the first call, None where it
    never does (it is no cheaper per gradient and costs more up front)."""
    if method.total_s(1) <= baseline.total_s(1):
        return 1
    if method.time_s >= baseline.time_s:
        return None
    calls = max(1, math.ceil((method.one_off_s - baseline.one_off_s)
                             / (baseline.time_s - method.time_s)))
    # the quotient's rounding may miss the count by one either way: settle it on the totals
    while calls > 1 and method.total_s(calls - 1) <= baseline.total_s(calls - 1):
        calls -= 1
    while method.total_s(calls) > baseline.total_s(calls):
        calls += 1
    return calls


@dataclass(frozen=True)
class Verdict:
    """The choice at one size, and what it was chosen from.

    ``accurate``: the measured methods within ``ACCURACY_MARGIN`` of ``best_digits`` (every
    measured one when no row has digits: no reference); ``baseline``: the accurate method
    whose first gradient (one-off cost included) comes soonest, against which break-even
    calls are counted; ``cheapest``: the least time per gradient over every measured method,
    accurate or not."""

    choice: Method | None
    accurate: tuple[Method, ...] = ()
    best_digits: float | None = None
    calls: int | None = None
    baseline: Method | None = None
    cheapest: Method | None = None
    measured: tuple[Method, ...] = ()

    def cost(self, method: Method) -> float:
        """What the rule minimises: time per gradient, or the total for ``calls``."""
        return method.time_s if self.calls is None else method.total_s(self.calls)


def choose(methods: Iterable[Method], calls: int | None = None) -> Verdict:
    """The rule of the module docstring, applied to the methods of one size."""
    measured = tuple(m for m in methods if m.measured)
    if not measured:
        return Verdict(None, calls=calls)
    with_digits = [m for m in measured if m.digits is not None]
    best = max((m.digits for m in with_digits), default=None)
    accurate = (tuple(m for m in with_digits if m.digits >= best - ACCURACY_MARGIN)
                if best is not None else measured)
    verdict = Verdict(None, accurate, best, calls, measured=measured)
    order = sorted(accurate, key=lambda m: (verdict.cost(m), -(m.digits or 0.0), m.label))
    baseline = min(accurate, key=lambda m: (m.total_s(1), m.label))
    cheapest = min(measured, key=lambda m: (m.time_s, m.label))
    return Verdict(order[0], accurate, best, calls, baseline, cheapest, measured)


def _times(ratio: float) -> str:
    """A ratio for people: 5.51×, 563×, 2100×, 3.1·10^5×."""
    if ratio < 100:
        return f"{ratio:.3g}×"
    if ratio < 1e5:
        return f"{float(f'{ratio:.2g}') if ratio >= 1e3 else round(ratio):.0f}×"
    exponent = int(math.floor(math.log10(ratio)))
    return f"{ratio / 10**exponent:.2g}·10^{exponent}×"


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def _calls(count: int) -> str:
    if count < 10_000:
        return f"{count} call{'s' if count != 1 else ''}"
    exponent = int(math.floor(math.log10(count)))
    return f"{count / 10**exponent:.2g}·10^{exponent} calls"


def verdict_text(verdict: Verdict, methods: Sequence[Method]) -> str:
    """The short verdict: the choice with its figures, then what the alternatives would
    cost, each from the same rows."""
    choice = verdict.choice
    if choice is None:
        return "no method produced a gradient here: see each row's status and message"
    parts = [f"use {choice.name}: "
             + (f"{choice.digits:.1f} digits" if choice.digits is not None else
                "accuracy unknown (no reference)")
             + f", {_seconds(choice.time_s)} per gradient"
             + (f" (ω {choice.omega:.2g})" if choice.omega is not None else "")
             + (f", {_seconds(choice.one_off_s)} one-off" if choice.one_off_s >= 1e-3 else "")
             + ("" if verdict.calls is None else
                f", {_seconds(choice.total_s(verdict.calls))} for {_calls(verdict.calls)}")]
    if verdict.calls is None and verdict.baseline is not None and verdict.baseline != choice:
        pays = break_even(choice, verdict.baseline)
        if pays is not None and pays > 1:
            parts.append(f"its one-off cost pays off against {verdict.baseline.name} "
                         f"after {_calls(pays)} (--calls K weighs one-off costs for K calls)")
    shown = {choice.backend}
    fd = [m for m in verdict.measured if m.kind == FINITE_DIFFERENCES and m != choice]
    if fd and choice.kind != FINITE_DIFFERENCES:
        best_fd = min(fd, key=lambda m: m.time_s)
        shown.add(best_fd.backend)
        ratio = best_fd.time_s / choice.time_s
        cost = (f"{_times(ratio)} more" if ratio >= 1 else f"{_times(1 / ratio)} less")
        lost = ("" if best_fd.digits is None or choice.digits is None else
                f" and {'lose' if choice.digits >= best_fd.digits else 'gain'} "
                f"{abs(choice.digits - best_fd.digits):.1f} digits")
        parts.append(f"{best_fd.name} would cost {cost} per gradient{lost}")
    best = max((m for m in verdict.accurate if m.digits is not None),
               key=lambda m: (m.digits, -m.time_s), default=None)
    if (best is not None and best.backend not in shown
            and best.digits >= choice.digits + NOTABLE_DIGITS):
        shown.add(best.backend)
        parts.append(f"the most accurate, {best.name}, gives {best.digits:.1f} digits at "
                     f"{_times(best.time_s / choice.time_s)} the time per gradient")
    for method in methods:
        if method.backend in shown or method.kind != SYMBOLIC:
            continue
        shown.add(method.backend)
        if not method.measured:
            parts.append(_failed(method))
            continue
        text = f"{method.name}'s one-off cost is {_seconds(method.one_off_s)}"
        pays = break_even(method, choice)
        text += (" and it never pays off against it (no cheaper per gradient)" if pays is None
                 else f" and it pays off after {_calls(pays)}")
        parts.append(text)
    cheaper = verdict.cheapest
    if cheaper is not None and cheaper.backend not in shown and cheaper.time_s < choice.time_s:
        if cheaper.digits is not None:
            parts.append(f"if {cheaper.digits:.1f} digits are enough, {cheaper.name} is "
                         f"{_times(choice.time_s / cheaper.time_s)} cheaper per gradient")
    return "; ".join(parts)


def _failed(method: Method) -> str:
    """A method without a gradient, in a clause: its status and the first words of why."""
    reason = _first_clause(method.message).split(" (timing.budget_s)")[0]
    return f"{method.name} gave no gradient ({method.status}" + (
        f": {reason})" if reason else ")")


def _first_clause(message: str) -> str:
    return message.split(";")[0].strip()


@dataclass(frozen=True)
class Exponent:
    """A method's cost exponent over the measured sizes (``measure.exponent``)."""

    backend: str
    metric: str
    value: float
    ci: tuple[float, float]
    fit: str
    points: int


@dataclass(frozen=True)
class RankingChange:
    """Between two measured sizes the advice changes from one method to another; ``near`` is
    where their times cross, interpolated log-log between the two sizes (on ``axis``)."""

    low: int
    high: int
    before: str
    after: str
    near: float | None


@dataclass(frozen=True)
class Scaling:
    """The advice at each measured size, the exponents, and where the advice changes."""

    axis: str
    """What the sizes and exponents count: ``n`` (inputs) or the family's size parameter."""
    sizes: tuple[int, ...]
    winners: tuple[tuple[int, str | None], ...]
    exponents: tuple[Exponent, ...]
    changes: tuple[RankingChange, ...]
    methods: tuple[Method, ...] = field(default=())


def _axis_value(method: Method, axis: str) -> float:
    return float(method.n_inputs if axis == "n" else method.size)


def scaling(methods: Sequence[Method], calls: int | None, size_param: str | None) -> Scaling:
    """The rule at every measured size, and each method's exponent of time (and of ``setup_s``
    where it has one) against n, or against the family's size where n does not change with it
    (a depth)."""
    sizes = sorted({m.size for m in methods if m.size is not None})
    inputs = {m.n_inputs for m in methods if m.n_inputs is not None}
    axis = "n" if len(inputs) > 1 or size_param in (None, "n") else size_param
    by_size = {size: [m for m in methods if m.size == size] for size in sizes}
    choices = {size: choose(by_size[size], calls).choice for size in sizes}
    winners = tuple((size, None if choice is None else choice.label)
                    for size, choice in choices.items())
    exponents = []
    for label in dict.fromkeys(m.label for m in methods):
        rows = [m for m in methods if m.label == label and m.measured]
        for metric in ("time_s", "setup_s"):
            points = [(_axis_value(m, axis), getattr(m, metric)) for m in rows
                      if getattr(m, metric)]
            fit = cost_exponent([p for p, _ in points], [v for _, v in points])
            if fit is not None and not (metric == "setup_s" and max(v for _, v in points) < 1e-3):
                exponents.append(Exponent(label, metric, fit.value, fit.ci, fit.method,
                                          fit.points))
    changes = []
    measured = [(size, label) for size, label in winners if label is not None]
    for (low, before), (high, after) in zip(measured, measured[1:], strict=False):
        both = all(any(m.label == label and m.measured for m in by_size[size])
                   for size in (low, high) for label in (before, after))
        if before != after and both:  # a change only where both were measured at both sizes
            changes.append(RankingChange(low, high, before, after,
                                         _crossing(by_size, axis, low, high, before, after)))
    return Scaling(axis, tuple(sizes), winners, tuple(exponents), tuple(changes),
                   tuple(methods))


def _crossing(by_size, axis: str, low: int, high: int, before: str, after: str) -> float | None:
    """Where log(t_before / t_after) reaches 0 on the log-log line between the two sizes."""
    def time(size, label):
        found = [m for m in by_size[size] if m.label == label and m.measured]
        return (_axis_value(found[0], axis), found[0].time_s) if found else (None, None)

    (x0, a0), (x1, a1) = time(low, before), time(high, before)
    (_, b0), (_, b1) = time(low, after), time(high, after)
    if None in (x0, x1, a0, a1, b0, b1) or x0 == x1:
        return None
    r0, r1 = math.log(a0 / b0), math.log(a1 / b1)
    if r0 == r1 or r0 * r1 > 0:
        return None
    t = r0 / (r0 - r1)
    return math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0)))


@dataclass(frozen=True)
class Textbook:
    """The branch of the textbook's tree the function falls on, and whether the measurements
    agree; ``reasons`` say why not (or what the agreement rests on)."""

    branch: str
    expects: str
    agrees: bool
    reasons: tuple[str, ...]


def textbook(n_inputs: int, verdict: Verdict, methods: Sequence[Method],
             scaled: Scaling | None = None) -> Textbook:
    """n < 100: symbolic; otherwise automatic differentiation for the best accuracy, finite
    differences where accuracy is not needed; checked against ``verdict``."""
    choice = verdict.choice
    reasons: list[str] = []
    if n_inputs < TEXTBOOK_SMALL_N:
        branch = (f"n = {n_inputs} < {TEXTBOOK_SMALL_N}: symbolic differentiation")
        expects = SYMBOLIC
        agrees = choice is not None and choice.kind == SYMBOLIC
        if not agrees:
            reasons.extend(_why_not_symbolic(verdict, methods, scaled))
    else:
        branch = (f"n = {n_inputs} ≥ {TEXTBOOK_SMALL_N}: automatic differentiation for the best "
                  "accuracy, finite differences if accuracy is not needed")
        expects = AUTOMATIC
        agrees = choice is not None and choice.kind == AUTOMATIC
        if not agrees and choice is not None:
            if any(m.kind == AUTOMATIC for m in verdict.measured):
                reasons.append(f"{choice.name} ({choice.kind}) is within "
                               f"{ACCURACY_MARGIN:g} digit of the best and cheaper than every "
                               "automatic differentiation method measured")
            else:
                reasons.append("no automatic differentiation method produced a gradient")
        fd_half = _finite_difference_half(verdict)
        if fd_half:
            reasons.append(fd_half)
            agrees = agrees and not fd_half.startswith("but")
    if choice is None:
        reasons.append("no method produced a gradient, so nothing confirms either branch")
    return Textbook(branch, expects, agrees, tuple(reasons))


def _finite_difference_half(verdict: Verdict) -> str:
    """Whether finite differences are the cheaper, less accurate option the textbook says."""
    ad = [m for m in verdict.measured if m.kind == AUTOMATIC]
    fd = [m for m in verdict.measured if m.kind == FINITE_DIFFERENCES]
    if not ad or not fd:
        return ""
    best_ad, best_fd = min(ad, key=lambda m: m.time_s), min(fd, key=lambda m: m.time_s)
    ratio = best_fd.time_s / best_ad.time_s
    if ratio > 1:
        return (f"but finite differences are no cheaper here: {best_fd.name} takes "
                f"{_times(ratio)} the time per gradient of {best_ad.name}, so no accuracy is "
                "worth trading for them")
    return (f"finite differences are the cheaper option the textbook says: {best_fd.name} "
            f"takes {_times(ratio)} the time per gradient of {best_ad.name}")


def _why_not_symbolic(verdict: Verdict, methods: Sequence[Method],
                      scaled: Scaling | None) -> list[str]:
    symbolic = [m for m in methods if m.kind == SYMBOLIC]
    if not symbolic:
        return ["no symbolic method was measured"]
    reasons = []
    choice = verdict.choice
    for method in symbolic:
        if not method.measured:
            reasons.append(_failed(method))
        elif method not in verdict.accurate:
            reasons.append(f"{method.name} gives {method.digits:.1f} digits, more than "
                           f"{ACCURACY_MARGIN:g} below the best {verdict.best_digits:.1f}")
        elif choice is not None:
            if verdict.calls is not None and method.time_s < choice.time_s:
                reasons.append(f"{method.name} is cheaper per gradient, but its one-off "
                               f"{_seconds(method.one_off_s)} does not pay within "
                               f"{_calls(verdict.calls)}")
            else:
                reasons.append(f"{method.name}'s gradient costs "
                               f"{_times(method.time_s / choice.time_s)} {choice.name}'s per "
                               "call")
    swell = _swell(scaled)
    if swell:
        reasons.append(swell)
    growth = _one_off_growth(scaled)
    if growth:
        reasons.append(growth)
    return reasons


def _one_off_growth(scaled: Scaling | None) -> str:
    """SymPy's one-off cost at each measured size, where it was measured at more than one or
    failed at some."""
    if scaled is None:
        return ""
    rows = sorted((m for m in scaled.methods if m.kind == SYMBOLIC and m.status != "skipped"),
                  key=lambda m: m.size or 0)
    if len(rows) < 2 or not any(m.measured for m in rows):
        return ""
    parts = [(f"{_seconds(m.one_off_s)} at {m.size}"
              + (f" ({m.expr_nodes:.0f} nodes)" if m.expr_nodes else "")) if m.measured
             else f"{m.status} at {m.size}" for m in rows]
    return f"{rows[0].name}'s one-off cost by {scaled.axis}: " + ", ".join(parts)


def _swell(scaled: Scaling | None) -> str:
    """How the symbolic gradient's size grows over the measured sizes, where it was sized."""
    if scaled is None:
        return ""
    rows = sorted((m for m in scaled.methods if m.kind == SYMBOLIC and m.measured
                   and m.expr_nodes), key=lambda m: m.size or 0)
    if len(rows) < 2:
        return ""
    first, last = rows[0], rows[-1]
    if scaled.axis == "n":
        growth = math.log(last.expr_nodes / first.expr_nodes) / math.log(
            last.n_inputs / first.n_inputs)
        return (f"the symbolic gradient grows as n^{growth:.2f} in nodes "
                f"({first.expr_nodes:.0f} at n = {first.n_inputs}, {last.expr_nodes:.0f} at "
                f"n = {last.n_inputs})")
    per_step = (last.expr_nodes / first.expr_nodes) ** (1.0 / (last.size - first.size))
    return (f"the symbolic gradient swells ×{per_step:.2f} per unit of {scaled.axis} "
            f"({first.expr_nodes:.0f} nodes at {first.size}, {last.expr_nodes:.0f} at "
            f"{last.size})")
