"""Cases run in a child process with a time budget and a memory cap.

One worker process serves cases one after another (it keeps the run's caches); a case over its
budget or its cap kills the worker, which is started afresh for the next case.  The memory cap
is enforced by polling the worker's resident set size (Linux ``/proc``), which, unlike an
address-space limit, leaves JAX's large virtual reservations alone.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

POLL_S = 0.02
STARTUP_S = 300.0
"""How long a new worker may take to import and load the config before a case is sent."""


class CaseKilled(Exception):
    """The case ended without rows: ``status`` is ``timeout``, ``out-of-memory`` or ``error``."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def resident_bytes(pid: int) -> int | None:
    """The resident set size of ``pid``, or None where ``/proc`` cannot tell."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _serve(conn, config_path: str, run_dir: str) -> None:
    """Worker loop: load the config once, then run the cases it is sent, by key, each with
    the workspace entries the parent computed for it (its reference).

    The worker ignores Ctrl-C: the parent decides when to stop, between cases.
    """
    import signal
    import warnings

    import numpy as np

    from .backends import registry
    from .measure.threads import limited_threads
    from .studies import load_config, make_studies

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = load_config(config_path)
    studies = make_studies(config, Path(run_dir))
    for name in {spec.name for study in config.studies for spec in study.backends}:
        if registry()[name].unavailable() is None:
            registry()[name].load()  # imports are start-up, not any case's budget
    cases = {(study.index, case.key): (study, case) for study in studies
             for case in study.cases()}
    with limited_threads(config.run.threads):
        conn.send(("ready", None))
        while True:
            request = conn.recv()
            if request is None:
                return
            index, key, entries = request
            study, case = cases[index, key]
            study.workspace.learn(entries)
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    conn.send(("rows", study.run(case)))
            except MemoryError:
                conn.send(("out-of-memory", "MemoryError in the worker"))


class Isolator:
    """Runs cases of one config in a worker process, killing it at the budget or the cap."""

    def __init__(self, config_path: Path, run_dir: Path, memory_bytes: int):
        self.config_path, self.run_dir, self.memory_bytes = config_path, run_dir, memory_bytes
        self._context = multiprocessing.get_context("spawn")
        self._process = None
        self._conn = None

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(
            target=_serve, args=(child, str(self.config_path), str(self.run_dir)), daemon=True)
        self._process.start()
        child.close()
        self._conn = parent
        if not parent.poll(STARTUP_S):
            self.stop()
            raise CaseKilled("error", f"the worker process did not start in {STARTUP_S:g} s")
        try:
            parent.recv()
        except EOFError as exc:
            code = self._process.exitcode
            self.stop()
            raise CaseKilled("error", f"the worker process died while starting (exit code "
                             f"{code})") from exc

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._conn.close()
        self._process = self._conn = None

    def run(self, study_index: int, case_key: str, budget_s: float,
            entries: dict | None = None) -> list[dict[str, Any]]:
        """The case's rows; raises ``CaseKilled`` when it ran out of time or memory."""
        if self._process is None or not self._process.is_alive():
            self._start()
        started = time.perf_counter()
        self._conn.send((study_index, case_key, entries or {}))
        peak = 0
        while not self._conn.poll(POLL_S):
            elapsed = time.perf_counter() - started
            peak = max(peak, resident_bytes(self._process.pid) or 0)
            if peak > self.memory_bytes:
                self.stop()
                raise CaseKilled("out-of-memory", f"killed at {peak / 2**20:.0f} MiB resident, "
                                 f"over the cap of {self.memory_bytes / 2**20:.0f} MiB "
                                 "(run.memory_mb)")
            if elapsed > budget_s:
                self.stop()
                raise CaseKilled("timeout", f"killed after {elapsed:.1f} s, over the budget of "
                                 f"{budget_s:g} s (timing.budget_s)")
            if not self._process.is_alive():
                code = self._process.exitcode
                self.stop()
                raise CaseKilled("error", f"the worker process died (exit code {code})")
        try:
            kind, payload = self._conn.recv()
        except EOFError as exc:
            self.stop()
            raise CaseKilled("error", "the worker process died while answering") from exc
        if kind == "out-of-memory":
            self.stop()
            raise CaseKilled("out-of-memory", payload)
        return payload
