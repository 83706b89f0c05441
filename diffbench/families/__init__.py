"""The registry of function families, by name."""

from __future__ import annotations

from . import chains, depth, scalar, vector
from .base import Family, Function, Problem, coordinate_section, seeded_rng
from .chains import Chain, ChainFamily
from .check import PointOutsideDomain, check_function, point_at
from .custom import CustomFunctionError, custom_family, load_function, scaling_family

BUILTIN: dict[str, Family] = {
    family.name: family
    for family in (*scalar.FAMILIES, *vector.FAMILIES, *depth.FAMILIES, *chains.FAMILIES)
}

__all__ = [
    "BUILTIN", "Chain", "ChainFamily", "CustomFunctionError", "Family", "Function",
    "PointOutsideDomain", "Problem", "check_function", "coordinate_section", "custom_family",
    "load_function", "point_at", "scaling_family", "seeded_rng",
]
