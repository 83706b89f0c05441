"""What a family is: a function written once over ``ops``, built at a size into a Problem."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

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

    @property
    def n(self) -> int:
        return int(self.x0.size)

    def f(self, x: np.ndarray, ops: object = np) -> object:
        return self.fn(x, ops)


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


@dataclass(frozen=True)
class Family:
    """A named, registered family of problems.

    ``size_param`` names what the size means (``"n"``, ``"depth"``, ``"width"``), or is
    ``None`` for a fixed family, which ignores the sizes a study asks for.  ``options`` are
    the family's own settings besides its size, with their defaults (positive integers), that
    :meth:`with_options` sets.
    """

    name: str
    description: str
    build: Callable[[int | None], Problem]
    size_param: str | None = None
    example_sizes: tuple[int, ...] = field(default=())
    min_size: int = 1
    options: Mapping[str, int] = field(default_factory=dict)

    @property
    def fixed(self) -> bool:
        return self.size_param is None

    def with_options(self, name: str, **options: int) -> Family:
        """This family, named ``name`` (its problems too), with ``options`` set; every key
        must be one of ``self.options``."""
        unknown = set(options) - set(self.options)
        if unknown:
            raise ValueError(f"family {self.name!r} has no option {sorted(unknown)[0]!r}")
        return replace(self, name=name, build=lambda size: replace(self.build(size),
                                                                   family=name))


def seeded_rng(name: str, size: int | None) -> np.random.Generator:
    """A generator whose stream depends only on the family name and size."""
    return np.random.default_rng([zlib.crc32(name.encode()), size or 0])


def as_vector(values) -> np.ndarray:
    return np.atleast_1d(np.asarray(values, dtype=float)).copy()
