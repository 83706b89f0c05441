"""The backend registry: built-in methods plus the ``diffbench.backends`` entry-point group."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from .base import Backend, ChainGradient, Prepared, UnsupportedCase, variant_label
from .central import Central
from .jax_backend import Jax
from .reverse import Reverse
from .sympy_backend import Sympy

ENTRY_POINT_GROUP = "diffbench.backends"
_BUILTIN: tuple[type[Backend], ...] = (Central, Reverse, Jax, Sympy)


class BrokenPlugin(Backend):
    """A plugin whose entry point failed to load: listed, and its cases ``unsupported``."""

    description = "a plugin that failed to load"

    def __init__(self, name: str, error: Exception):
        self.name = name
        self._reason = f"the plugin {name!r} failed to load: {type(error).__name__}: {error}"

    def unavailable(self) -> str | None:
        return self._reason


@cache
def registry() -> dict[str, Backend]:
    """Every backend by name, built-in ones first; a plugin never replaces a built-in."""
    backends: dict[str, Backend] = {cls.name: cls() for cls in _BUILTIN}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in backends:
            continue
        try:
            backends[entry.name] = entry.load()()
        except Exception as exc:  # a broken plugin must not break the run
            backends[entry.name] = BrokenPlugin(entry.name, exc)
    return backends


__all__ = ["Backend", "ChainGradient", "Prepared", "UnsupportedCase", "registry", "variant_label"]
