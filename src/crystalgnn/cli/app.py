"""The typer application and what every command shares: error printing, bad-data handling,
rejection reports, tables, and silencing Lightning's chatter.

Importing the CLI must stay cheap (no torch, Lightning, pandas or pymatgen at import time):
commands import the library inside their bodies, after their options have been checked.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

app = typer.Typer(
    help="crystalgnn: graph neural networks for crystal properties and cathode screening.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# tables are wide: when output goes to a file or pipe, do not squeeze them into 80 columns
console = Console(stderr=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 400)

#: exit code of usage errors (bad option values, unknown config keys), as click uses
USAGE = 2


def fail(msg: str, code: int = 1) -> NoReturn:
    """Print ``error: msg`` (one line) on stderr and end the command with ``code``."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(msg)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def message(exc: BaseException) -> str:
    """One line from an exception (``KeyError`` quotes stripped, first line only)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = text.strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def failing_on_bad_data() -> Iterator[None]:
    """Bad input (unreadable data, unknown names, missing files) ends the command with its message."""
    from crystalgnn.data.dataset import DataError

    try:
        yield
    except (DataError, KeyError, FileNotFoundError, ValueError) as exc:
        fail(message(exc))


def load(sources: list[str], targets: list[str] | None = None, **kw: Any) -> Any:
    """The sources as one dataset (among several, an unusable one is a rejection; exit 1 when
    a lone source cannot be read, as ``load_source`` raises then).
    """
    from crystalgnn.data.readers import load_source

    with failing_on_bad_data():
        return load_source(sources if len(sources) > 1 else sources[0], targets=targets, **kw)


def strict_check(rejected: list[Any], strict: bool, what: str = "inputs") -> None:
    """``--strict``: any rejection ends the command with exit 2 (after everything was reported)."""
    if strict and rejected:
        fail(f"--strict: {len(rejected)} {what} rejected", code=USAGE)


def nonfinite_warning(res: Any) -> None:
    """One line on stderr when some predictions are NaN or infinite."""
    msg = res.nonfinite_message()
    if msg:
        err.print(f"[bold yellow]warning:[/] {msg}", markup=True, highlight=False, soft_wrap=True)


def report_rejections(ds: Any, rejected_path: Path | None, strict: bool) -> None:
    if ds.rejections:
        err.print(f"[yellow]{len(ds.rejections)} entries rejected[/] (reason: count)")
        for reason, n in ds.rejection_counts().most_common():
            err.print(f"  {reason}: {n}")
        for r in ds.rejections[:5]:
            err.print(f"  - {r.id} ({r.source}): {r.reason}")
        if rejected_path is not None:
            ds.write_rejections(rejected_path)
            err.print(f"  full list: {rejected_path}")
    if strict and ds.rejections:
        fail(f"--strict: {len(ds.rejections)} entries rejected", code=USAGE)


def write_rejected(rejections: list[Any], path: Path) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "source", "reason"])
        for r in rejections:
            w.writerow([r.id, r.source, r.reason])


def print_frame(df: Any, limit: int, title: str = "") -> None:
    from rich.table import Table

    t = Table(*[str(c) for c in df.columns], title=title)
    for _, row in df.head(limit).iterrows():
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    console.print(t)
    if len(df) > limit:
        console.print(f"... {len(df) - limit} more rows (use --output to get them all)")


def load_predictor(model: str) -> Any:
    """``Predictor.load`` with its errors (missing file, not a checkpoint) as one-line messages.

    Also silences Lightning (:func:`quiet_lightning`) for the prediction that follows.
    """
    import pickle
    import zipfile

    path = Path(model)
    if path.is_file():  # torch.save writes a zip archive (or, before torch 1.6, a pickle): sniff before importing torch
        with path.open("rb") as f:
            head = f.read(4)
        if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
            fail(f"{model}: not a crystalgnn checkpoint (.ckpt), original CGCNN checkpoint (.pth.tar) or run folder")
    quiet_lightning()
    from crystalgnn.prediction import Predictor

    try:
        return Predictor.load(model)
    except (FileNotFoundError, ValueError) as exc:
        fail(message(exc))
    except (OSError, KeyError, TypeError, EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        fail(f"{model}: not a readable crystalgnn checkpoint ({type(exc).__name__}: {message(exc)})")


# Lightning's informational lines and warnings that say nothing to a CLI user
def quiet_lightning() -> None:
    """Hide Lightning's tips, "GPU/TPU/HPU available" lines and irrelevant warnings
    (:func:`crystalgnn.training.quiet.quiet_lightning`), and keep matplotlib's files (which
    Lightning's torchmetrics imports) in the crystalgnn cache folder, not the home folder
    (:func:`~crystalgnn.evaluation.plots.isolate_matplotlib`). Set once per command that trains or
    predicts; imports nothing heavy itself.
    """
    from crystalgnn.evaluation.plots import isolate_matplotlib
    from crystalgnn.training.quiet import quiet_lightning as quiet

    isolate_matplotlib()
    quiet()


def _version(value: bool) -> None:
    if value:
        from crystalgnn._version import __version__

        typer.echo(f"crystalgnn {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool | None = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """crystalgnn: graph neural networks for crystal properties and cathode screening."""
