"""Cases run in a child process with a time budget and a memory cap.

One worker process serves cases one after another (it keeps the run's caches); a case over its
budget or its cap kills the worker, which is started afresh for the next case.  The memory cap
is enforced by polling the worker's resident set size (Linux ``/proc``), which, unlike an
address-space limit, leaves JAX's large virtual reservations alone.

The budget counts from the moment a case is sent: before each case the worker is asked to
import the libraries that case needs (each once in a worker's life) and says when it has, so
neither its start nor those imports count, and a worker imports only what the cases it is
sent need.
The worker stops its own case at the budget (a ``timeout`` row, as a case run in the parent
gets); the parent kills it ``KILL_GRACE_S`` later, for code that no signal interrupts.

A worker never acts on Ctrl-C: it starts with ``SIGINT`` ignored, so that a Ctrl-C to the whole
process group (what a terminal sends) stops only the parent, which then stops the worker; and
it dies with the parent (Linux ``PR_SET_PDEATHSIG``), even one killed with ``SIGKILL``.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .studies import StudyOptions

POLL_S = 0.02
STARTUP_S = 300.0
"""How long a new worker may take to import and load the config before a case is sent."""
KILL_GRACE_S = 1.0
"""How long after its budget the parent kills a worker whose case did not stop itself."""
PR_SET_PDEATHSIG = 1


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


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux; elsewhere nothing)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def _serve(conn, parent: int, config_path: str, overrides: Mapping[str, list], run_dir: str,
           options: StudyOptions) -> None:
    """Worker loop: load the config once, then, for each case it is sent by key, import what
    it needs when asked (``("load", study index, key)``), and run it with the workspace entries
    the parent computed for it (its reference)."""
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .measure.threads import limited_threads
    from .studies import load_config, make_studies, measure_case

    config = load_config(config_path, overrides)
    studies = make_studies(config, Path(run_dir), options)
    cases = {(study.index, case.key): (study, case) for study in studies
             for case in study.cases()}
    with limited_threads(config.run.threads):
        conn.send(("ready", None))
        while True:
            request = conn.recv()
            if request is None:
                return
            if request[0] == "load":
                cases[request[1], request[2]][0].load(cases[request[1], request[2]][1])
                conn.send(("loaded", None))
                continue
            index, key, entries, budget_s, budget_key = request
            study, case = cases[index, key]
            study.workspace.learn(entries)
            try:
                rows = measure_case(study, case, budget_s, budget_key)
            except MemoryError:
                conn.send(("out-of-memory", "MemoryError in the worker"))
                continue
            conn.send(("rows", rows))


class Isolator:
    """Runs cases of one config (read with ``overrides``) in a worker process, killing it at
    the budget or the cap; the worker's studies get the run's ``options`` too."""

    def __init__(self, config_path: Path, overrides: Mapping[str, list], run_dir: Path,
                 memory_bytes: int, options: StudyOptions):
        self.config_path, self.overrides = config_path, dict(overrides)
        self.run_dir, self.memory_bytes, self.options = run_dir, memory_bytes, options
        self._context = multiprocessing.get_context("spawn")
        self._process = None
        self._conn = None

    def _spawn(self, child) -> None:
        """Start the worker with ``SIGINT`` ignored from its first instruction on (a
        disposition it inherits through ``exec``); meanwhile the parent's own ``SIGINT`` is
        held back (blocked), never lost."""
        self._process = self._context.Process(
            target=_serve, args=(child, os.getpid(), str(self.config_path), self.overrides,
                                 str(self.run_dir), self.options), daemon=True)
        if threading.current_thread() is not threading.main_thread():
            self._process.start()
            return
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._process.start()
        finally:
            signal.signal(signal.SIGINT, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._spawn(child)
        child.close()
        self._conn = parent
        self._answer("start")

    def _answer(self, doing: str) -> None:
        """Wait up to ``STARTUP_S`` for the worker's word that it is done ``doing`` (its start,
        or the imports of a case), which no budget counts."""
        if not self._conn.poll(STARTUP_S):
            self.stop()
            raise CaseKilled("error", f"the worker process did not {doing} in {STARTUP_S:g} s")
        try:
            self._conn.recv()
        except EOFError as exc:
            code = self._process.exitcode
            self.stop()
            raise CaseKilled("error", f"the worker process died before it could {doing} (exit "
                             f"code {code})") from exc

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._conn.close()
        self._process = self._conn = None

    def run(self, study_index: int, case_key: str, budget_s: float,
            entries: dict | None = None,
            budget_key: str = "timing.budget_s") -> dict[str, list[dict[str, Any]]]:
        """The case's rows by file, measured within ``budget_s`` (the setting ``budget_key``
        names, in messages); raises ``CaseKilled`` when it ran out of time or memory."""
        if self._process is None or not self._process.is_alive():
            self._start()
        self._conn.send(("load", study_index, case_key))
        self._answer("import what the case needs")
        started = time.perf_counter()
        self._conn.send((study_index, case_key, entries or {}, budget_s, budget_key))
        peak = 0
        while not self._conn.poll(POLL_S):
            elapsed = time.perf_counter() - started
            peak = max(peak, resident_bytes(self._process.pid) or 0)
            if peak > self.memory_bytes:
                self.stop()
                raise CaseKilled("out-of-memory", f"killed at {peak / 2**20:.0f} MiB resident, "
                                 f"over the cap of {self.memory_bytes / 2**20:.0f} MiB "
                                 "(run.memory_mb)")
            if elapsed > budget_s + KILL_GRACE_S:
                self.stop()
                raise CaseKilled("timeout", f"killed after {elapsed:.1f} s, over the budget of "
                                 f"{budget_s:g} s ({budget_key})")
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
