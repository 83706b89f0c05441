"""What a report shows of a run: one registry of tables and plots per study CSV.

Everything is rendered from the run's files, and the end of a run, ``diffbench report`` and
``diffbench plot`` all render through this registry, so a saved run shows exactly the tables a
fresh one printed.  matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import plots
from .claims import claims_table, write_claims
from .files import RunFiles
from .gradient_table import gradient_table
from .markdown import table_to_markdown
from .tables import (
    checkpoint_table,
    scaling_fit_table,
    step_methods_table,
    step_summary_table,
    swell_fit_table,
    swell_table,
)


@dataclass(frozen=True)
class Section:
    """What one study CSV renders to: ``tables(run, width)`` (``width``: a terminal's, or
    None for a file), ``plots``: kind → a function that draws that plot of the run into the
    path given (or draws nothing and returns None where the plot does not apply to the run),
    and ``captions``: kind → the sentence report.md prints under that plot."""

    csv_name: str
    tables: Callable[[RunFiles, int | None], list[Table]]
    plots: Mapping[str, Callable[[RunFiles, Path], Path | None]]
    captions: Mapping[str, str] = field(default_factory=dict)


def shows_claims(run: RunFiles) -> bool:
    """The run has scaling rows, and a scaling study asked for the textbook table
    (``verdict = true``)."""
    return bool(run.rows("scaling.csv")) and any(
        study.get("kind") == "scaling" and study.get("verdict") for study in run.studies())


def _gradient_tables(run: RunFiles, width: int | None) -> list[Table]:
    return [gradient_table(run.rows("gradient.csv"), width=width)]


def _scaling_tables(run: RunFiles, width: int | None) -> list[Table]:
    tables = [gradient_table(run.rows("scaling.csv"), title="scaling study", width=width)]
    if run.rows("scaling_fit.csv"):
        tables.append(scaling_fit_table(run.rows("scaling_fit.csv")))
    if shows_claims(run):
        tables.append(claims_table(run.dir))
    return tables


def _step_tables(run: RunFiles, width: int | None) -> list[Table]:
    tables = [step_summary_table(run.rows("step_summary.csv"),
                                 title="step sweep: measured optimum and theory")]
    if run.rows("step_methods.csv"):
        tables.append(step_methods_table(run.rows("step_methods.csv")))
    return tables


def _swell_tables(run: RunFiles, width: int | None) -> list[Table]:
    tables = [swell_table(run.rows("swell.csv"))]
    if run.rows("swell_fit.csv"):
        tables.append(swell_fit_table(run.rows("swell_fit.csv")))
    return tables


def _checkpoint_tables(run: RunFiles, width: int | None) -> list[Table]:
    return [checkpoint_table(run.rows("checkpoint.csv"))]


def _precision_plot(run: RunFiles, path: Path) -> Path | None:
    """The precision map, where the gradient rows ran at more than one working precision."""
    rows = run.rows("gradient.csv")
    return plots.plot_precision(rows, path) if len(plots.dtypes(rows)) > 1 else None


SECTIONS: tuple[Section, ...] = (
    Section("gradient.csv", _gradient_tables, {
        "omega": lambda run, path: plots.plot_omega(run.rows("gradient.csv"), path),
        "digits": lambda run, path: plots.plot_digits(run.rows("gradient.csv"), path),
        "precision": _precision_plot,
    }, captions={
        "precision": "Each cell is the method's normwise correct digits at that working "
                     "precision, against the 50-digit reference at x0 rounded to the dtype "
                     "(grey: the status of a case that did not run to ok; blank: not run).",
    }),
    Section("scaling.csv", _scaling_tables, {
        "cost": lambda run, path: plots.plot_scaling(run.rows("scaling.csv"),
                                                     run.rows("scaling_fit.csv"), path),
        "omega": lambda run, path: plots.plot_scaling_omega(run.rows("scaling.csv"), path),
    }),
    Section("step_sweep.csv", _step_tables, {
        "error": lambda run, path: plots.plot_step_sweep(run.rows("step_sweep.csv"),
                                                         run.rows("step_summary.csv"), path),
    }),
    Section("swell.csv", _swell_tables, {
        "sizes": lambda run, path: plots.plot_swell(run.rows("swell.csv"), path),
    }),
    Section("checkpoint.csv", _checkpoint_tables, {
        "frontier": lambda run, path: plots.plot_checkpoint(
            run.rows("checkpoint.csv"), run.rows("checkpoint_frontier.csv"), path),
    }),
)


def present(run: RunFiles) -> list[Section]:
    """The sections whose CSV exists in the run and has rows."""
    return [section for section in SECTIONS if run.rows(section.csv_name)]


def tables(run_dir: Path, width: int | None = None) -> list[Table]:
    """Every table of the run, in the registry's order, laid out for a terminal ``width``
    characters wide (None: every column, for a file)."""
    run = RunFiles(run_dir)
    return [table for section in present(run) for table in section.tables(run, width)]


def print_tables(run_dir: Path, console: Console) -> int:
    """Print :func:`tables` of the run, the same at the end of a run and in a report; return
    how many there were."""
    shown = tables(run_dir, console.width)
    for table in shown:
        console.print(table)
    return len(shown)


def make_plots(run_dir: Path) -> list[Path]:
    """Every plot of the run that applies to it, as ``RUN_DIR/plots/<csv stem>_<kind>.png``."""
    run = RunFiles(run_dir)
    drawn = (draw(run, run_dir / "plots" / f"{_plot_stem(section, kind)}.png")
             for section in present(run) for kind, draw in section.plots.items())
    return [path for path in drawn if path is not None]


def _plot_stem(section: Section, kind: str) -> str:
    return f"{Path(section.csv_name).stem}_{kind}"


def _plot_markdown(run_dir: Path, path: Path) -> str:
    """The plot embedded by its path relative to the run, with its caption if it has one."""
    captions = {_plot_stem(section, kind): caption for section in SECTIONS
                for kind, caption in section.captions.items()}
    caption = captions.get(path.stem)
    return f"![{path.stem}]({path.relative_to(run_dir)})\n" + (f"\n{caption}\n" if caption
                                                               else "")


def markdown_report(run_dir: Path, plot_files: Sequence[Path] = ()) -> str:
    """The whole report as markdown: every table, then every plot by relative path."""
    parts = [f"# diffbench report: {run_dir.name}\n"]
    parts += [table_to_markdown(table) for table in tables(run_dir)]
    if plot_files:
        parts.append("## Plots\n")
        parts += [_plot_markdown(run_dir, p) for p in plot_files]
    return "\n".join(parts)


def write_report(run_dir: Path, with_plots: bool = True) -> Path:
    """``RUN_DIR/report.md`` (the plots drawn first unless ``with_plots`` is false), and
    ``claims.md`` when the run asked for the textbook table."""
    plot_files = make_plots(run_dir) if with_plots else []
    path = run_dir / "report.md"
    path.write_text(markdown_report(run_dir, plot_files), encoding="utf-8")
    if shows_claims(RunFiles(run_dir)):
        write_claims(run_dir)
    return path
