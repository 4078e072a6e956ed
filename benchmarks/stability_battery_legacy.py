"""Energy above hull from predicted formation energies vs MP's electrode stabilities (issue 17).

For every row of ``battery-legacy`` (``mp_battery_legacy_2019``) with structures, the formation
energy per atom of each end member is predicted (default: the shipped ``mp-formation-energy``
CGCNN, or an ensemble folder), placed on the convex hull of the mp-36k reference formation
energies (:class:`crystalgnn.discovery.hull.HullReference`, elements at 0) and compared with
the row's ``stability_charge`` / ``stability_discharge`` (MP's energy above hull, 2019).
Reports MAE, and precision / recall of "stable" (e_hull <= 0.05 eV/atom).

    python benchmarks/stability_battery_legacy.py --out benchmarks/out/stability

Caveats printed with the numbers: the MP references are a different database version (mp-36k,
legacy) than the 2019 battery stabilities, and most of these structures are in mp-36k, i.e.
in the formation-energy model's training data. The "DFT reference" row repeats the hull with the
mp-36k DFT energy of the same material where mp-36k has it: the floor set by the two
databases' disagreement.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd

from crystalgnn.data.catalog import catalog_path
from crystalgnn.data.readers import load_source
from crystalgnn.discovery.hull import HullReference, load_reference_energies
from crystalgnn.prediction import Predictor

STABLE = 0.05


def precision_recall(true_e: np.ndarray, pred_e: np.ndarray) -> tuple[float, float]:
    t, p = true_e <= STABLE, pred_e <= STABLE
    tp = float((t & p).sum())
    return tp / max(1.0, float(p.sum())), tp / max(1.0, float(t.sum()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mp-formation-energy")
    ap.add_argument("--out", default="benchmarks/out/stability")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hull = HullReference(load_reference_energies("mp-36k"))
    mp36 = {}
    with gzip.open(catalog_path("mp-36k"), "rt") as fh:
        for line in fh:
            r = json.loads(line)
            mp36[r["id"]] = r.get("formation_energy_per_atom")
    pred = Predictor.load(args.model)
    rows = []
    for end, key, mpid in (
        ("charged", "stability_charge", "id_charge"),
        ("discharged", "stability_discharge", "id_discharge"),
    ):
        ds = load_source("battery-legacy", end_member=end)
        res = pred.predict(ds, show_progress=True)
        pos = {i: k for k, i in enumerate(ds.ids)}
        for k, sid in enumerate(res.ids):
            meta = ds.metadata[pos[sid]]
            comp = ds.structures[pos[sid]].composition
            truth = ds.targets[key][pos[sid]] if key in ds.targets else float(meta.get(key, "nan"))
            ef = float(np.asarray(res.values)[k, 0])
            dft = mp36.get(str(meta.get(mpid)))
            rows.append(
                {
                    "id": sid,
                    "end_member": end,
                    "formula": comp.reduced_formula,
                    "e_hull_mp": float(truth),
                    "e_hull_pred": hull.e_above_hull(comp, ef),
                    "e_hull_dft_ref": hull.e_above_hull(comp, float(dft)) if dft is not None else np.nan,
                }
            )
    df = pd.DataFrame(rows).dropna(subset=["e_hull_mp"])
    df.to_csv(out / "stability.csv", index=False)
    lines = [
        "| end member | n | MAE pred (eV/atom) | precision | recall | n with DFT ref | MAE DFT ref |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for end, g in [*df.groupby("end_member"), ("both", df)]:
        mae = float(np.abs(g.e_hull_pred.clip(lower=0) - g.e_hull_mp).mean())
        prec, rec = precision_recall(g.e_hull_mp.to_numpy(), g.e_hull_pred.to_numpy())
        ref = g.dropna(subset=["e_hull_dft_ref"])
        mae_ref = float(np.abs(ref.e_hull_dft_ref.clip(lower=0) - ref.e_hull_mp).mean()) if len(ref) else float("nan")
        lines.append(f"| {end} | {len(g)} | {mae:.4f} | {prec:.3f} | {rec:.3f} | {len(ref)} | {mae_ref:.4f} |")
    text = (
        f"model {args.model}; hull: mp-36k formation energies + elements; stable = e_hull <= {STABLE} eV/atom\n\n"
        + "\n".join(lines)
        + "\n"
    )
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
