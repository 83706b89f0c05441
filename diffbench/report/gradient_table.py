"""The gradient study's table, laid out for the terminal it is printed on.

A file (markdown, a pipe) gets every column, the notes in the last one.  A terminal gets the
fullest layout in which no number is cut: the notes become numbered footnotes below the
table; then the table loses its outer border and puts family and size in one column; then
the number columns of ``DROPPED_FIRST`` go one by one (the CSV keeps them all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from . import format as fmt
from .tables import backend_cell, case_cell, family_cell, status_cell

NUMBERS: tuple[tuple[str, Callable[[Mapping[str, str]], str]], ...] = (
    ("setup", lambda row: fmt.seconds(row.get("setup_s"))),
    ("time", lambda row: fmt.seconds(row.get("time_s"))
     + (" [yellow]±[/yellow]" if row.get("unstable") == "true" else "")),
    ("ω", lambda row: fmt.ratio(row.get("omega"))),
    ("memory", lambda row: fmt.size_in_bytes(row.get("peak_bytes"))),
    ("digits", lambda row: fmt.digits(row.get("digits"))),
    ("f evals", lambda row: fmt.integer(row.get("f_evals"))),
)
"""The table's numbers: header and cell."""
DROPPED_FIRST = ("f evals", "setup", "memory")
"""The number columns a narrow terminal drops, in this order."""
NOTE_MIN_WIDTH = 24
"""Notes stay in their column while it can be this wide; below, they become footnotes."""


@dataclass(frozen=True)
class Layout:
    inline_notes: bool = True
    dropped: tuple[str, ...] = ()
    compact: bool = False
    """No outer border; family and size in one column; a status may wrap."""


LAYOUTS = (Layout(), *(Layout(False, DROPPED_FIRST[:k], compact)
                       for k in range(len(DROPPED_FIRST) + 1) for compact in (False, True)))
"""From the fullest to the narrowest: a number column goes only where losing the border and
the size column is not enough."""


def gradient_table(rows: Sequence[Mapping[str, str]], title: str = "gradient study",
                   width: int | None = None) -> Table:
    """One line per case; a timing not to be trusted is marked ``±`` and counted below.

    Without ``width`` every column; with it, the first of ``LAYOUTS`` whose cells all fit
    whole in ``width`` characters (the last one if none does).
    """
    if width is None:
        return _table(rows, title, Layout())
    for layout in LAYOUTS:
        table = _table(rows, title, layout)
        if narrowest(table) <= width:
            break
    return table


def _text_width(cell, whole: bool) -> int:
    """The width ``cell`` needs: all of it (``whole``), or its longest word."""
    text = cell if isinstance(cell, Text) else Text.from_markup(str(cell))
    if whole:
        return text.cell_len
    return max((Text(word).cell_len for word in text.plain.split()), default=0)


def narrowest(table: Table) -> int:
    """The narrowest ``table`` can be with no cell cut: a column that does not wrap as wide
    as its widest cell, one that wraps as its longest word (or its ``min_width``), plus one
    space either side of each and a border between (and around, with ``show_edge``)."""
    widths = [max(column.min_width or 0,
                  *(_text_width(cell, column.no_wrap) for cell in (column.header,
                                                                   *column._cells)))
              for column in table.columns]
    return sum(widths) + 3 * len(widths) + (1 if table.show_edge else -3)


def _notes(rows: Sequence[Mapping[str, str]]) -> dict[str, int]:
    """Each distinct message, numbered in the order rows have it."""
    notes: dict[str, int] = {}
    for row in rows:
        if row.get("message"):
            notes.setdefault(row["message"], len(notes) + 1)
    return notes


def _caption(rows: Sequence[Mapping[str, str]], layout: Layout, notes: dict[str, int]) -> str:
    unstable = sum(row.get("unstable") == "true" for row in rows)
    lines = []
    if unstable:
        lines.append(f"± {unstable} timing(s) unstable (spread ≥ 10 % of the median, outliers "
                     "by median/MAD, or samples near the timer's resolution): see timing_note "
                     "in the CSV")
    if layout.dropped:
        lines.append(f"not shown at this width: {', '.join(layout.dropped)} (see the CSV)")
    return "\n".join([*lines, *(f"[{n}] {escape(note)}" for note, n in notes.items())])


def _table(rows: Sequence[Mapping[str, str]], title: str, layout: Layout) -> Table:
    notes = {} if layout.inline_notes else _notes(rows)
    table = Table(title=title, header_style="bold", caption=_caption(rows, layout, notes) or None,
                  caption_justify="left",
                  **({"box": box.SIMPLE_HEAD, "show_edge": False} if layout.compact else {}))
    numbers = [(header, cell) for header, cell in NUMBERS if header not in layout.dropped]
    if layout.compact:
        table.add_column("case")
    else:
        table.add_column("family")
        table.add_column("size", justify="right", no_wrap=True)
    table.add_column("backend")
    for header, _ in numbers:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=not layout.compact)
    if layout.inline_notes:
        table.add_column("note", overflow="fold", ratio=1, min_width=NOTE_MIN_WIDTH)
    for row in rows:
        status = status_cell(row)
        if row.get("message") and not layout.inline_notes:
            status += f" [{notes[row['message']]}]"
        case = ([case_cell(row)] if layout.compact
                else [family_cell(row).replace(",", ", "), row.get("size") or "–"])
        table.add_row(*case, backend_cell(row).replace(",", ", "),
                      *(cell(row) for _, cell in numbers), status,
                      *((Text(row.get("message", "")),) if layout.inline_notes else ()))
    return table
