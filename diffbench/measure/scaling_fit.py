"""Exponents of a scaling study: ``scaling.csv`` rows in, ``scaling_fit.csv`` rows out.

One fit per family × backend × variant × metric, against n, the number of inputs, over the
``ok`` rows.  Costs (times, bytes, counts) are fitted as y = a + b·n^p with the fixed
overhead a modelled (``measure.exponent.cost_exponent``); ω, a ratio of two costs that can
fall as well as grow, as a log-log line through all sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .exponent import cost_exponent
from .fit import loglog_fit

EXTRA_BYTES_FLOOR = 1024.0
"""The method's own extra memory is counted as at least this (1 kB): below it, what is left
after f's own peak and the gradient is noise of the measure, and a cost that never rises
above it does not grow."""

Row = Mapping[str, str]


def _column(*names: str) -> Callable[[Row], float | None]:
    """The first of ``names`` that the row has, as a number."""

    def value(row: Row) -> float | None:
        for name in names:
            if row.get(name):
                return float(row[name])
        return None

    return value


def extra_bytes(row: Row) -> float | None:
    """The memory a method needs beyond f's: its peak minus f's own peak measured the same
    way, minus the gradient it returns (8 bytes per input), at least ``EXTRA_BYTES_FLOOR``
    (the claim of methods that evaluate f again and again)."""
    if not (row.get("peak_bytes") and row.get("f_peak_bytes")):
        return None
    extra = float(row["peak_bytes"]) - float(row["f_peak_bytes"]) - 8.0 * float(row["n_inputs"])
    return max(extra, EXTRA_BYTES_FLOOR)


def tape_bytes(row: Row) -> float | None:
    """The memory a method holds besides the gradient it returns: its peak minus 8 bytes per
    input, at least ``EXTRA_BYTES_FLOOR`` (the claim of a tape, which keeps f's intermediate
    values: f's own peak is part of it, not subtracted)."""
    if not row.get("peak_bytes"):
        return None
    return max(float(row["peak_bytes"]) - 8.0 * float(row["n_inputs"]), EXTRA_BYTES_FLOOR)


COSTS: dict[str, Callable[[Row], float | None]] = {
    "time_s": _column("time_s"),
    "f_time_s": _column("f_time_s"),
    "setup_s": _column("setup_s"),
    "peak_bytes": _column("peak_bytes"),
    "extra_bytes": extra_bytes,
    "tape_bytes": tape_bytes,
    "rss_peak_bytes": _column("rss_peak_bytes"),
    "f_evals": _column("f_evals"),
    "size": _column("tape_len", "expr_nodes"),
}
"""Each fitted cost and how it is read from a row: ``size`` is the tape's operations for
``reverse`` and the expression's nodes for ``sympy``."""
RATIOS: dict[str, Callable[[Row], float | None]] = {
    "omega": _column("omega"),
    "omega_numpy": _column("omega_numpy"),
}
FIT_COLUMNS = (
    "family", "backend", "variant", "metric", "exponent", "ci_low", "ci_high", "fit",
    "overhead_share", "points", "n_min", "n_max", "sizes_used",
)
"""The columns of ``scaling_fit.csv``: the keys of every row ``fit_all`` returns."""


def _fit(metric: str, points: Sequence[tuple[float, float]]) -> dict[str, Any] | None:
    points = sorted((n, v) for n, v in points if v > 0)
    sizes = [n for n, _ in points]
    if len(set(sizes)) < 2:
        return None
    values = [v for _, v in points]
    if metric in RATIOS:
        line = loglog_fit(sizes, values)
        found = {"exponent": line.slope, "ci_low": line.ci[0], "ci_high": line.ci[1],
                 "fit": "line", "overhead_share": None}
    else:
        exponent = cost_exponent(sizes, values)
        found = {"exponent": exponent.value, "ci_low": exponent.ci[0],
                 "ci_high": exponent.ci[1], "fit": exponent.method,
                 "overhead_share": exponent.overhead_share}
    return {**found, "points": len(points), "n_min": int(sizes[0]), "n_max": int(sizes[-1]),
            "sizes_used": " ".join(str(int(n)) for n in sizes)}


def fit_all(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """One fit per family × backend × variant × metric that has two sizes or more."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        if row["status"] == "ok":
            groups.setdefault((row["family"], row["backend"], row["variant"]), []).append(row)
    fits = []
    for (family, backend, variant), members in groups.items():
        for metric, read in {**COSTS, **RATIOS}.items():
            points = [(float(r["n_inputs"]), v) for r in members
                      if (v := read(r)) is not None]
            fit = _fit(metric, points)
            if fit is not None:
                fits.append({"family": family, "backend": backend, "variant": variant,
                             "metric": metric, **fit})
    return fits
