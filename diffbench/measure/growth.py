"""How a size grows with a parameter: a factor per step, or an exponent, by least squares.

Both models are fitted to log(value): exponential, log y = a + b·s (factor per step e^b),
and power, log y = a + p·log s (exponent p), over the larger half of the distinct sizes (at
least the three largest), where the leading term dominates the lower-order ones.  The better
model is the one with the smaller root-mean-square residual in log y, chosen only from three
points on (two fit both exactly).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .fit import line_fit, loglog_fit

MIN_POINTS_TO_CHOOSE = 3
FIT_COLUMNS = (
    "family", "representation", "points", "size_min", "size_max", "factor_per_step",
    "exponent", "rms_exponential", "rms_power", "growth",
)
"""The columns of ``swell_fit.csv``: the keys of every row ``growth_fits`` returns."""


@dataclass(frozen=True)
class Growth:
    """Both fits over the ``points`` (size, value) pairs used, from ``size_min`` up."""

    points: int
    size_min: float
    factor_per_step: float
    exponent: float
    rms_exponential: float
    rms_power: float

    @property
    def model(self) -> str:
        """``"exponential"``, ``"power"``, or ``""`` when too few points to tell."""
        if self.points < MIN_POINTS_TO_CHOOSE:
            return ""
        return "exponential" if self.rms_exponential < self.rms_power else "power"


def fit_growth(sizes: Sequence[float], values: Sequence[float]) -> Growth | None:
    """Fit both models; ``None`` unless there are two distinct sizes with positive values."""
    pairs = [(float(s), float(v)) for s, v in zip(sizes, values, strict=True)
             if s > 0 and v > 0]
    if len({s for s, _ in pairs}) < 2:
        return None
    distinct = sorted({s for s, _ in pairs})
    upper = distinct[len(distinct) // 2:]
    kept = set(upper if len(upper) >= MIN_POINTS_TO_CHOOSE else distinct[-MIN_POINTS_TO_CHOOSE:])
    pairs = sorted(pair for pair in pairs if pair[0] in kept)
    s, v = np.array(pairs).T
    exponential = line_fit(s, np.log(v))
    power = loglog_fit(s, v)
    return Growth(len(pairs), float(s[0]), float(np.exp(exponential.slope)), power.slope,
                  exponential.rms, power.rms)


def growth_fits(rows: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """One fit of ``nodes_df`` against ``size`` per family and representation, from a swell
    study's rows (``ok`` rows with a positive size only)."""
    series: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        if row["status"] == "ok" and row["size"] and float(row["nodes_df"] or 0) > 0:
            series[row["family"], row["representation"]].append(
                (int(row["size"]), float(row["nodes_df"])))
    fits = []
    for (family, representation), points in series.items():
        sizes, values = zip(*sorted(points), strict=True)
        growth = fit_growth(sizes, values)
        if growth is None:
            continue
        fits.append({"family": family, "representation": representation,
                     "points": growth.points, "size_min": int(growth.size_min),
                     "size_max": max(sizes),
                     "factor_per_step": growth.factor_per_step, "exponent": growth.exponent,
                     "rms_exponential": growth.rms_exponential, "rms_power": growth.rms_power,
                     "growth": growth.model})
    return fits
