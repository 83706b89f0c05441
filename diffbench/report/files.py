"""A run directory as a report reads it: its CSVs, each read once, and the config it ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..results import read_rows
from ..runstate import read_manifest


class RunFiles:
    """The saved files of one run; a CSV that is not there reads as no rows, a damaged one
    raises ``ResultsError`` (``diffbench.schema``)."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self._rows: dict[str, list[dict[str, str]]] = {}

    def rows(self, name: str) -> list[dict[str, str]]:
        """The rows of the CSV ``name``, as strings (none when it is not there)."""
        if name not in self._rows:
            path = self.dir / name
            self._rows[name] = read_rows(path) if path.is_file() else []
        return self._rows[name]

    def studies(self) -> list[dict[str, Any]]:
        """The ``[[study]]`` tables of the config as run (from ``manifest.json``)."""
        if not (self.dir / "manifest.json").is_file():
            return []
        studies = read_manifest(self.dir)["config"].get("study", [])
        return [study for study in studies if isinstance(study, dict)]
