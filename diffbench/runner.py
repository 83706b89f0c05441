"""Runs a config's studies case by case, writing each row as soon as it is measured."""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .config import Config
from .results import CsvWriter, write_manifest
from .studies import STUDIES, Study, Workspace


def default_run_dir(config: Config, root: Path = Path("results")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.name).strip("-") or "run"
    return root / f"{slug}-{stamp}"


def make_studies(config: Config, run_dir: Path) -> list[Study]:
    workspace = Workspace(config)
    return [STUDIES[spec.kind](i, spec, workspace, run_dir)
            for i, spec in enumerate(config.studies)]


def run(config: Config, run_dir: Path, console: Console, *, quiet: bool = False,
        argv: Sequence[str] = ()) -> Path:
    """Run every case of every study into ``run_dir``; return it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(run_dir, config.path, config.raw, argv or sys.argv)
    studies = make_studies(config, run_dir)
    writers: dict[str, CsvWriter] = {}
    plan = [(study, case) for study in studies for case in study.cases()]
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=console, disable=quiet, transient=True,
    )
    try:
        with progress:
            task = progress.add_task("starting", total=len(plan))
            for study, case in plan:
                progress.update(task, description=case.label)
                for name, columns in study.files.items():
                    if name not in writers:
                        writers[name] = CsvWriter(run_dir / name, columns)
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")  # a NaN or overflow becomes the row's status
                    rows = study.run(case)
                for row in rows:
                    writers[study.csv_name].write(row)
                progress.advance(task)
    finally:
        for writer in writers.values():
            writer.close()
    summary = Console(quiet=True) if quiet else console
    finished: set[str] = set()
    for study in studies:
        if study.kind not in finished:
            study.finish(summary)
        finished.add(study.kind)
    return run_dir
