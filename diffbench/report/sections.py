"""What a report shows for each study CSV: its tables and its plots.

One registry serves the end of a run, ``diffbench report`` and ``diffbench plot``, so a saved
run renders exactly as a fresh one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from ..results import read_rows
from . import plots
from .tables import (
    gradient_table,
    scaling_fit_table,
    step_summary_table,
    swell_fit_table,
    swell_table,
)

Rows = Sequence[dict[str, str]]


@dataclass(frozen=True)
class Section:
    """Renderers for one CSV: ``tables(run_dir)`` and ``plots`` (file stem → plotter)."""

    csv_name: str
    tables: Callable[[Path], list[Table]]
    plots: dict[str, Callable[[Rows, Path], Path]] = field(default_factory=dict)


def _gradient_tables(run_dir: Path) -> list[Table]:
    return [gradient_table(read_rows(run_dir / "gradient.csv"))]


def _step_tables(run_dir: Path) -> list[Table]:
    return [step_summary_table(read_rows(run_dir / "step_summary.csv"),
                               title="step sweep: measured optimum and theory")]


def _step_plot(rows: Rows, path: Path) -> Path:
    return plots.plot_step_sweep(rows, read_rows(path.parent.parent / "step_summary.csv"), path)


def _swell_tables(run_dir: Path) -> list[Table]:
    tables = [swell_table(read_rows(run_dir / "swell.csv"))]
    if (run_dir / "swell_fit.csv").is_file():
        tables.append(swell_fit_table(read_rows(run_dir / "swell_fit.csv")))
    return tables


def _scaling_tables(run_dir: Path) -> list[Table]:
    tables = [gradient_table(read_rows(run_dir / "scaling.csv"), title="scaling study")]
    if (run_dir / "scaling_fit.csv").is_file():
        tables.append(scaling_fit_table(read_rows(run_dir / "scaling_fit.csv")))
    return tables


SECTIONS: tuple[Section, ...] = (
    Section("gradient.csv", _gradient_tables,
            {"omega": plots.plot_omega, "digits": plots.plot_digits}),
    Section("scaling.csv", _scaling_tables, {"cost": plots.plot_scaling}),
    Section("step_sweep.csv", _step_tables, {"error": _step_plot}),
    Section("swell.csv", _swell_tables, {"sizes": plots.plot_swell}),
)


def present(run_dir: Path) -> list[Section]:
    """The sections whose CSV exists in ``run_dir`` and has rows."""
    return [s for s in SECTIONS if (run_dir / s.csv_name).is_file()
            and read_rows(run_dir / s.csv_name)]


def tables(run_dir: Path) -> list[Table]:
    return [table for section in present(run_dir) for table in section.tables(run_dir)]


def make_plots(run_dir: Path) -> list[Path]:
    """Every plot of the run, as ``RUN_DIR/plots/<csv stem>_<kind>.png``."""
    made = []
    for section in present(run_dir):
        rows = read_rows(run_dir / section.csv_name)
        stem = Path(section.csv_name).stem
        for kind, plot in section.plots.items():
            made.append(plot(rows, run_dir / "plots" / f"{stem}_{kind}.png"))
    return made


def markdown_report(run_dir: Path, plot_files: Sequence[Path] = ()) -> str:
    """The whole report as markdown: every table, then every plot by relative path."""
    from .markdown import table_to_markdown

    parts = [f"# diffbench report: {run_dir.name}\n"]
    parts += [table_to_markdown(table) for table in tables(run_dir)]
    if plot_files:
        parts.append("## Plots\n")
        parts += [f"![{p.stem}]({p.relative_to(run_dir)})\n" for p in plot_files]
    return "\n".join(parts)


def write_report(run_dir: Path, with_plots: bool = True) -> Path:
    """``RUN_DIR/report.md``, with the plots made first unless ``with_plots`` is false."""
    plot_files = make_plots(run_dir) if with_plots else []
    path = run_dir / "report.md"
    path.write_text(markdown_report(run_dir, plot_files), encoding="utf-8")
    return path
