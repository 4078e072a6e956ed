"""Rediscovery of known Li cathodes by a screen whose models never saw them (issue 17).

Steps (each skipped when its outputs exist, so the script resumes):

1. ``data``: the held-out cathodes (discharged and charged reduced compositions) are removed
   from the training tables: mp-36k rows whose formula is held out, electrodes whose charged
   or discharged member is held out. Filtered copies keep the catalog file names, so
   ``crystalgnn train PATH`` reads them as the catalog data sets; the removed rows are kept
   as the known DFT references. The hull reference is the filtered mp-36k too.
2. ``train``: ``mp-formation-energy`` and ``electrode-voltage`` retrained on the filtered
   tables with the shipped recipes (benchmarks/train_shipped.sh) under a time budget, one
   torch thread, one training at a time. Band gap and metal models enter neither the
   default objective nor its filters, so the rediscovery screen switches them off.
3. ``screen``: the screen's own pipeline (:func:`crystalgnn.discovery.screen.run_screen`):
   five prototypes decorated with Ti-Cu and O/S/F, plus explicit substitutions of the
   filtered Li electrode hosts (discharged members of at most ``--max-host-atoms`` atoms).
   ``shipped``: the same candidates scored by the shipped models (which saw the held-out rows).
4. ``report`` (skipped when ``summary.md`` exists, unless ``--redo-report``): rank of each known cathode (by reduced composition of the discharged candidate,
   with StructureMatcher against the removed DFT structures), top-k recall with and without
   the default filters, predicted vs DFT numbers: ``known_cathodes.csv`` and ``summary.md``;
   plus two diagnostic re-rankings (prototypes dropped by de-duplication put back; a
   redox-limited capacity), see benchmarks/notes/rediscovery.md.

    PYTHONPATH=src python benchmarks/rediscovery.py --out benchmarks/out/rediscovery \
        --formation-budget 20 --voltage-budget 20 --threads 1
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from crystalgnn.data.holdout import ELECTRODE_FORMULA_COLUMNS, filter_jsonl, formula_key

HELD_OUT: dict[str, tuple[str, str]] = {
    "LiCoO2": ("LiCoO2", "CoO2"),
    "LiNiO2": ("LiNiO2", "NiO2"),
    "LiMn2O4": ("LiMn2O4", "MnO2"),
    "LiFePO4": ("LiFePO4", "FePO4"),
    "LiMnPO4": ("LiMnPO4", "MnPO4"),
    "LiCoPO4": ("LiCoPO4", "CoPO4"),
    "LiNi0.5Mn1.5O4": ("LiNi0.5Mn1.5O4", "Ni0.5Mn1.5O4"),
}
"""Known cathode -> (discharged, charged) compositions removed from every training table."""

SUBSTITUTE = "Co->Ni,Mn,Fe,Cr; Ni->Co,Mn,Cu; Mn->Fe,Ni,Co,Cr; Fe->Mn,Co,Ni,V; V->Cr,Mn,Ti,Fe; Ti->V,Mn; Cr->V,Mn,Fe; Cu->Ni,Co; P->Si,S"
METALS = ["Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu"]
ANIONS = ["O", "S", "F"]
PROTOTYPES = ["layered", "spinel", "olivine", "nasicon", "rocksalt"]
COMMON = "--optimizer adamw --lr 0.001 --weight-decay 0.0001 --scheduler cosine --batch-size 64 --no-progress"
MP36K, ELECTRODES = "mp_crysxpp_36k.jsonl.gz", "mp_insertion_electrodes_gatgnn.jsonl.gz"


def held_out_keys() -> dict[str, tuple[str, str]]:
    """Reduced-formula key -> (known cathode, ``discharged`` or ``charged``)."""
    out: dict[str, tuple[str, str]] = {}
    for name, (d, c) in HELD_OUT.items():
        out[formula_key(d)] = (name, "discharged")
        out[formula_key(c)] = (name, "charged")
    return out


def _framework(formula: str) -> str | None:
    """Key of a composition without its Li (``Li0.5CoO2`` -> ``CoO2``), ``None`` without Li."""
    from pymatgen.core import Composition

    try:
        comp = Composition(formula)
    except ValueError:
        return None
    if comp["Li"] == 0 or len(comp.elements) < 2:
        return None
    return formula_key(Composition({el: n for el, n in comp.items() if el.symbol != "Li"}).formula)


def filter_tables(data_dir: Path, out: Path) -> dict[str, Any]:
    """Write the filtered tables and the removed rows; counts of what each removal took, and the
    Li_x compositions of held-out frameworks that stay (intermediate lithiation: leaks).
    """
    keys = held_out_keys()
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    for name, file, cols in (("mp-36k", MP36K, ("formula",)), ("electrodes", ELECTRODES, ELECTRODE_FORMULA_COLUMNS)):
        counts = filter_jsonl(data_dir / file, out / file, keys, cols, out.parent / f"removed_{name}.jsonl.gz")
        report[name] = {
            "kept": counts.kept,
            "removed": counts.removed,
            "unchecked": counts.unchecked,
            "by_key": {f"{keys[k][0]} ({keys[k][1]}: {k})": n for k, n in sorted(counts.by_key.items())},
        }
    by_ion: Counter[str] = Counter(r["working_ion"] for r in _rows(out.parent / "removed_electrodes.jsonl.gz"))
    report["electrodes"]["removed_by_working_ion"] = dict(by_ion)
    frameworks = {formula_key(c): name for name, (_, c) in HELD_OUT.items()}
    leaks: dict[str, Counter[str]] = {"mp-36k": Counter(), "electrodes": Counter()}
    for row in _rows(out / MP36K):
        if (fw := _framework(row["formula"])) in frameworks:
            leaks["mp-36k"][f"{frameworks[fw]}: {formula_key(row['formula'])}"] += 1
    for row in _rows(out / ELECTRODES):
        for col in ELECTRODE_FORMULA_COLUMNS:
            if row["working_ion"] == "Li" and (fw := _framework(row[col])) in frameworks:
                leaks["electrodes"][f"{frameworks[fw]}: {formula_key(row[col])}"] += 1
    report["kept_li_x_of_held_out_frameworks"] = {k: dict(sorted(v.items())) for k, v in leaks.items()}
    return report


def _rows(path: Path) -> Any:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def train(out: Path, data: Path, formation_budget: float, voltage_budget: float, threads: int) -> dict[str, Any]:
    """Retrain the two models of the ranking (one at a time) unless their run folders are done."""
    runs = {
        "formation": f"{data / MP36K} --target formation_energy_per_atom --split 0.8,0.1,0.1 --seed 0 "
        f"--epochs 30 {COMMON} --time-budget {formation_budget:g}",
        "voltage": f"{data / ELECTRODES} --target average_voltage --end-member discharged --loss l1 "
        f"--split 0.8,0.1,0.1 --seed 0 --epochs 60 {COMMON} --time-budget {voltage_budget:g}",
    }
    info: dict[str, Any] = {}
    for name, args in runs.items():
        run = out / "models" / name
        done = run / "rediscovery_done.json"
        if done.is_file():
            info[name] = json.loads(done.read_text())
            continue
        cmd = [sys.executable, "-m", "crystalgnn", "train", *args.split(), "--threads", str(threads), "--out", str(run)]
        print("==", " ".join(cmd[1:]), flush=True)
        t = time.time()
        subprocess.run(cmd, check=True)
        metrics = run / "metrics.json"
        info[name] = {
            "command": "crystalgnn " + " ".join(cmd[3:]),
            "seconds": round(time.time() - t, 1),
            "metrics": json.loads(metrics.read_text()) if metrics.is_file() else None,
        }
        done.write_text(json.dumps(info[name], indent=1))
    return info


def screen(out: Path, data: Path, max_host_atoms: int, shipped: bool = False) -> Any:
    """The screen of the retrained models (resumable through ``run_screen``); ``shipped``: the
    same candidates scored by the shipped models instead (trained on the held-out rows: the
    leaky reference), in ``screen-shipped``.
    """
    import shutil

    from crystalgnn.discovery.screen import run_screen
    from crystalgnn.discovery.screen_config import ScreenConfig

    hosts_dir = out / "hosts"
    hosts = hosts_dir / ELECTRODES  # the catalog file name: read as the electrodes table
    if not hosts.is_file():
        hosts_dir.mkdir(parents=True, exist_ok=True)
        with gzip.open(data / ELECTRODES, "rt") as src, gzip.open(hosts, "wt") as dst:
            for line in src:
                row = json.loads(line)
                if row["working_ion"] == "Li" and int(row["nsites_discharged"]) <= max_host_atoms:
                    dst.write(line)
    config = ScreenConfig(
        hosts=[str(hosts)],
        working_ion="Li",
        substitute=SUBSTITUTE,
        prototypes=PROTOTYPES,
        metals=METALS,
        anions=ANIONS,
        known_references=[],  # the catalog references hold the held-out cathodes
        formation_model="mp-formation-energy" if shipped else str(out / "models" / "formation"),
        voltage_model="electrode-voltage" if shipped else str(out / "models" / "voltage"),
        band_gap_model=None,  # not in the default objective or filters
        metal_model=None,
        hull_reference=str(data / MP36K),
        top=20,
    )
    folder = out / ("screen-shipped" if shipped else "screen")
    if shipped and not (folder / "candidates.jsonl.gz").is_file():  # reuse the candidate stage
        folder.mkdir(parents=True)
        for name in ("candidates.jsonl.gz", "rejected.csv"):
            shutil.copy(out / "screen" / name, folder / name)
        stages = json.loads((out / "screen" / "stages.json").read_text())
        (folder / "stages.json").write_text(json.dumps({"candidates": stages["candidates"]}))
    t = time.time()
    result = run_screen(config, folder, show_progress=False)
    print(f"screen: {result.counts} in {time.time() - t:.0f} s (reused: {result.reused})", flush=True)
    return result, config


def _references(out: Path) -> dict[str, list[tuple[str, Any]]]:
    """Removed DFT structures of each known cathode's discharged composition (mp-36k ``cif``,
    Li electrodes ``cif_discharged``), keyed by the cathode's name.
    """
    from pymatgen.core import Structure

    from crystalgnn.data.examples import cathode_examples

    want = {formula_key(d): name for name, (d, _) in HELD_OUT.items()}
    refs: dict[str, list[tuple[str, Any]]] = {name: [] for name in HELD_OUT}
    for table, col, fcol in (("mp-36k", "cif", "formula"), ("electrodes", "cif_discharged", "low_formula")):
        for row in _rows(out / f"removed_{table}.jsonl.gz"):
            if (name := want.get(formula_key(row[fcol]))) is not None and row.get("working_ion", "Li") == "Li":
                refs[name].append((f"{table}:{row['id']}", Structure.from_str(row[col], fmt="cif")))
    for name, structure in cathode_examples().items():  # the published structures shipped with crystalgnn
        if name in refs:
            refs[name].append((f"example:{name}", structure))
    return refs


def _dft(out: Path) -> dict[str, dict[str, Any]]:
    """Known DFT numbers: Li electrodes of exactly (discharged, charged) and the lowest mp-36k
    formation energy of the discharged composition with its hull distance on the full mp-36k.
    """
    import numpy as np

    from crystalgnn.discovery.hull import HullReference, load_reference_energies

    full_hull = HullReference(load_reference_energies("mp-36k"))
    info: dict[str, dict[str, Any]] = {name: {} for name in HELD_OUT}
    for name, (d, c) in HELD_OUT.items():
        rows = [
            r
            for r in _rows(out / "removed_electrodes.jsonl.gz")
            if r["working_ion"] == "Li"
            and formula_key(r["low_formula"]) == formula_key(d)
            and formula_key(r["high_formula"]) == formula_key(c)
        ]
        info[name]["dft_electrodes"] = len(rows)
        for key, col in (("voltage", "average_voltage"), ("capacity", "capacity_grav"), ("energy", "energy_grav")):
            vals = [float(r[col]) for r in rows]
            info[name][f"dft_{key}_median"] = float(np.median(vals)) if vals else np.nan
            info[name][f"dft_{key}_range"] = f"{min(vals):.2f}-{max(vals):.2f}" if vals else ""
        efs = [
            float(r["formation_energy_per_atom"])
            for r in _rows(out / "removed_mp-36k.jsonl.gz")
            if formula_key(r["formula"]) == formula_key(d)
        ]
        info[name]["dft_ef_min"] = min(efs) if efs else np.nan
        info[name]["dft_e_hull"] = full_hull.e_above_hull(formula_key(d), min(efs)) if efs else np.nan
    return info


def known_ranks(
    out: Path, screen_folder: str = "screen", scores: Any = None, structures: dict[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """One row per known cathode: generated?, structure match, best ranks (the screen's default
    filters and objective, and no filters), predicted vs DFT. ``scores``/``structures``: a
    modified score table (diagnostic variants) instead of the screen folder's.
    """
    import math

    import numpy as np
    import pandas as pd
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from crystalgnn.discovery.ranking import rank_candidates
    from crystalgnn.discovery.screen import read_pairs
    from crystalgnn.discovery.screen_config import ScreenConfig

    folder = out / screen_folder
    cfg = ScreenConfig.load(folder / "screen.yaml")
    scores = pd.read_csv(folder / "scores.csv") if scores is None else scores
    filtered = rank_candidates(scores, cfg.max_hull, cfg.voltage_window, cfg.objective)  # = ranked.csv
    free = rank_candidates(scores, None, None)  # no filters
    free_rank = dict(zip(free["id"], free["rank"], strict=True))
    if structures is None:
        structures = {d.id: d.structure for d, _ in read_pairs(folder / "candidates.jsonl.gz")}
    refs, dft = _references(out), _dft(out)
    matcher = StructureMatcher()
    n, n_pass = len(filtered), int(filtered["rank"].notna().sum())
    rows = []
    for name, (d, _) in HELD_OUT.items():
        hits = filtered[filtered["formula"].map(formula_key) == formula_key(d)].copy()
        hits["free_rank"] = hits["id"].map(free_rank)
        hits["match"] = [next((rid for rid, s in refs[name] if matcher.fit(structures[i], s)), "") for i in hits["id"]]
        row: dict[str, Any] = {
            "cathode": name,
            "generated": len(hits),
            "structure_matched": int((hits["match"] != "").sum()),
        }
        for label, sub in (("", hits), ("matched_", hits[hits["match"] != ""])):
            row[f"{label}best_rank"] = sub["rank"].min() if sub["rank"].notna().any() else np.nan
            row[f"{label}best_rank_unfiltered"] = sub["free_rank"].min() if len(sub) else np.nan
        if len(hits):
            best = hits.sort_values("free_rank").iloc[0]
            row.update(
                best_id=best["id"],
                best_lineage=best["lineage"],
                best_match=best["match"],
                best_filtered_out=best["filtered_out"] if isinstance(best["filtered_out"], str) else "",
                voltage=best["voltage"],
                voltage_thermo=best["voltage_thermo"],
                capacity=best["capacity_grav"],
                specific_energy=best["specific_energy"],
                ef=best["formation_energy_discharged"],
                e_hull=best["e_hull_discharged"],
            )
        row.update(dft[name])
        rows.append(row)
    table = pd.DataFrame(rows)
    ks = {"10": 10, "50": 50, "100": 100, "10% of N": max(1, math.ceil(0.1 * n))}
    recall: dict[str, Any] = {"N": n, "passing": n_pass}
    for col in ("best_rank", "best_rank_unfiltered", "matched_best_rank", "matched_best_rank_unfiltered"):
        recall[col] = {k: float((table[col] <= v).sum() / len(HELD_OUT)) for k, v in ks.items()}
    recall["k"] = ks
    return table, recall


REDOX_MAX: dict[str, int] = {"Ti": 4, "V": 5, "Cr": 6, "Mn": 4, "Fe": 4, "Co": 4, "Ni": 4, "Cu": 3, "Nb": 5, "Mo": 6}
"""Highest oxidation state a metal is allowed to reach on charge (diagnostic objective only)."""


def redox_fraction(formula: str, ion: str = "Li") -> float:
    """Fraction of the working ion removable before every metal of REDOX_MAX reaches its
    highest state (oxidation states of the discharged formula by ``oxidation_guess``).
    """
    from pymatgen.core import Composition

    from crystalgnn.discovery.candidates import oxidation_guess

    comp = Composition(formula)
    ox = oxidation_guess(comp)
    if not ox or comp[ion] == 0:
        return float("nan")
    room = sum(comp[el] * max(0.0, REDOX_MAX[el] - ox[el]) for el in ox if el in REDOX_MAX)
    return min(1.0, room / comp[ion])


def prototype_scores(out: Path) -> tuple[Any, dict[str, Any]]:
    """Rows of the decorated prototypes that de-duplication dropped in favour of an earlier
    substitution product (the screen keeps the first of a group of matching structures), scored
    with the screen's models by its own scoring stage.
    """
    import pandas as pd

    from crystalgnn.discovery.scoring import load_models
    from crystalgnn.discovery.screen import load_hull
    from crystalgnn.discovery.screen_config import ScreenConfig
    from crystalgnn.discovery.screen_scoring import score_candidates
    from crystalgnn.discovery.screen_tasks import GenerationTask, charged_pairs, generate_valid

    folder = out / "screen"
    cache = out / "prototype_scores.csv"
    cfg = ScreenConfig.load(folder / "screen.yaml")
    valid = [
        c for name in cfg.prototypes for c in generate_valid(GenerationTask("prototype", prototypes=(name,)), cfg).valid
    ]
    dropped = set(pd.read_csv(folder / "rejected.csv").query("stage == 'duplicate'")["id"])
    valid = [c for c in valid if c.id in dropped]
    pairs, _ = charged_pairs(valid, cfg.charged_fraction)
    if cache.is_file():
        rows = pd.read_csv(cache)
    else:
        assert cfg.formation_model is not None
        models, _ = load_models(cfg.formation_model, cfg.voltage_model, None, None)
        rows = pd.DataFrame(score_candidates(pairs, models, load_hull(cfg.hull_reference)))
        rows.to_csv(cache, index=False)
    return rows, {d.id: d.structure for d, _ in pairs}


def variant_tables(out: Path) -> list[tuple[str, Any, dict[str, Any]]]:
    """Diagnostic rankings: the screen's; with the dropped prototypes put back; with a
    redox-limited capacity (specific energy = voltage x capacity x redox fraction).
    """
    import pandas as pd

    from crystalgnn.discovery.screen import read_pairs

    scores = pd.read_csv(out / "screen" / "scores.csv")
    structures = {d.id: d.structure for d, _ in read_pairs(out / "screen" / "candidates.jsonl.gz")}
    protos, proto_structures = prototype_scores(out)
    both = pd.concat([scores, protos], ignore_index=True)
    structures_both = {**structures, **proto_structures}
    redox = both.copy()
    redox["redox_fraction"] = redox["formula"].map(redox_fraction)
    redox["specific_energy"] = redox["specific_energy"] * redox["redox_fraction"]
    redox.to_csv(out / "scores_with_prototypes_redox.csv", index=False)
    return [
        ("screen + dropped prototypes", both, structures_both),
        ("screen + dropped prototypes, redox-limited capacity", redox, structures_both),
    ]


def _variants_section(out: Path) -> list[str]:
    lines = []
    for name, scores, structures in variant_tables(out):
        table, recall = known_ranks(out, "screen", scores, structures)
        slug = name.replace(" ", "_").replace(",", "").replace("+", "plus")
        table.to_csv(out / f"known_cathodes_{slug}.csv", index=False)
        (out / f"recall_{slug}.json").write_text(json.dumps(recall, indent=1))
        cols = [
            "cathode",
            "generated",
            "structure_matched",
            "best_rank",
            "best_rank_unfiltered",
            "matched_best_rank",
            "matched_best_rank_unfiltered",
            "best_lineage",
            "voltage",
            "capacity",
            "specific_energy",
            "e_hull",
        ]
        lines += ["", f"## Diagnostic: {name} ({recall['N']} candidates, {recall['passing']} passing)", ""]
        lines += [table.reindex(columns=cols).to_markdown(index=False, floatfmt=".4g"), ""]
        lines += _recall_lines(recall)
    return lines


def _recall_lines(recall: dict[str, Any], title: str = "ranking") -> list[str]:
    lines = [f"| {title} | " + " | ".join(f"k={k} ({v})" for k, v in recall["k"].items()) + " |"]
    lines += ["|---|" + "---:|" * len(recall["k"])]
    for col in ("best_rank", "best_rank_unfiltered", "matched_best_rank", "matched_best_rank_unfiltered"):
        lines.append(f"| {col} | " + " | ".join(f"{v:.2f}" for v in recall[col].values()) + " |")
    return lines


def _shipped_comparison(out: Path, table: Any) -> list[str]:
    """Ranks of the same candidates scored by the shipped (leaky) models, beside the held-out ones."""
    shipped, recall = known_ranks(out, "screen-shipped")
    (out / "recall_shipped.json").write_text(json.dumps(recall, indent=1))
    shipped.to_csv(out / "known_cathodes_shipped.csv", index=False)
    cols = ["best_rank", "best_rank_unfiltered", "voltage", "specific_energy", "e_hull"]
    both = table[["cathode", *cols]].merge(shipped[["cathode", *cols]], on="cathode", suffixes=("", "_shipped"))
    lines = ["", "## The same candidates scored by the shipped models (trained on the held-out rows)", ""]
    lines += [both.to_markdown(index=False, floatfmt=".4g"), ""]
    return lines + _recall_lines(recall, "ranking (shipped models)")


def write_report(out: Path) -> None:
    """``known_cathodes.csv``, ``recall.json`` and ``summary.md`` in ``out``."""
    import pandas as pd

    table, recall = known_ranks(out)
    table.to_csv(out / "known_cathodes.csv", index=False)
    (out / "recall.json").write_text(json.dumps(recall, indent=1))
    training = json.loads((out / "training.json").read_text()) if (out / "training.json").is_file() else {}
    counts = json.loads((out / "holdout_counts.json").read_text())
    lines = ["# Rediscovery of held-out Li cathodes (generated by benchmarks/rediscovery.py)", ""]
    lines += ["## Rows removed from the training tables", "", "| table | kept | removed |", "|---|---:|---:|"]
    lines += [f"| {t} | {counts[t]['kept']} | {counts[t]['removed']} |" for t in ("mp-36k", "electrodes")]
    for t in ("mp-36k", "electrodes"):
        lines += ["", f"{t}: " + ", ".join(f"{k} {v}" for k, v in counts[t]["by_key"].items())]
    lines += ["", "## Retrained models", ""]
    for name, info in training.items():
        m = info.get("metrics") or {}
        test = m.get("test", m)
        lines.append(
            f"- {name}: `{info['command']}` ({info['seconds']:.0f} s); test: "
            + ", ".join(f"{k} {v:.4g}" for k, v in test.items() if isinstance(v, float) and k in ("mae", "rmse", "r2"))
        )
    n, n_pass = recall["N"], recall["passing"]
    lines += ["", f"## Known cathodes among {n} scored candidates ({n_pass} pass the default filters)", ""]
    cols = [
        "cathode",
        "generated",
        "structure_matched",
        "best_rank",
        "best_rank_unfiltered",
        "matched_best_rank",
        "matched_best_rank_unfiltered",
        "best_lineage",
        "voltage",
        "dft_voltage_median",
        "capacity",
        "dft_capacity_median",
        "specific_energy",
        "dft_energy_median",
        "e_hull",
        "dft_e_hull",
        "best_filtered_out",
    ]
    show = table.reindex(columns=cols)
    lines += [show.to_markdown(index=False, floatfmt=".4g"), ""]
    lines += ["## Top-k recall (fraction of the 7 known cathodes with best rank <= k)", ""]
    lines += ["| ranking | " + " | ".join(f"k={k}" for k in recall["k"]) + " |", "|---|" + "---:|" * len(recall["k"])]
    for col in ("best_rank", "best_rank_unfiltered", "matched_best_rank", "matched_best_rank_unfiltered"):
        lines.append(f"| {col} | " + " | ".join(f"{v:.2f}" for v in recall[col].values()) + " |")
    ranked = pd.read_csv(out / "screen" / "ranked.csv")
    stages = json.loads((out / "screen" / "stages.json").read_text())
    kind = ranked["lineage"].str.extract(r"^(prototype)", expand=False).fillna("")
    kind = kind.mask(kind == "", ranked["steps"].fillna("").map(lambda st: "substitution" if st else "host"))
    lines += [
        "",
        f"Screen counts: {stages['candidates']['counts']}; scored by generator: {kind.value_counts().to_dict()}",
    ]
    lines += [f"passing the filters by generator: {kind[ranked['rank'].notna()].value_counts().to_dict()}"]
    if (out / "screen-shipped" / "ranked.csv").is_file():
        lines += _shipped_comparison(out, table)
    lines += _variants_section(out)
    top = ranked.head(15)
    lines += ["", "## Top 15 of the default ranking", ""]
    lines += [
        top[
            ["rank", "formula", "lineage", "voltage", "capacity_grav", "specific_energy", "e_hull_discharged"]
        ].to_markdown(index=False, floatfmt=".4g")
    ]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/out/rediscovery")
    ap.add_argument("--data-dir", default=None, help="shared data folder (default: the catalog's)")
    ap.add_argument("--formation-budget", type=float, default=20.0, help="minutes")
    ap.add_argument("--voltage-budget", type=float, default=20.0, help="minutes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-host-atoms", type=int, default=30)
    ap.add_argument("--steps", default="data,train,screen,shipped,report")
    ap.add_argument("--redo-report", action="store_true", help="write the report even if summary.md exists")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from crystalgnn.data.catalog import shared_data_dir

    out = Path(args.out)
    data = out / "data"
    steps = args.steps.split(",")
    times_path = out / "times.json"
    times = json.loads(times_path.read_text()) if times_path.is_file() else {}
    if "data" in steps:
        counts_path = out / "holdout_counts.json"
        if not counts_path.is_file():
            t = time.time()
            root = Path(args.data_dir) if args.data_dir else shared_data_dir()
            assert root is not None, "shared data folder not found"
            counts = filter_tables(root, data)
            counts_path.write_text(json.dumps(counts, indent=1))
            times["data"] = round(time.time() - t, 1)
        print(counts_path.read_text(), flush=True)
    if "train" in steps:
        info = train(out, data, args.formation_budget, args.voltage_budget, args.threads)
        (out / "training.json").write_text(json.dumps(info, indent=1))
    if "screen" in steps:
        t = time.time()
        result, _config = screen(out, data, args.max_host_atoms)
        times.setdefault("screen_runs", []).append({"seconds": round(time.time() - t, 1), "stages": result.seconds})
    if "shipped" in steps:
        t = time.time()
        result, _config = screen(out, data, args.max_host_atoms, shipped=True)
        times.setdefault("shipped_runs", []).append({"seconds": round(time.time() - t, 1), "stages": result.seconds})
    if "report" in steps and (args.redo_report or not (out / "summary.md").is_file()):
        write_report(out)
    out.mkdir(parents=True, exist_ok=True)
    times_path.write_text(json.dumps(times, indent=1))


if __name__ == "__main__":
    main()
