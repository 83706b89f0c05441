"""Rich tables built from CSV rows (strings), so a saved run prints as a fresh one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich import box
from rich.markup import escape
from rich.table import Table

from . import format as fmt

STATUS_STYLE = {"ok": "green", "no-reference": "yellow", "unsupported": "dim",
                "skipped": "dim"}


def status_cell(row: Mapping[str, str]) -> str:
    status = row.get("status", "")
    style = STATUS_STYLE.get(status, "red")
    return f"[{style}]{status}[/{style}]"


def backend_cell(row: Mapping[str, str]) -> str:
    variant = row.get("variant", "default")
    return row["backend"] if variant in ("", "default") else f"{row['backend']} ({variant})"


def family_cell(row: Mapping[str, str]) -> str:
    """``family``, or ``family (options)`` when the family was given options."""
    variant = row.get("family_variant") or "default"
    return row["family"] if variant == "default" else f"{row['family']} ({variant})"


def case_cell(row: Mapping[str, str]) -> str:
    """``family`` or ``family [size]`` (with the family's options, if any)."""
    family = family_cell(row)
    return family if not row.get("size") else f"{family} [{row['size']}]"


def step_summary_table(rows: Sequence[Mapping[str, str]],
                       title: str = "step sweep") -> Table:
    """One line per family × dtype × component × rule: the measured optimum against the
    theory (the family shows its dtype where it is not float64).

    h_opt is the median optimum over the shifted grids, ``spread`` its highest over its lowest,
    ``by`` how it was found (``fit``: the fitted error model; ``win``: the best window of steps);
    err_near the median error around it (the CSV also has the smallest, ``err_min``); slope↓
    and slope↑ the fitted slopes below and above it; h(rule) the rule of thumb eps^(1/3)·max(1,
    |x|) (eps^(1/2) one-sided); h* and E* the textbook optimum with σ = eps·|f| and with σ
    measured.  A rule that did not run shows its status instead of h_opt.
    """
    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1),
                  collapse_padding=True)
    for column in ("family", "x", "rule", "h_opt", "spread", "by", "err_near", "slope↓",
                   "slope↑", "h(rule)", "h*(eps)", "E*(eps)", "h*(σ)", "E*(σ)"):
        table.add_column(column, justify="left" if column in ("family", "rule", "by")
                         else "right", no_wrap=True)
    for row in rows:
        where = fmt.short(row.get("point"))
        if row.get("size") or row.get("component") not in ("", "0", None):
            where = f"x[{row.get('component')}]={where}"
        ran = row.get("status") == "ok"
        spread = (f"×{float(row['h_opt_high']) / float(row['h_opt_low']):.2g}"
                  if ran and row.get("h_opt_low") else "")
        dtype = row.get("dtype") or "float64"
        table.add_row(
            row["family"] + (f"[{row['size']}]" if row.get("size") else "")
            + ("" if dtype == "float64" else f" {dtype}"), where,
            row.get("rule", ""), fmt.short(row.get("h_opt")) if ran else status_cell(row),
            spread, row.get("h_opt_method", "").replace("window", "win"),
            *(fmt.short(row.get(key)) for key in (
                "err_near", "slope_roundoff", "slope_truncation", "h_rule", "h_theory",
                "err_theory", "h_noise", "err_noise")),
        )
    return table


def _method_cell(row: Mapping[str, str] | None) -> str:
    if row is None:
        return "–"
    if row.get("status") != "ok":
        return status_cell(row)
    return f"{fmt.short(row.get('err'))} [dim]({fmt.integer(row.get('f_evals'))})[/dim]"


def step_methods_table(rows: Sequence[Mapping[str, str]],
                       title: str = "adaptive differences: error (evaluations of f)") -> Table:
    """One line per family of one input; per method, its relative error against the 50-digit
    reference and, in brackets, its evaluations of f; ``most accurate`` names the methods with
    the smallest error.  A method that did not run shows its status; the caption gives every
    message (why it did not run, or what the method reported), with the families it concerns.
    """
    methods = list(dict.fromkeys(backend_cell(row) for row in rows))
    cases: dict[tuple[str, str, str], dict[str, Mapping[str, str]]] = {}
    notes: dict[str, list[str]] = {}
    for row in rows:
        cases.setdefault((row["family"], row.get("size", ""), row.get("point", "")), {})[
            backend_cell(row)] = row
        message = row.get("message", "")
        if message:
            named = message if message.startswith(row["backend"]) else (
                f"{backend_cell(row)}: {message}")
            notes.setdefault(named, []).append(case_cell(row))
    caption = escape("; ".join(f"{', '.join(families)}: {message}"
                               for message, families in notes.items()))
    table = Table(title=title, header_style="bold", caption=caption or None)
    table.add_column("family", no_wrap=True)
    table.add_column("x", justify="right", no_wrap=True)
    for method in methods:
        table.add_column(method.replace(" (", "\n("), justify="right", no_wrap=True)
    table.add_column("most accurate", no_wrap=True)
    for (family, size, point), by_method in cases.items():
        errors = {method: float(row["err"]) for method, row in by_method.items()
                  if row.get("status") == "ok" and row.get("err")}
        least = min(errors.values(), default=None)
        table.add_row(case_cell({"family": family, "size": size}), fmt.short(point),
                      *(_method_cell(by_method.get(method)) for method in methods),
                      ", ".join(m for m, err in errors.items() if err == least) or "–")
    return table


def _swell_cell(row: Mapping[str, str] | None) -> str:
    if row is None:
        return "–"
    if row.get("status") != "ok":
        return status_cell(row)
    return (f"{fmt.integer(row.get('nodes_f'))} → {fmt.integer(row.get('nodes_df'))} "
            f"[dim]×{fmt.ratio(row.get('ratio'))}[/dim]")


def swell_table(rows: Sequence[Mapping[str, str]], title: str = "swell study") -> Table:
    """One line per family and size; per representation, size of f → size of its gradient
    and their ratio."""
    representations = list(dict.fromkeys(row["representation"] for row in rows))
    cases: dict[tuple[str, str], dict[str, Mapping[str, str]]] = {}
    for row in rows:
        cases.setdefault((row["family"], row.get("size", "")), {})[row["representation"]] = row
    table = Table(title=title, header_style="bold")
    table.add_column("family", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("diff", justify="right", no_wrap=True)
    for representation in representations:
        table.add_column(f"{representation} f → f′", justify="right", no_wrap=True)
    for (family, size), by_representation in cases.items():
        diff = next((r.get("diff_s") for r in by_representation.values()
                     if r.get("representation") == "tree"), None)
        table.add_row(family, size or "–", fmt.seconds(diff),
                      *(_swell_cell(by_representation.get(rep)) for rep in representations))
    return table


def swell_fit_table(rows: Sequence[Mapping[str, str]],
                    title: str = "growth of the gradient's size") -> Table:
    """Per family and representation: factor per step, exponent, and the better model."""
    table = Table(title=title, header_style="bold")
    for column, justify in (("family", "left"), ("representation", "left"),
                            ("sizes", "right"), ("points", "right"), ("× per step", "right"),
                            ("exponent", "right"), ("better fit", "left")):
        table.add_column(column, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(row["family"], row["representation"],
                      f"{row['size_min']}…{row['size_max']}", row["points"],
                      fmt.ratio(row.get("factor_per_step")), fmt.ratio(row.get("exponent")),
                      row.get("growth") or "–")
    return table


SHOWN_FITS = ("omega", "time_s", "f_time_s", "setup_s", "extra_bytes", "rss_peak_bytes",
              "size")
"""The metrics of ``scaling_fit.csv`` the table shows (the CSV has them all)."""


def scaling_fit_table(rows: Sequence[Mapping[str, str]],
                      title: str = "fitted exponents: cost ∝ n^p") -> Table:
    """One line per family and method; per metric, the exponent with its 95 % interval."""
    present = {row["metric"] for row in rows}
    metrics = [metric for metric in SHOWN_FITS if metric in present]
    methods: dict[tuple[str, str, str], dict[str, Mapping[str, str]]] = {}
    for row in rows:
        methods.setdefault((row["family"], row["backend"], row["variant"]), {})[
            row["metric"]] = row
    table = Table(title=title, header_style="bold",
                  caption="p [95 % interval]: ω as a log-log line through every size; costs "
                          "as a + b·n^p, the fixed overhead a modelled (a line where the cost "
                          "does not grow); * fewer than four sizes, a line")
    table.add_column("family", no_wrap=True)
    table.add_column("backend", no_wrap=True)
    for metric in metrics:
        table.add_column(metric, justify="right", no_wrap=True)
    for (family, backend, variant), fits in methods.items():
        cells = [fmt.exponent(fits.get(metric))
                 + ("*" if fits.get(metric, {}).get("fit") == "line-few" else "")
                 for metric in metrics]
        table.add_row(family, backend_cell({"backend": backend, "variant": variant}), *cells)
    return table


def checkpoint_table(rows: Sequence[Mapping[str, str]],
                     title: str = "checkpointing: memory against time") -> Table:
    """One line per chain × backend × schedule: snapshots (states stored), forward steps, time
    and memory, each beside its ratio to the same backend's ``none`` measured in the same
    case; memory by the backend's own method, rss alike for every backend."""
    methods = ", ".join(dict.fromkeys(f"{r['backend']}: {r['memory_method']}" for r in rows
                                      if r.get("memory_method")))
    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1),
                  collapse_padding=True,
                  caption=f"×: ratio to the same backend's none, timed interleaved in one "
                          f"process; memory measured by {methods or 'each backend'}")
    for column in ("family", "L", "size", "backend", "schedule", "snaps", "steps", "time",
                   "×", "memory", "×", "rss", "digits", "status"):
        table.add_column(column, justify="left" if column in ("family", "backend", "schedule",
                                                               "status") else "right",
                         no_wrap=True)
    table.add_column("note", overflow="fold", ratio=1)
    for row in rows:
        table.add_row(row["family"], row.get("depth") or "–", row.get("size") or "–",
                      row["backend"], row.get("schedule") or "–", row.get("snapshots") or "–",
                      fmt.integer(row.get("forward_steps")), fmt.seconds(row.get("time_s")),
                      fmt.ratio(row.get("time_ratio")), fmt.size_in_bytes(row.get("peak_bytes")),
                      fmt.ratio(row.get("memory_ratio")),
                      fmt.size_in_bytes(row.get("rss_peak_bytes")), fmt.digits(row.get("digits")),
                      status_cell(row), escape(row.get("message", "")))
    return table
