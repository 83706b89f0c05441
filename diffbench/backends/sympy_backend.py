"""SymPy: build f as an expression, differentiate it per input, compile with ``lambdify``.

Each phase (build, diff, optional cse, compile) is timed apart.  The symbolic phases can
explode, so every case of this backend runs isolated: in a child process killed at the case's
time budget or memory cap, which ends it as ``timeout`` or ``out-of-memory``.  The gradient
is compiled to numpy, and lazily to mpmath for the high-precision check.  The derivation
lives in :mod:`diffbench.backends.sympy_derivation`, imported only when a case prepares.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ..families import Problem
from ..ops.precision import DTYPES, NATIVE, Precision
from .base import Backend, Prepared, UnsupportedCase

ENGINES = ("sympy", "symengine")


class Sympy(Backend):
    name = "sympy"
    description = ("sympy.diff per input, lambdify to numpy (cse = true: with common "
                   "subexpressions eliminated; engine = \"symengine\": SymEngine's diff)")
    options = {"cse": False, "engine": "sympy", "dtype": "float64"}
    choices = {"engine": ENGINES, "dtype": tuple(DTYPES)}
    isolate_by_default = True

    def optional_parts(self) -> dict[str, str | None]:
        found = importlib.util.find_spec("symengine") is not None
        return {'engine = "symengine"': None if found else
                "symengine is not installed (pip install -e '.[symengine]')"}

    def load(self) -> None:
        from . import sympy_derivation  # noqa: F401

    def prepare(self, problem: Problem, cse: bool = False, engine: str = "sympy",
                precision: Precision = NATIVE, **options: Any) -> Prepared:
        if engine == "symengine" and importlib.util.find_spec("symengine") is None:
            raise UnsupportedCase("symengine is not installed (the optional extra 'symengine')")
        from .sympy_derivation import SympyGradient, derive

        return SympyGradient(problem, derive(problem, cse, engine), precision.dtype)
