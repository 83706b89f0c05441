"""The textbook complexity table put to the test: claimed exponents beside measured ones.

Read from a scaling run's ``scaling.csv`` and ``scaling_fit.csv``; written as ``claims.md``.
Each claim is tested in the units it is about: time in passes of f, the exponent of
ω = T(gradient) / T(f) (n passes: ω ∝ n; a constant number: ω ∝ n⁰), and memory as the
method's own extra memory (its peak beyond f's own and the gradient it returns), or for SymPy
the size of the derived expression.  A verdict reads the whole 95 % interval:

* ``holds``: the interval lies within ``TOLERANCE`` of the claim;
* ``wrong``: the interval lies entirely farther than ``TOLERANCE`` from it;
* ``unclear``: neither, so the measurement cannot decide (too few sizes, too noisy).

So two runs can disagree only by one of them being ``unclear``, never holds against wrong,
unless the method itself behaves differently in them.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from ..results import read_rows
from . import format as fmt
from .markdown import table_to_markdown

TOLERANCE = 0.3
STYLES = {"holds": "green", "wrong": "red", "unclear": "yellow", "n/a": "dim"}


@dataclass(frozen=True)
class Claim:
    """What the textbook says of one method: the exponent of n of ω (passes of f) and of its
    memory (``memory_metric``: ``extra_bytes``, beyond f's own, for methods that evaluate f
    again and again; ``tape_bytes``, all it holds, for a tape; ``size`` for an expression)."""

    method: str
    backend: str
    variant: str
    omega: float
    memory: float
    memory_metric: str
    says: str


CLAIMS = (
    Claim("central differences", "central", "default", 1, 0, "extra_bytes",
          "2n evaluations of f (O(n²) time for an O(n) f), O(1) extra memory"),
    Claim("SymPy", "sympy", "default", -1, 1, "size",
          "“O(1)” evaluation of the derived formula, an O(n) expression"),
    Claim("SymPy + cse", "sympy", "cse=true", -1, 1, "size",
          "“O(1)” evaluation of the derived formula, an O(n) expression"),
    Claim("native reverse mode", "reverse", "default", 0, 1, "tape_bytes",
          "a small constant number of passes of f, an O(number of operations) tape"),
    Claim("JAX reverse (jit)", "jax", "default", 0, 1, "tape_bytes",
          "a small constant number of passes of f, O(number of operations) memory"),
    Claim("JAX forward (jacfwd)", "jax", "mode=forward", 1, 0, "extra_bytes",
          "n tangent passes of f, O(1) extra memory per pass"),
)

Fits = Mapping[tuple[str, str, str, str], Mapping[str, str]]


def verdict(claimed: float, interval: tuple[float, float] | None) -> str:
    """``holds``, ``wrong`` or ``unclear`` from the whole interval (see the module
    docstring); ``n/a`` without a fit."""
    if interval is None:
        return "n/a"
    low, high = interval
    if claimed - TOLERANCE <= low and high <= claimed + TOLERANCE:
        return "holds"
    if high < claimed - TOLERANCE or low > claimed + TOLERANCE:
        return "wrong"
    return "unclear"


def _interval(fit: Mapping[str, str] | None) -> tuple[float, float] | None:
    return None if fit is None else (float(fit["ci_low"]), float(fit["ci_high"]))


def _verdict_cells(fit: Mapping[str, str] | None, claimed: float) -> tuple[str, str]:
    word = verdict(claimed, _interval(fit))
    return fmt.exponent(fit), f"[{STYLES[word]}]{word}[/{STYLES[word]}]"


def _rows_of(claim: Claim, rows: Sequence[Mapping[str, str]], family: str):
    return [r for r in rows if r["family"] == family and r["backend"] == claim.backend
            and r["variant"] == claim.variant]


def _evidence(claim: Claim, rows: Sequence[Mapping[str, str]], fits: Fits,
              family: str) -> str:
    """The numbers behind the verdicts that the exponents alone do not show."""
    mine = sorted((r for r in _rows_of(claim, rows, family) if r["status"] == "ok"),
                  key=lambda r: int(r["n_inputs"]))
    if not mine:
        return "no size measured"

    def fit(metric: str) -> Mapping[str, str] | None:
        return fits.get((family, claim.backend, claim.variant, metric))

    omegas = [float(r["omega"]) for r in mine]
    notes = [f"ω {min(omegas):.3g}–{max(omegas):.3g} against f as {mine[0]['f_method']} "
             f"runs it"]
    f_fit = fit("f_time_s")
    if f_fit is not None:
        notes.append(f"f itself ∝ n^{float(f_fit['exponent']):.2f}")
    largest = mine[-1]
    if claim.memory_metric != "size" and largest.get("peak_bytes"):
        own = float(largest.get("f_peak_bytes") or 0) if claim.memory_metric == "extra_bytes" \
            else 0.0
        held = float(largest["peak_bytes"]) - own - 8 * int(largest["n_inputs"])
        what = "beyond f's own" if claim.memory_metric == "extra_bytes" else "held"
        notes.append(f"memory {what} at n = {largest['n_inputs']}: "
                     f"{fmt.size_in_bytes(max(held, 0))} ({largest['memory_method']})")
    setup = fit("setup_s")
    if claim.backend in ("sympy", "jax") and setup is not None:
        what = "derivation" if claim.backend == "sympy" else "compile"
        notes.append(f"{what} time ∝ n^{float(setup['exponent']):.2f}")
    stopped = [r for r in _rows_of(claim, rows, family) if r["status"] != "ok"]
    if stopped:
        notes.append(f"stopped after n = {largest['n_inputs']} ({stopped[0]['status']})")
    return "; ".join(notes)


def _digits(rows: Sequence[Mapping[str, str]]) -> str:
    """The median correct digits of the ``ok`` rows with an independent reference."""
    digits = [float(r["digits"]) for r in rows if r["status"] == "ok" and r.get("digits")
              and r.get("reference_same_engine") != "true"]
    return f"{statistics.median(digits):.1f}" if digits else "–"


def claims_table(run_dir: Path) -> Table:
    rows = read_rows(run_dir / "scaling.csv")
    path = run_dir / "scaling_fit.csv"
    fits = {(r["family"], r["backend"], r["variant"], r["metric"]): r
            for r in (read_rows(path) if path.exists() else [])}
    families = list(dict.fromkeys(r["family"] for r in rows))
    table = Table(title="the textbook table, measured", header_style="bold",
                  caption=f"exponents p of n (inputs), 95 % interval in brackets: of ω = "
                          f"T(gradient) / T(f), the cost in passes of f; of the method's own "
                          f"extra memory (or the expression's size). holds: the whole interval "
                          f"within {TOLERANCE} of the claim; wrong: the whole interval farther; "
                          f"unclear: neither. time p: the raw time's exponent, overhead "
                          f"modelled.")
    for column, justify in (("method", "left"), ("family", "left"), ("ω: claim", "right"),
                            ("measured", "right"), ("", "left"), ("time p", "right"),
                            ("memory: claim", "right"), ("measured", "right"), (" ", "left"),
                            ("digits", "right"), ("evidence", "left")):
        table.add_column(column, justify=justify)
    for claim in CLAIMS:
        for family in families:
            mine = _rows_of(claim, rows, family)
            if not mine:
                continue
            key = (family, claim.backend, claim.variant)
            memory_label = f"{claim.memory:g}" + (" (size)" if claim.memory_metric == "size"
                                                  else "")
            table.add_row(
                claim.method, family, f"{claim.omega:g}",
                *_verdict_cells(fits.get((*key, "omega")), claim.omega),
                fmt.exponent(fits.get((*key, "time_s"))), memory_label,
                *_verdict_cells(fits.get((*key, claim.memory_metric)), claim.memory),
                _digits(mine), _evidence(claim, rows, fits, family))
    return table


INTRODUCTION = """# The textbook complexity table, measured

Every tutorial repeats one table: finite differences cost O(n²) time and O(1) memory; symbolic
differentiation gives an "O(1)" formula that swells; reverse-mode automatic differentiation
costs O(n) time and memory. diffbench measured each method's gradient of each family over
geometric sizes and tests each claim in the units it is about.

- **ω: claim / measured**: the exponent of n in ω = T(gradient) / T(f), f run the way the
  same backend runs it and timed beside the gradient: the cost in passes of f. Finite
  differences and forward mode take n passes (ω ∝ n¹), reverse mode a constant number
  (ω ∝ n⁰), and an "O(1)" symbolic formula would make ω fall as 1/n. Fitted as a log-log line
  through every size, with its 95 % interval.
- **time p**: the exponent of the raw time of one gradient, fitted as T = a + b·n^p so that the
  fixed overhead a (Python dispatch, a call into XLA) does not bend it; f's own exponent is in
  the evidence: at these sizes f is often sub-linear, which is why raw times mislead.
- **memory: claim / measured**: the exponent of the memory the claim is about, from the peak
  of one gradient (`tracemalloc` for numpy backends, XLA's `memory_analysis()` for JAX) less
  the 8n bytes of the gradient it returns, counted as at least 1 kB. For methods that
  evaluate f again and again (finite differences, forward mode) f's own peak, measured the
  same way, is subtracted too: their claim is O(1) memory beyond f's. For a tape (reverse
  mode) nothing more: its claim is that it keeps O(number of operations), f's intermediate
  values included. For SymPy, the size of the derived expression (DAG nodes, or the cse form).
  Fitted like time; a cost that never grows is a line of slope 0.
- **verdicts**: holds when the whole 95 % interval lies within 0.3 of the claim, wrong when it
  lies entirely farther, unclear otherwise (too few sizes, too much noise): a verdict is never
  read off a point estimate.
- **digits**: the median normwise correct digits against the 50-digit reference (rows checked
  against the engine under test are left out).
- **evidence**: ω over the sizes, how f itself grows, the extra memory at the largest size, for
  SymPy and JAX how the one-off derivation or compile time grows, and where a method stopped.

"""


def write_claims(run_dir: Path) -> Table:
    """Write ``RUN_DIR/claims.md`` and return the table it holds."""
    table = claims_table(run_dir)
    (run_dir / "claims.md").write_text(INTRODUCTION + table_to_markdown(table),
                                       encoding="utf-8")
    return table
