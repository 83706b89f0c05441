"""The ``diffbench`` command line.

Each command imports what it uses when it runs, so that ``--help`` and ``list`` start fast and
only the commands that render load the report and plot layers.  A ``UserError`` (a bad config,
argument or run directory) is one message on stderr and exit status 2; any other exception
outside a case is a bug: its traceback, and exit status 1.
"""

from __future__ import annotations

import json
import sys
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from . import __version__
from .errors import UserError

TABLE_WIDTH = 140
"""Width of tables written to a file or a pipe, where the terminal's width is unknown."""
console = Console(width=None if sys.stdout.isatty() else TABLE_WIDTH)
errors = Console(stderr=True)


def stop(message: str, code: int) -> NoReturn:
    """Print ``message`` as an error and exit with ``code``."""
    errors.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False,
                 soft_wrap=True)
    raise typer.Exit(code)


class Commands(TyperGroup):
    """The app's commands; a ``UserError`` raised by any of them ends it with exit status 2,
    and what a results file lost as it was read (``ResultsWarning``) is a warning line."""

    def invoke(self, ctx: typer.Context):
        from .schema import ResultsWarning

        shown: set[str] = set()

        def show(message, category, *args, **kwargs) -> None:
            if not issubclass(category, ResultsWarning):
                previous(message, category, *args, **kwargs)
            elif str(message) not in shown:
                shown.add(str(message))
                errors.print(f"[yellow]warning:[/yellow] {escape(str(message))}",
                             highlight=False, soft_wrap=True)

        with warnings.catch_warnings():
            warnings.simplefilter("always", ResultsWarning)
            previous, warnings.showwarning = warnings.showwarning, show
            try:
                return super().invoke(ctx)
            except UserError as exc:
                stop(str(exc), 2)


app = typer.Typer(
    cls=Commands,
    help="Finite differences, SymPy, a native reverse-mode engine and JAX, measured side by "
         "side: time, memory, expression swell and error against a 50-digit reference.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"diffbench {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """diffbench: which way of computing a derivative is fastest, leanest and most accurate."""


def resolve_config(config: str | None) -> Path:
    """A path, or the name of a config shipped with diffbench (``default`` when omitted)."""
    from .config import DEFAULT_CONFIG, builtin_config_names, builtin_config_path

    if config is None:
        return builtin_config_path(DEFAULT_CONFIG)
    path = Path(config)
    if path.exists() or path.suffix == ".toml":
        return path
    shipped = builtin_config_path(config)
    if shipped is None:
        raise UserError(f"{config}: no such config file, nor a built-in config "
                        f"(built-in: {', '.join(builtin_config_names())})")
    return shipped


def render(run_dir: Path, *, quiet: bool, plots: bool) -> None:
    """Print the run's tables (unless ``quiet``) and write report.md, and the plots unless
    ``plots`` is false, all from the run's files."""
    from .report.sections import print_tables, write_report

    if not quiet and not print_tables(run_dir, console):
        console.print(f"{escape(str(run_dir))}: no rows yet")
    write_report(run_dir, with_plots=plots)


def _names(option: str, text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise UserError(f"{option} {text!r}: expected names separated by commas")
    return names


def _overrides(families: str | None, sizes: str | None,
               backends: str | None) -> dict[str, list]:
    """``--families/--sizes/--backends`` as the study keys they replace."""
    overrides: dict[str, list] = {}
    for key, value in (("families", _names("--families", families)),
                       ("backends", _names("--backends", backends))):
        if value is not None:
            overrides[key] = value
    if sizes is not None:
        try:
            overrides["sizes"] = [int(size) for size in _names("--sizes", sizes)]
        except ValueError:
            raise UserError(f"--sizes {sizes!r}: expected integers separated by commas, "
                            "e.g. 10,100,1000") from None
    return overrides


def _print_plan(settings, options) -> None:
    """``--dry-run``: the cases that would run, and bounds on how long they would take."""
    from rich.table import Table

    from .report.format import duration
    from .runner import plan_estimate

    cases, low, high = plan_estimate(settings, options)
    table = Table(title=f"{len(cases)} cases of {settings.path}", header_style="bold")
    for column in ("case", "isolated", "key"):
        table.add_column(column)
    for label, key, isolated in cases:
        table.add_row(escape(label), "yes" if isolated else "no", escape(key))
    console.print(table)
    console.print(f"estimated time: at least {duration(low)} (the timing samples alone), at "
                  f"most {duration(high)} (every case at its budget of "
                  f"{settings.timing.budget_s:g} s), references and start-up not counted")


def _exit_status(statuses, run_dir: Path, strict: bool) -> None:
    """Exit 1 when no row is ``ok`` or, with ``strict``, when any row is not."""
    failed = {status: count for status, count in statuses.items() if status != "ok"}
    counts = ", ".join(f"{count} {status}" for status, count in sorted(failed.items()))
    total = sum(statuses.values())
    if not statuses.get("ok"):
        stop(f"no case succeeded in {run_dir} ({total} rows: {counts or 'none'}); each "
             "row's message says why", 1)
    if strict and failed:
        stop(f"--strict: {sum(failed.values())} of {total} rows in {run_dir} are not ok "
             f"({counts})", 1)


@app.command("advise")
def advise_command(
    target: Annotated[str, typer.Argument(
        help="A built-in family (see `diffbench list`), or your own function as "
             "file.py:name or package.module:name, fn(x, ops) written over ops.")],
    point: Annotated[str | None, typer.Option(
        "--point", help="A custom function's point: numbers separated by commas "
                        "(0.3,-1.2,2).")] = None,
    point_file: Annotated[Path | None, typer.Option(
        "--point-file", help="A custom function's point from a .npy file (numpy.save).")] = None,
    size: Annotated[int | None, typer.Option(
        "--size", help="A built-in sized family's size (default: its largest example); "
                       "sizes around it are measured too.")] = None,
    scale: Annotated[bool, typer.Option(
        "--scale", help="Also measure a custom function that accepts any length at a "
                        "tenth and ten times its point's length (the point repeated).")] = False,
    calls: Annotated[int | None, typer.Option(
        "--calls", help="How many gradients you will take: the advice then weighs one-off "
                        "costs (compiles, derivations) by total time.")] = None,
    budget: Annotated[float, typer.Option(
        "--budget", help="Seconds for all the measuring (each case gets at most a fifth).")
    ] = 30.0,
    backends: Annotated[str | None, typer.Option(
        "--backends", help="Only these backends (comma-separated; default: every one "
                           "registered).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Run directory (default: results/advise-<target>-<timestamp>/).")
    ] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace the run in --out: empty that directory first.")] = False,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print the advice as one JSON object (see the README for its "
                       "schema).")] = False,
) -> None:
    """Which method to use for this function at this size, answered by measuring them all.

    Measures every backend within --budget (each case isolated, as in runs), then prints a
    verdict, the evidence table, the sizes around (sized targets), and the textbook's branch
    with whether the measurements agree. The measurements are an ordinary run directory.
    """
    import time

    from .advice import (
        BUDGET_KEY,
        AdviceError,
        Plan,
        parse_point,
        read_point,
        resolve,
        summarize,
        write_advice,
        write_config,
    )
    from .report.advice import advice_renderables
    from .runner import RunInterrupted, RunOptions, run
    from .runstate import claim_run_dir
    from .studies import load_config

    started = _command_start()
    plan = Plan.for_budget(budget)
    if calls is not None and calls < 1:
        raise AdviceError(f"--calls {calls}: expected a number of gradient calls >= 1")
    if point is not None and point_file is not None:
        raise AdviceError("--point and --point-file both give the point: use one")
    given = parse_point(point) if point is not None else (
        read_point(point_file) if point_file is not None else None)
    chosen = resolve(target, point=given, size=size, scale=scale, backends=backends,
                     cap_s=plan.case_s)
    run_dir = out or _advice_dir(chosen.family)
    claim_run_dir(run_dir, force)
    command = "diffbench advise " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["advise"]
                                             else sys.argv[1:])
    config = load_config(write_config(chosen, plan, run_dir, command))
    reserve = min(3.0, 0.1 * plan.budget_s)  # for a last case's end, and the advice itself
    options = RunOptions(quiet=json_output, stop_at=started + plan.budget_s - reserve,
                         stop_key=BUDGET_KEY)
    try:
        run(config, run_dir, errors if json_output else console, options, argv=sys.argv)
    except RunInterrupted as exc:
        stop(str(exc), 128 + exc.signum)
    advice = summarize(run_dir, chosen, calls, plan, time.monotonic() - started)
    write_advice(run_dir, advice)
    if json_output:
        print(json.dumps(advice, indent=1))
    else:
        for renderable in advice_renderables(advice):
            console.print(renderable)
    if advice["verdict"]["backend"] is None:
        raise typer.Exit(1)


def _command_start() -> float:
    """``time.monotonic()`` when the command began: this process's start where the process
    is the command (``diffbench advise …``; Linux ``/proc``, so that Python's own start and
    imports count against the budget), else now."""
    import os
    import time

    now = time.monotonic()
    if sys.argv[1:2] != ["advise"]:
        return now
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - age if 0 <= age < 60 else now


def _advice_dir(family: str) -> Path:
    from datetime import datetime

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, k = Path("results") / f"advise-{family}-{stamp}", 1
    while path.exists():
        k += 1
        path = Path("results") / f"advise-{family}-{stamp}-{k}"
    return path


@app.command("run")
def run_command(
    config: Annotated[str | None, typer.Argument(
        help="A TOML config file, or the name of a built-in one "
             "(default, quick, …). Without it: the built-in default.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Run directory (default: results/<name>-<timestamp>/). An "
                            "existing run there is refused, unless --force.")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Finish an interrupted run in this directory: completed cases are kept and "
             "skipped.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace the run in --out: empty that directory first.")] = False,
    shard: Annotated[str | None, typer.Option(
        help="Run only shard K of N (e.g. 2/4): a deterministic, cost-balanced part of the "
             "cases. Join the shards with `diffbench merge`.")] = None,
    families: Annotated[str | None, typer.Option(
        help="Replace every study's families (comma-separated names).")] = None,
    sizes: Annotated[str | None, typer.Option(
        help="Replace every study's sizes (comma-separated integers).")] = None,
    backends: Annotated[str | None, typer.Option(
        help="Replace every study's backends (comma-separated names, default options).")] = None,
    isolate: Annotated[bool, typer.Option(
        help="Run every case in a child process with the time budget (timing.budget_s) and "
             "memory cap (run.memory_mb). Symbolic cases are always isolated.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List the cases and an estimate of the time; run nothing.")] = False,
    save_gradients: Annotated[bool, typer.Option(
        "--save-gradients", help="Write each gradient case's gradient and reference to "
                                 "RUN_DIR/gradients/ (.npz).")] = False,
    cache: Annotated[bool, typer.Option(
        help="Read and write the reference cache (--no-cache: compute every reference "
             "afresh, store none).")] = True,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 when any row is not ok (by default: when none is).")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress bar and no tables; the run directory is still "
                              "printed.")] = False,
    plots: Annotated[bool, typer.Option(help="Write the plots into RUN_DIR/plots/ at the "
                                             "end (report.md is always written).")] = True,
) -> None:
    """Run the studies of a config; write CSVs, raw samples, a manifest, report.md and plots.

    Exit status 0 when the run finished with at least one case ok, 1 when none is (or, with
    --strict, when any is not), 2 for a bad config, argument or run directory, 130 after
    Ctrl-C and 143 after SIGTERM (then finish it with --resume).
    """
    from .runner import RunInterrupted, RunOptions, default_run_dir, run
    from .runstate import claim_run_dir, resumable
    from .shards import parse_shard
    from .studies import load_config

    manifest = None
    overrides = _overrides(families, sizes, backends)
    if resume is not None:
        if config is not None or out is not None or shard is not None or overrides or force:
            raise UserError("--resume takes the config, output directory, shard and "
                            "overrides from the run itself")
        manifest = resumable(resume)
        path, out, isolate = Path(manifest["config_path"]), resume, manifest["isolate"]
        shard, overrides = manifest["shard"], manifest.get("overrides", {})
        cache = manifest.get("use_cache", True)
        save_gradients = manifest.get("save_gradients", False)
    else:
        path = resolve_config(config)
    settings = load_config(path, overrides)
    options = RunOptions(isolate=isolate, shard=parse_shard(shard) if shard else None,
                         quiet=quiet, use_cache=cache, save_gradients=save_gradients)
    if dry_run:
        _print_plan(settings, options)
        return
    run_dir = out or default_run_dir(settings)
    if manifest is None:
        claim_run_dir(run_dir, force)
    try:
        statuses = run(settings, run_dir, console, options, argv=sys.argv, manifest=manifest)
    except RunInterrupted as exc:
        stop(str(exc), 128 + exc.signum)
    render(run_dir, quiet=quiet, plots=plots)
    if quiet:
        print(run_dir)
    else:
        console.print(f"results in [bold]{escape(str(run_dir))}[/bold]")
    _exit_status(statuses, run_dir, strict)


@app.command("merge")
def merge_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Shard run directories of one config.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory of the merged run.")],
    partial: Annotated[bool, typer.Option(
        "--partial", help="Merge even with shards missing or unfinished (the manifest lists "
                          "the missing ones).")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace the run in --out: empty that directory first.")] = False,
) -> None:
    """Join shard runs (diffbench run --shard K/N) of one config into one run directory."""
    from .runner import case_csvs, finish
    from .runstate import claim_run_dir, read_manifest
    from .shards import merge
    from .studies import load_config, make_studies

    if any(out.resolve() == d.resolve() for d in run_dirs):
        raise UserError(f"--out {out} is one of the shards; merge into another directory")
    first = read_manifest(run_dirs[0], needs=("config_path",))
    settings = load_config(first["config_path"], first.get("overrides"))
    claim_run_dir(out, force)
    studies = make_studies(settings, out)
    merged = merge(run_dirs, out, case_csvs(studies), partial)
    if merged["machines_differ"]:
        errors.print("[yellow]warning:[/yellow] the shards ran on different machines "
                     "(see merged_from in manifest.json and the `shard` column): their times "
                     "are not comparable with each other")
    finish(studies)
    render(out, quiet=False, plots=True)
    missing = merged["missing_shards"]
    total = len(run_dirs) + len(missing)
    console.print(f"merged {len(run_dirs)} of {total} shards into [bold]{escape(str(out))}"
                  "[/bold]" + (f" (partial: {', '.join(missing)} missing)" if missing else ""))


def _run_dir(path: Path) -> Path:
    """``path``, if it holds a diffbench run (a manifest that reads as one)."""
    from .runstate import read_manifest

    read_manifest(path)
    return path


class ReportFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    format: Annotated[ReportFormat, typer.Option(
        "--format", "-f", help="table (terminal), markdown (for a README or an issue), or "
                               "json (every CSV's rows, values as numbers).")] = "table",
) -> None:
    """Print a saved run's tables again (every table the run printed), re-running nothing."""
    from .report.sections import markdown_report, print_tables
    from .results import rows_as_json

    run_dir = _run_dir(run_dir)
    if format is ReportFormat.table:
        if not print_tables(run_dir, console):
            console.print(f"{escape(str(run_dir))}: no rows yet")
    elif format is ReportFormat.markdown:
        print(markdown_report(run_dir))
    else:
        print(json.dumps(rows_as_json(run_dir), indent=1))


@app.command("plot")
def plot_command(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Draw a saved run's plots into RUN_DIR/plots/ (PNG) and refresh report.md."""
    from .report.sections import write_report

    run_dir = _run_dir(run_dir)
    write_report(run_dir)
    for path in sorted((run_dir / "plots").glob("*.png")):
        console.print(str(path))


@app.command("compare")
def compare_command(
    run_a: Annotated[Path, typer.Argument(help="The baseline run directory.")],
    run_b: Annotated[Path, typer.Argument(help="The run compared with it.")],
    format: Annotated[ReportFormat, typer.Option(
        "--format", "-f", help="table (terminal), markdown, or json (one object per case: "
                               "ratio, interval, verdict).")] = "table",
    fail_above: Annotated[float | None, typer.Option(
        "--fail-above", show_default=False,
        help="Exit 1 when a case is slower than this ratio beyond noise: the whole interval "
             "of B/A above it (for CI; unranked cases never fail).")] = None,
) -> None:
    """Time ratios B/A per case measured in both runs, with uncertainty and a noise verdict.

    Cases are matched by study, family, size, backend and variant. A case with fewer than 3
    samples in either run, or an unstable timing, is shown but not ranked.
    """
    from .report.compare import (
        compare_runs,
        comparison_json,
        comparison_markdown,
        comparison_table,
        differences,
    )

    if fail_above is not None and not fail_above > 0:
        raise UserError(f"--fail-above {fail_above:g}: expected a ratio > 0, e.g. 1.1")
    comparisons = compare_runs(_run_dir(run_a), _run_dir(run_b))
    for difference in differences(run_a, run_b):
        errors.print(f"[yellow]warning:[/yellow] {escape(difference)}", highlight=False)
    if not comparisons:
        raise UserError(f"{run_a} and {run_b} have no timed case in common")
    if format is ReportFormat.table:
        console.print(comparison_table(comparisons, run_a, run_b))
    elif format is ReportFormat.markdown:
        print(comparison_markdown(comparisons, run_a, run_b))
    else:
        print(comparison_json(comparisons))
    slower = [c for c in comparisons if fail_above is not None and c.slower_than(fail_above)]
    if slower:
        stop(f"--fail-above {fail_above:g}: {len(slower)} case(s) slower beyond noise: "
             + ", ".join(f"{c.label} ×{c.ratio:.3g}" for c in slower), 1)


@app.command("explain", context_settings={"ignore_unknown_options": True})
def explain_command(
    expression: Annotated[str, typer.Argument(
        help="A scalar expression: numbers, variables, + - * / ** (or ^), and sin cos tan exp "
             "log log1p expm1 sqrt tanh arctan (atan) abs maximum (max, Max) minimum (min, "
             "Min); pi is the constant.")],
    at: Annotated[str | None, typer.Option(
        "--at", help="The point, as name=value pairs: --at a=2,b=3.")] = None,
    mermaid: Annotated[bool, typer.Option(
        "--mermaid", help="Print only the graph, as a Mermaid flowchart.")] = False,
    max_paths: Annotated[int | None, typer.Option(
        "--max-paths", min=1, show_default=False,
        help="List at most this many paths per input (default 64; they can be exponentially "
             "many); the output says when it caps.")] = None,
) -> None:
    """Take one expression apart with the native engine, node by node and path by path.

    Graph, values, backward pass, and every path's product beside the gradient and SymPy's.
    """
    from .explain import DEFAULT_MAX_PATHS, ExplainError, explain, parse_point
    from .report.explain import explanation_renderables
    from .report.mermaid import mermaid_flowchart

    try:
        explanation = explain(expression, parse_point(at), max_paths or DEFAULT_MAX_PATHS)
    except ExplainError as exc:
        raise UserError(str(exc)) from exc
    if mermaid:
        print(mermaid_flowchart(explanation), end="")
        return
    for renderable in explanation_renderables(explanation):
        console.print(renderable)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


cache_app = typer.Typer(
    cls=Commands, no_args_is_help=True, add_completion=False,
    help="The cache of reference gradients ($DIFFBENCH_CACHE/references, by default "
         "~/.cache/diffbench/references): references are keyed by values, so a stale one is "
         "never used; clearing it only costs their recomputation.")
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def cache_info_command() -> None:
    """Where the cache is, and how many references it holds in how many bytes."""
    from .cache import entries
    from .reference import cache_dir
    from .report.format import size_in_bytes

    found = entries()
    size = sum(path.stat().st_size for path in found)
    console.print(f"{escape(str(cache_dir()))}: {_count(len(found), 'reference')}, "
                  f"{size_in_bytes(size)}")


@cache_app.command("clear")
def cache_clear_command() -> None:
    """Remove every cached reference."""
    from .cache import clear
    from .reference import cache_dir

    console.print(f"removed {_count(clear(), 'reference')} from {escape(str(cache_dir()))}")


@app.command("list")
def list_command() -> None:
    """Show the built-in families and the backends, with whether each can run here."""
    from rich.table import Table
    from rich.text import Text

    from .backends import registry
    from .config import builtin_config_names
    from .families import BUILTIN

    families = Table(title="families", header_style="bold")
    for column in ("name", "size", "examples", "options", "description"):
        families.add_column(column)
    for family in BUILTIN.values():
        # one option a line: a key is never wrapped apart from its value
        options = "\n".join(f"{k} = {json.dumps(v)}" for k, v in family.options.items()) or "–"
        families.add_row(family.name, family.size_param or "fixed",
                         ", ".join(map(str, family.example_sizes)) or "–", options,
                         Text(family.description))
    console.print(families)
    backends = Table(title="backends", header_style="bold")
    for column in ("name", "available", "options", "description"):
        backends.add_column(column)
    for backend in registry().values():
        reason = backend.unavailable()
        options = ", ".join(f"{k} = {'none' if v is None else json.dumps(v)}"
                            for k, v in backend.options.items()) or "–"
        available = ("[green]yes[/green]" if reason is None
                     else f"[red]no[/red]: {escape(reason)}")
        for part, why in backend.optional_parts().items():
            available += (f"; {escape(part)}: [green]yes[/green]" if why is None
                          else f"; {escape(part)}: [red]no[/red] ({escape(why)})")
        backends.add_row(backend.name, available, options, Text(backend.description))
    console.print(backends)
    console.print("configs shipped: " + ", ".join(builtin_config_names()))
