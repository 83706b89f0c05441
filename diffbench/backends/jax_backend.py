"""JAX: ``jax.grad`` (or ``jax.jacfwd``), jit-compiled by default, float64 enabled."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from ..families import Problem
from .base import Backend


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


class JaxGradient:
    """The compiled gradient; ``block_until_ready`` makes each call include the device work."""

    def __init__(self, problem: Problem, jit: bool, mode: str):
        jax = _jax()
        import jax.numpy as jnp

        self._jnp = jnp
        differentiate = jax.grad if mode == "reverse" else jax.jacfwd
        grad = differentiate(lambda x: problem.fn(x, jnp))
        self.compiled = jax.jit(grad).lower(jnp.asarray(problem.x0)).compile() if jit else None
        self._grad = self.compiled if jit else grad

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._grad(self._jnp.asarray(x)).block_until_ready())

    def timed(self, x: np.ndarray):
        """The gradient of a device array made once, so that the time is JAX's alone."""
        device_x = self._jnp.asarray(x)
        return lambda: self._grad(device_x).block_until_ready()

    def stats(self) -> dict[str, Any]:
        return {}


class Jax(Backend):
    name = "jax"
    description = ("jax.grad, jit-compiled (jit = false for eager), x64 enabled; "
                   "mode = \"forward\": jax.jacfwd, n tangents pushed forward")
    options = {"jit": True, "mode": "reverse"}
    choices = {"mode": ("reverse", "forward")}
    memory_method = "xla-memory-analysis"

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("jax") is None:
            return "jax is not installed"
        return None

    def prepare(self, problem: Problem, jit: bool = True, mode: str = "reverse",
                **options: Any) -> JaxGradient:
        return JaxGradient(problem, jit, mode)

    def measure_memory(self, prepared: JaxGradient, x: np.ndarray) -> int | None:
        """Temporaries plus outputs of the compiled executable; eager JAX has no such figure."""
        if prepared.compiled is None:
            return None
        analysis = prepared.compiled.memory_analysis()
        if analysis is None:
            return None
        return int(analysis.temp_size_in_bytes + analysis.output_size_in_bytes)
