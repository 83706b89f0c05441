"""Custom functions a careless or hostile user might write (the configs beside this file
name them)."""

import time

import numpy as np

CALLS = {"float64": 0}


def _float64(x) -> bool:
    return isinstance(x, np.ndarray) and x.dtype == np.float64


def returns_none(x, ops):
    ops.sum(x * x)


def returns_text(x, ops):
    return "0.5"


def returns_complex(x, ops):
    return ops.sum(x) + 1j


def mutates(x, ops):
    x *= 1.5
    return ops.sum(x * x)


def numpy_only(x, ops):
    return np.sum(np.sin(x) ** 2)


def exits(x, ops):
    raise SystemExit(3)


def exits_later(x, ops):
    """Fine once (the config check), then ``SystemExit(3)`` on every float64 call."""
    CALLS["float64"] += _float64(x)
    if CALLS["float64"] > 1:
        raise SystemExit(3)
    return ops.sum(x * x)


def spins(x, ops):
    while True:
        pass


def spins_later(x, ops):
    """Fine once (the config check), then loops on every float64 call: a function that hangs
    once a case runs it."""
    CALLS["float64"] += _float64(x)
    while CALLS["float64"] > 1:
        pass
    return ops.sum(x * x)


def spins_in_mpmath(x, ops):
    """Fine in float64 and traced; loops in mpmath numbers (the reference)."""
    while isinstance(x, np.ndarray) and x.dtype == object:
        time.sleep(0.01)
    return ops.sum(x * x)


def square(x, ops):
    return ops.sum(x * x)


def make_point(size):
    return np.linspace(-1.0, 1.0, size)


def sleeps_when_large(x, ops):
    """Σ x_i²; in float64 from 100 inputs on it sleeps for a minute: a method that runs out
    of its budget at one size, so that the larger sizes are skipped."""
    if _float64(x) and x.size >= 100:
        time.sleep(60)
    return ops.sum(x * x)
