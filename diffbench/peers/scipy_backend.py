"""SciPy: ``scipy.differentiate.jacobian`` of the numpy f (SciPy ≥ 1.15), counting the points at
which it evaluates f."""

from __future__ import annotations

import importlib.util
from importlib.metadata import version
from typing import Any

import numpy as np

from ..backends.base import Backend, Prepared
from ..families import Problem
from .autograd_backend import INSTALL_HINT

MIN_VERSION = (1, 15)
"""``scipy.differentiate`` first appeared in SciPy 1.15."""
STATUS = {-1: "the error estimate increased, so SciPy stopped",
          -2: "maxiter was reached", -3: "a non-finite value was met"}
"""What ``scipy.differentiate``'s statuses other than 0 (converged) mean."""


class ScipyGradient(Prepared):
    """``scipy.differentiate.jacobian`` of f, with SciPy's defaults unless given.

    SciPy asks for f vectorized over the trailing axes of its argument (shape (n, …)); each
    trailing index is one point, at which f is evaluated on its own and counted (``f_evals``
    is the count of the last gradient).  ``error_estimates`` is SciPy's ``res.error``, the
    change of the estimate in its last iteration.  Steps are absolute (``initial_step``).
    """

    def __init__(self, problem: Problem, options: dict[str, Any]):
        super().__init__(problem)
        from scipy.differentiate import jacobian

        self._jacobian = jacobian
        self._options = options
        self._evals = 0
        self._errors: np.ndarray | None = None
        self._status: np.ndarray | None = None

    def _f(self, xi: np.ndarray) -> np.ndarray:
        """f at each point xi[:, j, …], one evaluation per point."""
        points = xi.reshape(xi.shape[0], -1)
        fn = self.problem.fn
        values = np.array([fn(points[:, j], np) for j in range(points.shape[1])], dtype=float)
        self._evals += points.shape[1]
        return values.reshape(xi.shape[1:])

    def gradient(self, x: np.ndarray) -> np.ndarray:
        self._evals = 0
        options = dict(self._options)
        rtol = options.pop("rtol")
        result = self._jacobian(self._f, np.asarray(x, dtype=float),
                                tolerances={"rtol": rtol}, **options)
        self._errors = np.asarray(result.error, dtype=float).reshape(x.shape)
        self._status = np.asarray(result.status).reshape(x.shape)
        return np.asarray(result.df, dtype=float).reshape(x.shape)

    def error_estimates(self) -> np.ndarray | None:
        """SciPy's absolute error estimate per component, of the last gradient."""
        return self._errors

    def stats(self) -> dict[str, Any]:
        return {"f_evals": self._evals}

    def note(self) -> str:
        """The components where SciPy did not converge, and why."""
        if self._status is None:
            return ""
        stopped = {}
        for i in np.flatnonzero(self._status != 0):
            stopped.setdefault(int(self._status[i]), []).append(int(i))
        return "; ".join(f"scipy: status {status} at x{_indices(indices)}: {STATUS[status]}"
                         for status, indices in sorted(stopped.items()))


def _indices(indices: list[int]) -> str:
    shown = ", ".join(map(str, indices[:4]))
    return f"[{shown}{', …' if len(indices) > 4 else ''}]"


class Scipy(Backend):
    name = "scipy"
    description = ("scipy.differentiate.jacobian: central differences of order 8 from an "
                   "absolute step 0.5, halved until the change is below rtol·|f'|")
    options = {"order": 8, "initial_step": 0.5, "step_factor": 2.0, "maxiter": 10,
               "rtol": float(np.sqrt(np.finfo(float).eps))}
    choices = {"order": (2, 4, 6, 8)}

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("scipy") is None:
            return f"scipy is not installed: {INSTALL_HINT}"
        found = version("scipy")
        if tuple(int(part) for part in found.split(".")[:2]) < MIN_VERSION:
            return f"scipy.differentiate needs SciPy >= 1.15, found {found}: {INSTALL_HINT}"
        return None

    def load(self) -> None:
        import scipy.differentiate  # noqa: F401

    def relative_cost(self, size: int) -> float:
        return float(size) ** 2

    def prepare(self, problem: Problem, **options: Any) -> ScipyGradient:
        return ScipyGradient(problem, {**self.options, **options})
