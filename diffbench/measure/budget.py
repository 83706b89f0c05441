"""Work that may explode, run in a forked child process killed when its time budget is spent.

The child streams picklable items back through a pipe as it produces them, so the parent
keeps everything finished before the deadline; the child never outlives ``run_in_child``.
Forking lets the work be any closure (families are closures, which spawn could not pickle).
JAX warns at every fork of a process where it runs threads; the child runs no JAX code and
ends with ``os._exit``, so that warning is silenced here.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Work = Callable[[Callable[[Any], None]], None]
"""``work(send)``: does the job, calling ``send(item)`` for each result as soon as it has it."""

KILL_GRACE_S = 2.0
"""How long a killed child may take to exit before it is reaped anyway."""


@dataclass
class ChildOutcome:
    """What came back: the items sent before the end, and how the child ended.

    Exactly one of these holds: ``timed_out``; ``error`` is set (the child raised or died);
    or neither, when the work returned normally.
    """

    items: list[Any] = field(default_factory=list)
    timed_out: bool = False
    error: str | None = None
    elapsed_s: float = 0.0


def _child(work: Work, sender) -> None:
    try:
        work(lambda item: sender.send(("item", item)))
        sender.send(("done", None))
    except BaseException as exc:  # everything the child hits is reported, never raised
        where = traceback.extract_tb(exc.__traceback__)[-1]
        sender.send(("error", f"{type(exc).__name__}: {exc} ({where.name}, line {where.lineno})"))
    finally:
        sender.close()
        os._exit(0)


def run_in_child(work: Work, budget_s: float) -> ChildOutcome:
    """Run ``work`` in a forked child; kill it once ``budget_s`` seconds have passed."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(work, sender), daemon=True)
    start = time.perf_counter()
    deadline = start + budget_s
    outcome = ChildOutcome()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called",
                                category=RuntimeWarning)
        process.start()
    sender.close()
    try:
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not receiver.poll(remaining):
                outcome.timed_out = True
                break
            try:
                kind, payload = receiver.recv()
            except EOFError:
                process.join(KILL_GRACE_S)
                outcome.error = f"the child process died (exit code {process.exitcode})"
                break
            if kind == "item":
                outcome.items.append(payload)
            elif kind == "error":
                outcome.error = payload
                break
            else:
                break
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join(KILL_GRACE_S)
        outcome.elapsed_s = time.perf_counter() - start
    return outcome
