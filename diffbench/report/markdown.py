"""Rich tables as GitHub-flavoured markdown, so one table definition serves both."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text


def _plain(cell) -> str:
    text = cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
    return text.replace("|", "\\|").replace("\n", " ")


def table_to_markdown(table: Table) -> str:
    """The table's title as a heading, then its header, alignment row and cells."""
    columns = table.columns
    header = "| " + " | ".join(_plain(c.header) for c in columns) + " |"
    align = "|" + "|".join("---:" if c.justify == "right" else "---" for c in columns) + "|"
    rows = ["| " + " | ".join(_plain(cell) for cell in cells) + " |"
            for cells in zip(*(c._cells for c in columns), strict=True)]
    title = f"### {_plain(table.title)}\n\n" if table.title else ""
    caption = f"\n\n{_plain(table.caption)}" if table.caption else ""
    return title + "\n".join([header, align, *rows]) + caption + "\n"
