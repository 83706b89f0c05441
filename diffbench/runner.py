"""Runs a config's studies case by case, writing each row as soon as it is measured, then
each study's summary files.  It renders nothing: tables, report.md and plots are made from
the run's files by ``diffbench.report``.

Every CSV of a study gets two more columns: ``case`` (the case's key, stable across runs of a
config) and ``shard`` (``K/N`` when the run is one shard of a split, else empty).
"""

from __future__ import annotations

import math
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
from .deadline import Deadline, TimeUp
from .isolation import CaseKilled, Isolator
from .measure.threads import limited_threads
from .measure.timing import CALIBRATION_MARGIN
from .results import CsvWriter, machine_description, package_versions, read_rows
from .runstate import RunDirError, canonical, trim_to_done, write_manifest
from .shards import assign
from .studies import Case, Study, StudyOptions, make_studies, measure_case
from .studies.base import BUDGET_KEY

EXTRA_COLUMNS = ("case", "shard")
RERAISE_S = 0.05
"""How soon an interrupt that Python could not pass on is raised again."""
MIN_CASE_S = 0.5
"""With ``RunOptions.stop_at``, a case is not begun with less time than this left."""


class RunInterrupted(Exception):
    """Ctrl-C (``SIGINT``) or ``SIGTERM``: the rows of finished cases are on disk, the
    interrupted case's are not; the message says how to resume, ``signum`` which signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


@dataclass(frozen=True)
class RunOptions:
    isolate: bool = False
    shard: tuple[int, int] | None = None
    quiet: bool = False
    """No progress bar."""
    use_cache: bool = True
    save_gradients: bool = False
    stop_at: float | None = None
    """A ``time.monotonic()`` after which no case is begun (the rest are ``skipped`` rows), and
    before which each case gets at most the time left, if less than ``timing.budget_s``."""
    stop_key: str = ""
    """What ``stop_at`` is, in the rows' messages (``advise --budget``)."""

    def for_studies(self) -> StudyOptions:
        return StudyOptions(use_cache=self.use_cache, save_gradients=self.save_gradients,
                            isolate=self.isolate)


def default_run_dir(config: Config, root: Path = Path("results")) -> Path:
    """``root/<name>-<timestamp>``, with ``-2``, ``-3`` … where that exists already."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.name).strip("-") or "run"
    path, k = root / f"{slug}-{stamp}", 1
    while path.exists():
        k += 1
        path = root / f"{slug}-{stamp}-{k}"
    return path


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


def plan_estimate(config: Config, options: RunOptions,
                  ) -> tuple[list[tuple[str, str, bool]], float, float]:
    """What ``--dry-run`` shows: the (label, key, isolated) of each case of the run, and
    bounds on its time: at least its timing samples (a gradient and f, each calibrated and
    sampled ``repeats`` times at ``min_sample_s``), at most every case at its budget."""
    timing = config.timing
    studies = make_studies(config, Path("."), options.for_studies())
    work = plan(studies, options.shard)
    sampled = 2 * (timing.repeats + 2) * CALIBRATION_MARGIN * timing.min_sample_s
    low = sum(sampled * study.processes for study, _ in work if study.spec.backends)
    high = sum(timing.budget_s * study.processes for study, _ in work)
    return [(case.label, case.key, study.isolated(case)) for study, case in work], low, high


def new_manifest(config: Config, options: RunOptions, argv: Sequence[str]) -> dict:
    return {
        "config_path": str(Path(config.path).resolve()),
        "config": config.raw,
        "overrides": dict(config.overrides),
        "versions": package_versions(),
        "machine": machine_description(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": list(argv),
        "shard": None if options.shard is None else "{}/{}".format(*options.shard),
        "isolate": options.isolate,
        "use_cache": options.use_cache,
        "save_gradients": options.save_gradients,
        "done": [],
        "finished": False,
    }


def run(config: Config, run_dir: Path, console: Console, options: RunOptions = RunOptions(),
        *, argv: Sequence[str] = (), manifest: dict | None = None) -> Counter[str]:
    """Run the cases of ``config`` not yet done in ``run_dir`` (all, unless ``manifest`` is
    that of an interrupted run being resumed), with ``run.threads`` threads for every
    backend, then write the summaries; return the statuses of the run's rows (all on disk,
    resumed ones included).  Raises ``RunInterrupted`` on Ctrl-C or ``SIGTERM``,
    ``RunDirError`` when ``config`` is not the one the manifest's run was started with."""
    with limited_threads(config.run.threads) as threads:
        return _run(config, run_dir, console, options, argv, manifest, threads)


def _run(config: Config, run_dir: Path, console: Console, options: RunOptions,
         argv: Sequence[str], manifest: dict | None, threads: dict) -> Counter[str]:
    run_dir.mkdir(parents=True, exist_ok=True)
    studies = make_studies(config, run_dir, options.for_studies())
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
    isolator = Isolator(Path(config.path), config.overrides, run_dir,
                        config.run.memory_mb * 2**20, options.for_studies())
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=console, disable=options.quiet or not console.is_terminal, transient=True,
    )
    interrupts = Interrupts()
    try:
        with progress, interrupts:
            task = progress.add_task("starting", total=len(work))
            for study, case in work:
                progress.update(task, description=case.label)
                rows_by_file = _run_case(study, case, isolator, options)
                with interrupts.saving():
                    for name, rows in rows_by_file.items():
                        if name not in writers:
                            columns = (*study.files[name], *EXTRA_COLUMNS)
                            writers[name] = CsvWriter(run_dir / name, columns)
                        for row in rows:
                            writers[name].write({**row, "case": case.key,
                                                 "shard": shard_label})
                            for other in studies:
                                if other.csv_name == name:
                                    other.observe(row)
                    manifest["done"].append(case.key)
                    write_manifest(run_dir, manifest)
                progress.advance(task)
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"interrupted: {len(manifest['done'])} cases are saved in {run_dir}; "
            f"finish the run with: diffbench run --resume {run_dir}",
            interrupts.signum or signal.SIGINT) from None
    finally:
        isolator.stop()
        for writer in writers.values():
            writer.close()
    finish(studies)
    manifest["finished"] = True
    write_manifest(run_dir, manifest)
    return Counter(row["status"] for name in case_files if (run_dir / name).exists()
                   for row in read_rows(run_dir / name))


class Interrupts:
    """Ctrl-C (``SIGINT``) and ``SIGTERM`` stop the run at once: ``KeyboardInterrupt`` is
    raised wherever the run is, so the current case is dropped, never written (it runs again
    on resume).  While a finished case is being saved (:meth:`saving`) a signal waits until
    its rows and its key are on disk; a case during which one arrived is not saved at all,
    even where the case's own code caught the ``KeyboardInterrupt``.  One raised where Python
    cannot pass it on (a garbage-collector callback) is raised again, not printed, unless the
    run has stopped by then (the signal is not sent again after the run's handlers are gone)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saving = False
        self._previous: dict[int, object] = {}
        self._previous_hook = sys.unraisablehook
        self._again: list[threading.Timer] = []

    def _handle(self, signum: int, frame) -> None:
        self.signum = signum
        if not self._saving:
            raise KeyboardInterrupt

    def _unraisable(self, unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and self.signum is not None:
            # from another thread, once this hook has returned (the handler runs in the
            # main thread, where it would raise inside the hook)
            again = threading.Timer(RERAISE_S, os.kill, (os.getpid(), self.signum))
            self._again.append(again)
            again.start()
        else:
            self._previous_hook(unraisable)

    @contextmanager
    def saving(self) -> Iterator[None]:
        """Save a case whole, or not at all if a signal arrived while it ran."""
        if self.signum is not None:
            raise KeyboardInterrupt
        self._saving = True
        try:
            yield
        finally:
            self._saving = False
        if self.signum is not None:
            raise KeyboardInterrupt

    def __enter__(self) -> Interrupts:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        self._previous_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc) -> None:
        for again in self._again:
            again.cancel()
        sys.unraisablehook = self._previous_hook
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _time_left(options: RunOptions) -> float:
    """Seconds before ``options.stop_at`` (infinite without it)."""
    return math.inf if options.stop_at is None else options.stop_at - time.monotonic()


def _run_case(study: Study, case: Case, isolator: Isolator,
              options: RunOptions = RunOptions()) -> dict[str, list[dict]]:
    """The case's rows by file, measured here or in the worker, its reference (and what else
    it needs untimed) computed first; a killed case gets one failure row, and one not begun
    for want of time (``options.stop_at``) one ``skipped`` row."""
    reason = study.skip_reason(case)
    if reason is None and _time_left(options) < MIN_CASE_S:
        reason = f"not attempted: the time of {options.stop_key} was spent"
    if reason is not None:
        return {study.csv_name: [study.failure_row(case, "skipped", reason)]}
    def spent() -> dict[str, list[dict]]:
        return {study.csv_name: [study.failure_row(
            case, "skipped", f"not attempted: the time of {options.stop_key} was spent on its "
                             "reference")]}

    clock = Deadline(_time_left(options), "")
    try:
        with clock:
            entries = study.precompute(case)
    except TimeUp as exc:
        if not clock.owns(exc):
            raise
        return spent()
    budget, key = study.workspace.config.timing.budget_s, BUDGET_KEY
    left = _time_left(options)
    if left < MIN_CASE_S:
        return spent()
    if left < budget:  # to a tenth of a second below, so that the message reads plainly
        budget, key = math.floor(left * 10) / 10, f"the time left of {options.stop_key}"
    if not study.isolated(case):
        study.load(case)
        return measure_case(study, case, budget, key)
    runs = []
    try:
        for _ in range(study.processes):
            if study.processes > 1:
                isolator.stop()  # each repetition in a fresh process
            runs.append(isolator.run(study.index, case.key, budget, entries, key))
    except CaseKilled as exc:
        return {study.csv_name: [study.failure_row(case, exc.status, str(exc))]}
    if len(runs) == 1:
        return runs[0]
    return {study.csv_name: study.combine([run[study.csv_name] for run in runs])}


def finish(studies: Sequence[Study]) -> None:
    """Each study kind's summary files, once per kind, from the rows on disk."""
    finished: set[str] = set()
    for study in studies:
        if study.kind not in finished:
            study.finish()
        finished.add(study.kind)
