"""The registry of function families, by name."""

from __future__ import annotations

from . import chains, depth, losses, scalar, vector, workloads
from .base import (
    Family,
    FamilyOptionError,
    Function,
    Problem,
    coordinate_section,
    family_key,
    lowered,
    options_label,
    rounded,
    seeded_rng,
)
from .chains import Chain, ChainFamily
from .check import PointOutsideDomain, check_function, point_at
from .custom import CustomFunctionError, custom_family, load_function, scaling_family

BUILTIN: dict[str, Family] = {
    family.name: family
    for family in (*scalar.FAMILIES, *vector.FAMILIES, *depth.FAMILIES, *chains.FAMILIES,
                   *workloads.FAMILIES, *losses.FAMILIES)
}



def make(name: str, size: int | None = None, **options) -> Problem:
    """The built-in family ``name`` at ``size`` with ``options`` (``make("gmm", d=10, k=25)``);
    unknown names and bad options raise ``KeyError`` and :class:`FamilyOptionError`."""
    if name not in BUILTIN:
        raise KeyError(f"unknown family {name!r}; valid: {', '.join(BUILTIN)}")
    return BUILTIN[name].with_options(**options).make(size)


__all__ = [
    "BUILTIN", "Chain", "ChainFamily", "CustomFunctionError", "Family", "FamilyOptionError",
    "Function", "PointOutsideDomain", "Problem", "check_function", "coordinate_section",
    "custom_family", "family_key", "load_function", "lowered", "make", "options_label",
    "point_at", "rounded", "scaling_family", "seeded_rng",
]
