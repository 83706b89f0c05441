"""What ``diffbench advise`` measures: the target read from the command line, and the config
of an ordinary run that measures it.

The target is checked here, before any run directory exists, with the same checks (and
messages) as a config's families; the run itself is then an ordinary config written into the
run directory (``advise.toml``), so that ``report``, ``plot``, ``compare`` and ``--resume``
work on it as on any run.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..backends import registry
from ..errors import UserError
from ..families import (
    BUILTIN,
    CustomFunctionError,
    FamilyOptionError,
    check_function,
    load_function,
)
from .verdict import TEXTBOOK_SMALL_N

CONFIG_NAME = "advise.toml"
POINT_NAME = "advise_point.npy"
POINT_MODULE = "advise_point.py"
LADDER = {"n": 10, "size": 10, "width": 3, "depth": 2}
"""The factor between the sizes measured around the one asked for, by what the size means:
about ten times the inputs for n, a width (n² inputs) by three, a depth by two (the cost of a
composition grows with depth, its inputs do not)."""
CASE_SHARE = 6
"""Each case may take at most this fraction of the budget (1/6)."""
MIN_CASE_S = 1.0
MIN_SAMPLE_S = 0.005
REPEATS = 5
MEMORY_MB = 4096
"""Each case's resident-memory cap (``run.memory_mb``)."""
BUDGET_KEY = "advise --budget"

POINT_SOURCE = '''"""The point of `diffbench advise --scale` at each size: the point given, repeated
(numpy.resize) to that many inputs; at its own length, the point itself."""

from pathlib import Path

import numpy as np

POINT = np.load(Path(__file__).with_name("{point}"), allow_pickle=False)


def make_point(size):
    return np.resize(POINT, int(size))
'''


class AdviceError(UserError):
    """A target, point or option that ``advise`` cannot use; the message names it."""


@dataclass(frozen=True)
class Target:
    """What is measured: a built-in family at a size, or a custom function at a point (and,
    with ``scale``, at that point repeated to other lengths)."""

    text: str
    family: str
    size: int | None
    sizes: tuple[int, ...] = ()
    """Every size measured, the asked one included (one for a fixed target)."""
    size_param: str | None = None
    function: str | None = None
    """``file.py:name`` (absolute) or ``module:name`` for a custom function."""
    point: np.ndarray | None = None
    backends: tuple[str, ...] = field(default=())
    base: str | None = None
    """The built-in family that ``family`` sets ``options`` of (``sin_tanh_chain:depth=32``)."""
    options: dict[str, object] = field(default_factory=dict)

    @property
    def scaled(self) -> bool:
        return len(self.sizes) > 1


def parse_point(text: str) -> np.ndarray:
    """``--point 0.3,-1.2,2`` as a vector of finite numbers."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise AdviceError(f"--point {text!r}: expected numbers separated by commas, e.g. "
                          "0.3,-1.2,2") from None
    return _finite(np.asarray(values, dtype=float), f"--point {text!r}")


def read_point(path: Path) -> np.ndarray:
    """``--point-file x.npy``: a 1-d array of finite numbers saved by ``numpy.save``."""
    if path.suffix != ".npy":
        raise AdviceError(f"--point-file {path}: expected a .npy file (numpy.save)")
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise AdviceError(f"--point-file {path}: cannot read it as a .npy array: {exc}") from exc
    if values.dtype.kind not in "iuf":
        raise AdviceError(f"--point-file {path}: expected real numbers, got dtype {values.dtype}")
    if values.ndim > 1:
        raise AdviceError(f"--point-file {path}: expected a vector, got shape {values.shape}")
    return _finite(np.atleast_1d(values).astype(float), f"--point-file {path}")


def _finite(point: np.ndarray, what: str) -> np.ndarray:
    if point.size == 0:
        raise AdviceError(f"{what}: the point is empty")
    bad = np.flatnonzero(~np.isfinite(point))
    if bad.size:
        raise AdviceError(f"{what}: x[{bad[0]}] = {point[bad[0]]} is not a finite number")
    return point


def ladder(size: int, factor: int, min_size: int) -> tuple[int, ...]:
    """The sizes measured around ``size``: a smaller and a larger one by ``factor``, and one
    larger still where the smaller would fall below ``min_size``."""
    sizes = [size // factor] if size // factor >= min_size and size // factor < size else []
    sizes += [size, size * factor]
    if len(sizes) < 3:
        sizes.append(size * factor * factor)
    return tuple(sizes)


FIRST_SMALL = ("reverse", "central", "sympy", "jax", "torch", "autograd", "numdifftools",
               "scipy")
FIRST_LARGE = ("reverse", "jax", "central", "torch", "autograd", "sympy", "scipy",
               "numdifftools")
"""The order advise measures the backends in, below and from ``TEXTBOOK_SMALL_N`` inputs:
first those its verdict and the textbook's branch compare (the engine, central differences,
SymPy where the textbook expects it, JAX), then the peers, the dearest last, so that a
budget spent cuts the least needed; other plugins after them, by their relative cost."""


def in_order(names: tuple[str, ...], inputs: int) -> tuple[str, ...]:
    """``names`` in the order of ``FIRST_SMALL`` or ``FIRST_LARGE`` for ``inputs``."""
    first = FIRST_SMALL if inputs < TEXTBOOK_SMALL_N else FIRST_LARGE
    backends = registry()
    return tuple(sorted(names, key=lambda name: (
        first.index(name) if name in first else len(first),
        backends[name].relative_cost(inputs))))


def _backends(names: str | None) -> tuple[str, ...]:
    """Every registered backend (default options), or those ``--backends`` names."""
    available = list(registry())
    if names is None:
        return tuple(available)
    chosen = [name.strip() for name in names.split(",")]
    for name in chosen:
        if name not in available:
            near = difflib.get_close_matches(name, available, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise AdviceError(f"--backends: unknown backend {name!r}{hint}; valid: "
                              f"{', '.join(available)}")
    if len(set(chosen)) < len(chosen):
        raise AdviceError(f"--backends {names!r}: a backend is named twice")
    return tuple(chosen)


def resolve(text: str, *, point: np.ndarray | None, size: int | None, scale: bool,
            backends: str | None, cap_s: float) -> Target:
    """The target of ``advise TEXT``: refused, with a message naming the argument, where it
    cannot run (an unknown family, a size it does not take, a custom function that fails the
    checks a config's does, within ``cap_s`` seconds)."""
    chosen = _backends(backends)
    if backends is None:
        chosen = in_order(chosen, _inputs_hint(text.split(":")[0], size, point))
    if text in BUILTIN:
        return _builtin(text, point, size, scale, chosen)
    name, _, options = text.partition(":")
    if name in BUILTIN and "=" in options:
        return _with_options(text, name, options, point, size, scale, chosen)
    if ":" not in text:
        near = difflib.get_close_matches(text, list(BUILTIN), n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise AdviceError(f"{text!r}: no such built-in family ({hint}valid: "
                          f"{', '.join(BUILTIN)}), nor a custom function file.py:name")
    return _custom(text, point, size, scale, chosen, cap_s)


def _inputs_hint(text: str, size: int | None, point: np.ndarray | None) -> int:
    """The number of inputs, to order the methods by: the point's, or the family's at the
    size (its largest example without one)."""
    if point is not None:
        return int(point.size)
    family = BUILTIN.get(text)
    if family is None:
        return size or 1
    if not family.fixed and size is None:
        size = family.example_sizes[-1] if family.example_sizes else family.min_size
    if family.size_param == "n":
        return size
    try:
        return family.make(size).n
    except Exception:  # a size the family refuses: resolve() says so
        return size or 1


def _builtin(name: str, point, size, scale, backends) -> Target:
    family = BUILTIN[name]
    if point is not None:
        raise AdviceError(f"--point: {name} is a built-in family, measured at its own seeded "
                          "point (--size chooses its size); a point of your own needs your "
                          "own function, file.py:name")
    if scale:
        raise AdviceError(f"--scale is for custom functions; {name} is measured at sizes "
                          "around --size by itself" if not family.fixed else
                          f"--scale: {name} is a fixed family: it has no other sizes")
    if family.fixed:
        if size is not None:
            raise AdviceError(f"--size: {name} is a fixed family ({family.description}); "
                              "it has no size")
        return Target(name, name, None, (None,), None, backends=backends)
    if size is None:
        size = family.example_sizes[-1] if family.example_sizes else family.min_size
    if size < family.min_size:
        raise AdviceError(f"--size {size}: {name} needs {family.size_param} >= "
                          f"{family.min_size}")
    sizes = ladder(size, LADDER.get(family.size_param, 10), family.min_size)
    return Target(name, name, size, sizes, family.size_param, backends=backends)


def _option_value(text: str) -> object:
    """A ``key=value`` value as TOML would read it: an integer, a float, a boolean or text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _with_options(text: str, name: str, given: str, point, size, scale, backends) -> Target:
    """``family:key=value,…``: a built-in family with some of its options set, checked as a
    config's ``{ name = …, key = value }`` is."""
    options = {}
    for item in given.split(","):
        key, _, value = (part.strip() for part in item.partition("="))
        options[key] = _option_value(value)
    try:
        BUILTIN[name].with_options(**options).make(size)
    except FamilyOptionError as exc:
        raise AdviceError(f"{text}: {exc}") from None
    target = _builtin(name, point, size, scale, backends)
    label = name + "".join(f"_{key}{value}" for key, value in options.items())
    return replace(target, text=text, family=label, base=name, options=options)


def _custom(spec: str, point, size, scale, backends, cap_s: float) -> Target:
    if size is not None:
        raise AdviceError("--size is for built-in families; a custom function's size is the "
                          "length of its point (--scale measures it at other lengths too)")
    if point is None:
        raise AdviceError(f"{spec}: a custom function needs its point: --point 0.3,-1.2,2 or "
                          "--point-file x.npy")
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py") or "/" in target:
        spec = f"{(Path.cwd() / target).resolve()}:{attr}"
    try:
        fn = load_function(spec, Path.cwd())
        check_function(fn, point, spec, cap_s, BUDGET_KEY)
    except CustomFunctionError as exc:
        raise AdviceError(str(exc)) from exc
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in attr) or "function"
    if name in BUILTIN:
        name += "_custom"
    n = int(point.size)
    sizes = ladder(n, LADDER["size"], 1) if scale else (None,)
    return Target(spec, name, n if scale else None, sizes, "size" if scale else None,
                  spec, point, backends)


@dataclass(frozen=True)
class Plan:
    """The time split of one advice: the deadline's length, each case's cap, and how long a
    reference may take."""

    budget_s: float
    case_s: float
    reference_s: float

    @classmethod
    def for_budget(cls, budget_s: float) -> Plan:
        if not (budget_s > 0 and math.isfinite(budget_s)):
            raise AdviceError(f"--budget {budget_s:g}: expected a number of seconds > 0")
        case = max(MIN_CASE_S, budget_s / CASE_SHARE)
        return cls(budget_s, case, max(MIN_CASE_S, budget_s / 2))


def _toml(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(v)}" for key, v in value.items()) + " }"
    return str(value)



def write_config(target: Target, plan: Plan, run_dir: Path, command: str) -> Path:
    """``run_dir/advise.toml``: the run that measures ``target``: every size in one scaling
    study each (the asked size first, then the smaller, then the larger ones, so that the time
    goes first where the advice is given), or one gradient study for a fixed target; every
    case isolated."""
    lines = [f"name = {_toml('advise-' + target.family)}",
             f"description = {_toml(command)}", "",
             "[timing]", f"min_sample_s = {MIN_SAMPLE_S!r}", f"repeats = {REPEATS}",
             f"budget_s = {float(plan.case_s)!r}", "",
             "[reference]", f"budget_s = {float(plan.reference_s)!r}",
             f"diff_budget_s = {float(plan.reference_s / 3)!r}", "",
             "[run]", "isolate = true", f"memory_mb = {MEMORY_MB}", ""]
    if target.function is not None:
        lines += [f"[families.{target.family}]", f"function = {_toml(target.function)}"]
        if target.scaled:
            np.save(run_dir / POINT_NAME, target.point)
            (run_dir / POINT_MODULE).write_text(POINT_SOURCE.format(point=POINT_NAME))
            lines.append(f"point = {_toml(POINT_MODULE + ':make_point')}")
        else:
            lines.append(f"point = {_toml([float(v) for v in target.point])}")
        lines.append("")
    if target.scaled:
        asked = target.size
        groups = [[asked], [s for s in target.sizes if s < asked],
                  [s for s in target.sizes if s > asked]]
        kind = "scaling"
    else:
        groups, kind = [[]], "gradient"
    for sizes in groups:
        if kind == "scaling" and not sizes:
            continue
        family = (target.family if target.base is None
                  else {"name": target.base, **target.options})
        lines += ["[[study]]", f"kind = {_toml(kind)}", f"families = {_toml([family])}"]
        if sizes:
            lines.append(f"sizes = {_toml(sizes)}")
        lines += [f"backends = {_toml(list(target.backends))}", ""]
    path = run_dir / CONFIG_NAME
    path.write_text("\n".join(lines))
    return path
