"""Splitting a run's cases into N deterministic shards, and merging shard runs into one."""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import UserError
from .results import write_csv
from .runstate import canonical, read_manifest, write_manifest
from .schema import read_table


class ShardError(UserError):
    """Shards that cannot be split or merged as asked; the message says why."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` with 1 <= K <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ShardError(f"--shard {text!r}: expected K/N, e.g. 2/4")
    k, n = int(match[1]), int(match[2])
    if not 1 <= k <= n:
        raise ShardError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def assign(costs: Sequence[tuple[str, float]], n: int) -> dict[str, int]:
    """Case key → shard (1-based): most expensive first, each to the least loaded shard.

    Deterministic: ties are broken by key and by shard number.
    """
    loads = [(0.0, shard) for shard in range(1, n + 1)]
    heapq.heapify(loads)
    owner = {}
    for key, cost in sorted(costs, key=lambda item: (-item[1], item[0])):
        load, shard = heapq.heappop(loads)
        owner[key] = shard
        heapq.heappush(loads, (load + cost, shard))
    return owner


def _check_set(run_dirs: Sequence[Path], manifests: Sequence[dict[str, Any]],
               partial: bool) -> list[str]:
    """Refuse what is not a set of shards of one config; without ``partial``, also an
    incomplete set or an unfinished shard.  The labels of the shards missing."""
    first = manifests[0]
    labels = []
    for run_dir, manifest in zip(run_dirs, manifests, strict=True):
        if canonical(manifest["config"]) != canonical(first["config"]):
            raise ShardError(f"{run_dir} ran a different config than {run_dirs[0]}; "
                             "only shards of one config can be merged")
        if not manifest.get("shard"):
            raise ShardError(f"{run_dir} is not a shard (it was run without --shard)")
        if not manifest.get("finished") and not partial:
            raise ShardError(f"{run_dir} is unfinished: finish it with diffbench run "
                             f"--resume {run_dir}, or merge with --partial")
        labels.append(manifest["shard"])
    if len(set(labels)) != len(labels):
        raise ShardError(f"the same shard appears twice among {', '.join(map(str, run_dirs))}")
    counts = {parse_shard(label)[1] for label in labels}
    if len(counts) > 1:
        raise ShardError(f"shards of different splits ({', '.join(labels)}) cannot be merged")
    (n,) = counts
    missing = [f"{k}/{n}" for k in range(1, n + 1) if f"{k}/{n}" not in labels]
    if missing and not partial:
        raise ShardError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                         f"missing: merge all {n}, or pass --partial")
    return missing


def _merge_csv(parts: Sequence[Path], target: Path) -> None:
    """The rows of ``parts`` (each read checked, torn last lines left out) into ``target``."""
    header, rows = None, []
    for part in parts:
        columns, part_rows = read_table(part)
        if header is not None and columns != header:
            raise ShardError(f"{part}: its columns differ from those of {parts[0]}")
        header = columns
        rows.extend(part_rows)
    if header is not None:
        write_csv(target, header, rows)


def _merge_jsonl(parts: Sequence[Path], target: Path) -> None:
    """The complete JSON lines of ``parts`` into ``target``."""
    with target.open("w", encoding="utf-8") as out:
        for part in parts:
            for line in part.read_text(encoding="utf-8").splitlines(keepends=True):
                try:
                    json.loads(line)
                except ValueError:
                    continue
                if line.endswith("\n"):
                    out.write(line)


def merge(run_dirs: Sequence[Path], out: Path, csv_names: Sequence[str],
          partial: bool = False) -> dict[str, Any]:
    """Join shard runs of one config into ``out``; refuses different configs, repeats, and
    (unless ``partial``) a set with shards missing or unfinished.

    ``csv_names`` are the per-case CSVs; summaries are rebuilt from them afterwards.  The
    merged manifest lists the shards missing under ``missing_shards``.
    """
    manifests = [read_manifest(d) for d in run_dirs]
    missing = _check_set(run_dirs, manifests, partial)
    first = manifests[0]
    for name in csv_names:
        _merge_csv([d / name for d in run_dirs if (d / name).exists()], out / name)
    for name in sorted({p.name for d in run_dirs for p in d.glob("*.jsonl")}):
        _merge_jsonl([d / name for d in run_dirs if (d / name).exists()], out / name)
    machines = {canonical(m.get("machine")) for m in manifests}
    merged = {
        **{k: v for k, v in first.items() if k not in ("machine", "shard", "done", "started")},
        "merged_from": [{"run_dir": str(d), "shard": m.get("shard"), "machine": m.get("machine"),
                         "versions": m.get("versions"), "started": m.get("started")}
                        for d, m in zip(run_dirs, manifests, strict=True)],
        "machines_differ": len(machines) > 1,
        "missing_shards": missing,
        "finished": all(m.get("finished") for m in manifests) and not missing,
        "done": sorted({key for m in manifests for key in m.get("done", [])}),
    }
    write_manifest(out, merged)
    return merged
