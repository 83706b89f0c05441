"""Runs a config's studies case by case, writing each row as soon as it is measured, then
each study's summary files.  It renders nothing: tables, report.md and plots are made from
the run's files by ``diffbench.report``.

Every CSV of a study gets two more columns: ``case`` (the case's key, stable across runs of a
config) and ``shard`` (``K/N`` when the run is one shard of a split, else empty).
"""

from __future__ import annotations

import re
import signal
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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
from .isolation import CaseKilled, Isolator
from .measure.threads import limited_threads
from .results import CsvWriter, machine_description, package_versions
from .runstate import RunDirError, canonical, trim_to_done, write_manifest
from .shards import assign
from .studies import Case, Study, make_studies

EXTRA_COLUMNS = ("case", "shard")


class RunInterrupted(Exception):
    """Ctrl-C: the rows of finished cases are on disk; the message says how to resume."""


@dataclass(frozen=True)
class RunOptions:
    isolate: bool = False
    shard: tuple[int, int] | None = None
    quiet: bool = False
    """No progress bar."""


def default_run_dir(config: Config, root: Path = Path("results")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.name).strip("-") or "run"
    return root / f"{slug}-{stamp}"


def case_csvs(studies: Sequence[Study]) -> list[str]:
    """The CSVs that get rows case by case (summaries written at the end are not among them)."""
    return sorted({name for study in studies for name in study.files})


def plan(studies: Sequence[Study], shard: tuple[int, int] | None) -> list[tuple[Study, Case]]:
    """Every (study, case) of the run, or of its shard ``(k, n)``, in config order."""
    work = [(study, case) for study in studies for case in study.cases()]
    if shard is None:
        return work
    k, n = shard
    owner = assign([(case.key, case.cost) for _, case in work], n)
    return [(study, case) for study, case in work if owner[case.key] == k]


def new_manifest(config: Config, options: RunOptions, argv: Sequence[str]) -> dict:
    return {
        "config_path": str(Path(config.path).resolve()),
        "config": config.raw,
        "versions": package_versions(),
        "machine": machine_description(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": list(argv),
        "shard": None if options.shard is None else "{}/{}".format(*options.shard),
        "isolate": options.isolate,
        "done": [],
        "finished": False,
    }


def run(config: Config, run_dir: Path, console: Console, options: RunOptions = RunOptions(),
        *, argv: Sequence[str] = (), manifest: dict | None = None) -> Path:
    """Run the cases of ``config`` not yet done in ``run_dir`` (all, unless ``manifest`` is
    that of an interrupted run being resumed), with ``run.threads`` threads for every
    backend, then write the summaries; raises ``RunInterrupted`` on Ctrl-C, ``RunDirError``
    when ``config`` is not the one the manifest's run was started with."""
    with limited_threads(config.run.threads) as threads:
        return _run(config, run_dir, console, options, argv, manifest, threads)


def _run(config: Config, run_dir: Path, console: Console, options: RunOptions,
         argv: Sequence[str], manifest: dict | None, threads: dict) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    studies = make_studies(config, run_dir)
    case_files = case_csvs(studies)
    if manifest is None:
        manifest = {**new_manifest(config, options, argv or sys.argv), "threads": threads}
        for name in case_files:
            (run_dir / name).unlink(missing_ok=True)
    elif canonical(manifest["config"]) != canonical(config.raw):
        raise RunDirError(f"{config.path} has changed since {run_dir} was started; "
                          "resume with the config as it was, or start a new run")
    done = set(manifest["done"])
    trim_to_done(run_dir, case_files, done)
    write_manifest(run_dir, manifest)
    work = [(s, c) for s, c in plan(studies, options.shard) if c.key not in done]
    shard_label = manifest["shard"] or ""
    writers = {}
    isolator = Isolator(Path(config.path), run_dir, config.run.memory_mb * 2**20)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=console, disable=options.quiet or not console.is_terminal, transient=True,
    )
    stop = _StopRequest(console)
    try:
        with progress, stop:
            task = progress.add_task("starting", total=len(work))
            for study, case in work:
                if stop.requested:
                    raise KeyboardInterrupt
                progress.update(task, description=case.label)
                isolate = options.isolate or config.run.isolate or case.isolate
                for name, rows in _run_case(study, case, isolator, isolate).items():
                    if name not in writers:
                        columns = (*study.files[name], *EXTRA_COLUMNS)
                        writers[name] = CsvWriter(run_dir / name, columns)
                    for row in rows:
                        writers[name].write({**row, "case": case.key, "shard": shard_label})
                        for other in studies:
                            if other.csv_name == name:
                                other.observe(row)
                manifest["done"].append(case.key)
                write_manifest(run_dir, manifest)
                progress.advance(task)
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"interrupted: {len(manifest['done'])} cases are saved in {run_dir}; "
            f"finish the run with: diffbench run --resume {run_dir}") from None
    finally:
        isolator.stop()
        for writer in writers.values():
            writer.close()
    finish(studies)
    manifest["finished"] = True
    write_manifest(run_dir, manifest)
    return run_dir


class _StopRequest:
    """The first Ctrl-C asks to stop once the current case is saved; a second one stops now."""

    def __init__(self, console: Console):
        self.console, self.requested, self._previous = console, False, None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.console.print("[yellow]stopping after the current case (Ctrl-C again to stop "
                           "now)[/yellow]")

    def __enter__(self) -> _StopRequest:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _run_case(study: Study, case: Case, isolator: Isolator,
              isolate: bool) -> dict[str, list[dict]]:
    """The case's rows by file, measured here or in the worker; a killed case gets one
    failure row."""
    reason = study.skip_reason(case)
    if reason is not None:
        rows = [study.failure_row(case, "skipped", reason)]
    elif isolate or study.processes > 1:
        entries = study.precompute(case)
        runs = []
        try:
            for _ in range(study.processes):
                if study.processes > 1:
                    isolator.stop()  # each repetition in a fresh process
                runs.append(isolator.run(study.index, case.key,
                                         study.workspace.config.timing.budget_s, entries))
            rows = study.combine(runs)
        except CaseKilled as exc:
            rows = [study.failure_row(case, exc.status, str(exc))]
    else:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # a NaN or overflow becomes the row's status
            rows = study.run(case)
    return rows if isinstance(rows, dict) else {study.csv_name: rows}


def finish(studies: Sequence[Study]) -> None:
    """Each study kind's summary files, once per kind, from the rows on disk."""
    finished: set[str] = set()
    for study in studies:
        if study.kind not in finished:
            study.finish()
        finished.add(study.kind)
