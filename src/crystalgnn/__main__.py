"""``python -m crystalgnn`` runs the command-line interface."""

from crystalgnn.cli import app

app(prog_name="crystalgnn")
