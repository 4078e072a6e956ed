"""Command-line interface (thin: parse -> check -> call one library function -> print/write).

One module per command group; :mod:`crystalgnn.cli.app` holds the typer app and the shared
helpers. Importing this package registers every command and imports neither torch, Lightning,
pandas nor pymatgen (the commands import the library when they run).
"""

from __future__ import annotations

from crystalgnn.cli import (  # noqa: F401  (register commands)
    benchmark,
    data,
    evaluate,
    explain_model,
    explain_sites,
    explain_structure,
    graphs,
    models,
    predict,
    pretrain,
    screen,
    train,
    tune,
)
from crystalgnn.cli.app import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app(prog_name="crystalgnn")
