"""Helpers shared by the CLI commands: console, errors, progress."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

# Wide output when not on a terminal (CI logs, files): tables must stay readable.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a Chinese error message to stderr and exit non-zero."""
    err_console.print(f"[bold red]错误[/]: {message}")
    raise typer.Exit(code)


@contextmanager
def progress() -> Iterator[Progress]:
    """A progress bar for long work (hidden when output is not a terminal)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as bar:
        yield bar


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
