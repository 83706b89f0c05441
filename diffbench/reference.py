"""High-precision reference gradients, independent of every backend under test.

In order of preference: the family's closed form evaluated in the mpmath namespace; central
differences per component at ``mpmath.diff``'s step and working precision, when their estimated
cost (one measured mpmath evaluation of f × n × evaluations per component) fits the budget;
beyond it, the native reverse-mode engine run on mpmath numbers (``engine = "reverse"``: a row
measuring ``reverse`` against it checks rounding, not the rules).

Beside the gradient a reference carries its kinks (declared, and detected wherever the
reference is numerical), one note per detected kink, and the gradient's sensitivity to
relative perturbations of x.  Components that are zero to working precision are stored as 0.
References are cached on disk, keyed by values: family, size, point, precision, method,
declared kinks, and f at high precision at x0 and at seeded probe points beside it, so that
editing a constant or a helper of f gives a new reference, not the stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import mpmath
import numpy as np

from .families import Problem, coordinate_section
from .ops import mpmath_ops

DEFAULT_DIGITS = 50
DEFAULT_DIFF_BUDGET_S = 30.0
EPS = float(np.finfo(float).eps)
EXACT_SENSITIVITY_MAX_N = 8
"""Up to this many inputs the sensitivity is exact (one perturbation per input)."""
SENSITIVITY_PROBES = 3
"""Random-sign perturbations of x for the sensitivity beyond ``EXACT_SENSITIVITY_MAX_N``."""
KEY_PROBES = 2
LARGE_N = 100_000
"""From this many inputs, where one evaluation of f at high precision takes seconds, the key
and the sensitivity take one probe each instead of ``KEY_PROBES`` and
``SENSITIVITY_PROBES``."""


def sensitivity_probes(n: int) -> int:
    return 1 if n >= LARGE_N else SENSITIVITY_PROBES


def key_probes(n: int) -> int:
    return 1 if n >= LARGE_N else KEY_PROBES
"""Points beside x0 at which f enters the cache key."""
ADDPREC = 10
"""``mpmath.diff``'s default extra precision (bits) for its step."""
CACHE_VERSION = "2"


@dataclass(frozen=True)
class Reference:
    """A gradient to ``digits`` digits, kept as mpmath strings; ``method`` says how.

    ``kinks`` (sorted) are the declared kinks and those detected, where f has no derivative:
    their values are not derivatives (a declared kink holds the method's convention, a
    detected one the mean of its one-sided derivatives) and no error is measured there;
    ``kink_notes`` says, per detected kink, what was found.  ``sensitivity`` is
    S ≈ ‖ |H| |x| ‖∞ (see ``sensitivity``).  ``engine`` names the backend whose rules computed
    the reference (``"reverse"`` for ``reverse-mpmath``), else None.
    """

    values: tuple[str, ...]
    method: str
    digits: int
    kinks: tuple[int, ...] = ()
    kink_notes: tuple[str, ...] = ()
    sensitivity: float = 0.0
    engine: str | None = None

    def as_float(self) -> np.ndarray:
        """Each value correctly rounded to float64 (Python parses decimal strings exactly)."""
        return np.array(self.values, dtype=float)

    def as_mpf(self) -> np.ndarray:
        with mpmath.workdps(self.digits):
            return mpmath_ops.asarray([mpmath.mpf(v) for v in self.values])


class NoReference(Exception):
    """No method can give this problem's reference within the configured limits."""


def cache_dir() -> Path:
    root = os.environ.get("DIFFBENCH_CACHE") or Path.home() / ".cache" / "diffbench"
    return Path(root) / "references"


@dataclass(frozen=True)
class Steps:
    """``mpmath.diff``'s first-derivative step ``h`` and working precision ``work`` (bits) at
    ``digits`` digits, and a ``wide`` step 2^((prec+10)/2) times larger.

    The gap between the one-sided slopes (f(x+h) − f(x))/h and (f(x) − f(x−h))/h tells a kink
    (it keeps its size as the step grows to ``wide``) from curvature (it grows with the step)
    and from rounding noise (it shrinks).
    """

    digits: int
    prec: int
    work: int
    h: mpmath.mpf
    wide: mpmath.mpf

    @classmethod
    def at(cls, digits: int) -> Steps:
        with mpmath.workdps(digits):
            prec = mpmath.mp.prec
        return cls(digits, prec, 2 * (prec + 2 * ADDPREC), mpmath.ldexp(1, -prec - ADDPREC),
                   mpmath.ldexp(1, -(prec + ADDPREC) // 2))


def _value(value: object) -> mpmath.mpf:
    """f's result as a real mpf; a complex value (f evaluated outside its real domain)
    raises a ``ValueError`` that shows it to 6 digits."""
    if isinstance(value, mpmath.mpc):
        if value.imag:
            raise ValueError(f"f is complex there, {mpmath.nstr(value, 6)}: outside its real "
                             "domain")
        value = value.real
    return mpmath.mpf(value)


def closed_form(problem: Problem, digits: int, x: np.ndarray | None = None) -> np.ndarray:
    """The family's closed-form gradient at ``x`` (default x0), at ``digits`` digits."""
    with mpmath.workdps(digits):
        x = mpmath_ops.asarray(problem.x0 if x is None else x)
        return mpmath_ops.asarray(np.broadcast_to(np.asarray(problem.gradient(x, mpmath_ops),
                                                             dtype=object), x.shape))


def mpmath_diff(problem: Problem, digits: int, x: np.ndarray | None = None) -> np.ndarray:
    """∂f/∂x_i at ``x`` (default x0) by the central difference ``mpmath.diff`` takes:
    (f(x + h e_i) − f(x − h e_i)) / 2h at its step and working precision."""
    steps = Steps.at(digits)
    with mpmath.workprec(steps.work):
        x = mpmath_ops.asarray(problem.x0 if x is None else x)
        grad = np.empty(x.shape, dtype=object)
        for i in range(x.size):
            along = coordinate_section(problem.fn, x, i, mpmath_ops)
            grad[i] = (_value(along(x[i] + steps.h)) - _value(along(x[i] - steps.h))) / (
                2 * steps.h)
        return grad


def reverse_mpmath(problem: Problem, digits: int, x: np.ndarray | None = None) -> np.ndarray:
    """The native engine's gradient at ``x`` (default x0), computed in mpmath numbers."""
    from . import ad

    with mpmath.workdps(digits):
        x = mpmath_ops.asarray(problem.x0 if x is None else x)
        return ad.grad(lambda x: problem.fn(x, ad))(x)


METHODS: dict[str, Callable[..., np.ndarray]] = {
    "closed-form": closed_form, "mpmath-diff": mpmath_diff, "reverse-mpmath": reverse_mpmath}


def diff_evaluations(n: int) -> int:
    """Evaluations of f per component that the ``mpmath-diff`` reference costs: two for the
    central difference, two for each perturbation that the sensitivity needs."""
    perturbations = n if n <= EXACT_SENSITIVITY_MAX_N else sensitivity_probes(n)
    return 2 * (1 + perturbations)


def choose_method(problem: Problem, f_seconds: float, diff_budget_s: float) -> str:
    """The closed form if there is one; else ``mpmath-diff`` if its estimated cost
    ``f_seconds`` × n × ``diff_evaluations(n)`` fits ``diff_budget_s``; else ``reverse-mpmath``."""
    if problem.gradient is not None:
        return "closed-form"
    if f_seconds * problem.n * diff_evaluations(problem.n) <= diff_budget_s:
        return "mpmath-diff"
    return "reverse-mpmath"


# --- kinks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kink:
    """One detected point where f is not differentiable along x[``index``]: ``left`` and
    ``right`` are the one-sided derivatives, ``jump`` is f's jump there (None at a kink,
    where f is continuous); or, with ``end``, a range of components [``index``, ``end``) that
    holds such points, not located within the budget."""

    index: int
    left: mpmath.mpf | None = None
    right: mpmath.mpf | None = None
    jump: mpmath.mpf | None = None
    end: int | None = None

    def note(self) -> str:
        if self.end is not None:
            return (f"kinks detected in x[{self.index}:{self.end}], not located within "
                    "reference.diff_budget_s: no error is measured there")
        sides = f"one-sided derivatives {float(self.left):.6g} and {float(self.right):.6g}"
        if self.jump is not None:
            return (f"discontinuity at x[{self.index}] detected: f jumps by "
                    f"{float(self.jump):.6g}; {sides}")
        return f"kink at x[{self.index}] detected: {sides}"


def nonsmooth(line: Callable[[object], object], f0: mpmath.mpf, minus: mpmath.mpf,
              plus: mpmath.mpf, steps: Steps) -> tuple | None:
    """(left, right, jump) where t ↦ line(t) is not differentiable at 0, else None, given
    f0 = line(0) and line(∓h) (inside ``mpmath.workprec(steps.work)``).

    The one-sided slopes at the step h are compared: a gap below 10^(-digits/2) of them is
    smoothness.  A larger one is measured again at the wide step: a kink's gap keeps its size
    (within √ratio of the steps), curvature's grows by the ratio, and a jump's shrinks by it,
    as rounding noise's does, but a jump moves f by more than 10^(-digits/2) of |f|.  The
    one-sided derivatives are then those of the pieces either side, between the two steps,
    so that a jump does not enter them; ``jump`` is None at a kink.
    """
    h, wide = steps.h, steps.wide
    half = mpmath.mpf(10) ** (-steps.digits / 2)
    left, right = (f0 - minus) / h, (plus - f0) / h
    gap = abs(right - left)
    if not gap > half * max(abs(left), abs(right)):
        return None
    far_minus, far_plus = _value(line(-wide)), _value(line(wide))
    ratio = wide / h
    change = abs((far_plus - f0) - (f0 - far_minus)) / wide / gap
    left, right = (minus - far_minus) / (wide - h), (far_plus - plus) / (wide - h)
    if ratio ** -0.5 < change < ratio ** 0.5:
        return left, right, None
    jump = (plus - right * h) - (minus + left * h)
    if change <= ratio ** -0.5 and abs(jump) > half * max(abs(f0), abs(minus), abs(plus)):
        return left, right, jump
    return None


def central_with_kinks(problem: Problem, x: np.ndarray, f0: mpmath.mpf,
                       steps: Steps) -> tuple[np.ndarray, list[Kink], np.ndarray]:
    """``mpmath_diff``'s gradient, the undeclared kinks found per component from the same
    evaluations (plus f(x0); ``nonsmooth`` evaluates f twice more only where the one-sided
    slopes disagree), and the gaps between those slopes (h |∂²f/∂x_i²| where f is smooth)."""
    with mpmath.workprec(steps.work):
        grad = np.empty(x.shape, dtype=object)
        gaps = np.empty(x.shape, dtype=object)
        kinks = []
        for i in range(x.size):
            along = coordinate_section(problem.fn, x, i, mpmath_ops)
            xi = x[i]

            def line(t, along=along, xi=xi):
                return along(xi + t)

            minus, plus = _value(line(-steps.h)), _value(line(steps.h))
            grad[i] = (plus - minus) / (2 * steps.h)
            gaps[i] = abs(plus - 2 * f0 + minus) / steps.h
            found = None if i in problem.kinks else nonsmooth(line, f0, minus, plus, steps)
            if found is not None:
                kinks.append(Kink(i, *found))
        return grad, kinks, gaps


def locate_kinks(problem: Problem, x: np.ndarray, f0: mpmath.mpf, steps: Steps,
                 budget_s: float) -> list[Kink]:
    """Undeclared kinks at a bounded cost: one-sided derivatives of f along a seeded Gaussian
    direction (two to four evaluations of f), then, only if they disagree, bisection over
    ranges of components (the direction restricted to each half) down to single components.

    Ranges still open after ``budget_s`` seconds are reported whole.
    """
    started = time.perf_counter()
    direction = np.random.default_rng([problem.n, 7]).standard_normal(problem.n)
    direction[list(problem.kinks)] = 0.0

    def test(lo: int, hi: int):
        """Along the direction restricted to x[lo:hi] (along e_lo for a single component)."""
        step = direction[lo:hi] if hi - lo > 1 else np.ones(1)

        def line(t):
            moved = x.copy()
            moved[lo:hi] = x[lo:hi] + step * t
            return problem.fn(moved, mpmath_ops)

        return nonsmooth(line, f0, _value(line(-steps.h)), _value(line(steps.h)), steps)

    found, pending = [], [(0, problem.n)]
    with mpmath.workprec(steps.work):
        direction = mpmath_ops.asarray(direction)
        while pending:
            lo, hi = pending.pop(0)
            if hi - lo == 1 and lo in problem.kinks:
                continue
            kink = test(lo, hi)
            if kink is not None and hi - lo == 1:
                found.append(Kink(lo, *kink))
            elif kink is not None:
                middle = (lo + hi) // 2
                pending += [(lo, middle), (middle, hi)]
            if pending and time.perf_counter() - started > budget_s:
                found += [Kink(lo, end=hi) for lo, hi in pending]
                break
    return sorted(found, key=lambda k: k.index)


def kink_indices(kinks: list[Kink]) -> set[int]:
    return {i for k in kinks
            for i in (range(k.index, k.end) if k.end is not None else (k.index,))}


# --- sensitivity ---------------------------------------------------------------------------


def sensitivity(gradient_at: Callable[[np.ndarray], np.ndarray], x0: np.ndarray,
                grad: np.ndarray, kinks: set[int], digits: int) -> float:
    """S ≈ ‖ |H| |x| ‖∞: how much the gradient moves under relative perturbations of x, per
    unit of relative perturbation (so eps·S is the gradient's change under float64's rounding
    of x).  ``gradient_at`` is the reference's own method, ``grad`` its gradient at ``x0``.

    Up to ``EXACT_SENSITIVITY_MAX_N`` inputs exactly: S = max_i Σ_j |Δ_j g_i| / τ over the
    perturbations x_j → x_j (1 + τ).  Beyond, a lower estimate: the max over
    ``sensitivity_probes(n)`` seeded random-sign perturbations δ_j = ±τ |x_j| of
    ‖g(x + δ) − g(x)‖∞ / τ.  τ = min(eps, 10^(-digits/2)) keeps the perturbed points within
    float64's rounding of x (S is the linear response, the same to first order as with eps)
    and leaves digits/2 digits to each difference.  Kink components are neither perturbed
    nor measured.
    """
    n = x0.size
    keep = np.array([i not in kinks for i in range(n)])
    if not keep.any():
        return 0.0
    tau = min(EPS, 10.0 ** -(digits / 2))
    with mpmath.workdps(digits):
        x = mpmath_ops.asarray(x0)
        base = np.asarray(grad, dtype=object)
        if n <= EXACT_SENSITIVITY_MAX_N:
            total = np.zeros(n, dtype=object)
            for j in np.flatnonzero(keep):
                if x[j] == 0:
                    continue
                moved = x.copy()
                moved[j] = x[j] * (1 + mpmath.mpf(tau))
                total = total + mpmath_ops.abs(gradient_at(moved) - base)
            largest = max(total[keep])
        else:
            rng = np.random.default_rng([n, 3])
            largest = mpmath.mpf(0)
            for _ in range(sensitivity_probes(n)):
                signs = np.where(keep, rng.choice([-1.0, 1.0], n), 0.0)
                moved = x + mpmath_ops.asarray(signs * tau * np.abs(x0))
                change = mpmath_ops.abs(gradient_at(moved) - base)
                largest = max(largest, max(change[keep]))
        return float(largest / mpmath.mpf(tau))


# --- the reference -------------------------------------------------------------------------


def zero_to_precision(grad: np.ndarray, kinks: set[int], scale: mpmath.mpf, digits: int,
                      floors: np.ndarray | None = None) -> np.ndarray:
    """``grad`` with every component that is not a kink and is zero to working precision set
    to exactly 0: |g_i| ≤ 10^-digits · max(‖g‖∞, ``scale``) (the norm over components that
    are not kinks; ``scale`` bounds what is tiny where the whole gradient is), or
    |g_i| ≤ ``floors[i]``.

    Central differences leave residues like 1e-106 where a derivative is zero; their floor is
    the gap between the one-sided slopes, h |∂²f/∂x_i²|: a derivative below it puts a
    stationary point of the section within the step h of x_i.
    """
    with mpmath.workdps(digits):
        norm = max([abs(g) for i, g in enumerate(grad) if i not in kinks], default=0)
        bound = mpmath.mpf(10) ** -digits * max(norm, scale)
        floors = np.zeros(grad.size, dtype=object) if floors is None else floors
        return np.array([mpmath.mpf(0) if i not in kinks and abs(g) <= max(bound, floors[i])
                         else g for i, g in enumerate(grad)], dtype=object)


def _evaluate(problem: Problem, x: np.ndarray, digits: int) -> str:
    """f at ``x`` to ``digits`` digits, as text; an error, named, where f fails there."""
    with mpmath.workdps(digits):
        try:
            return mpmath.nstr(_value(problem.fn(mpmath_ops.asarray(x), mpmath_ops)), digits)
        except Exception as exc:
            return f"raises {type(exc).__name__}"


def probe_points(problem: Problem, digits: int) -> list[np.ndarray]:
    """``key_probes(n)`` seeded points beside x0: x0_j (1 + 10^(-digits/2) u_j) (or
    10^(-digits/2) u_j where x0_j = 0), u uniform in [−1, 1], as mpf arrays at ``digits``.

    So close that f's float64 behaviour is that at x0, yet f's high-precision values there
    follow its gradient, so a change of the gradient alone changes them."""
    rng = np.random.default_rng([problem.n, 11])
    scale = np.where(problem.x0 != 0.0, np.abs(problem.x0), 1.0) * 10.0 ** -(digits / 2)
    with mpmath.workdps(digits):
        x = mpmath_ops.asarray(problem.x0)
        return [x + mpmath_ops.asarray(scale * rng.uniform(-1.0, 1.0, problem.n))
                for _ in range(key_probes(problem.n))]


def _key(problem: Problem, digits: int, method: str, values: list[str]) -> str:
    family = problem.key
    parts = [CACHE_VERSION, family, str(problem.size), method, str(digits),
             hashlib.sha1(problem.x0.tobytes()).hexdigest(), repr(problem.kinks), *values]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def _read(path: Path) -> Reference | None:
    try:
        cached = json.loads(path.read_text())
        return Reference(**{**cached, "values": tuple(cached["values"]),
                            "kinks": tuple(cached["kinks"]),
                            "kink_notes": tuple(cached["kink_notes"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def compute_reference(problem: Problem, method: str, steps: Steps, x: np.ndarray,
                      f0: mpmath.mpf, diff_budget_s: float) -> Reference:
    """The reference by ``method`` at x0 (``x``, an mpf array; ``f0`` = f(x0) at
    ``steps.work`` bits): gradient, kinks, sensitivity, zeros made exact."""
    digits = steps.digits
    floors = None
    if method == "mpmath-diff":
        grad, detected, floors = central_with_kinks(problem, x, f0, steps)
    else:
        grad = METHODS[method](problem, digits)
        detected = ([] if method == "closed-form"
                    else locate_kinks(problem, x, f0, steps, diff_budget_s))
    kinks = set(problem.kinks) | kink_indices(detected)
    with mpmath.workprec(steps.work):
        for kink in detected:
            if kink.end is None:
                grad[kink.index] = (kink.left + kink.right) / 2
    s = sensitivity(lambda moved: METHODS[method](problem, digits, moved), problem.x0, grad,
                    kinks, digits)
    grad = zero_to_precision(grad, kinks, max(mpmath.mpf(s), abs(f0)), digits, floors)
    with mpmath.workdps(digits):
        values = tuple(mpmath.nstr(v, digits + 5) for v in grad.ravel())
    return Reference(values, method, digits, tuple(sorted(kinks)),
                     tuple(k.note() for k in detected), s,
                     "reverse" if method == "reverse-mpmath" else None)


def reference_gradient(
    problem: Problem,
    digits: int = DEFAULT_DIGITS,
    diff_budget_s: float = DEFAULT_DIFF_BUDGET_S,
    use_cache: bool = True,
) -> Reference:
    """The reference gradient at ``problem.x0``; raises ``NoReference`` when it cannot be
    computed (f fails in mpmath numbers).

    Cached under a key of values (see the module's docstring); f(x0), evaluated for the key
    at the reference's working precision, also prices ``mpmath-diff`` (``choose_method``)
    and is the centre of the one-sided slopes that detect kinks.
    """
    steps = Steps.at(digits)
    try:
        with mpmath.workprec(steps.work):
            started = time.perf_counter()
            x = mpmath_ops.asarray(problem.x0)
            f0 = _value(problem.fn(x, mpmath_ops))
            f_seconds = time.perf_counter() - started
            f_text = mpmath.nstr(f0, digits + 5)
    except Exception as exc:
        raise NoReference(f"f fails in mpmath numbers: {type(exc).__name__}: {exc}") from exc
    method = choose_method(problem, f_seconds, diff_budget_s)
    probes = [_evaluate(problem, p, digits) for p in probe_points(problem, digits)]
    name = f"{_key(problem, digits, method, [f_text, *probes])}.json"
    path = cache_dir() / name
    reference = _read(path) if use_cache else None
    if reference is None:
        try:
            reference = compute_reference(problem, method, steps, x, f0, diff_budget_s)
        except Exception as exc:
            raise NoReference(f"{method} failed: {type(exc).__name__}: {exc}") from exc
        if use_cache:
            _write(path, json.dumps(asdict(reference)))
    return reference


def section_derivatives(problem: Problem, index: int, orders: tuple[int, ...],
                        digits: int = DEFAULT_DIGITS) -> tuple[float, ...]:
    """d^k f / dx_index^k at ``problem.x0`` for each k in ``orders``, by ``mpmath.diff``.

    Computed at ``digits`` digits in the mpmath namespace, then rounded to float64.
    """
    with mpmath.workdps(digits):
        x = mpmath_ops.asarray(problem.x0)
        along = coordinate_section(problem.fn, x, index, mpmath_ops)
        return tuple(float(mpmath.diff(lambda t: mpmath.mpf(along(t)), x[index], k))
                     for k in orders)
