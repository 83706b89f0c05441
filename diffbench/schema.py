"""Reading a run's CSVs back, defensively: every reader (report, plot, compare, merge, a
study's summaries) goes through :func:`read_rows`.

A file is refused with a :class:`ResultsError` naming the file, the line and the column of
what is wrong: not UTF-8, no header, a column the readers need missing, a row with more or
fewer cells than the header, a cell of a numeric or boolean column that is not one, a status
that is not one of ``STATUSES``.  A torn last line (no end of line: the run was stopped while
writing it) is skipped with a :class:`ResultsWarning`.  Columns not listed here are read as
text, so that a file with more columns than this version knows still reads.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

from .errors import UserError, read_utf8

STATUSES = ("ok", "error", "timeout", "out-of-memory", "unsupported", "no-reference", "nan",
            "overflow", "skipped")
"""Every status a row can have; anything but ``ok`` comes with a message."""

_CASE = ("study", "family", "size", "status", "message")
_GRADIENT = (*_CASE, "n_inputs", "backend", "variant", "setup_s", "time_s", "time_iqr_s",
             "samples", "unstable", "omega", "peak_bytes", "f_peak_bytes", "digits", "f_evals")
REQUIRED: dict[str, tuple[str, ...]] = {
    "gradient.csv": _GRADIENT,
    "scaling.csv": _GRADIENT,
    "step_sweep.csv": (*_CASE, "component", "point", "rule", "h", "value", "reference", "err"),
    "step_summary.csv": (*_CASE, "component", "point", "rule", "h_opt", "err_near",
                         "err_min"),
    "swell.csv": (*_CASE, "n_inputs", "representation", "nodes_f", "nodes_df", "ratio",
                  "diff_s"),
    "swell_fit.csv": ("family", "representation", "points", "size_min", "size_max",
                      "factor_per_step", "exponent", "growth"),
    "scaling_fit.csv": ("family", "backend", "variant", "metric", "exponent", "ci_low",
                        "ci_high", "fit"),
}
"""Per file, the columns its readers rely on."""

NUMERIC = frozenset({
    "size", "n_inputs", "setup_s", "time_s", "time_min_s", "time_iqr_s", "samples", "loops",
    "processes", "process_spread", "f_time_s", "omega", "f_numpy_time_s", "omega_numpy",
    "peak_bytes", "f_peak_bytes", "rss_peak_bytes", "f_rss_peak_bytes", "err_norm", "digits",
    "err_max", "digits_component", "err_median", "err_abs", "err_scale", "kappa",
    "digits_attainable", "f_evals", "tape_len", "cotangent_peak_bytes", "expr_nodes",
    "err_estimate", "err_estimate_ratio", "build_s", "diff_s", "cse_s", "compile_s",
    "digits_mp", "component", "point", "h", "step", "value", "reference", "err", "h_opt",
    "err_min", "err_near", "slope_roundoff", "slope_truncation", "f_value", "d2", "d3",
    "sigma_eps", "h_theory", "err_theory", "sigma_noise", "h_noise", "err_noise", "nodes_f",
    "nodes_df", "ratio", "measure_s", "points", "size_min", "size_max", "factor_per_step",
    "exponent", "rms_exponential", "rms_power", "ci_low", "ci_high", "n_min", "n_max",
    "overhead_share", "h_opt_low", "h_opt_high",
})
"""Columns whose cells are numbers (or empty)."""
BOOLEAN = frozenset({"unstable", "reference_same_engine", "vanished"})
"""Columns whose cells are ``true``, ``false`` (or empty)."""


class ResultsError(UserError):
    """A results file that cannot be read as diffbench wrote it; the message says where."""


class ResultsWarning(UserWarning):
    """Something of a results file was left out as it was read (a torn last line)."""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_cell(path: Path, line: int, column: str, text: str) -> None:
    if text == "":
        return
    if column in NUMERIC and not _is_number(text):
        raise ResultsError(f"{path}: line {line}, column {column!r}: {text!r} is not a number")
    if column in BOOLEAN and text not in ("true", "false"):
        raise ResultsError(f"{path}: line {line}, column {column!r}: {text!r} is not true or "
                           "false")
    if column == "status" and text not in STATUSES:
        raise ResultsError(f"{path}: line {line}, column 'status': {text!r} is not a status "
                           f"({', '.join(STATUSES)})")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of the CSV ``path`` as strings, checked as the module's docstring says."""
    return read_table(path)[1]


def read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of the CSV ``path``, checked as :func:`read_rows` does."""
    text = read_utf8(path, ResultsError, "results file")
    if not text.strip():
        raise ResultsError(f"{path}: empty: no header line; not a file diffbench wrote (it "
                           "may have been cut short: run the config again)")
    lines = text.splitlines(keepends=True)
    if not lines[-1].endswith(("\n", "\r")):
        warnings.warn(f"{path}: line {len(lines)} is incomplete (the run stopped while "
                      "writing it): left out", ResultsWarning, stacklevel=3)
        text = "".join(lines[:-1])
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
        _check_header(path, header)
        rows = []
        for cells in reader:
            if len(cells) != len(header):
                raise ResultsError(f"{path}: line {reader.line_num}: {len(cells)} cells, the "
                                   f"header has {len(header)}")
            for column, cell in zip(header, cells, strict=True):
                _check_cell(path, reader.line_num, column, cell)
            rows.append(dict(zip(header, cells, strict=True)))
    except csv.Error as exc:
        raise ResultsError(f"{path}: line {reader.line_num}: not CSV: {exc}") from None
    return header, rows


def _check_header(path: Path, header: list[str]) -> None:
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise ResultsError(f"{path}: line 1: column {repeated[0]!r} appears twice")
    missing = [c for c in REQUIRED.get(path.name, ()) if c not in header]
    if missing:
        raise ResultsError(f"{path}: line 1: no column {missing[0]!r}"
                           + (f" (nor {', '.join(map(repr, missing[1:]))})" if missing[1:]
                              else "") + "; the readers need it")

