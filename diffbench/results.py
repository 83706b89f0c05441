"""Where a run lands: one CSV per study, written row by row, raw samples, and a manifest.

Its CSVs are read back through :func:`read_rows` (``diffbench.schema``), which checks them.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .schema import STATUSES, read_rows

PACKAGES = ("diffbench", "numpy", "sympy", "mpmath", "jax", "jaxlib", "typer", "rich", "autograd",
            "torch")
"""Versions recorded in the manifest (None where not installed)."""


def format_cell(value: Any) -> str:
    """CSV text for a value: empty for None and NaN, full precision for floats."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


class CsvWriter:
    """Appends rows to ``path`` with a fixed header; each row is flushed as soon as written."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path, self.columns = path, tuple(columns)
        fresh = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if fresh:
            self._writer.writerow(self.columns)
            self._file.flush()

    def write(self, row: Mapping[str, Any]) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"{self.path.name}: columns not in the schema: {sorted(unknown)}")
        if "status" in self.columns and row.get("status") not in STATUSES:
            raise ValueError(f"{self.path.name}: status {row.get('status')!r} is not one of "
                             f"{', '.join(STATUSES)}")
        self._writer.writerow([format_cell(row.get(c)) for c in self.columns])
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace ``path`` with a CSV of ``rows`` (summaries rebuilt at the end of a run)."""
    path.unlink(missing_ok=True)
    writer = CsvWriter(path, columns)
    try:
        for row in rows:
            writer.write(row)
    finally:
        writer.close()


def parse_cell(text: str) -> Any:
    """The inverse of ``format_cell`` for JSON: numbers and booleans typed, empty as None."""
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def rows_as_json(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every CSV of a run, file name → rows with typed values."""
    return {path.name: [{k: parse_cell(v) for k, v in row.items()} for row in read_rows(path)]
            for path in sorted(run_dir.glob("*.csv"))}


def file_name(key: str) -> str:
    """A case key as a file name: every run of characters other than letters, digits and
    ``_ . = -`` becomes one ``_``."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", key)


def write_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``path`` (``.npz``) holding ``arrays`` by name, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def append_json_line(path: Path, record: Mapping[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.platform(),
        "python": sys.version.split()[0],
        "hostname": platform.node(),
    }


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
