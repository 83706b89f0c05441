"""The backend protocol: ``prepare(problem)`` once, untimed, then ``gradient(x)`` many times."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import numpy as np

from ..families import Problem


class Prepared(Protocol):
    """A gradient ready to be timed; ``stats()`` adds counts such as ``f_evals`` or ``tape_len``.

    A prepared gradient may also offer ``gradient_mp(x)``: the same gradient evaluated in
    mpmath at the caller's working precision, which the gradient study checks as ``digits_mp``.
    """

    def gradient(self, x: np.ndarray) -> np.ndarray: ...

    def stats(self) -> dict[str, Any]: ...


class UnsupportedCase(Exception):
    """The backend cannot run this problem (the row gets status ``unsupported``)."""


class Backend:
    """A method of differentiation.

    ``options`` maps each accepted config option to its default; the values' types are the
    accepted types; ``choices`` narrows an option to a few values.  ``unavailable()`` returns
    why the backend cannot run here, or ``None``.
    ``memory_method`` names how ``peak_bytes`` is measured: ``"tracemalloc"`` (the default,
    done by the study) or the backend's own ``measure_memory``.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    options: ClassVar[Mapping[str, Any]] = {}
    choices: ClassVar[Mapping[str, tuple[Any, ...]]] = {}
    """For options that take one of a few values: option → the values accepted."""
    memory_method: ClassVar[str] = "tracemalloc"
    isolate_by_default: ClassVar[bool] = False
    """Run every case in a child process with a time budget and a memory cap, even without
    ``--isolate`` (for methods that can explode, such as symbolic differentiation)."""

    def unavailable(self) -> str | None:
        return None

    def relative_cost(self, size: int) -> float:
        """A rough cost of one case at ``size``, to balance shards (linear by default)."""
        return float(size)

    def prepare(self, problem: Problem, **options: Any) -> Prepared:
        raise NotImplementedError

    def measure_memory(self, prepared: Prepared, x: np.ndarray) -> int | None:
        """Peak extra bytes of one gradient, for backends whose memory tracemalloc cannot see."""
        raise NotImplementedError


def variant_label(options: Mapping[str, Any]) -> str:
    """``"default"`` or the options as ``key=value`` pairs, sorted, for the CSV."""
    if not options:
        return "default"
    return ",".join(f"{key}={_format(value)}" for key, value in sorted(options.items()))


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
