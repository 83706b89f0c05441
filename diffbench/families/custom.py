"""Families defined in a config: ``function = "file.py:attr"`` or ``"package.module:attr"``,
at a fixed point, or at a point made per size (``point = "file.py:make_point"``)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from .base import Family, Function, Problem, as_vector


class CustomFunctionError(Exception):
    """The function named by a custom family cannot be loaded."""


def load_function(spec: str, base_dir: Path) -> Function:
    """Import ``attr`` from ``file.py`` (relative to ``base_dir``) or from a module."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise CustomFunctionError(f"{spec!r} is not of the form 'file.py:name' or 'module:name'")
    if target.endswith(".py") or "/" in target:
        path = (base_dir / target).resolve()
        if not path.is_file():
            raise CustomFunctionError(f"file {path} does not exist")
        module_name = "diffbench_custom_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise CustomFunctionError(
                f"importing {path} raised {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise CustomFunctionError(f"cannot import module {target!r}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise CustomFunctionError(f"{target} has no function {attr!r}")
    return fn


def custom_family(name: str, fn: Function, point, description: str = "",
                  kinks: Iterable[int] = ()) -> Family:
    """A fixed family at ``point``; its size is ``len(point)``; ``kinks`` are the declared
    indices of ``point`` where ``fn`` is not differentiable."""
    x0 = as_vector(point)
    problem = Problem(name, None, fn, x0, kinks=tuple(sorted({int(i) for i in kinks})))
    return Family(name, description or f"custom: {fn.__module__}.{fn.__name__}",
                  lambda size: problem)


def scaling_family(name: str, fn: Function, make_point: Callable[[int], object],
                   description: str = "", kinks: Iterable[int] = ()) -> Family:
    """A sized family: at size s, ``fn`` at ``make_point(s)`` (s is the family's ``size``,
    ``len(make_point(s))`` its number of inputs); ``kinks`` as for :func:`custom_family`."""
    declared = tuple(sorted({int(i) for i in kinks}))

    def build(size: int | None) -> Problem:
        return Problem(name, size, fn, as_vector(make_point(size)), kinks=declared)

    return Family(name, description or f"custom: {fn.__module__}.{fn.__name__}", build,
                  size_param="size")
