"""``crystalgnn explain``: why a model predicts what it predicts.

The subcommands live in their own modules (``explain_sites``, ``explain_structure``,
``explain_model``) and register on :data:`explain_app`.
"""

from __future__ import annotations

import typer

from crystalgnn.cli.app import app

explain_app = typer.Typer(
    help="Explain a trained model: per-site contributions (sites), one structure (structure), the model as a whole (model).",
    no_args_is_help=True,
)
app.add_typer(explain_app, name="explain")
