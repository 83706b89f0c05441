"""Rich tables built from CSV rows (strings), so a saved run prints as a fresh one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def case_cell(row: Mapping[str, str]) -> str:
    """``family`` or ``family [size]``."""
    return row["family"] if not row.get("size") else f"{row['family']} [{row['size']}]"


def gradient_table(rows: Sequence[Mapping[str, str]], title: str = "gradient study") -> Table:
    table = Table(title=title, header_style="bold")
    for column, justify in (("family", "left"), ("size", "right"), ("backend", "left"),
                            ("setup", "right"), ("time", "right"), ("ω", "right"),
                            ("memory", "right"), ("digits", "right"), ("f evals", "right"),
                            ("status", "left")):
        table.add_column(column, justify=justify, no_wrap=True)
    table.add_column("note", overflow="fold", ratio=1)
    for row in rows:
        time = fmt.seconds(row.get("time_s"))
        if row.get("unstable") == "true":
            time += " [yellow]±[/yellow]"
        table.add_row(
            row["family"], row.get("size") or "–", backend_cell(row),
            fmt.seconds(row.get("setup_s")), time,
            fmt.ratio(row.get("omega")), fmt.size_in_bytes(row.get("peak_bytes")),
            fmt.digits(row.get("digits")), fmt.integer(row.get("f_evals")), status_cell(row),
            row.get("message", ""),
        )
    return table
