"""Cost exponents of a scaling study: ``scaling.csv`` rows in, ``scaling_fit.csv`` rows out.

One fit per family × backend × variant × metric: the exponent p of cost ∝ n^p against n, the
number of inputs, by least squares in log-log, over the sizes where the cost is above the
fixed overhead: those whose value is at least ``OVERHEAD_FACTOR`` times the value at the
smallest size measured (so the overhead is at most a quarter of the cost), or the three
largest sizes when fewer qualify (``overhead_bound`` then says the fit may be biased low).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .fit import loglog_fit

OVERHEAD_FACTOR = 4.0
MIN_POINTS = 3
METRICS = {
    "time_s": ("time_s",),
    "f_time_s": ("f_time_s",),
    "setup_s": ("setup_s",),
    "peak_bytes": ("peak_bytes",),
    "f_evals": ("f_evals",),
    "size": ("tape_len", "expr_nodes"),
}
"""Each fitted metric and the gradient column(s) it is read from (the first one present)."""
FIT_COLUMNS = (
    "family", "backend", "variant", "metric", "exponent", "ci_low", "ci_high", "r2",
    "sizes_used", "points", "n_min", "n_max", "overhead_bound",
)
"""The columns of ``scaling_fit.csv``: the keys of every row ``fit_all`` returns."""


def metric_value(row: Mapping[str, str], metric: str) -> float | None:
    """The row's positive value of ``metric``, or None."""
    for column in METRICS[metric]:
        if row.get(column):
            value = float(row[column])
            return value if value > 0 else None
    return None


def fit_metric(points: Sequence[tuple[float, float]]) -> dict[str, Any] | None:
    """The exponent of ``value ∝ n^p`` over the points above the fixed overhead."""
    points = sorted(points)
    if len({n for n, _ in points}) < 2:
        return None
    floor = points[0][1]
    above = [(n, v) for n, v in points if v >= OVERHEAD_FACTOR * floor]
    overhead_bound = len(above) < MIN_POINTS
    used = points[-MIN_POINTS:] if overhead_bound else above
    if len({n for n, _ in used}) < 2:
        return None
    fit = loglog_fit([n for n, _ in used], [v for _, v in used])
    return {"exponent": fit.slope, "ci_low": fit.ci[0], "ci_high": fit.ci[1], "r2": fit.r2,
            "points": fit.points, "n_min": int(used[0][0]), "n_max": int(used[-1][0]),
            "sizes_used": " ".join(str(int(n)) for n, _ in used),
            "overhead_bound": overhead_bound}


def fit_all(rows: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """One fit per family × backend × variant × metric that has two sizes or more (``ok``
    rows only)."""
    groups: dict[tuple[str, str, str], list[Mapping[str, str]]] = {}
    for row in rows:
        if row["status"] == "ok":
            groups.setdefault((row["family"], row["backend"], row["variant"]), []).append(row)
    fits = []
    for (family, backend, variant), members in groups.items():
        for metric in METRICS:
            points = [(float(r["n_inputs"]), v) for r in members
                      if (v := metric_value(r, metric)) is not None]
            fit = fit_metric(points)
            if fit is not None:
                fits.append({"family": family, "backend": backend, "variant": variant,
                             "metric": metric, **fit})
    return fits
