"""A run directory's state: its manifest, the cases done, and trimming to them on resume.

Invariant: a case's key is added to ``manifest.json`` (atomically, by rename) only after all
of its rows are flushed; so on resume, rows and sample lines of cases not marked done, and any
torn last line, are dropped, and those cases run again.  Nothing is duplicated or lost.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import UserError

MANIFEST = "manifest.json"


class RunDirError(UserError):
    """A run directory that cannot be read, resumed or merged; the message says why."""


def canonical(config: Any) -> str:
    """A config's identity: its parsed TOML, serialised with sorted keys."""
    return json.dumps(config, sort_keys=True, default=str)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The run's manifest; raises ``RunDirError`` where there is none to read."""
    path = run_dir / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: not a diffbench run directory ({exc})") from exc


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest atomically: a reader sees the old one or the new one, whole."""
    tmp = run_dir / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, run_dir / MANIFEST)


def _complete_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()  # torn by a kill mid-write
    return lines


def trim_csv(path: Path, done: set[str]) -> int:
    """Keep the header and the rows whose ``case`` is done; return how many were dropped."""
    lines = _complete_lines(path)
    if not lines:
        path.unlink()
        return 0
    rows = list(csv.reader(io.StringIO("".join(lines))))
    header, body = rows[0], rows[1:]
    column = header.index("case")
    kept = [row for row in body if len(row) == len(header) and row[column] in done]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(kept)
    _replace(path, buffer.getvalue())
    return len(body) - len(kept)


def trim_jsonl(path: Path, done: set[str]) -> int:
    """Keep the JSON lines whose ``case`` is done; return how many were dropped."""
    lines = _complete_lines(path)
    kept = []
    for line in lines:
        try:
            if json.loads(line).get("case") in done:
                kept.append(line)
        except json.JSONDecodeError:
            pass
    _replace(path, "".join(kept))
    return len(lines) - len(kept)


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def trim_to_done(run_dir: Path, csv_names: Iterable[str], done: set[str]) -> int:
    """Drop every row and sample line of unfinished cases; return how many were dropped."""
    dropped = 0
    for name in csv_names:
        if (run_dir / name).exists():
            dropped += trim_csv(run_dir / name, done)
    for path in run_dir.glob("*.jsonl"):
        dropped += trim_jsonl(path, done)
    return dropped
