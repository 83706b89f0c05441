"""The ``diffbench`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .backends import registry
from .config import (
    DEFAULT_CONFIG,
    ConfigError,
    builtin_config_names,
    builtin_config_path,
    load_config,
)
from .families import BUILTIN

app = typer.Typer(
    help="Finite differences, SymPy, a native reverse-mode engine and JAX, measured side by "
         "side: time, memory, expression swell and error against a 50-digit reference.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
TABLE_WIDTH = 140
"""Width of tables written to a file or a pipe, where the terminal's width is unknown."""
console = Console(width=None if sys.stdout.isatty() else TABLE_WIDTH)
errors = Console(stderr=True)


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


def fail(message: str, code: int = 2) -> None:
    errors.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def resolve_config(config: str | None) -> Path:
    """A path, or the name of a config shipped with diffbench (``default`` when omitted)."""
    if config is None:
        return builtin_config_path(DEFAULT_CONFIG)
    path = Path(config)
    if path.exists() or path.suffix == ".toml":
        return path
    shipped = builtin_config_path(config)
    if shipped is None:
        fail(f"{config}: no such config file, nor a built-in config "
             f"(built-in: {', '.join(builtin_config_names())})")
    return shipped


@app.command("run")
def run_command(
    config: Annotated[str | None, typer.Argument(
        help="A TOML config file, or the name of a built-in one "
             "(default, quick, …). Without it: the built-in default.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Run directory (default: results/<name>-<timestamp>/).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q",
                                        help="No progress bar and no tables.")] = False,
) -> None:
    """Run the studies of a config and write CSVs, raw samples and a manifest."""
    from .runner import default_run_dir, run

    path = resolve_config(config)
    try:
        settings = load_config(path)
    except ConfigError as exc:
        fail(str(exc))
    run_dir = out or default_run_dir(settings)
    run(settings, run_dir, console, quiet=quiet, argv=sys.argv)
    if not quiet:
        console.print(f"results in [bold]{run_dir}[/bold]")


@app.command("list")
def list_command() -> None:
    """Show the built-in families and the backends, with whether each can run here."""
    families = Table(title="families", header_style="bold")
    for column in ("name", "size", "examples", "description"):
        families.add_column(column)
    for family in BUILTIN.values():
        families.add_row(family.name, family.size_param or "fixed",
                         ", ".join(map(str, family.example_sizes)) or "–", family.description)
    console.print(families)
    backends = Table(title="backends", header_style="bold")
    for column in ("name", "available", "options", "description"):
        backends.add_column(column)
    for backend in registry().values():
        reason = backend.unavailable()
        options = ", ".join(f"{k}={v!r}" for k, v in backend.options.items()) or "–"
        backends.add_row(backend.name, "[green]yes[/green]" if reason is None
                         else f"[red]no[/red]: {reason}", options, backend.description)
    console.print(backends)
    console.print("configs shipped: " + ", ".join(builtin_config_names()))
