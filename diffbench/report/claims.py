"""The textbook complexity table put to the test: claimed exponents beside measured ones.

Read from a scaling run's ``scaling.csv`` and ``scaling_fit.csv``; written as ``claims.md``.
A cell holds when the measured exponent is within ``HOLDS`` of the claim, is off within
``OFF``, and is wrong beyond.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from ..results import read_rows
from .markdown import table_to_markdown

HOLDS = 0.3
OFF = 0.7


@dataclass(frozen=True)
class Claim:
    """What the textbook says of one method: exponents of n for time and extra memory."""

    method: str
    backend: str
    variant: str
    time: float
    memory: float
    memory_metric: str
    says: str


CLAIMS = (
    Claim("central differences", "central", "default", 2, 0, "peak_bytes",
          "O(n²) time (2n evaluations of an O(n) f), O(1) extra memory"),
    Claim("SymPy", "sympy", "default", 0, 1, "size",
          "“O(1)” evaluation of the derived formula, O(n) expression"),
    Claim("SymPy + cse", "sympy", "cse=true", 0, 1, "size",
          "“O(1)” evaluation of the derived formula, O(n) expression"),
    Claim("native reverse mode", "reverse", "default", 1, 1, "peak_bytes",
          "O(n) time (a small constant times f), O(number of operations) tape"),
    Claim("JAX reverse (jit)", "jax", "default", 1, 1, "peak_bytes",
          "O(n) time, O(number of operations) memory"),
    Claim("JAX forward (jacfwd)", "jax", "mode=forward", 2, 0, "peak_bytes",
          "n tangent passes of O(n) each: O(n²) time, O(1) extra memory per pass"),
)


def verdict(claimed: float, measured: float | None, overhead_bound: bool = False) -> str:
    """holds / off / wrong; ``unclear`` when the fit had too few sizes above the overhead."""
    if measured is None:
        return "n/a"
    if overhead_bound:
        return "unclear"
    gap = abs(measured - claimed)
    return "holds" if gap <= HOLDS else "off" if gap <= OFF else "wrong"


def _fits(run_dir: Path) -> dict[tuple[str, str, str, str], Mapping[str, str]]:
    path = run_dir / "scaling_fit.csv"
    rows = read_rows(path) if path.exists() else []
    return {(r["family"], r["backend"], r["variant"], r["metric"]): r for r in rows}


def _cell(fit: Mapping[str, str] | None, claimed: float) -> tuple[str, str]:
    if fit is None:
        return "–", "[dim]n/a[/dim]"
    exponent = float(fit["exponent"])
    low, high = float(fit["ci_low"]), float(fit["ci_high"])
    interval = f" [{low:.2f}, {high:.2f}]" if abs(high - low) < 100 else ""
    bound = fit["overhead_bound"] == "true"
    word = verdict(claimed, exponent, bound)
    style = {"holds": "green", "off": "yellow", "wrong": "red", "unclear": "dim"}[word]
    return f"{exponent:.2f}{interval}{'*' if bound else ''}", f"[{style}]{word}[/{style}]"


def _evidence(claim: Claim, rows: Sequence[Mapping[str, str]],
              fits: Mapping[tuple[str, str, str, str], Mapping[str, str]], family: str) -> str:
    """The numbers behind the verdict that the exponents alone do not show."""
    mine = sorted((r for r in rows if r["status"] == "ok" and r["family"] == family
                   and r["backend"] == claim.backend and r["variant"] == claim.variant),
                  key=lambda r: int(r["n_inputs"]))
    if not mine:
        return "no size measured"
    notes = []
    omegas = [float(r["omega"]) for r in mine]
    notes.append(f"ω {min(omegas):.3g}–{max(omegas):.3g}")
    f_fit = fits.get((family, claim.backend, claim.variant, "f_time_s"))
    if claim.time == 2 and f_fit is not None:
        f_exponent = float(f_fit["exponent"])
        notes.append(f"f itself ∝ n^{f_exponent:.2f} here, so n passes of f ∝ "
                     f"n^{1 + f_exponent:.2f}")
    if claim.memory_metric == "peak_bytes":
        ratios = [float(r["peak_bytes"]) / (float(r["f_peak_bytes"]) + 8 * int(r["n_inputs"]))
                  for r in mine if r.get("peak_bytes") and r.get("f_peak_bytes")]
        if ratios:
            notes.append(f"memory ≤ {max(ratios):.3g}× (f's own + the gradient)")
    setup = fits.get((family, claim.backend, claim.variant, "setup_s"))
    if claim.backend in ("sympy", "jax") and setup is not None:
        what = "derivation" if claim.backend == "sympy" else "compile"
        notes.append(f"{what} time ∝ n^{float(setup['exponent']):.2f}")
    skipped = [r for r in rows if r["family"] == family and r["backend"] == claim.backend
               and r["variant"] == claim.variant and r["status"] != "ok"]
    if skipped:
        largest = int(mine[-1]["n_inputs"])
        notes.append(f"stopped after n = {largest} ({skipped[0]['status']})")
    return "; ".join(notes)


def claims_table(run_dir: Path) -> Table:
    rows = read_rows(run_dir / "scaling.csv")
    fits = _fits(run_dir)
    families = list(dict.fromkeys(r["family"] for r in rows))
    table = Table(title="the textbook table, measured", header_style="bold",
                  caption=f"exponent p of n (inputs) in cost ∝ n^p, 95 % interval in brackets. "
                          f"holds: within {HOLDS} of the claim; off: within {OFF}; wrong: "
                          f"beyond; unclear (*): fewer than three sizes above the fixed "
                          f"overhead, so the exponent says little.")
    for column, justify in (("method", "left"), ("family", "left"), ("time: claim", "right"),
                            ("measured", "right"), ("", "left"), ("memory: claim", "right"),
                            ("measured", "right"), (" ", "left"), ("digits", "right"),
                            ("evidence", "left")):
        table.add_column(column, justify=justify)
    for claim in CLAIMS:
        for family in families:
            mine = [r for r in rows if r["family"] == family and r["backend"] == claim.backend
                    and r["variant"] == claim.variant]
            if not mine:
                continue
            digits = [float(r["digits"]) for r in mine if r["status"] == "ok" and r["digits"]]
            time_cell = _cell(fits.get((family, claim.backend, claim.variant, "time_s")),
                              claim.time)
            memory_cell = _cell(fits.get((family, claim.backend, claim.variant,
                                          claim.memory_metric)), claim.memory)
            memory_label = f"{claim.memory:g}" + (" (size)" if claim.memory_metric == "size"
                                                  else "")
            table.add_row(claim.method, family, f"{claim.time:g}", *time_cell, memory_label,
                          *memory_cell,
                          f"{statistics.median(digits):.1f}" if digits else "–",
                          _evidence(claim, rows, fits, family))
    return table


INTRODUCTION = """# The textbook complexity table, measured

Every tutorial repeats one table: finite differences cost O(n²) time and O(1) memory; symbolic
differentiation gives an "O(1)" formula that swells; reverse-mode automatic differentiation
costs O(n) time and memory. diffbench measured each method's gradient of each family over
geometric sizes, fitted the exponent p of cost ∝ n^p (n the number of inputs) by least squares
in log-log over the sizes above the fixed overhead, and sets the claim beside the measurement.

- **time**: the median time of one gradient (`time_s`).
- **memory**: the peak extra memory of one gradient (`peak_bytes`: `tracemalloc` for numpy
  backends, the compiled executable's `memory_analysis()` for JAX), or for SymPy the size of
  the derived expression (`size`: DAG nodes, or the cse form), which is what its claim is about.
- **digits**: the median number of correct digits against the 50-digit reference.
- **evidence**: ω = T(gradient) / T(f) over the sizes (reverse mode should keep it roughly
  constant), the memory against f's own peak plus the gradient's 8n bytes, and for SymPy and
  JAX how the one-off derivation or compile time grows.

"""


def write_claims(run_dir: Path) -> Table:
    """Write ``RUN_DIR/claims.md`` and return the table it holds."""
    table = claims_table(run_dir)
    (run_dir / "claims.md").write_text(INTRODUCTION + table_to_markdown(table),
                                       encoding="utf-8")
    return table
