"""JAX: ``jax.grad`` (or ``jax.jacfwd``), jit-compiled by default, float64 enabled.

ω compares the gradient with f run the same way: jitted f for a jitted gradient, eager f for
an eager one.  XLA compiles ``grad`` alone, so it drops the parts of f's forward pass that the
gradient does not need (for Rosenbrock, the final sum); ``value = true`` compiles
``value_and_grad``, which must also produce f's value.

A chain (the checkpoint study) is a ``lax.scan`` over its steps; its segments are
``jax.checkpoint`` (remat) of a scan of their steps, scanned in turn.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from itertools import groupby
from typing import TYPE_CHECKING, Any

import numpy as np

from ..families import Chain, Problem
from ..ops.precision import DTYPES, NATIVE, Precision
from .base import PRECISION_OPTIONS, Backend, ChainGradient, Prepared, UnsupportedCase

if TYPE_CHECKING:
    from ..ad.checkpointing import Schedule


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _memory(compiled) -> int | None:
    """Temporaries plus outputs of a compiled executable, by XLA's memory analysis."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        return None
    return int(analysis.temp_size_in_bytes + analysis.output_size_in_bytes)


class JaxGradient(Prepared):
    """The gradient (and f) as JAX runs them; ``block_until_ready`` makes each call include
    the device work."""

    def __init__(self, problem: Problem, jit: bool, mode: str, value: bool):
        super().__init__(problem)
        jax = _jax()
        import jax.numpy as jnp

        self._jax, self._jnp = jax, jnp
        f = self._f = lambda x: problem.fn(x, jnp)
        if mode == "reverse":
            grad = jax.value_and_grad(f) if value else jax.grad(f)
        else:
            jacobian = jax.jacfwd(f)
            grad = (lambda x: (f(x), jacobian(x))) if value else jacobian
        self._value = value
        self._jit = jit
        self.compiled = self._compile(grad) if jit else None
        self._grad = self.compiled if jit else grad
        self._compiled_f = None
        self.function_method = "jax-jit" if jit else "jax-eager"

    def _compile(self, fn: Callable):
        return self._jax.jit(fn).lower(self._jnp.asarray(self.problem.x0)).compile()

    def _function(self):
        """f as this variant runs it: compiled once when the gradient is jitted."""
        if not self._jit:
            return self._f
        if self._compiled_f is None:
            self._compiled_f = self._compile(self._f)
        return self._compiled_f

    def gradient(self, x: np.ndarray) -> np.ndarray:
        out = self._grad(self._jnp.asarray(x))
        return np.asarray((out[1] if self._value else out).block_until_ready())

    def timed_gradient(self, x: np.ndarray) -> Callable[[], object]:
        """The gradient of a device array made once, so that the time is JAX's alone."""
        device_x, grad, jax = self._jnp.asarray(x), self._grad, self._jax
        return lambda: jax.block_until_ready(grad(device_x))

    def timed_function(self, x: np.ndarray) -> Callable[[], object]:
        device_x, f = self._jnp.asarray(x), self._function()
        return lambda: f(device_x).block_until_ready()

    def function_memory(self) -> int | None:
        return _memory(self._function()) if self._jit else None


class JaxChain(ChainGradient):
    """The chain's gradient, jitted: ``none`` scans the steps, ``every:K`` and ``sqrt`` scan
    segments, each a ``jax.checkpoint`` of a scan of its steps.  ``forward_steps`` is the
    schedule's count: XLA runs the steps, and a remat forces each segment's recomputation."""

    function_method = "jax-jit"

    def __init__(self, chain: Chain, schedule: Schedule):
        super().__init__(chain.problem())
        jax = _jax()
        import jax.numpy as jnp

        self._jax, self._jnp = jax, jnp

        def steps(x, count: int):
            return jax.lax.scan(lambda h, _: (chain.step(h, jnp), None), x, None,
                                length=count)[0]

        def run(x):
            if schedule.kind == "none":
                return steps(x, chain.depth)
            for length, group in groupby(schedule.segments(chain.depth)):
                segment = jax.checkpoint(lambda h, length=length: steps(h, length))
                x = jax.lax.scan(lambda h, _, segment=segment: (segment(h), None), x, None,
                                 length=len(list(group)))[0]
            return x

        loss = jax.grad(lambda x: jnp.sum(run(x)))
        self.compiled = jax.jit(loss).lower(jnp.asarray(chain.x0)).compile()
        self.forward_steps = schedule.forward_steps(chain.depth)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.compiled(self._jnp.asarray(x)).block_until_ready())

    def timed_gradient(self, x: np.ndarray) -> Callable[[], object]:
        device_x, compiled, jax = self._jnp.asarray(x), self.compiled, self._jax
        return lambda: jax.block_until_ready(compiled(device_x))


class Jax(Backend):
    name = "jax"
    description = ("jax.grad, jit-compiled (jit = false for eager), x64 enabled; "
                   "mode = \"forward\": jax.jacfwd, n tangents pushed forward; value = true: "
                   "value_and_grad (f's value too, which XLA cannot then drop)")
    options = {"jit": True, "mode": "reverse", "value": False, **PRECISION_OPTIONS}
    choices = {"mode": ("reverse", "forward"), "dtype": tuple(DTYPES)}
    memory_method = "xla-memory-analysis"

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("jax") is None:
            return "jax is not installed"
        return None

    def load(self) -> None:
        _jax()

    def prepare(self, problem: Problem, jit: bool = True, mode: str = "reverse",
                value: bool = False, precision: Precision = NATIVE,
                **options: Any) -> JaxGradient:
        return JaxGradient(problem, jit, mode, value)

    def prepare_chain(self, chain: Chain, schedule: Schedule, jit: bool = True,
                      mode: str = "reverse", value: bool = False, **options: Any) -> JaxChain:
        """``none``, ``every:K`` and ``sqrt``, jitted reverse mode; no binomial schedule."""
        if not jit or mode != "reverse" or value:
            raise UnsupportedCase("the checkpoint study runs JAX's jitted reverse mode only "
                                  "(jit = true, mode = \"reverse\", value = false)")
        if schedule.kind == "revolve":
            raise UnsupportedCase("JAX has no binomial checkpointing: jax.checkpoint "
                                  "recomputes the segments it wraps")
        return JaxChain(chain, schedule)

    def measure_memory(self, prepared: JaxGradient, x: np.ndarray) -> int | None:
        """Temporaries plus outputs of the compiled executable; eager JAX has no such figure."""
        return None if prepared.compiled is None else _memory(prepared.compiled)

    def measure_function_memory(self, prepared: JaxGradient, x: np.ndarray) -> int | None:
        return prepared.function_memory()
