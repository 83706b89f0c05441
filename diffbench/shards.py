"""Splitting a run's cases into N deterministic shards, and merging shard runs into one."""

from __future__ import annotations

import heapq
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import UserError
from .runstate import canonical, read_manifest, write_manifest


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


def merge(run_dirs: Sequence[Path], out: Path, csv_names: Sequence[str]) -> dict[str, Any]:
    """Join shard runs of one config into ``out``; refuses different configs or repeats.

    ``csv_names`` are the per-case CSVs; summaries are rebuilt from them afterwards.
    """
    manifests = [read_manifest(d) for d in run_dirs]
    first = manifests[0]
    for run_dir, manifest in zip(run_dirs, manifests, strict=True):
        if canonical(manifest["config"]) != canonical(first["config"]):
            raise ShardError(f"{run_dir} ran a different config than {run_dirs[0]}; "
                             "only shards of one config can be merged")
    shards = [m.get("shard") for m in manifests]
    if len(set(map(str, shards))) != len(shards):
        raise ShardError(f"the same shard appears twice among {', '.join(map(str, run_dirs))}")
    out.mkdir(parents=True, exist_ok=True)
    for name in csv_names:
        parts = [d / name for d in run_dirs if (d / name).exists()]
        with (out / name).open("w", encoding="utf-8", newline="") as target:
            for i, part in enumerate(parts):
                lines = part.read_text(encoding="utf-8").splitlines(keepends=True)
                target.writelines(lines if i == 0 else lines[1:])
    for name in sorted({p.name for d in run_dirs for p in d.glob("*.jsonl")}):
        with (out / name).open("w", encoding="utf-8") as target:
            for d in run_dirs:
                if (d / name).exists():
                    shutil.copyfileobj((d / name).open(encoding="utf-8"), target)
    machines = {canonical(m["machine"]) for m in manifests}
    merged = {
        **{k: v for k, v in first.items() if k not in ("machine", "shard", "done", "started")},
        "merged_from": [{"run_dir": str(d), "shard": m.get("shard"), "machine": m["machine"],
                         "versions": m.get("versions"), "started": m.get("started")}
                        for d, m in zip(run_dirs, manifests, strict=True)],
        "machines_differ": len(machines) > 1,
        "done": sorted({key for m in manifests for key in m.get("done", [])}),
    }
    write_manifest(out, merged)
    return merged
