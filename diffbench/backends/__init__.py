"""The backend registry: built-in methods plus the ``diffbench.backends`` entry-point group."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from .base import Backend, Prepared, UnsupportedCase, variant_label
from .central import Central
from .jax_backend import Jax
from .sympy_backend import Sympy

ENTRY_POINT_GROUP = "diffbench.backends"
_BUILTIN: tuple[type[Backend], ...] = (Central, Jax, Sympy)


@cache
def registry() -> dict[str, Backend]:
    """Every backend by name; a plugin whose entry point fails to load is skipped."""
    backends = {cls.name: cls() for cls in _BUILTIN}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry.load()
        except Exception:  # a broken plugin must not break the run; `list` reports it
            continue
        backends.setdefault(entry.name, cls())
    return backends


__all__ = ["Backend", "Prepared", "UnsupportedCase", "registry", "variant_label"]
