"""Two runs of the same cases: time ratios with their uncertainty, and which are beyond noise.

A timing's uncertainty is the standard error of its median, estimated from the spread of its
samples: σ ≈ 1.2533 · (IQR / 1.349) / √k relative to the median (normal-sample constants).
The ratio B/A gets σ_ln = √(σ_A² + σ_B²); its interval is B/A · e^(±Z σ_ln), and a difference
is beyond noise when |ln(B/A)| > ``Z`` · σ_ln, that is when the interval leaves out 1.

A case is not ranked (its verdict says why instead) when either run has fewer than
``MIN_SAMPLES`` samples of it, whose spread says nothing, or flagged its timing unstable
(spread, outliers, samples too short for ``min_sample_s`` or near the timer's resolution: see
``timing_note``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.table import Table

from ..runstate import canonical, read_manifest
from . import format as fmt
from .files import RunFiles
from .markdown import table_to_markdown
from .tables import backend_cell, case_cell

Z = 3.0
MIN_SAMPLES = 3
TIMED_CSVS = ("gradient.csv", "scaling.csv")
IDENTITY = ("study", "family", "family_variant", "size", "backend", "variant")
"""Columns that name a case independently of the config it came from."""
MACHINE_KEYS = ("cpu", "cores", "machine", "system", "python")
"""What of a manifest's machine description makes two runs' times comparable."""


@dataclass(frozen=True)
class Comparison:
    """Case ``label`` timed in both runs: B/A of the median times, σ of its logarithm, and
    why it is not ranked (``unranked``), if it is not."""

    label: str
    ratio: float
    sigma_ln: float
    unranked: str = ""

    @property
    def beyond_noise(self) -> bool:
        return not self.unranked and abs(math.log(self.ratio)) > Z * self.sigma_ln

    @property
    def interval(self) -> tuple[float, float]:
        spread = math.exp(Z * self.sigma_ln)
        return self.ratio / spread, self.ratio * spread

    @property
    def verdict(self) -> str:
        if self.unranked:
            return self.unranked
        if not self.beyond_noise:
            return "within noise"
        return "slower" if self.ratio > 1 else "faster"

    def slower_than(self, limit: float) -> bool:
        """Slower beyond noise, and slower than ``limit`` × A over its whole interval."""
        return self.verdict == "slower" and self.interval[0] > limit


def relative_error_of_median(row: Mapping[str, str]) -> float:
    median, iqr, k = float(row["time_s"]), float(row["time_iqr_s"]), int(row["samples"])
    return 1.2533 * (iqr / 1.349) / median / math.sqrt(max(k, 1))


def _unranked(row_a: Mapping[str, str], row_b: Mapping[str, str]) -> str:
    if min(int(row_a["samples"]), int(row_b["samples"])) < MIN_SAMPLES:
        return f"too few samples (fewer than {MIN_SAMPLES} in a run)"
    if "true" in (row_a.get("unstable"), row_b.get("unstable")):
        return "unstable timing (see timing_note)"
    return ""


def _cell(row: Mapping[str, str], column: str) -> str:
    """A cell of the case's identity; a run without ``family_variant`` had no options."""
    value = row.get(column, "")
    return value or "default" if column == "family_variant" else value


def _timed(run_dir: Path) -> dict[tuple[str, ...], Mapping[str, str]]:
    run = RunFiles(run_dir)
    return {tuple(_cell(row, c) for c in IDENTITY): row
            for name in TIMED_CSVS for row in run.rows(name)
            if row["status"] == "ok" and row["time_s"] and row["samples"]}


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
        result.append(Comparison(f"{case_cell(row_a)} · {backend_cell(row_a)}", ratio, sigma,
                                 _unranked(row_a, row_b)))
    return result


def differences(run_a: Path, run_b: Path) -> list[str]:
    """What makes the two runs' times hard to compare: a different config, package
    versions or machine, each as a sentence."""
    a, b = read_manifest(run_a), read_manifest(run_b)
    found = []
    if canonical(a.get("config")) != canonical(b.get("config")):
        found.append("the runs used different configs")
    versions = sorted(name for name in {**a.get("versions", {}), **b.get("versions", {})}
                      if a.get("versions", {}).get(name) != b.get("versions", {}).get(name))
    if versions:
        found.append(f"the runs used different versions of {', '.join(versions)}")
    machine_a, machine_b = a.get("machine", {}), b.get("machine", {})
    machine = [key for key in MACHINE_KEYS if machine_a.get(key) != machine_b.get(key)]
    if machine:
        found.append(f"the runs were made on different machines ({', '.join(machine)} "
                     "differ): their times are not comparable")
    return found


def comparison_table(comparisons: list[Comparison], run_a: Path, run_b: Path) -> Table:
    table = Table(title=f"time ratio B/A · A = {run_a} · B = {run_b}", header_style="bold",
                  caption=f"interval: B/A · e^(±{Z:g}σ); beyond noise when it leaves out 1; "
                          "unranked cases say why")
    for column, justify in (("case", "left"), ("B / A", "right"),
                            (f"±{Z:g}σ interval", "right"), ("verdict", "left")):
        table.add_column(column, justify=justify)
    styles = {"slower": "red", "faster": "green", "within noise": "dim"}
    for c in comparisons:
        low, high = c.interval
        style = styles.get(c.verdict, "yellow")
        table.add_row(c.label, fmt.ratio(c.ratio), f"{low:.3g} – {high:.3g}",
                      f"[{style}]{c.verdict}[/{style}]")
    return table


def comparison_markdown(comparisons: list[Comparison], run_a: Path, run_b: Path) -> str:
    return table_to_markdown(comparison_table(comparisons, run_a, run_b))


def comparison_json(comparisons: list[Comparison]) -> str:
    """Each comparison's fields, its interval and verdict, as a JSON list."""
    return json.dumps([{**asdict(c), "low": c.interval[0], "high": c.interval[1],
                        "beyond_noise": c.beyond_noise, "verdict": c.verdict}
                       for c in comparisons], indent=1)
