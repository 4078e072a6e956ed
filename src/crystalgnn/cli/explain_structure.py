"""``crystalgnn explain structure``: which atoms and bonds a prediction rests on."""

from __future__ import annotations

from pathlib import Path

import typer

from crystalgnn.cli.app import console, err, fail, failing_on_bad_data, load, load_predictor, write_rejected
from crystalgnn.cli.explain import explain_app

#: at most this many per-structure pictures (the CSVs hold every structure)
MAX_PICTURES = 20


@explain_app.command("structure")
def explain_structure(
    model: str = typer.Argument(..., help="run folder, .ckpt or shipped model name (a graph-level model)"),
    inputs: list[str] = typer.Argument(
        ..., help="structure files (CIF, POSCAR, ...), folders, tables or dataset names"
    ),
    method: str = typer.Option("ig", "--method", help="gnnexplainer, ig (Integrated Gradients) or saliency"),
    top: int = typer.Option(5, "--top", min=1, help="atoms and bonds printed per structure"),
    out: Path = typer.Option(Path("explain-structure"), "--out", "-o", help="folder for the CSVs and pictures"),
    target: str | None = typer.Option(None, "--target", "-t", help="target to explain (multi-target models)"),
    epochs: int = typer.Option(100, "--epochs", min=1, help="GNNExplainer optimisation steps"),
    rejected: Path | None = typer.Option(None, "--rejected", help="write the rejected inputs as CSV here"),
) -> None:
    """Explain a model's prediction for each structure: per-atom and per-bond importances.

    Atoms are masked after their embedding, bonds by removing their messages in every
    convolution (torch_geometric.explain). Prints the top atoms and bonds of each structure and
    writes OUT/atoms.csv, OUT/bonds.csv (one undirected bond per row, importance = max over its
    two directions), OUT/<id>_atoms.png (the cell, atoms coloured by importance, top bonds drawn;
    first 20 structures) and OUT/elements.png (mean importance per element).
    """
    from crystalgnn.explain.instance import METHODS, explain_dataset
    from crystalgnn.explain.instance_plots import plot_atoms, plot_elements
    from crystalgnn.prediction.results import file_stems

    if method not in METHODS:
        fail(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    pred = load_predictor(model)
    ds = load(inputs)
    try:
        with failing_on_bad_data():
            explanations, bad = explain_dataset(pred, ds, method, target=target, epochs=epochs)
    except ImportError as exc:
        fail(str(exc))
    for r in bad:
        err.print(f"[yellow]rejected[/] {r.id} ({r.source}): {r.reason}", soft_wrap=True)
    if rejected is not None:
        write_rejected(bad, rejected)
    if not explanations:
        fail("nothing to explain: every input was rejected")
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    what = pred.targets[pred.targets.index(target) if target else 0] if pred.kind == "regression" else "class"
    for e in explanations:
        console.print(f"[bold]{e.id}[/]: {what} = {e.prediction:.4g}, {method} ({e.seconds:.2f} s)")
        console.print(e.atoms().head(top)[["rank", "site", "element", "importance"]].to_string(index=False))
        bonds = e.bonds().head(top)[["rank", "site_i", "element_i", "site_j", "element_j", "length", "importance"]]
        console.print(bonds.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    pd.concat([e.atoms() for e in explanations]).to_csv(out / "atoms.csv", index=False)
    pd.concat([e.bonds() for e in explanations]).to_csv(out / "bonds.csv", index=False)
    stems = file_stems([e.id for e in explanations])
    for e, stem in list(zip(explanations, stems, strict=True))[:MAX_PICTURES]:
        plot_atoms(e, out / f"{stem}_atoms.png")
    plot_elements(explanations, out / "elements.png")
    console.print(f"wrote atoms.csv, bonds.csv, elements.png and {min(len(stems), MAX_PICTURES)} pictures to {out}")
