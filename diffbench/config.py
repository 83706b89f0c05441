"""TOML → validated settings.  Every error names the file, the key and what was expected.

The study kinds a config may ask for are given to :func:`read_config` by the caller
(``diffbench.studies.load_config`` gives every built-in kind), so that this module knows their
settings without depending on the studies.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .backends import registry
from .backends.base import PRECISION_OPTIONS
from .errors import UserError, read_utf8
from .families import (
    BUILTIN,
    CustomFunctionError,
    Family,
    FamilyOptionError,
    PointOutsideDomain,
    check_function,
    custom_family,
    load_function,
    point_at,
    scaling_family,
)
from .ops import precision


class ConfigError(UserError):
    """A config that cannot run; the message names the file and the key."""


@dataclass(frozen=True)
class TimingSettings:
    min_sample_s: float = 0.01
    repeats: int = 5
    budget_s: float = 60.0
    processes: int = 1
    """Each timed case runs in this many fresh processes (as pyperf does), for the spread
    between processes."""


@dataclass(frozen=True)
class ReferenceSettings:
    digits: int = 50
    diff_budget_s: float = 30.0
    """Seconds that per-component mpmath differentiation may take, by its estimated cost."""
    budget_s: float = 600.0
    """Wall-time cap on computing one reference (outside the cases' own budgets)."""


@dataclass(frozen=True)
class RunSettings:
    isolate: bool = False
    memory_mb: int = 4096
    threads: int = 1
    """Threads for numerical work, the same for every backend (BLAS, XLA, torch)."""


@dataclass(frozen=True)
class BackendSpec:
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


class StudyKind(Protocol):
    """What reading a config needs to know of a study kind."""

    kind: str
    settings: Mapping[str, Any]
    """The kind's own config keys, with their defaults (whose types are the types accepted)."""
    needs_backends: bool

    def validate(self, extra: dict[str, Any], fail: Callable[[str, str], None]) -> None:
        """Check the kind's own settings; call ``fail(message, key)`` on a bad one."""


@dataclass(frozen=True)
class StudySpec:
    """One ``[[study]]``: its kind, what it runs, and the kind's own settings in ``extra``."""

    kind: str
    families: tuple[str, ...]
    sizes: tuple[int, ...]
    backends: tuple[BackendSpec, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    name: str
    path: Path
    timing: TimingSettings
    reference: ReferenceSettings
    run: RunSettings
    families: Mapping[str, Family]
    studies: tuple[StudySpec, ...]
    raw: Mapping[str, Any]
    """The config as run: the file's tables, with ``overrides`` applied."""
    overrides: Mapping[str, list] = field(default_factory=dict)
    """The study keys replaced from the command line (``run --families`` …)."""


DEFAULT_CONFIG = "default"
MAX_THREADS = 1024
MAX_PROCESSES = 100
MAX_DIGITS = 1000
"""Reference precision beyond this would take minutes per case for no benefit."""
MAX_REPEATS = 10_000
MAX_SAMPLE_S = 60.0
MAX_BUDGET_S = 86_400.0
"""One day: the longest a case, a reference or a timing sample may be given."""
OVERRIDABLE = ("families", "sizes", "backends")
"""The study keys that ``run --families/--sizes/--backends`` replace in every study."""


def builtin_config_path(name: str) -> Path | None:
    """The path of a config shipped in the package (``default``, ``quick``, …), if any."""
    candidate = resources.files("diffbench") / "configs" / f"{name}.toml"
    return Path(str(candidate)) if candidate.is_file() else None


def builtin_config_names() -> list[str]:
    folder = resources.files("diffbench") / "configs"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


class _Section:
    """A table of the config being read, with its dotted location for messages."""

    def __init__(self, data: Any, file: Path, where: str):
        self.file, self.where = file, where
        if not isinstance(data, dict):
            self.fail(f"expected a table, got {_describe(data)}")
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, message: str, key: str | None = None) -> None:
        location = self.key(key) if key is not None else (self.where or "top level")
        raise ConfigError(f"{self.file}: {location}: {message}")

    def only(self, allowed) -> None:
        for name in self.data:
            if name not in allowed:
                near = difflib.get_close_matches(name, list(allowed), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                valid = ", ".join(sorted(allowed)) or "none"
                self.fail(f"unknown key{hint} (valid keys: {valid})", name)

    def get(self, name: str, kind, default: Any = None, *, required: bool = False) -> Any:
        if name not in self.data:
            if required:
                self.fail("missing (required)", name)
            return default
        return check_type(self.data[name], kind, lambda m: self.fail(m, name))

    def positive(self, name: str, kind, default: Any, upper: float = math.inf) -> Any:
        """A finite number in (0, upper]."""
        value = self.get(name, kind, default)
        if not (0 < value <= upper) or not math.isfinite(value):
            bound = "" if upper == math.inf else f" and <= {upper:g}"
            self.fail(f"must be a finite number > 0{bound}, got {value}", name)
        return value


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def check_type(value: Any, kind, fail) -> Any:
    """``value`` if it is of ``kind`` (int is accepted for float, bool never for numbers)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and kind is not bool:
        fail(f"expected {kind.__name__}, got {_describe(value)}")
    if not isinstance(value, kind):
        fail(f"expected {kind.__name__}, got {_describe(value)}")
    return value


def _list(section: _Section, name: str, item_kind, *, required: bool = False) -> list | None:
    values = section.get(name, list, None, required=required)
    if values is None:
        return None
    if not values:
        section.fail("must not be empty", name)
    for i, value in enumerate(values):
        check_type(value, item_kind, lambda m, i=i: section.fail(m, f"{name}[{i}]"))
    return values


def _point(entry: _Section, base_dir: Path) -> list[float] | Callable[[int], Any]:
    """A fixed point (a list of finite numbers), or the function that makes one per size."""
    if isinstance(entry.data.get("point"), str):
        try:
            return load_function(entry.data["point"], base_dir)
        except CustomFunctionError as exc:
            entry.fail(str(exc), "point")
    point = _list(entry, "point", float, required=True)
    for i, value in enumerate(point):
        if not math.isfinite(value):
            entry.fail(f"must be a finite number, got {value}", f"point[{i}]")
    return point


def _kinks(entry: _Section, n: int) -> list[int]:
    kinks = entry.get("kinks", list, [])
    for i, index in enumerate(kinks):
        check_type(index, int, lambda m, i=i: entry.fail(m, f"kinks[{i}]"))
        if not 0 <= index < n:
            entry.fail(f"kink index {index} is out of range of point (indices 0 to {n - 1})",
                       f"kinks[{i}]")
    return kinks


def _check_at(entry: _Section, spec: str, fn, point, cap_s: float):
    try:
        check_function(fn, np.asarray(point, dtype=float), spec, cap_s)
    except PointOutsideDomain as exc:
        entry.fail(str(exc), "point")
    except CustomFunctionError as exc:
        entry.fail(str(exc), "function")


def _custom_families(section: _Section, base_dir: Path,
                     cap_s: float) -> tuple[dict[str, Family], dict[str, Callable[[int], None]]]:
    """The config's families, each fixed one tried at its point; and, for each that scales
    (``point = "file.py:make_point"``), the check to run at the smallest size it is given."""
    families, pending = {}, {}
    for name, table in section.data.items():
        entry = _Section(table, section.file, section.key(name))
        if name in BUILTIN:
            section.fail(f"{name!r} is a built-in family; choose another name", name)
        entry.only({"function", "point", "description", "kinks"})
        spec = entry.get("function", str, required=True)
        try:
            fn = load_function(spec, base_dir)
        except CustomFunctionError as exc:
            entry.fail(str(exc), "function")
        point = _point(entry, base_dir)
        description = entry.get("description", str, "")
        if isinstance(point, list):
            kinks = _kinks(entry, len(point))
            _check_at(entry, spec, fn, point, cap_s)
            families[name] = custom_family(name, fn, point, description, kinks)
            continue
        families[name] = scaling_family(name, fn, point, description,
                                        entry.get("kinks", list, []))
        pending[name] = (lambda size, entry=entry, spec=spec, fn=fn, make=point:
                         _check_scaling(entry, spec, fn, make, size, cap_s))
    return families, pending


def _check_scaling(entry: _Section, spec: str, fn, make_point, size: int, cap_s: float) -> None:
    """A scaling family at ``size``: its point, its kinks within it, and ``fn`` good there."""
    try:
        point = point_at(make_point, size, entry.data["point"], cap_s)
    except CustomFunctionError as exc:
        entry.fail(str(exc), "point")
    _kinks(entry, point.size)
    _check_at(entry, spec, fn, point, cap_s)


def _named_items(section: _Section, field: str, noun: str, known: Mapping[str, object],
                 valid: str) -> list[tuple[str, str, dict[str, Any], bool]]:
    """The entries of the list ``field``, each a name or a table ``{ name = …, option = value
    }``, as (key, name, options, given as a table); refuses an empty list, another kind of
    entry and a name not in ``known`` (``valid`` lists the names to choose from)."""
    items = section.get(field, list, required=True)
    if not items:
        section.fail("must not be empty", field)
    entries = []
    for i, item in enumerate(items):
        key = f"{field}[{i}]"
        if isinstance(item, str):
            name, options = item, {}
        elif isinstance(item, dict):
            table = _Section(item, section.file, section.key(key))
            name = table.get("name", str, required=True)
            options = {k: v for k, v in item.items() if k != "name"}
        else:
            section.fail(f"expected a {noun} name or a table, got {_describe(item)}", key)
        if name not in known:
            near = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            section.fail(f"unknown {noun} {name!r}{hint}; valid: {valid}", key)
        entries.append((key, name, options, isinstance(item, dict)))
    return entries


def _backends(section: _Section) -> tuple[BackendSpec, ...]:
    available = registry()
    specs = []
    for key, name, options, _ in _named_items(section, "backends", "backend", available,
                                              ", ".join(available)):
        backend = available[name]
        takes = {**PRECISION_OPTIONS, **backend.options}
        for option, value in options.items():
            if option not in takes:
                valid = ", ".join(dict.fromkeys([*backend.options, *PRECISION_OPTIONS]))
                section.fail(f"backend {name!r} has no option {option!r} (valid: {valid})",
                             f"{key}.{option}")
            if takes[option] is not None:  # a precision option: checked below
                check_type(value, type(takes[option]),
                           lambda m, k=f"{key}.{option}": section.fail(m, k))
            allowed = backend.choices.get(option)
            if allowed is not None and value not in allowed:
                section.fail(f"backend {name!r} option {option!r} must be one of "
                             f"{', '.join(map(repr, allowed))}; got {value!r}",
                             f"{key}.{option}")
        effective = {**takes, **options}
        wrong = precision.check(*(effective[option] for option in PRECISION_OPTIONS))
        if wrong is not None:
            section.fail(f"backend {name!r}: {wrong[0]}", f"{key}.{wrong[1]}")
        for j, earlier in enumerate(specs):
            if earlier.name == name and {**takes, **earlier.options} == effective:
                settings = ", ".join(f"{k} = {json.dumps(v)}" for k, v in effective.items()
                                     if k in backend.options or k in options)
                section.fail(f"repeats backends[{j}]: {name!r} with the same options"
                             f"{f' ({settings})' if settings else ''}", key)
        specs.append(BackendSpec(name, dict(options)))
    return tuple(specs)


def _unique(section: _Section, name: str, values: list) -> None:
    """Refuse a list key that names one thing twice (it would give duplicate rows)."""
    for i, value in enumerate(values):
        if value in values[:i]:
            section.fail(f"{value!r} appears twice (first at {name}[{values.index(value)}])",
                         f"{name}[{i}]")


def _families(section: _Section, families: dict[str, Family]) -> list[str]:
    """The study's families as the keys ``families`` knows them by: a name, or a table
    ``{ name = "gmm", d = 10 }`` whose options are checked and whose family, bound to them, is
    added to ``families`` under ``gmm(d=10)``.  Refuses a family given twice with the same
    options (defaults filled in)."""
    keys: list[str] = []
    seen: list[tuple[str, dict[str, Any]]] = []
    tables: list[bool] = []
    valid = ", ".join(k for k, f in families.items() if not f.chosen)
    for key, name, options, table in _named_items(section, "families", "family", families,
                                                  valid):
        tables.append(table)
        try:
            family = families[name].with_options(**options)
        except FamilyOptionError as exc:
            section.fail(str(exc), f"{key}.{exc.key}")
        effective = (family.name, family.effective_options())
        if effective in seen:
            first = seen.index(effective)
            same = (" with the same options (defaults filled in)" if options or tables[first]
                    else "")
            section.fail(f"{name!r} appears twice{same} (first at families[{first}])", key)
        seen.append(effective)
        families.setdefault(family.key, family)
        keys.append(family.key)
    return keys


def _study(section: _Section, families: dict[str, Family],
           kinds: Mapping[str, StudyKind]) -> StudySpec:
    kind = section.get("kind", str, required=True)
    if kind not in kinds:
        section.fail(f"unknown study kind {kind!r}; valid: {', '.join(kinds)}", "kind")
    study = kinds[kind]
    section.only({"kind", "families", "sizes", *study.settings,
                  *(("backends",) if study.needs_backends else ())})
    names = _families(section, families)
    sizes = _list(section, "sizes", int) or []
    _unique(section, "sizes", sizes)
    for i, size in enumerate(sizes):
        if size <= 0:
            section.fail(f"sizes must be positive integers, got {size}", f"sizes[{i}]")
        for name in names:
            family = families[name]
            if not family.fixed and family.pinned_size is None and size < family.min_size:
                section.fail(f"family {name!r} needs {family.size_param} >= "
                             f"{family.min_size}, got {size}", f"sizes[{i}]")
    for name in names:
        family = families[name]
        if (not family.fixed and not sizes and not family.example_sizes
                and family.pinned_size is None):
            section.fail(f"family {name!r} has no example sizes (its point is made per "
                         "size): give sizes", "sizes")
    backends = _backends(section) if study.needs_backends else ()
    extra = {}
    for key, default in study.settings.items():
        extra[key] = section.get(key, type(default), default)
    study.validate(extra, lambda message, key: section.fail(message, key))
    return StudySpec(kind, tuple(names), tuple(sizes), backends, extra)


def _no_repeated_studies(top: _Section, specs: tuple[StudySpec, ...],
                         families: Mapping[str, Family]) -> None:
    """Refuse a study that repeats another, or a case (family, size and backend with the same
    options) that another study of its kind already measures: their rows would be twins."""
    measured: dict[tuple, int] = {}
    for i, spec in enumerate(specs):
        if spec in specs[:i]:
            top.fail(f"repeats study[{specs.index(spec)}] (the same kind, families, sizes, "
                     "backends and settings)", f"study[{i}]")
        for name in spec.families:
            family = families[name]
            sizes = ((None,) if family.fixed else (family.pinned_size,)
                     if family.pinned_size is not None else spec.sizes or family.example_sizes)
            for size in sizes:
                for backend in spec.backends:
                    options = {**PRECISION_OPTIONS, **registry()[backend.name].options,
                               **backend.options}
                    case = (spec.kind, family.name, sorted(family.effective_options().items()),
                            size, backend.name, sorted(options.items()))
                    key = repr(case)
                    if measured.setdefault(key, i) != i:
                        top.fail(f"{name}{'' if size is None else f'[{size}]'} on "
                                 f"{backend.name!r} is already measured by "
                                 f"study[{measured[key]}]", f"study[{i}]")


def with_overrides(data: dict[str, Any], overrides: Mapping[str, list],
                   kinds: Mapping[str, StudyKind]) -> dict[str, Any]:
    """``data`` with each of ``overrides`` (``families``, ``sizes``, ``backends``) replacing
    that key in every study that takes it (``backends`` only where the kind has backends)."""
    studies = data.get("study")
    if not overrides or not isinstance(studies, list):
        return data
    replaced = []
    for table in studies:
        if isinstance(table, dict):
            kind = kinds.get(table.get("kind"))
            table = {**table, **{key: list(values) for key, values in overrides.items()
                                 if key != "backends" or kind is None or kind.needs_backends}}
        replaced.append(table)
    return {**data, "study": replaced}


def read_config(path: Path | str, kinds: Mapping[str, StudyKind],
                overrides: Mapping[str, list] | None = None) -> Config:
    """Read and validate a config file whose studies are of ``kinds`` (by name), with the
    study keys in ``overrides`` replaced (see :func:`with_overrides`); raises
    ``ConfigError`` naming the file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(read_utf8(path, ConfigError, "config"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    data = with_overrides(data, overrides or {}, kinds)
    top = _Section(data, path, "")
    top.only({"name", "description", "timing", "reference", "run", "families", "study"})
    timing_section = _Section(data.get("timing", {}), path, "timing")
    timing_section.only(TimingSettings.__dataclass_fields__)
    timing = TimingSettings(
        min_sample_s=timing_section.positive("min_sample_s", float, TimingSettings.min_sample_s,
                                             upper=MAX_SAMPLE_S),
        repeats=timing_section.positive("repeats", int, TimingSettings.repeats,
                                        upper=MAX_REPEATS),
        budget_s=timing_section.positive("budget_s", float, TimingSettings.budget_s,
                                         upper=MAX_BUDGET_S),
        processes=timing_section.positive("processes", int, TimingSettings.processes,
                                          upper=MAX_PROCESSES),
    )
    reference_section = _Section(data.get("reference", {}), path, "reference")
    reference_section.only(ReferenceSettings.__dataclass_fields__)
    reference = ReferenceSettings(
        digits=reference_section.positive("digits", int, ReferenceSettings.digits,
                                          upper=MAX_DIGITS),
        diff_budget_s=reference_section.positive("diff_budget_s", float,
                                                 ReferenceSettings.diff_budget_s,
                                                 upper=MAX_BUDGET_S),
        budget_s=reference_section.positive("budget_s", float, ReferenceSettings.budget_s,
                                            upper=MAX_BUDGET_S),
    )
    run_section = _Section(data.get("run", {}), path, "run")
    run_section.only(RunSettings.__dataclass_fields__)
    run = RunSettings(isolate=run_section.get("isolate", bool, RunSettings.isolate),
                      memory_mb=run_section.positive("memory_mb", int, RunSettings.memory_mb),
                      threads=run_section.positive("threads", int, RunSettings.threads,
                                                   upper=MAX_THREADS))
    families = dict(BUILTIN)
    custom, pending = _custom_families(_Section(data.get("families", {}), path, "families"),
                                       path.parent, timing.budget_s)
    families.update(custom)
    studies = top.get("study", list, required=True)
    if not studies:
        top.fail("must not be empty", "study")
    specs = tuple(_study(_Section(s, path, f"study[{i}]"), families, kinds)
                  for i, s in enumerate(studies))
    _no_repeated_studies(top, specs, families)
    for name, check in pending.items():
        sizes = [size for spec in specs if name in spec.families for size in spec.sizes]
        if sizes:
            check(min(sizes))
    return Config(
        name=top.get("name", str, path.stem),
        path=path,
        timing=timing,
        reference=reference,
        run=run,
        families=families,
        studies=specs,
        raw=data,
        overrides=dict(overrides or {}),
    )
