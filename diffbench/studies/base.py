"""What every study kind provides to the runner: cases, rows, and summary files at the end.

Studies produce rows and files only; what a terminal or a report shows of them is rendered by
``diffbench.report`` from those files.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..config import Config, StudySpec
from ..deadline import Deadline, TimeUp
from ..families import Problem, family_key, rounded
from ..measure.memory import traced_peak
from ..reference import NoReference, Reference, reference_gradient
from ..results import read_rows, write_csv


@dataclass(frozen=True)
class Case:
    """One unit of work; ``key`` is unique within a run and stable across runs of a config.

    ``identity`` holds the row columns that name the case (family, size, backend, …);
    ``cost`` is a rough relative cost, used to balance shards; ``isolate`` asks for a child
    process even without ``--isolate`` (for methods that can explode).
    """

    key: str
    label: str
    identity: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    cost: float = 1.0
    isolate: bool = False


def sized_name(family: str, size: int | None) -> str:
    """``family`` or ``family[size]``, for labels."""
    return family if size is None else f"{family}[{size}]"


Summary = Callable[[Sequence[Mapping[str, str]]], list[dict[str, Any]]]
"""A study's rows as read from its CSV → the rows of one summary file."""

STOPPING = ("timeout", "out-of-memory")
"""Statuses after which a series' larger sizes are not attempted."""


def _at_x0(problem: Problem) -> Callable[[], object]:
    """A call of the plain numpy f on a copy of x0."""
    x = problem.x0.copy()
    return lambda: problem.f(x)


@dataclass(frozen=True)
class StudyOptions:
    """What the command line asks of every study of a run (the same in its workers)."""

    use_cache: bool = True
    """Read and write the reference cache (``run --no-cache``: neither)."""
    save_gradients: bool = False
    """Write each gradient case's gradient and reference to ``gradients/`` (``.npz``)."""
    isolate: bool = False
    """Every case in a worker process (``run --isolate``)."""


class Workspace:
    """What cases of one run share, each computed once per problem: the built problems,
    their reference gradients, and the plain numpy function's traced memory (deterministic,
    unlike its time, which every case measures beside its own gradient)."""

    def __init__(self, config: Config, options: StudyOptions | None = None):
        self.config, self.options = config, options or StudyOptions()
        self._memo: dict[tuple[str, str, int | None], Any] = {}

    def memo(self, what: str, family: str, size: int | None, compute: Callable[[], Any]):
        """``compute()`` the first time ``what`` is asked of this family and size."""
        key = (what, family, size)
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def known(self, what: str, family: str, size: int | None) -> dict[tuple, Any]:
        """The memo entry of ``what`` for this family and size, if computed, to hand to
        another process's workspace (see :meth:`learn`)."""
        key = (what, family, size)
        return {key: self._memo[key]} if key in self._memo else {}

    def learn(self, entries: dict[tuple, Any]) -> None:
        """Take entries another process computed (the parent's references, for a worker)."""
        self._memo.update(entries)

    def problem(self, family: str, size: int | None, variant: str = "default") -> Problem:
        """The problem of ``family`` (with its options, by ``variant``: see
        :func:`diffbench.families.family_key`) at ``size``."""
        key = family_key(family, variant)
        return self.memo("problem", key, size, lambda: self.config.families[key].make(size))

    def f_peak(self, problem: Problem) -> int:
        """Peak traced bytes of one plain numpy evaluation of f."""
        return self.memo("f_peak", problem.key, problem.size,
                         lambda: traced_peak(_at_x0(problem)))

    def reference(self, problem: Problem) -> Reference:
        """The reference gradient; raises ``NoReference`` (every time) when there is none,
        or when computing it took longer than ``reference.budget_s``.  mpmath differentiation
        is chosen only where its estimated cost fits both ``reference.diff_budget_s`` and that
        cap (a method expected to outlast the cap would only be cut off)."""
        settings = self.config.reference
        diff_budget_s = min(settings.diff_budget_s, settings.budget_s)

        def compute() -> Reference | NoReference:
            cap = Deadline(settings.budget_s, "")
            try:
                with cap:
                    return reference_gradient(problem, settings.digits, diff_budget_s,
                                              use_cache=self.options.use_cache)
            except NoReference as exc:
                return exc
            except TimeUp as exc:
                if not cap.owns(exc):
                    raise
                return NoReference(f"the reference was not done within {settings.budget_s:g} s"
                                   " (reference.budget_s)")

        found = self.memo("reference", problem.key, problem.size, compute)
        if isinstance(found, NoReference):
            raise found
        return found


class Study:
    """A study kind.  ``settings`` are its own config keys with their defaults."""

    kind: ClassVar[str]
    settings: ClassVar[Mapping[str, Any]] = {}
    needs_backends: ClassVar[bool] = True
    files: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    """CSV file name → columns, for every CSV that gets rows case by case (summaries that
    ``finish`` writes from them are not listed)."""
    csv_name: ClassVar[str]
    """The file in ``files`` that rows returned as a plain list go to, failure rows too."""
    summaries: ClassVar[Mapping[str, tuple[tuple[str, ...], Summary]]] = {}
    """Summary CSV name → its columns and the function that computes its rows from all the
    rows of ``csv_name``; :meth:`finish` writes them."""

    def __init__(self, index: int, spec: StudySpec, workspace: Workspace, run_dir: Path):
        self.index, self.spec, self.workspace, self.run_dir = index, spec, workspace, run_dir
        self._stopped: dict[tuple, tuple[int, str]] | None = None

    @classmethod
    def validate(cls, extra: dict[str, Any], fail: Callable[[str, str], None]) -> None:
        """Check the study's own settings; call ``fail(message, key)`` on a bad one."""

    def sizes_for(self, family: str) -> tuple[int | None, ...]:
        """The study's sizes for a sized family (its examples if none given); None if fixed."""
        spec_family = self.workspace.config.families[family]
        if spec_family.fixed:
            return (None,)
        if spec_family.pinned_size is not None:
            return (spec_family.pinned_size,)
        return tuple(self.spec.sizes or spec_family.example_sizes)

    def family_identity(self, family: str) -> dict[str, str]:
        """The row columns that name the study's family ``family`` (a key of the config's
        families): its ``family`` name and its options as ``family_variant``."""
        found = self.workspace.config.families[family]
        return {"family": found.name, "family_variant": found.variant}

    def problem(self, identity: Mapping[str, Any]) -> Problem:
        """The problem a case's ``identity`` (family, family_variant, size, and dtype where it
        has one) names: at x0 rounded to the dtype, f as written (the reference's problem)."""
        problem = self.workspace.problem(identity["family"], identity["size"],
                                         identity.get("family_variant") or "default")
        return rounded(problem, identity.get("dtype") or "float64")

    def cases(self) -> list[Case]:
        raise NotImplementedError

    def family_cases(self) -> list[Case]:
        """One case per family × size, for studies that take no backends."""
        cases = []
        for family in self.spec.families:
            for size in dict.fromkeys(self.sizes_for(family)):
                key = f"{self.index}:{self.kind}:{family}:{size}"
                label = f"{self.kind} · {sized_name(family, size)}"
                cases.append(Case(key, label, {**self.family_identity(family), "size": size}))
        return cases

    def run(self, case: Case) -> list[dict[str, Any]] | dict[str, list[dict[str, Any]]]:
        """Measure one case; never raises for a failing case: the rows carry the status.

        Rows for ``csv_name``, or, for a study that writes several files, rows by file name.
        """
        raise NotImplementedError

    @property
    def processes(self) -> int:
        """In how many fresh processes each case runs (1: once, where the runner decides)."""
        return 1

    def combine(self, runs: list) -> list[dict[str, Any]] | dict[str, list[dict[str, Any]]]:
        """One result from the rows of a case run in several processes (the first, unless
        the study combines them)."""
        return runs[0]

    def precompute(self, case: Case) -> dict[tuple, Any]:
        """Untimed work a case needs that must not count against its budget (its reference),
        done before the case's clock starts: in the parent, which hands the workspace
        entries it returns to the worker with an isolated case (see ``Workspace.learn``)."""
        return {}

    def load(self, case: Case) -> None:
        """Import the libraries ``case`` needs, where it runs and before its clock starts (a
        library that fails to load fails the case itself, in its row)."""

    def isolated(self, case: Case) -> bool:
        """Whether ``case`` runs in a worker process: asked for (``--isolate``,
        ``run.isolate``), needed by its method, or timed in several processes."""
        return (self.workspace.options.isolate or self.workspace.config.run.isolate
                or case.isolate or self.processes > 1)

    series_columns: ClassVar[tuple[str, ...]] = ()
    """With ``family`` and ``family_variant``, the identity columns of a series of increasing
    sizes (a method, a representation); when set, a size is not attempted once a smaller one
    of its series ended in ``timeout`` or ``out-of-memory``."""

    def series(self, identity: Mapping[str, Any]) -> tuple:
        return tuple(str(identity.get(c, ""))
                     for c in ("family", "family_variant", *self.series_columns))

    def by_size(self, cases: list[Case]) -> list[Case]:
        """``cases`` with each series' sizes in increasing order, series in their first order."""
        first = {}
        for i, case in enumerate(cases):
            first.setdefault(self.series(case.identity), i)
        return sorted(cases, key=lambda c: (first[self.series(c.identity)],
                                            c.identity["size"] or 0))

    def observe(self, row: Mapping[str, Any]) -> None:
        """Note a row written to ``csv_name``, for the skip rule: the smallest size at which
        each series stopped."""
        if self._stopped is None or row.get("status") not in STOPPING or not row.get("size"):
            return
        series, size = self.series(row), int(row["size"])
        if series not in self._stopped or size < self._stopped[series][0]:
            self._stopped[series] = (size, row["status"])

    def skip_reason(self, case: Case) -> str | None:
        """Why ``case`` should not be attempted given the rows already written, if it should
        not (it then gets one ``skipped`` row).  The rows on disk are read once; later ones
        arrive through :meth:`observe`."""
        if not self.series_columns:
            return None
        if self._stopped is None:
            self._stopped = {}
            path = self.run_dir / self.csv_name
            for row in read_rows(path) if path.exists() else ():
                self.observe(row)
        stop = self._stopped.get(self.series(case.identity))
        if stop is not None and stop[0] < (case.identity["size"] or 0):
            return f"not attempted: size {stop[0]} already ended in {stop[1]}"
        return None

    def failure_row(self, case: Case, status: str, message: str) -> dict[str, Any]:
        """The one row of a case that ended without measuring (killed, out of memory)."""
        return {"study": self.kind, **case.identity, "status": status, "message": message}

    def finish(self) -> None:
        """Write the summary files from the rows on disk (again, from all of them, on a
        resumed or merged run); print nothing."""
        path = self.run_dir / self.csv_name
        if not self.summaries or not path.exists():
            return
        rows = read_rows(path)
        for name, (columns, summarize) in self.summaries.items():
            write_csv(self.run_dir / name, columns, summarize(rows))


BUDGET_KEY = "timing.budget_s"
"""What a case's budget is, in its messages, unless the run gave it less (see ``RunOptions``)."""


def measure_case(study: Study, case: Case, budget_s: float | None = None,
                 budget_key: str = BUDGET_KEY) -> dict[str, list[dict[str, Any]]]:
    """``study.run(case)`` within the case's budget (``timing.budget_s``, or ``budget_s``
    where given, which ``budget_key`` then names), its rows by file.

    Numpy's warnings are silenced (a NaN or an overflow is the row's status); running past
    the budget is one ``timeout`` row, and user code that raises ``SystemExit`` one ``error``
    row saying so, instead of ending the process.
    """
    budget = study.workspace.config.timing.budget_s if budget_s is None else budget_s
    clock = Deadline(budget, "")
    try:
        with clock, warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            rows = study.run(case)
    except TimeUp as exc:
        if not clock.owns(exc):
            raise
        rows = [study.failure_row(case, "timeout", f"stopped after {clock.elapsed():.1f} s, "
                                  f"at the budget of {budget:g} s ({budget_key})")]
    except SystemExit as exc:
        rows = [study.failure_row(case, "error", f"the case raised SystemExit({exc.code!r}): "
                                  "the function must return a value, not exit")]
    return rows if isinstance(rows, dict) else {study.csv_name: rows}
