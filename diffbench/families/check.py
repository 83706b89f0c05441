"""A custom function tried once at its point before anything runs, under a time cap (and a
scaling family's point maker at one size).

The refusals, each a :class:`CustomFunctionError` whose message says what to change: the
function raises (``SystemExit`` included) or does not return within the cap; its result is
not one finite real number (``None``, a string, a vector, a complex number, NaN); it changes
its input (``x *= 1.5``: every method calls it many times on the same x); it works on numpy
arrays but not on the engine's traced values (numpy written instead of ``ops``).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..deadline import Deadline, TimeUp
from .base import Function
from .custom import CustomFunctionError

OPS_HINT = ("write it over the ops namespace it is given (ops.sin, ops.sum, …) instead of "
            "numpy, and do not call float() or np.* on x")


class _Raised(Exception):
    """The function raised ``cause`` (the message names its type and says what it said)."""

    def __init__(self, cause: BaseException):
        super().__init__(f"{type(cause).__name__}: {cause}")


class PointOutsideDomain(CustomFunctionError):
    """f is not finite at its point: the point, not the function, is what to change."""


def _call(fn: Function, x: np.ndarray, ops: object, spec: str, cap_s: float,
          cap_key: str) -> object:
    """``fn(x, ops)`` within ``cap_s`` seconds: what it raised as ``_Raised``, and running
    past the cap as ``CustomFunctionError``."""
    cap = Deadline(cap_s, "")
    try:
        with cap, warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return fn(x, ops)
    except TimeUp as exc:
        if not cap.owns(exc):
            raise
        raise CustomFunctionError(f"{spec} did not return within {cap_s:g} s at its point "
                                  f"({cap_key}): does it loop?") from None
    except (Exception, SystemExit) as exc:
        raise _Raised(exc) from exc


def _real_number(spec: str, value: object, point: np.ndarray) -> float:
    if np.ndim(value) != 0:
        raise CustomFunctionError(f"{spec} must return a scalar; it returned shape "
                                  f"{np.shape(value)}")
    number = np.asarray(value)
    if number.dtype.kind not in "iuf":
        raise CustomFunctionError(f"{spec} must return a finite real number; at its point it "
                                  f"returned {value!r} ({type(value).__name__})")
    if not np.isfinite(number):
        raise PointOutsideDomain(f"{spec} returned {float(number)} at its point {_short(point)}:"
                                  " the point must be inside f's domain")
    return float(number)


def _short(point: np.ndarray) -> str:
    values = ", ".join(f"{v:g}" for v in point[:4])
    return f"[{values}{', …' if point.size > 4 else ''}]"


def check_function(fn: Function, point: np.ndarray, spec: str, cap_s: float,
                   cap_key: str = "timing.budget_s") -> None:
    """Refuse ``fn`` (named ``spec``) unless, at ``point``, it returns one finite real number
    within ``cap_s`` seconds (``cap_key`` names that setting), leaves its input as it was,
    and traces in diffbench's engine; raises ``CustomFunctionError`` saying which failed."""
    from .. import ad

    x = point.copy()
    try:
        value = _call(fn, x, np, spec, cap_s, cap_key)
    except _Raised as exc:
        raise CustomFunctionError(f"{spec} raised {exc} at its point {_short(point)}") from None
    _real_number(spec, value, point)
    changed = np.flatnonzero(~((x == point) | (np.isnan(x) & np.isnan(point))))
    if changed.size:
        i = int(changed[0])
        raise CustomFunctionError(
            f"{spec} changes its input (x[{i}]: {point[i]:g} → {x[i]:g}): every method calls "
            "it many times on the same x; compute a new array (x = x * 1.5, not x *= 1.5)")
    try:
        _call(lambda x, ops: ad.value_and_grad(lambda t: fn(t, ops))(x), point.copy(), ad,
              spec, cap_s, cap_key)
    except _Raised as exc:
        raise CustomFunctionError(
            f"{spec} works on numpy arrays but not on traced values (diffbench's engine: "
            f"{exc}): {OPS_HINT}") from None


def point_at(make_point, size: int, spec: str, cap_s: float,
             cap_key: str = "timing.budget_s") -> np.ndarray:
    """``make_point(size)`` (named ``spec``) as a vector, refused unless it is a non-empty
    vector of finite numbers returned within ``cap_s`` seconds."""
    try:
        point = _call(lambda size, ops: make_point(size), size, None, spec, cap_s, cap_key)
    except _Raised as exc:
        raise CustomFunctionError(f"{spec}({size}) raised {exc}") from None
    try:
        vector = np.asarray(point, dtype=float)
    except (TypeError, ValueError) as exc:
        raise CustomFunctionError(f"{spec}({size}) must return a vector of numbers: "
                                  f"{exc}") from None
    if vector.ndim != 1 or vector.size == 0 or not np.all(np.isfinite(vector)):
        raise CustomFunctionError(f"{spec}({size}) must return a non-empty vector of finite "
                                  f"numbers; it returned shape {vector.shape}")
    return vector
