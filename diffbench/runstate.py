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
import shutil
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


MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "config_path": (str,), "config": (dict,), "done": (list,), "shard": (str, type(None)),
    "isolate": (bool,), "finished": (bool,), "machine": (dict,), "overrides": (dict,),
    "use_cache": (bool,), "save_gradients": (bool,), "merged_from": (list,),
}
"""The manifest's keys that diffbench reads back, and the types they must have."""
REQUIRED = ("config", "done")


def read_manifest(run_dir: Path, needs: tuple[str, ...] = ()) -> dict[str, Any]:
    """The run's manifest, checked: a JSON object with ``config``, ``done`` and the keys in
    ``needs``, and every key of ``MANIFEST_TYPES`` it has of its type; raises ``RunDirError``
    naming the file and the key where it is not."""
    path = run_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path}: not a diffbench run directory ({exc})") from exc
    if not isinstance(manifest, dict):
        raise RunDirError(f"{path}: not a diffbench manifest: a JSON object was expected, "
                          f"got {type(manifest).__name__}")
    for key in (*REQUIRED, *needs):
        if key not in manifest:
            raise RunDirError(f"{path}: not a diffbench manifest: no key {key!r}")
    for key, types in MANIFEST_TYPES.items():
        if key in manifest and not isinstance(manifest[key], types):
            raise RunDirError(f"{path}: key {key!r}: expected "
                              f"{' or '.join(t.__name__ for t in types)}, got "
                              f"{type(manifest[key]).__name__}")
    if not all(isinstance(key, str) for key in manifest["done"]):
        raise RunDirError(f"{path}: key 'done': expected a list of case keys (strings)")
    return manifest


def resumable(run_dir: Path) -> dict[str, Any]:
    """The manifest of a run that ``--resume`` can finish; raises ``RunDirError`` for a
    merged run (its shards are resumed, then merged again) or a manifest that lacks what a
    resume needs."""
    manifest = read_manifest(run_dir)
    if "merged_from" in manifest:
        raise RunDirError(f"{run_dir} is a merged run ({len(manifest['merged_from'])} shards): "
                          "resume each unfinished shard, then merge them again")
    return read_manifest(run_dir, needs=("config_path", "shard", "isolate", "finished"))


def claim_run_dir(run_dir: Path, force: bool) -> None:
    """Make ``run_dir`` ready for a new run: created, or an existing empty directory; an
    existing run directory is refused unless ``force``, which empties it.  Raises
    ``RunDirError`` for anything else there (a file, a directory that is not a run's) and
    where the directory cannot be created or written."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"--out {run_dir}: a file of that name exists; choose another "
                          "directory")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not (run_dir / MANIFEST).is_file():
            raise RunDirError(f"--out {run_dir}: the directory is not empty and holds no "
                              f"diffbench run ({MANIFEST}); choose another directory")
        if not force:
            raise RunDirError(f"--out {run_dir}: a run is already there; --resume finishes "
                              "it, --force replaces it, or choose another directory")
        _empty(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test.{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"--out {run_dir}: cannot write there: "
                          f"{exc.strerror or exc}") from exc


def _empty(run_dir: Path) -> None:
    try:
        for entry in run_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    except OSError as exc:
        raise RunDirError(f"--force: cannot empty {run_dir}: {exc.strerror or exc}") from exc


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest atomically: a reader sees the old one or the new one, whole."""
    tmp = run_dir / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, run_dir / MANIFEST)


def _complete_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RunDirError(f"{path}: byte {exc.start}: not UTF-8 text; the file is not one "
                          "diffbench wrote") from None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()  # torn by a kill mid-write
    return lines


def trim_csv(path: Path, done: set[str]) -> int:
    """Keep the header and the rows whose ``case`` is done; return how many were dropped.

    Raises ``RunDirError`` where the file is not a run's CSV (no ``case`` column) or a row
    other than a torn last line is damaged (its cells do not match the header).
    """
    lines = _complete_lines(path)
    if not lines:
        path.unlink()
        return 0
    reader = csv.reader(io.StringIO("".join(lines)))
    try:
        header = next(reader)
        if "case" not in header:
            raise RunDirError(f"{path}: line 1: no 'case' column; the file is not one "
                              "diffbench wrote, so the run cannot be resumed")
        body = []
        for row in reader:
            if len(row) != len(header):
                raise RunDirError(f"{path}: line {reader.line_num}: {len(row)} cells, the "
                                  f"header has {len(header)}: the file is damaged")
            body.append(row)
    except csv.Error as exc:
        raise RunDirError(f"{path}: line {reader.line_num}: not a CSV diffbench wrote: "
                          f"{exc}") from None
    column = header.index("case")
    kept = [row for row in body if row[column] in done]
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
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("case") in done:
            kept.append(line)
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
