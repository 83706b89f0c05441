"""``diffbench advise``'s output, rendered from its ``advice.json``: the verdict, the evidence
table, the sizes around, the textbook's branch, and how each figure was measured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .format import digits, duration, ratio, seconds, size_in_bytes

HOW_MEASURED = (
    "digits: normwise, −log10(‖g − r‖∞ / ‖r‖∞) against a 50-digit mpmath reference r; "
    "attainable: what any float64 method can reach given the problem's conditioning",
    "per gradient: median of the timing samples, each a loop calibrated to last ≥ {sample} "
    "(fewer samples where the case's cap cut the timing); ω = that / f's time, f run the way "
    "the same backend runs it, timed interleaved",
    "one-off: the backend's preparation, timed once (SymPy: build + diff + lambdify; JAX: "
    "trace + compile; others: wrapping f)",
    "break-even: gradient calls from which one-off + calls × per gradient is no more than "
    "{baseline}'s (the accurate method whose first gradient comes soonest); never: it is no "
    "cheaper per call",
    "RSS: resident memory one gradient call added at its peak, in its own process, measured "
    "alike for every backend",
    "each case ran in a child process capped at {case} (a sixth of the {budget} budget) and "
    "{memory}; one not begun when the budget was spent is `skipped`",
)


def _opt(value, fmt) -> str:
    return "–" if value is None else fmt(value)


def _break_even(row: dict[str, Any], baseline: str | None) -> str:
    if row["status"] != "ok" or row["time_s"] is None:
        return "–"
    if _label(row) == baseline:
        return "baseline"
    count = row["break_even_calls"]
    return "never" if count is None else f"{count:,}".replace(",", " ")


def _label(row: dict[str, Any]) -> str:
    return row["backend"] + ("" if row["variant"] == "default" else f" ({row['variant']})")


def evidence_table(advice: dict[str, Any]) -> Table:
    calls = advice["calls"]
    verdict = advice["verdict"]
    table = Table(title=f"evidence: {escape(advice['target'])}"
                  + (f" at {advice['size_param']} = {advice['size']}" if advice["size"] else "")
                  + f" ({advice['n_inputs']} input{'' if advice['n_inputs'] == 1 else 's'})",
                  header_style="bold")
    columns = ["method", "status", "digits", "attainable", "per gradient", "ω", "one-off",
               "break-even"]
    if calls is not None:
        columns.append(f"total, {calls} calls")
    columns += ["RSS", "notes"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("method", "status", "notes")
                         else "right", overflow="fold")
    for row in advice["methods"]:
        label = _label(row)
        chosen = row["backend"] == verdict["backend"] and row["variant"] == verdict["variant"]
        notes = list(row["caveats"])
        if row["status"] != "ok" and row["message"]:
            notes.insert(0, row["message"])
        cells = [("▶ " if chosen else "  ") + label, row["status"],
                 digits(row["digits"]) + ("" if row["accurate"] or row["digits"] is None
                                          else " ✗"),
                 digits(row["digits_attainable"]), seconds(row["time_s"]), ratio(row["omega"]),
                 seconds(row["one_off_s"]), _break_even(row, verdict["break_even_baseline"])]
        if calls is not None:
            cells.append(seconds(row["total_s"]))
        cells += [size_in_bytes(row["rss_peak_bytes"]), "; ".join(notes)]
        table.add_row(*[Text(cell) for cell in cells], style="bold" if chosen else None)
    return table


def scaling_table(scaled: dict[str, Any]) -> Table:
    axis = scaled["axis"]
    sizes = [size for size in scaled["sizes"]
             if any(r["size"] == size and r["status"] != "skipped" for r in scaled["rows"])]
    table = Table(title=f"time per gradient at each size ({axis})", header_style="bold")
    table.add_column("method")
    for size in sizes:
        table.add_column(str(size), justify="right")
    table.add_column(f"exponent of time in {axis} [95 %]", justify="right")
    methods = list(dict.fromkeys(row["backend"] for row in scaled["rows"]))
    fits = {(e["backend"], e["metric"]): e for e in scaled["exponents"]}
    for method in methods:
        cells = [method]
        for size in sizes:
            row = next((r for r in scaled["rows"] if r["backend"] == method
                        and r["size"] == size), None)
            if row is None:
                cells.append("")
            elif row["status"] == "ok":
                cells.append(seconds(row["time_s"]))
            else:
                cells.append(row["status"])
        fit = fits.get((method, "time_s"))
        cells.append("–" if fit is None else _exponent(fit))
        table.add_row(*cells)
    winners = {w["size"]: w["backend"] for w in scaled["winners"]}
    table.add_row(Text("advice", style="bold"),
                  *[Text(winners.get(size) or "–", style="bold") for size in sizes], "")
    return table


def _exponent(fit: dict[str, Any]) -> str:
    low = "−∞" if fit["ci_low"] is None else f"{fit['ci_low']:.2f}"
    high = "∞" if fit["ci_high"] is None else f"{fit['ci_high']:.2f}"
    few = " (line, 3 sizes or fewer)" if fit["fit"] == "line-few" else ""
    return f"{fit['exponent']:.2f} [{low}, {high}]{few}"


def _changes(scaled: dict[str, Any]) -> Iterator[str]:
    axis = scaled["axis"]
    for size in scaled["sizes"]:
        rows = [r for r in scaled["rows"] if r["size"] == size]
        skipped = [r["backend"] for r in rows if r["status"] == "skipped"]
        if skipped and len(skipped) < len(rows):
            yield (f"not measured at {size} (skipped): {', '.join(skipped)}; the advice there "
                   "is among the rest")
    if not scaled["ranking_changes"]:
        measured = [w for w in scaled["winners"] if w["backend"]]
        winners = {w["backend"] for w in measured}
        if len(measured) > 1 and len(winners) == 1:
            yield (f"the advice is {winners.pop()} at every size measured "
                   f"({', '.join(str(w['size']) for w in measured)})")
        elif len(measured) < 2:
            yield ("the budget left no second size measured, so no exponent and no ranking "
                   "change (a larger --budget measures them)")
        else:
            yield ("the advice differs between sizes only where its methods were not both "
                   "measured at both sizes: no ranking change is claimed")
        return
    for change in scaled["ranking_changes"]:
        near = ("" if change["near"] is None else
                f"; their times cross near {axis} ≈ {change['near']:.3g} (log-log "
                "interpolation between the two sizes)")
        yield (f"the advice changes from {change['before']} at {change['from_size']} to "
               f"{change['after']} at {change['to_size']}{near}")


def advice_renderables(advice: dict[str, Any]) -> list[RenderableType]:
    """What ``diffbench advise`` prints, in order."""
    verdict = advice["verdict"]
    out: list[RenderableType] = [
        Text.assemble(("verdict: ", "bold"), verdict["text"]),
        Text(f"rule: {verdict['rule']}"
             + ("" if verdict["best_digits"] is None else
                f" (best {verdict['best_digits']:.1f}; within it: "
                f"{', '.join(verdict['accurate'])}; ✗ in the table: not within it)"),
             style="dim"),
        evidence_table(advice),
    ]
    scaled = advice["scaling"]
    if scaled is not None:
        out.append(scaling_table(scaled))
        out.extend(Text("• " + line) for line in _changes(scaled))
    book = advice["textbook"]
    out.append(Text.assemble(("textbook: ", "bold"), book["branch"], " — ",
                             ("the measurements agree" if book["agrees"]
                              else "the measurements disagree",
                              "green" if book["agrees"] else "yellow")))
    out.extend(Text("• " + reason) for reason in book["reasons"])
    baseline = verdict["break_even_baseline"] or "the baseline"
    out.append(Text("how each figure is measured:", style="bold"))
    for line in HOW_MEASURED:
        out.append(Text("• " + line.format(
            sample=seconds(advice["min_sample_s"]), baseline=baseline,
            case=duration(advice["case_budget_s"]), budget=duration(advice["budget_s"]),
            memory=f"{advice['memory_mb']} MiB resident"), style="dim"))
    out.append(Text(f"measured in {duration(advice['wall_s'])} of the "
                    f"{duration(advice['budget_s'])} budget; the run: {advice['run_dir']} "
                    "(diffbench report / plot / compare work on it)"))
    return out
