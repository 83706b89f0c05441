"""What a family is: a function written once over ``ops``, built at a size into a Problem."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..ops.precision import Precision, lower, round_to

Function = Callable[[np.ndarray, object], object]
"""``fn(x, ops)``: a scalar-valued function of a 1-d array, written against an ops namespace."""


@dataclass(frozen=True)
class Problem:
    """One function at one size, with the point at which its gradient is measured.

    ``x0`` is a 1-d float64 array; ``gradient``, when given, is a closed form written over
    ``ops`` like ``fn`` (numpy may be used for structure: it works on object arrays too).
    ``kinks`` are the declared indices of ``x0`` where ``fn`` is not differentiable (sorted);
    the reference adds those it detects (``Reference.kinks``).  A closed form keeps its own
    convention there (``relu`` takes the subgradient 0).
    """

    family: str
    size: int | None
    fn: Function
    x0: np.ndarray
    gradient: Function | None = None
    kinks: tuple[int, ...] = ()
    variant: str = "default"
    """The family's options as ``key=value`` pairs (:func:`options_label`), or ``default``."""
    precision: str = "float64"
    """The precision ``fn`` runs in (``Precision.label``); x0 holds numbers of its dtype."""

    @property
    def key(self) -> str:
        """The family, its options and its precision: what tells this problem from another of
        its family at the same size."""
        key = family_key(self.family, self.variant)
        return key if self.precision == "float64" else f"{key}@{self.precision}"

    @property
    def n(self) -> int:
        return int(self.x0.size)

    def f(self, x: np.ndarray, ops: object = np) -> object:
        return self.fn(x, ops)


def rounded(problem: Problem, dtype: str) -> Problem:
    """``problem`` at x0 rounded to ``dtype``, f as written: the problem whose reference a
    method run in ``dtype`` is measured against (the input's rounding is not the method's)."""
    if dtype == "float64":
        return problem
    return replace(problem, x0=round_to(problem.x0, dtype), precision=dtype)


def lowered(problem: Problem, precision: Precision, scale: float = 1.0) -> Problem:
    """``problem`` with f run at ``precision`` (times ``scale``: a loss scale) at x0 rounded
    to its dtype (see :mod:`diffbench.ops.precision`)."""
    at = rounded(problem, precision.dtype)
    if precision.native and scale == 1.0:
        return at
    return replace(at, fn=lower(problem.fn, precision, scale), precision=precision.label)


def coordinate_section(fn: Function, x: np.ndarray, index: int,
                       ops: object = np) -> Callable[[object], object]:
    """f along coordinate ``index`` through ``x``: t ↦ fn(x with x[index] = t, ops).

    ``x`` itself is written and restored to its own value after every call (no copy: O(1)
    extra memory); pass a copy where ``x`` must not be touched while the section runs.
    """
    original = x[index]

    def along(t: object) -> object:
        x[index] = t
        try:
            return fn(x, ops)
        finally:
            x[index] = original

    return along


class FamilyOptionError(ValueError):
    """An option a family does not have, or a value it does not accept; ``key`` names it."""

    def __init__(self, message: str, key: str):
        super().__init__(message)
        self.key = key


def options_label(options: Mapping[str, Any]) -> str:
    """``"default"`` or the options as ``key=value`` pairs, sorted, for the CSV."""
    if not options:
        return "default"
    return ",".join(f"{key}={str(value).lower() if isinstance(value, bool) else value}"
                    for key, value in sorted(options.items()))


def family_key(name: str, variant: str = "default") -> str:
    """The name a family with options is known by in a config: ``gmm`` or ``gmm(d=10,k=25)``."""
    return name if variant == "default" else f"{name}({variant})"


@dataclass(frozen=True)
class Family:
    """A named, registered family of problems.

    ``size_param`` names what the size means (``"n"``, ``"depth"``, ``"width"``), or is
    ``None`` for a fixed family, which ignores the sizes a study asks for.

    ``options`` are the family's own parameters with their defaults (a default's type is the
    type accepted; ``limits`` give each its (low, high) bounds, inclusive); ``build(size,
    **options)`` gets every option but the size's.  An option named like ``size_param`` sets the
    size (``{ name = "gmm", k = 25 }``: K = 25, whatever sizes the study asks for).  ``chosen``
    are the options a config or :func:`make` set (:meth:`with_options`), the rest defaults.
    """

    name: str
    description: str
    build: Callable[..., Problem]
    size_param: str | None = None
    example_sizes: tuple[int, ...] = field(default=())
    min_size: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    chosen: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fixed(self) -> bool:
        return self.size_param is None

    @property
    def variant(self) -> str:
        return options_label(self.chosen)

    @property
    def key(self) -> str:
        return family_key(self.name, self.variant)

    @property
    def pinned_size(self) -> int | None:
        """The size set by an option named like the size, if one was chosen."""
        return self.chosen.get(self.size_param) if self.size_param else None

    def effective_options(self) -> dict[str, Any]:
        """Every option, the chosen ones over the defaults."""
        return {**self.options, **self.chosen}

    def check_option(self, key: str, value: Any) -> Any:
        """``value`` for option ``key``, or :class:`FamilyOptionError` saying what is wrong."""
        if key not in self.options:
            valid = ", ".join(self.options) or "none"
            raise FamilyOptionError(f"family {self.name!r} has no option {key!r} "
                                    f"(valid: {valid})", key)
        default = self.options[key]
        kind = type(default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) is not isinstance(default, bool) or not isinstance(value, kind):
            raise FamilyOptionError(f"family {self.name!r} option {key!r} must be "
                                    f"{'an integer' if kind is int else kind.__name__}, got "
                                    f"{type(value).__name__} {value!r}", key)
        low, high = self.limits.get(key, (-float("inf"), float("inf")))
        if not low <= value <= high:
            bound = f">= {low:g}" if high == float("inf") else f"in [{low:g}, {high:g}]"
            raise FamilyOptionError(f"family {self.name!r} option {key!r} must be {bound}, "
                                    f"got {value!r}", key)
        return value

    def with_options(self, **options: Any) -> Family:
        """This family with ``options`` chosen (checked: :class:`FamilyOptionError`)."""
        checked = {key: self.check_option(key, value) for key, value in options.items()}
        if self.size_param in checked and checked[self.size_param] < self.min_size:
            raise FamilyOptionError(f"family {self.name!r} needs {self.size_param} >= "
                                    f"{self.min_size}, got {checked[self.size_param]}",
                                    self.size_param)
        return replace(self, chosen={**self.chosen, **checked})

    def make(self, size: int | None = None) -> Problem:
        """The problem at ``size`` with the chosen options (the pinned or default size when
        ``size`` is None), its ``variant`` the chosen options."""
        if self.fixed:
            size = None
        else:
            pinned = self.pinned_size
            if pinned is not None and size is not None and size != pinned:
                raise FamilyOptionError(f"family {self.name!r}: size {size} differs from "
                                        f"option {self.size_param} = {pinned}", self.size_param)
            if size is None:
                size = pinned or self.options.get(self.size_param) or self.example_sizes[0]
        if not self.options:
            problem = self.build(size)
        else:
            options = {k: v for k, v in self.effective_options().items()
                       if k != self.size_param}
            problem = self.build(size, **options)
        return replace(problem, variant=self.variant)


def seeded_rng(name: str, size: int | None) -> np.random.Generator:
    """A generator whose stream depends only on the family name and size."""
    return np.random.default_rng([zlib.crc32(name.encode()), size or 0])


def as_vector(values) -> np.ndarray:
    return np.atleast_1d(np.asarray(values, dtype=float)).copy()
