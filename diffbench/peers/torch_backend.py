"""PyTorch, eager, on the CPU: ``torch.autograd.grad`` of the family's function over float64
tensors, on one thread; a chain's segments checkpointed by ``torch.utils.checkpoint``."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import PRECISION_OPTIONS, Backend, ChainGradient, Prepared, UnsupportedCase
from ..families import Chain, Problem
from ..measure import threads
from ..ops.precision import DTYPES
from .autograd_backend import INSTALL_HINT

if TYPE_CHECKING:
    from ..ad.checkpointing import Schedule


def _torch():
    """torch, with its thread pool set to the run's thread count (1 by default)."""
    import torch

    torch.set_num_threads(threads.current() or 1)
    return torch


class TorchGradient(Prepared):
    """A fresh graph on every call: the input as a float64 leaf sharing ``x``'s memory, the
    function run eagerly through :mod:`diffbench.peers.torch_ops`, then one backward.  f is
    the same eager run on a tensor that records no graph."""

    function_method = "torch-eager"

    def __init__(self, problem: Problem):
        super().__init__(problem)
        self._torch = _torch()
        from . import torch_ops

        self._ops = torch_ops
        self._fn = problem.fn

    def gradient(self, x: np.ndarray) -> np.ndarray:
        torch, ops = self._torch, self._ops
        leaf = torch.from_numpy(np.asarray(x, dtype=np.float64)).requires_grad_()
        out = ops.tensor(self._fn(ops.TorchArray(leaf), ops))
        (gradient,) = torch.autograd.grad(out, leaf)
        return gradient.numpy()

    def function(self, x: np.ndarray) -> object:
        ops = self._ops
        return ops.tensor(self._fn(ops.TorchArray(self._torch.from_numpy(x)), ops))

    def timed_function(self, x: np.ndarray):
        x = np.asarray(x, dtype=np.float64)
        return lambda: self.function(x)


class TorchChain(ChainGradient):
    """The chain's gradient in eager torch: ``none`` runs every step on the graph; ``every:K``
    and ``sqrt`` wrap each segment in ``torch.utils.checkpoint.checkpoint`` (non-reentrant),
    which keeps its input only and runs it again in the backward pass.  The step's
    evaluations are counted."""

    function_method = "torch-eager"

    def __init__(self, chain: Chain, schedule: Schedule):
        super().__init__(chain.problem())
        self._torch = _torch()
        from torch.utils.checkpoint import checkpoint

        from . import torch_ops

        def step(t):
            self._count += 1
            return torch_ops.tensor(chain.step(torch_ops.TorchArray(t), torch_ops))

        def segment(t, steps: int):
            for _ in range(steps):
                t = step(t)
            return t

        if schedule.kind == "none":
            self._run = lambda t: segment(t, chain.depth)
        else:
            segments = schedule.segments(chain.depth)

            def run(t):
                for steps in segments:
                    t = checkpoint(segment, t, steps, use_reentrant=False)
                return t

            self._run = run
        self._count = 0

    def gradient(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        self._count = 0
        leaf = torch.from_numpy(np.asarray(x, dtype=np.float64)).requires_grad_()
        (gradient,) = torch.autograd.grad(self._run(leaf).sum(), leaf)
        self.forward_steps = self._count
        return gradient.numpy()


def peak_allocated(events: Iterable[Mapping[str, Any]]) -> int:
    """Peak bytes allocated beyond what was allocated before the first event, from the
    profiler's ``[memory]`` events (each carries the running total after it)."""
    memory = sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"])
    if not memory:
        return 0
    first = memory[0]["args"]
    before = first["Total Allocated"] - first["Bytes"]
    return max(0, max(e["args"]["Total Allocated"] for e in memory) - before)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence what the profiler's C++ side writes to file descriptor 2 when it starts and
    stops; Python exceptions still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Torch(Backend):
    name = "torch"
    description = ("PyTorch eager autograd on the CPU, float64 (or dtype), 1 thread "
                   "(torch.set_num_threads(1)): a fresh graph per call, torch.autograd.grad; "
                   "numpy constants in f become tensors through a thin operator wrapper")
    memory_method = "torch-profiler"
    options = dict(PRECISION_OPTIONS)
    choices = {"dtype": tuple(DTYPES)}

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("torch") is None:
            return f"torch is not installed: {INSTALL_HINT}"
        return None

    def load(self) -> None:
        _torch()

    def prepare(self, problem: Problem, **options: Any) -> TorchGradient:
        return TorchGradient(problem)

    def prepare_chain(self, chain: Chain, schedule: Schedule, **options: Any) -> TorchChain:
        """``none``, ``every:K`` and ``sqrt``; no binomial schedule."""
        if schedule.kind == "revolve":
            raise UnsupportedCase("torch.utils.checkpoint recomputes the segments it wraps; "
                                  "PyTorch has no binomial checkpointing")
        return TorchChain(chain, schedule)

    def measure_memory(self, prepared: TorchGradient, x: np.ndarray) -> int | None:
        """Peak bytes of the tensors one gradient allocates, result included, from the
        profiler's allocation events (``profile_memory=True``)."""
        return _profiled_peak(lambda: prepared.gradient(x))

    def measure_function_memory(self, prepared: TorchGradient, x: np.ndarray) -> int | None:
        """The same for one evaluation of f in torch."""
        return _profiled_peak(lambda: prepared.function(np.asarray(x, dtype=np.float64)))


def _profiled_peak(call) -> int:
    """Peak bytes of the tensors ``call()`` allocates, from the profiler's memory events."""
    from torch.profiler import ProfilerActivity, profile

    with tempfile.TemporaryDirectory() as tmp, _quiet_stderr():
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
            call()
        path = os.path.join(tmp, "trace.json")
        profiler.export_chrome_trace(path)
        with open(path) as file:
            events = json.load(file)["traceEvents"]
    return peak_allocated(events)
