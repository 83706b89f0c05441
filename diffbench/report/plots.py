"""PNG plots with matplotlib (headless Agg), from CSV rows (strings).

matplotlib is imported by the first plot drawn, not with this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..measure.sweep import error_model
from .tables import backend_cell, case_cell

Rows = Sequence[Mapping[str, str]]


def pyplot():
    """matplotlib's pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def number(value) -> float:
    """A CSV cell as a float; NaN when empty."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _grid(rows: Rows, column: str):
    """Cases (family [size]) × backends matrix of ``column``, in the rows' order."""
    cases = list(dict.fromkeys(case_cell(r) for r in rows))
    backends = list(dict.fromkeys(backend_cell(r) for r in rows))
    values = [[math.nan] * len(backends) for _ in cases]
    for r in rows:
        if r.get("status") == "ok":
            values[cases.index(case_cell(r))][backends.index(backend_cell(r))] = \
                number(r.get(column))
    return cases, backends, values


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    pyplot().close(fig)
    return path


def plot_omega(rows: Rows, path: Path) -> Path:
    """ω = T(gradient)/T(f) per case and backend: grouped horizontal bars, log axis."""
    cases, backends, values = _grid(rows, "omega")
    height = 0.8 / max(len(backends), 1)
    fig, ax = pyplot().subplots(figsize=(8, 0.45 * len(cases) * max(1, len(backends) / 2) + 1.5))
    for j, backend in enumerate(backends):
        positions = [i + (j - (len(backends) - 1) / 2) * height for i in range(len(cases))]
        ax.barh(positions, [v[j] for v in values], height=height, label=backend)
    ax.set_yticks(range(len(cases)), cases)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.axvline(4.0, color="grey", lw=0.8, ls="--", label="reverse-mode bound ≈ 4")
    ax.set_xlabel("ω = time of one gradient / time of one evaluation of f, run the way the "
                  "same backend runs it (log scale)", fontsize=9)
    ax.set_title("Cost of a gradient relative to the function")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    return save(fig, path)


def plot_digits(rows: Rows, path: Path) -> Path:
    """Correct digits per case and backend as an annotated heat map."""
    cases, backends, values = _grid(rows, "digits")
    fig, ax = pyplot().subplots(figsize=(1.3 * len(backends) + 3, 0.38 * len(cases) + 1.5))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=16, aspect="auto")
    ax.set_xticks(range(len(backends)), backends, rotation=30, ha="right")
    ax.set_yticks(range(len(cases)), cases)
    for i, line in enumerate(values):
        for j, value in enumerate(line):
            text = "–" if math.isnan(value) else f"{value:.1f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if math.isnan(value) or value < 9 else "black")
    fig.colorbar(image, ax=ax, label="correct digits (−log10 max relative error)")
    ax.set_title("Accuracy against the 50-digit reference")
    return save(fig, path)


def _panels(count: int, width: float = 4.6, height: float = 3.6):
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    fig, axes = pyplot().subplots(rows, columns, figsize=(width * columns, height * rows),
                             squeeze=False)
    for ax in axes.ravel()[count:]:
        ax.set_visible(False)
    return fig, axes.ravel()


DTYPES = ("float64", "float32", "bfloat16", "float16")
"""The working precisions, widest first: the precision map's column order."""
PRECISION_OPTIONS = ("dtype", "accumulate", "loss_scale")
"""Backend options that set the working precision, named apart in the precision map."""
PRECISION_PANELS = 12
"""The most cases the precision map draws."""


def dtype_of(row: Mapping[str, str]) -> str:
    """The row's working precision; ``float64`` for rows written before the column was."""
    return row.get("dtype") or "float64"


def dtypes(rows: Rows) -> list[str]:
    """The rows' working precisions, in ``DTYPES`` order, then any others as they come."""
    present = dict.fromkeys(dtype_of(r) for r in rows)
    return [d for d in DTYPES if d in present] + [d for d in present if d not in DTYPES]


def _method_label(row: Mapping[str, str]) -> str:
    """The backend with its options other than the precision's, then its accumulation and
    loss scale: ``reverse``, ``reverse · accumulate float32``, ``jax · loss scale dynamic``."""
    others = [part for part in row.get("variant", "").split(",")
              if part and part != "default" and part.split("=")[0] not in PRECISION_OPTIONS]
    label = row["backend"] + (f" ({','.join(others)})" if others else "")
    if row.get("accumulate"):
        label += f" · accumulate {row['accumulate']}"
    if row.get("loss_scale"):
        label += f" · loss scale {row['loss_scale']}"
    return label


def plot_precision(rows: Rows, path: Path) -> Path:
    """Correct digits per method × working precision, one annotated heat map per case (the
    first ``PRECISION_PANELS``) over the methods run on it: a row that did not run shows its
    status on grey, a method not run at a precision is left blank."""
    plt = pyplot()
    cases = list(dict.fromkeys(case_cell(r) for r in rows))
    shown = cases[:PRECISION_PANELS]
    labels = {case: list(dict.fromkeys(_method_label(r) for r in rows if case_cell(r) == case))
              for case in shown}
    most = max(len(methods) for methods in labels.values())
    longest = max(len(label) for methods in labels.values() for label in methods)
    columns = dtypes(rows)
    fig, axes = _panels(len(shown), width=0.75 * len(columns) + 0.07 * longest + 1,
                        height=0.36 * most + 1.6)
    for ax, case in zip(axes, shown, strict=False):
        methods = labels[case]
        values = [[math.nan] * len(columns) for _ in methods]
        statuses = {}
        for r in rows:
            if case_cell(r) == case:
                cell = methods.index(_method_label(r)), columns.index(dtype_of(r))
                if r.get("status") == "ok":
                    values[cell[0]][cell[1]] = number(r.get("digits"))
                else:
                    statuses[cell] = r.get("status", "")
        image = ax.imshow(values, cmap="viridis", vmin=0, vmax=16, aspect="auto")
        for (i, j), status in statuses.items():
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="lightgrey"))
            ax.text(j, i, status, ha="center", va="center", fontsize=7, color="dimgrey")
        for i, line in enumerate(values):
            for j, value in enumerate(line):
                if not math.isnan(value):
                    ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8,
                            color="white" if value < 9 else "black")
        ax.set_xticks(range(len(columns)), columns)
        ax.set_yticks(range(len(methods)), methods, fontsize=8)
        ax.set_title(case, fontsize=10)
    more = f" (the first {len(shown)} of {len(cases)} cases)" if len(cases) > len(shown) else ""
    fig.suptitle(f"Correct digits by working precision{more}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.93, 0.97))
    fig.colorbar(image, cax=fig.add_axes((0.95, 0.15, 0.012, 0.7)),
                 label="correct digits (normwise)")
    return save(fig, path)


def _theory_line(rule: str, h: Sequence[float], summary: Mapping[str, str],
                 sigma: float) -> list[float] | None:
    """The relative error of ``rule``'s textbook model (``measure.sweep.error_model``) with
    noise ``sigma`` at the steps ``h``; None where the model has no coefficients."""
    model = error_model(rule, sigma, number(summary.get("d2")), number(summary.get("d3")))
    if model is None:
        return None
    derivative = abs(number(summary.get("reference")))
    return [model(step) / derivative for step in h]


def plot_step_sweep(rows: Rows, summaries: Rows, path: Path) -> Path:
    """Error against h per family and component, one curve per rule, with the textbook model
    for central differences, the measured optimum with its range over the shifted grids (dot
    and bar) and the predicted ones (lines)."""
    panels = list(dict.fromkeys((r["family"], r.get("size", ""), r["component"])
                                for r in rows if r.get("h")))
    fig, axes = _panels(len(panels))
    for ax, (family, size, component) in zip(axes, panels, strict=False):
        mine = [r for r in rows if (r["family"], r.get("size", ""), r["component"])
                == (family, size, component) and r.get("status") == "ok"]
        reference = next((r["reference"] for r in mine), "")
        for rule in dict.fromkeys(r["rule"] for r in mine):
            points = sorted((number(r["h"]), number(r["err"])) for r in mine if r["rule"] == rule)
            points = [(h, e) for h, e in points if e > 0]  # exact results have no log
            if points:
                ax.loglog(*zip(*points, strict=True), lw=1.4 if rule == "central" else 0.8,
                          alpha=1.0 if rule in ("central", "complex") else 0.55, label=rule)
        summary = next((s for s in summaries if (s["family"], s.get("size", ""), s["component"],
                                                  s["rule"]) == (family, size, component,
                                                                 "central")), None)
        if summary and summary.get("h_opt"):
            grid = sorted(number(r["h"]) for r in mine if r["rule"] == "central")
            with_reference = {**summary, "reference": reference}
            for key, style, label in (("sigma_eps", "k--", "central model, σ = eps·|f|"),
                                      ("sigma_noise", "k:", "central model, measured σ")):
                line = _theory_line("central", grid, with_reference, number(summary.get(key)))
                if line is not None:
                    ax.loglog(grid, line, style, lw=0.8, label=label)
            h_opt = number(summary["h_opt"])
            low, high = number(summary.get("h_opt_low")), number(summary.get("h_opt_high"))
            spread = ([[h_opt - low], [high - h_opt]] if math.isfinite(low) and math.isfinite(high)
                      else None)  # runs made before the shifted grids have no range
            ax.errorbar(h_opt, number(summary["err_near"]), xerr=spread, fmt="ro", ms=6,
                        capsize=3, label="measured optimum (central), range over grid shifts")
            for key, style in (("h_theory", "--"), ("h_noise", ":")):
                if summary.get(key):
                    ax.axvline(number(summary[key]), color="red", ls=style, lw=0.8)
        title = family + (f" [{size}]" if size else "")
        ax.set_title(f"{title}, ∂/∂x[{component}] at {mine[0]['point'] if mine else ''}",
                     fontsize=10)
        ax.set_xlabel("step h")
        ax.set_ylabel("relative error")
        ax.set_ylim(1e-17, 10)
        ax.grid(which="major", alpha=0.3)
    handles = {label: handle for ax in axes for handle, label in
               zip(*ax.get_legend_handles_labels(), strict=True)}
    fig.suptitle("Finite-difference error against the step h (red lines: predicted optimal h, "
                 "dashed from σ = eps·|f|, dotted from the measured noise; errors of exactly 0 "
                 "are not drawn)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=5, fontsize=8)
    return save(fig, path)


def plot_swell(rows: Rows, path: Path) -> Path:
    """Size of the gradient against depth or size, per family, one line per representation."""
    families = list(dict.fromkeys(r["family"] for r in rows))
    fig, axes = _panels(len(families))
    for ax, family in zip(axes, families, strict=False):
        mine = [r for r in rows if r["family"] == family and r.get("status") == "ok"]
        for representation in dict.fromkeys(r["representation"] for r in mine):
            points = sorted((int(r["size"]), number(r["nodes_df"])) for r in mine
                            if r["representation"] == representation
                            and number(r["nodes_df"]) > 0)
            if points:
                ax.semilogy(*zip(*points, strict=True), "o-", ms=3, label=representation)
        ax.set_title(family)
        ax.set_xlabel("size (depth or n)")
        ax.set_ylabel("nodes in the gradient (log scale)")
        ax.grid(which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("Expression swell: size of the gradient per representation", fontsize=11)
    fig.tight_layout()
    return save(fig, path)


def plot_scaling(rows: Rows, fits: Rows, path: Path) -> Path:
    """Time and memory of one gradient against n, log-log, one line per backend per family,
    with the exponent fitted in ``scaling_fit.csv`` (``fits``) in the legend.  Memory is the
    resident-set peak of one gradient, the one figure measured alike for every backend."""
    exponents = {(f["family"], backend_cell(f), f["metric"]): number(f["exponent"])
                 for f in fits}
    families = list(dict.fromkeys(r["family"] for r in rows))
    fig, axes = pyplot().subplots(len(families), 2, figsize=(11, 4 * len(families)),
                                  squeeze=False)
    for line, family in zip(axes, families, strict=True):
        mine = [r for r in rows if r["family"] == family and r.get("status") == "ok"]
        for ax, column, label in ((line[0], "time_s", "time of one gradient (s)"),
                                  (line[1], "rss_peak_bytes",
                                   "resident-set peak of one gradient (bytes)")):
            for method in dict.fromkeys(backend_cell(r) for r in mine):
                points = sorted((number(r["n_inputs"]), number(r[column])) for r in mine
                                if backend_cell(r) == method and number(r.get(column)) > 0)
                if not points:
                    continue
                exponent = exponents.get((family, method, column))
                slope = f" (p = {exponent:.2f})" if exponent is not None else ""
                ax.loglog(*zip(*points, strict=True), "o-", ms=3, label=method + slope)
            ax.set_xlabel("n, number of inputs")
            ax.set_ylabel(label)
            ax.set_title(f"{family}: {label.split(' (')[0]}")
            ax.grid(which="major", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def plot_scaling_omega(rows: Rows, path: Path) -> Path:
    """ω = T(gradient)/T(f) against n, one panel per family, one line per backend (f run the
    way each backend runs it), log-log, with the reverse-mode bound ≈ 4."""
    families = list(dict.fromkeys(r["family"] for r in rows))
    fig, axes = pyplot().subplots(1, len(families), figsize=(5.5 * len(families), 4),
                                  squeeze=False)
    for ax, family in zip(axes[0], families, strict=True):
        mine = [r for r in rows if r["family"] == family and r.get("status") == "ok"]
        for method in dict.fromkeys(backend_cell(r) for r in mine):
            points = sorted((number(r["n_inputs"]), number(r["omega"])) for r in mine
                            if backend_cell(r) == method and number(r.get("omega")) > 0)
            if points:
                ax.loglog(*zip(*points, strict=True), "o-", ms=3, label=method)
        ax.axhline(4.0, color="grey", lw=0.8, ls="--", label="reverse-mode bound ≈ 4")
        ax.set_xlabel("n, number of inputs")
        ax.set_ylabel("ω = T(gradient) / T(f)")
        ax.set_title(f"{family}: ω against n")
        ax.grid(which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


SCHEDULE_MARKERS = {"none": "s", "every": "^", "sqrt": "o", "revolve": "*"}
"""The marker of each kind of checkpointing schedule."""


def _schedule_label(row: Mapping[str, str]) -> str:
    """``sqrt``, ``every:1``, or ``revolve, 8`` (with its snapshots)."""
    if row["schedule"] == "revolve":
        return f"revolve, {row.get('snapshots')}"
    return row["schedule"]


def plot_checkpoint(rows: Rows, frontier: Rows, path: Path) -> Path:
    """Memory against time of each chain's gradient, as ratios to the same backend's ``none``
    (one panel per chain; backends by colour, schedules by marker), and beside them revolve's
    theoretical frontier: forward steps per step of the chain against snapshots, one line per
    depth (``checkpoint_frontier.csv``), with the measured schedules' own counts marked."""
    plt = pyplot()
    ok = [r for r in rows if r.get("status") == "ok" and number(r.get("memory_ratio")) > 0]
    chains = list(dict.fromkeys((r["family"], r["size"], r["depth"]) for r in ok))
    colours = {b: f"C{i}" for i, b in enumerate(dict.fromkeys(r["backend"] for r in ok))}
    columns = math.ceil(math.sqrt(len(chains) + 1))
    lines = math.ceil((len(chains) + 1) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(5.4 * columns, 4.3 * lines),
                             squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(chains) + 1:]:
        ax.set_visible(False)
    for ax, chain in zip(axes, chains, strict=False):
        for r in (r for r in ok if (r["family"], r["size"], r["depth"]) == chain):
            x, y = number(r["time_ratio"]), number(r["memory_ratio"])
            ax.scatter(x, y, s=70, color=colours[r["backend"]], edgecolors="black", lw=0.4,
                       marker=SCHEDULE_MARKERS[r["schedule"].split(":")[0]], zorder=3)
            if r["schedule"] != "none":
                ax.annotate(_schedule_label(r), (x, y), xytext=(5, 3),
                            textcoords="offset points", fontsize=7)
        family, size, depth = chain
        ax.set_yscale("log")
        ax.set_title(f"{family} [{size}], L = {depth}", fontsize=10)
        ax.set_xlabel("time / time without checkpoints")
        ax.set_ylabel("peak memory / peak without checkpoints")
        ax.grid(which="both", alpha=0.3)
    _plot_frontier(axes[len(chains)], ok, frontier)
    handles = [plt.Line2D([], [], ls="", marker="o", color=c, label=b)
               for b, c in colours.items()]
    handles += [plt.Line2D([], [], ls="", marker=m, color="grey", label=k)
                for k, m in SCHEDULE_MARKERS.items()]
    fig.suptitle("Checkpointing: memory against time per schedule, each backend against its own "
                 "none (memory by the backend's own method)", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    return save(fig, path)


def _plot_frontier(ax, ok: Rows, frontier: Rows) -> None:
    """Revolve's fewest forward steps per step against snapshots, one line per depth, and the
    counted steps of the measured schedules (hollow, in their depth's colour)."""
    colours = {}
    for i, depth in enumerate(dict.fromkeys(r["depth"] for r in frontier)):
        colours[depth] = f"C{i + 4}"
        points = [(number(r["snapshots"]), number(r["forward_steps"]) / number(depth))
                  for r in frontier if r["depth"] == depth]
        ax.loglog(*zip(*points, strict=True), lw=1.2, color=colours[depth],
                  label=f"revolve's fewest, L = {depth}")
    counted = {(r["depth"], r["schedule"], r["snapshots"], r["forward_steps"]) for r in ok
               if r.get("snapshots") and r.get("forward_steps")}
    for depth, schedule, snapshots, steps in sorted(counted):
        x, y = number(snapshots), number(steps) / number(depth)
        ax.scatter(x, y, s=60, facecolors="white", edgecolors=colours.get(depth, "black"),
                   lw=1.2, zorder=3, marker=SCHEDULE_MARKERS[schedule.split(":")[0]])
        if schedule != "revolve":
            ax.annotate(schedule, (x, y), xytext=(4, -10), textcoords="offset points",
                        fontsize=7)
    ax.set_title("revolve's frontier: recomputation against snapshots\n(sqrt and every:K hold "
                 "a segment's tape besides)", fontsize=9)
    ax.set_xlabel("snapshots: states of the chain stored at once")
    ax.set_ylabel("forward steps per step of the chain")
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
