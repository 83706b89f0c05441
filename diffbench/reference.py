"""High-precision reference gradients, independent of every backend under test.

In order of preference: the family's closed form evaluated in the mpmath namespace; mpmath's
own differentiation per component (O(n) evaluations, so capped by size); beyond that cap, the
native reverse-mode engine run on mpmath numbers (O(n), cross-checked against mpmath's
differentiation in the tests; a row measuring ``reverse`` against it says so in
``reference_method``).  Results are cached on disk, keyed by family, size, point, precision
and the functions' source.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import mpmath
import numpy as np

from .families import Problem, coordinate_section
from .families.custom import fingerprint
from .ops import mpmath_ops

DEFAULT_DIGITS = 50
DEFAULT_MAX_DIFF_SIZE = 64


@dataclass(frozen=True)
class Reference:
    """A gradient to ``digits`` digits, kept as mpmath strings; ``method`` says how."""

    values: tuple[str, ...]
    method: str
    digits: int

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


def closed_form(problem: Problem, digits: int) -> np.ndarray:
    with mpmath.workdps(digits):
        x = mpmath_ops.asarray(problem.x0)
        return mpmath_ops.asarray(np.broadcast_to(np.asarray(problem.gradient(x, mpmath_ops),
                                                             dtype=object), x.shape))


def mpmath_diff(problem: Problem, digits: int) -> np.ndarray:
    """∂f/∂x_i by ``mpmath.diff`` on f restricted to component i, each at ``digits`` digits."""
    with mpmath.workdps(digits):
        x = mpmath_ops.asarray(problem.x0)
        grad = np.empty(x.shape, dtype=object)
        for i in range(x.size):
            along = coordinate_section(problem.fn, x, i, mpmath_ops)
            grad[i] = mpmath.diff(lambda t, along=along: mpmath.mpf(along(t)), x[i])
        return grad


def reverse_mpmath(problem: Problem, digits: int) -> np.ndarray:
    """The native engine's gradient computed in mpmath numbers at ``digits`` digits."""
    from . import ad

    with mpmath.workdps(digits):
        return ad.grad(lambda x: problem.fn(x, ad))(mpmath_ops.asarray(problem.x0))


def _key(problem: Problem, digits: int, method: str) -> str:
    parts = [problem.family, str(problem.size), method, str(digits),
             hashlib.sha1(problem.x0.tobytes()).hexdigest(), fingerprint(problem.fn)]
    if problem.gradient is not None:
        parts.append(fingerprint(problem.gradient))
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def reference_gradient(
    problem: Problem,
    digits: int = DEFAULT_DIGITS,
    max_diff_size: int = DEFAULT_MAX_DIFF_SIZE,
    use_cache: bool = True,
) -> Reference:
    """The reference gradient at ``problem.x0``; raises ``NoReference`` when it cannot be
    computed (f fails in mpmath numbers)."""
    if problem.gradient is not None:
        method, compute = "closed-form", closed_form
    elif problem.n <= max_diff_size:
        method, compute = "mpmath-diff", mpmath_diff
    else:
        method, compute = "reverse-mpmath", reverse_mpmath
    path = cache_dir() / f"{_key(problem, digits, method)}.json"
    if use_cache and path.is_file():
        cached = json.loads(path.read_text())
        return Reference(tuple(cached["values"]), cached["method"], cached["digits"])
    try:
        with mpmath.workdps(digits):
            values = tuple(mpmath.nstr(v, digits + 5) for v in compute(problem, digits).ravel())
    except Exception as exc:
        raise NoReference(f"{method} failed: {type(exc).__name__}: {exc}") from exc
    reference = Reference(values, method, digits)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"method": method, "digits": digits, "values": values}))
        tmp.replace(path)
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
