"""Human-readable numbers for tables: seconds, bytes, ratios, digits."""

from __future__ import annotations

import math


def _number(value) -> float | None:
    if value is None or value == "":
        return None
    number = float(value)
    return None if math.isnan(number) else number


def seconds(value) -> str:
    number = _number(value)
    if number is None:
        return "–"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(number) >= scale:
            return f"{number / scale:.3g} {unit}"
    return f"{number / 1e-9:.3g} ns"


def size_in_bytes(value) -> str:
    number = _number(value)
    if number is None:
        return "–"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(number) >= scale:
            return f"{number / scale:.3g} {unit}"
    return f"{int(number)} B"


def ratio(value) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:.3g}"


def short(value) -> str:
    """Two significant digits: steps, errors and slopes in a narrow column."""
    number = _number(value)
    return "–" if number is None else f"{number:.2g}"


def digits(value) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:.1f}"


def integer(value) -> str:
    number = _number(value)
    return "–" if number is None else str(int(number))


def number(value, significant: int = 12) -> str:
    """A value shown to ``significant`` digits, without trailing zeros: 42, 3.64209261593."""
    number = _number(value)
    return "–" if number is None else f"{number:.{significant}g}"


def exponent(fit) -> str:
    """A fitted exponent with its 95 % interval, ``p [low, high]`` (an unbounded side as ∞),
    from a ``scaling_fit.csv`` row; ``–`` without one."""
    if fit is None:
        return "–"
    low, high = float(fit["ci_low"]), float(fit["ci_high"])
    start = "−∞" if math.isinf(low) else f"{low:.2f}"
    end = "∞" if math.isinf(high) else f"{high:.2f}"
    return f"{float(fit['exponent']):.2f} [{start}, {end}]"


def duration(value) -> str:
    """A span of time for people: 45 s, 12 min, 2 h 05 min."""
    number = _number(value)
    if number is None:
        return "–"
    if number < 60:
        return seconds(number)
    minutes = round(number / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
