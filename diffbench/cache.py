"""The reference cache on disk (``reference.cache_dir()``): what it holds, and emptying it."""

from __future__ import annotations

from pathlib import Path

from .reference import cache_dir


def entries() -> list[Path]:
    """The cached references, one JSON file each."""
    folder = cache_dir()
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def clear() -> int:
    """Remove every cached reference (and nothing else); return how many there were."""
    removed = 0
    for path in entries():
        path.unlink(missing_ok=True)
        removed += 1
    return removed
