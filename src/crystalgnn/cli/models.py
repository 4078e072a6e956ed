"""``crystalgnn models``, ``import-cgcnn`` and ``demo``: the shipped and imported models."""

from __future__ import annotations

from pathlib import Path

import typer

from crystalgnn.cli.app import app, console, fail, message, print_frame, quiet_lightning


@app.command("models")
def models_cmd() -> None:
    """List the pretrained models shipped with the package, with their test metrics."""
    from rich.table import Table

    from crystalgnn.pretrained import list_shipped_models

    rows = list_shipped_models()
    if not rows:
        console.print("no shipped models in this installation")
        return
    t = Table("name", "target", "unit", "data", "test metric")
    for r in rows:
        t.add_row(r["name"], r["target"], r["unit"], r["data"], r["metric"])
    console.print(t)


@app.command("import-cgcnn")
def import_cgcnn(
    checkpoint: Path = typer.Argument(..., help="original CGCNN *.pth.tar"),
    output: Path = typer.Option(..., "--output", "-o", help="crystalgnn checkpoint to write (.ckpt)"),
    atom_init: Path | None = typer.Option(None, help="the atom_init.json the model was trained with"),
) -> None:
    """Convert an original CGCNN checkpoint into a crystalgnn checkpoint."""
    if not checkpoint.is_file():
        fail(f"{checkpoint}: no such file")
    from crystalgnn.prediction.cgcnn_import import save_imported

    try:
        path = save_imported(checkpoint, output, atom_init)
    except ValueError as exc:
        fail(message(exc))
    console.print(f"wrote {path}")


@app.command()
def demo(
    output: Path | None = typer.Option(None, "--output", "-o", help="write the table as CSV"),
    screen_out: Path | None = typer.Option(
        None, "--screen-out", help="folder of the demo screen's files (default: a temporary folder)"
    ),
) -> None:
    """The main job on bundled cathode structures: every shipped model's predictions, then a
    small cathode screen (substitutions and prototypes of the bundled cathodes) and its ranking.
    """
    quiet_lightning()
    from crystalgnn.pretrained import predict_examples

    try:
        df = predict_examples(show_progress=False)
    except FileNotFoundError as exc:
        fail(message(exc))
    print_frame(df, 100, title="bundled cathode structures: predictions of the shipped models")
    if output is not None:
        df.to_csv(output, index=False)
        console.print(f"wrote {output}")
    import tempfile

    from crystalgnn.cli.screen import run_or_fail, summarise
    from crystalgnn.discovery.screen_config import demo_config

    config = demo_config()
    with tempfile.TemporaryDirectory(prefix="crystalgnn-demo-") as tmp:
        folder = screen_out or Path(tmp)
        result = run_or_fail(config, folder, show_progress=False)
        summarise(result, config, folder)
        if screen_out is None:
            console.print("(the demo screen's folder is temporary: use --screen-out DIR to keep its files)")
