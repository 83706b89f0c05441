"""The backend protocol: ``prepare(problem)`` once, untimed, then ``gradient(x)`` many times."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..families import Chain, Problem
from ..ops.precision import Precision

if TYPE_CHECKING:
    from ..ad.checkpointing import Schedule

PRECISION_OPTIONS: dict[str, Any] = {"dtype": "float64", "accumulate": None, "loss_scale": None}
"""The precision options a backend may take, with their defaults (see ``ops.precision``)."""

STATS_COLUMNS = frozenset({
    "f_evals", "tape_len", "cotangent_peak_bytes", "expr_nodes", "build_s", "diff_s", "cse_s",
    "compile_s",
})
"""The gradient-study columns a backend's ``stats()`` may set (the README documents each)."""


class Prepared:
    """A gradient ready to be timed, and the capabilities the gradient study may use.

    Subclasses implement :meth:`gradient`; every other capability has a default here, so the
    study never probes for one:

    * :meth:`timed_gradient` / :meth:`timed_function`: zero-argument calls of one gradient and
      of one evaluation of f *as this backend runs f* (jitted for JAX, lambdified for SymPy,
      eager torch for torch; numpy by default), timed interleaved for ω = T(gradient) / T(f);
      ``function_method`` names that way of running f;
    * :meth:`gradient_mp`, with ``has_gradient_mp``: the same gradient in mpmath at the
      caller's working precision (``digits_mp``);
    * :meth:`error_estimates`: the method's own per-component absolute error estimates;
    * :meth:`stats`: counts for the columns in ``STATS_COLUMNS`` only;
    * :meth:`note`: a remark for the row's message.
    """

    function_method: str = "numpy"
    has_gradient_mp: bool = False

    def __init__(self, problem: Problem):
        self.problem = problem

    def gradient(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def timed_gradient(self, x: np.ndarray) -> Callable[[], object]:
        return lambda: self.gradient(x)

    def timed_function(self, x: np.ndarray) -> Callable[[], object]:
        fn = self.problem.fn
        return lambda: fn(x, np)

    def gradient_mp(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no high-precision gradient")

    def error_estimates(self) -> np.ndarray | None:
        return None

    @property
    def measured(self) -> Prepared:
        """What the backend's own memory measurement reads: this gradient, or the backend's
        gradient that a wrapper (a loss scale) calls."""
        return self

    def scaled_gradient(self) -> np.ndarray | None:
        """The last gradient of S·f as computed, before the division by S (None: unscaled)."""
        return None

    def stats(self) -> dict[str, Any]:
        return {}

    def note(self) -> str:
        return ""


class ChainGradient(Prepared):
    """The gradient of a chain's f = Σ x_L with respect to x_0 under a checkpointing schedule
    (the checkpoint study): ``gradient`` takes and returns arrays of x_0's shape.
    ``forward_steps`` is how many times the last gradient ran the step: counted where the
    backend runs the steps in Python, the schedule's own count where a compiler runs them."""

    forward_steps: int | None = None


class UnsupportedCase(Exception):
    """The backend cannot run this problem (the row gets status ``unsupported``)."""


class Backend:
    """A method of differentiation.

    ``options`` maps each accepted config option to its default; the values' types are the
    accepted types; ``choices`` narrows an option to a few values.  ``unavailable()`` returns
    why the backend cannot run here, or ``None``; ``load()`` imports the libraries the method
    needs, once per process and before anything of a case is timed (so that ``setup_s`` is
    about the function, not about importing JAX).
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

    @property
    def takes_precision(self) -> bool:
        """Whether ``options`` has any of ``PRECISION_OPTIONS`` (``dtype``, and ``accumulate``
        and ``loss_scale`` where the method has mixed precision); ``prepare`` then gets the
        problem lowered to the precision (:func:`diffbench.families.lowered`) and
        ``precision``, a ``Precision``."""
        return not self.options.keys().isdisjoint(PRECISION_OPTIONS)

    def lacks_precision(self, options: Mapping[str, Any]) -> str | None:
        """Why this method cannot run the precision ``options`` ask for: a precision option it
        does not take, set to other than its default (the config accepts every precision
        option on every backend, so that such a case is an ``unsupported`` row); None where
        it can."""
        for option, default in PRECISION_OPTIONS.items():
            if option in options and option not in self.options and options[option] != default:
                taken = ", ".join(k for k in PRECISION_OPTIONS if k in self.options)
                return (f"{self.name} takes no {option} option"
                        + (f" (its precision options: {taken})" if taken
                           else ": it runs f as written, in float64"))
        return None

    def optional_parts(self) -> dict[str, str | None]:
        """Parts of the method that need more than the method itself (an option's value),
        each with why it cannot run here, or None where it can (``diffbench list``)."""
        return {}

    def load(self) -> None:
        """Import what the method needs (nothing by default)."""

    def relative_cost(self, size: int) -> float:
        """A rough cost of one case at ``size``, to balance shards (linear by default)."""
        return float(size)

    def prepare(self, problem: Problem, **options: Any) -> Prepared:
        raise NotImplementedError

    def prepare_chain(self, chain: Chain, schedule: Schedule, **options: Any) -> ChainGradient:
        """The chain's gradient checkpointed by ``schedule``; raises ``UnsupportedCase`` for a
        schedule the method does not have (by default, every schedule)."""
        raise UnsupportedCase(f"{self.name} has no checkpointing schedules")

    def measure_memory(self, prepared: Prepared, x: np.ndarray) -> int | None:
        """Peak extra bytes of one gradient, for backends whose memory tracemalloc cannot see."""
        raise NotImplementedError

    def measure_function_memory(self, prepared: Prepared, x: np.ndarray) -> int | None:
        """Peak extra bytes of one evaluation of f as this backend runs it, measured like
        :meth:`measure_memory` (for backends whose ``memory_method`` is their own)."""
        raise NotImplementedError


def precision_of(options: Mapping[str, Any]) -> Precision:
    """The precision that a case's backend ``options`` ask for (float64 by default)."""
    return Precision(*(options.get(key, default) for key, default in PRECISION_OPTIONS.items()))


def variant_label(options: Mapping[str, Any]) -> str:
    """``"default"`` or the options as ``key=value`` pairs, sorted, for the CSV."""
    if not options:
        return "default"
    return ",".join(f"{key}={_format(value)}" for key, value in sorted(options.items()))


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
