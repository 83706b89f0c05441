"""Two runs of the same cases: time ratios with their uncertainty, and which are beyond noise.

A timing's uncertainty is the standard error of its median, estimated from the spread of its
samples: σ ≈ 1.2533 · (IQR / 1.349) / √k relative to the median (normal-sample constants).
The ratio B/A gets σ_ln = √(σ_A² + σ_B²); a difference is beyond noise when
|ln(B/A)| > ``Z`` · σ_ln.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from ..results import read_rows
from . import format as fmt
from .tables import backend_cell, case_cell

Z = 3.0
TIMED_CSVS = ("gradient.csv", "scaling.csv")


@dataclass(frozen=True)
class Comparison:
    label: str
    ratio: float
    sigma_ln: float

    @property
    def beyond_noise(self) -> bool:
        return abs(math.log(self.ratio)) > Z * self.sigma_ln

    @property
    def interval(self) -> tuple[float, float]:
        return (self.ratio * math.exp(-2 * self.sigma_ln), self.ratio * math.exp(2 * self.sigma_ln))


def relative_error_of_median(row: Mapping[str, str]) -> float:
    median, iqr, k = float(row["time_s"]), float(row["time_iqr_s"]), int(row["samples"])
    return 1.2533 * (iqr / 1.349) / median / math.sqrt(max(k, 1))


IDENTITY = ("study", "family", "size", "backend", "variant")
"""Columns that name a case independently of the config it came from."""


def _timed(run_dir: Path) -> dict[tuple[str, ...], Mapping[str, str]]:
    rows = {}
    for name in TIMED_CSVS:
        if (run_dir / name).is_file():
            for row in read_rows(run_dir / name):
                if row.get("status") == "ok" and row.get("time_s"):
                    rows[tuple(row.get(c, "") for c in IDENTITY)] = row
    return rows


def compare_runs(run_a: Path, run_b: Path) -> list[Comparison]:
    """One comparison per case measured ``ok`` in both runs, in run A's order."""
    a, b = _timed(run_a), _timed(run_b)
    result = []
    for key, row_a in a.items():
        row_b = b.get(key)
        if row_b is None:
            continue
        sigma = math.hypot(relative_error_of_median(row_a), relative_error_of_median(row_b))
        ratio = float(row_b["time_s"]) / float(row_a["time_s"])
        result.append(Comparison(f"{case_cell(row_a)} · {backend_cell(row_a)}", ratio, sigma))
    return result


def comparison_table(comparisons: list[Comparison], run_a: Path, run_b: Path) -> Table:
    table = Table(title=f"time ratio B/A · A = {run_a} · B = {run_b}", header_style="bold",
                  caption=f"beyond noise: |ln ratio| > {Z:g} σ; interval ±2σ")
    for column, justify in (("case", "left"), ("B / A", "right"), ("±2σ interval", "right"),
                            ("verdict", "left")):
        table.add_column(column, justify=justify)
    for c in comparisons:
        low, high = c.interval
        verdict = ("[red]slower[/red]" if c.ratio > 1 else "[green]faster[/green]") \
            if c.beyond_noise else "[dim]within noise[/dim]"
        table.add_row(c.label, fmt.ratio(c.ratio), f"{low:.3g} – {high:.3g}", verdict)
    return table
