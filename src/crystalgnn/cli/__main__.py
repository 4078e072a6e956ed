"""``python -m crystalgnn.cli``."""

from crystalgnn.cli import app

app(prog_name="crystalgnn")
