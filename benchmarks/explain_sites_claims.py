"""The CGCNN paper's qualitative perovskite findings (Xie & Grossman, PRL 120, 145301 (2018),
Fig. 4: mean site energies of the elements at the A and B sites) tested on the per-site
contributions that ``crystalgnn explain sites`` wrote, with a model-free reference: an additive
per-(role, element) least-squares fit of the same target on the training split.

    python benchmarks/explain_sites_claims.py benchmarks/out/explain-sites/sites/site_contributions.csv \
        --split benchmarks/out/explain-sites/original_split.json

Prints Markdown tables (for benchmarks/RESULTS.md, section 10) and writes ``claims.json`` beside the CSV.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Element
from scipy.stats import spearmanr

EARLY_TM = ["Sc", "Ti", "V", "Cr", "Y", "Zr", "Nb", "Mo", "Hf", "Ta", "W"]  # groups 3-6, d0-d3 cations


def element_table(frame: pd.DataFrame, role: str) -> pd.DataFrame:
    m = frame[frame["role"] == role].groupby("element")["contribution"].agg(["mean", "count"])
    m["group"] = [Element(e).group for e in m.index]
    m["row"] = [Element(e).row for e in m.index]
    m["atomic_radius"] = [float(Element(e).atomic_radius or np.nan) for e in m.index]
    m["ionic_radius"] = [float(Element(e).average_ionic_radius or np.nan) for e in m.index]
    return m.sort_values("mean")


def rho(a: pd.Series, b: pd.Series) -> float:
    """Spearman correlation of two series matched by index (element)."""
    a, b = a.align(b, join="inner")
    ok = a.notna() & b.notna()
    return float(spearmanr(a[ok], b[ok]).statistic)


def group_r2(m: pd.DataFrame) -> tuple[float, float]:
    """Share of the variance of the element means explained by the periodic group, and the 95th
    percentile of that share with the groups shuffled (1,000 permutations).
    """

    def r2(groups: np.ndarray) -> float:
        s = pd.Series(m["mean"].to_numpy(), index=groups)
        fitted = s.groupby(level=0).transform("mean")
        return float(1 - ((s - fitted) ** 2).sum() / ((s - s.mean()) ** 2).sum())

    g = m["group"].to_numpy()
    rng = np.random.default_rng(0)
    null = [r2(rng.permutation(g)) for _ in range(1000)]
    return r2(g), float(np.quantile(null, 0.95))


def additive_fit(frame: pd.DataFrame, train_ids: set[str]) -> tuple[pd.Series, dict[str, float]]:
    """heat_all = mean over the 5 sites of a per-(role, element) energy, least squares on the training ids."""
    f = frame[frame["role"] != ""]
    key = f["role"] + ":" + f["element"]
    design = pd.crosstab(f["id"], key) / f.groupby("id").size().to_numpy()[:, None]
    y = f.groupby("id")["target"].first().loc[design.index]
    tr = design.index.isin(list(train_ids))
    coef, *_ = np.linalg.lstsq(design[tr].to_numpy(), y[tr].to_numpy(), rcond=None)
    pred = design.to_numpy() @ coef
    err = np.abs(pred - y.to_numpy())
    return pd.Series(coef, index=design.columns), {
        "train_mae": float(err[tr].mean()),
        "test_mae": float(err[~tr].mean()),
    }


def castelli_roles(ids: set[str]) -> dict[str, tuple[str, str]]:
    """A and B of each perovskite as Castelli's formula writes them (``formula_orig``: A, B, anions)."""
    from crystalgnn.data.catalog import catalog_path
    from crystalgnn.data.readers import iter_table_rows

    out = {}
    for r in iter_table_rows(catalog_path("perovskites")):
        if r["id"] in ids:
            els = re.findall(r"[A-Z][a-z]?", r["formula_orig"])
            out[r["id"]] = (els[0], els[1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("contributions", type=Path)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--compare", type=Path, nargs="*", default=[], help="contributions of other runs (other seeds)")
    args = ap.parse_args()
    frame = pd.read_csv(args.contributions, keep_default_na=False, na_values=[""])
    frame["role"] = frame["role"].fillna("")
    split = json.loads(args.split.read_text())
    out: dict[str, object] = {}

    n = frame["id"].nunique()
    with_roles = frame[frame["role"] != ""]["id"].nunique()
    print(f"structures {n}, with A/B/X roles {with_roles} ({100 * with_roles / n:.1f} %)")
    ref = castelli_roles(set(frame["id"]))
    cat = frame[frame["role"].isin(["A", "B"])].pivot_table(
        index="id", columns="role", values="element", aggfunc="first"
    )
    agree = np.mean([ref[i] == (row["A"], row["B"]) for i, row in cat.iterrows() if ref[i][0] != ref[i][1]])
    print(
        f"coordination roles = Castelli's formula order (A first) in {100 * agree:.2f} % of the structures with roles"
    )
    out.update(n=n, with_roles=with_roles, castelli_order_agreement=float(agree))

    A, B = element_table(frame, "A"), element_table(frame, "B")
    for name, m in (("A", A), ("B", B)):
        lo = ", ".join(f"{e} {v:.2f}" for e, v in m["mean"].head(6).items())
        hi = ", ".join(f"{e} {v:.2f}" for e, v in m["mean"].tail(6).iloc[::-1].items())
        print(
            f"\n{name} site ({len(m)} elements): lowest {lo}; highest {hi}; sd of element means {m['mean'].std():.3f}"
        )

    claims = []
    # 1. A site: the larger the cation, the lower its A-site energy (tolerance factor)
    r_at, r_ion = rho(A["mean"], A["atomic_radius"]), rho(A["mean"], A["ionic_radius"])
    g1 = [A.loc[e, "mean"] for e in ["Li", "Na", "K", "Rb", "Cs"] if e in A.index]
    g2 = [A.loc[e, "mean"] for e in ["Be", "Mg", "Ca", "Sr", "Ba"] if e in A.index]
    claims.append(("A: larger cations have lower A-site energies", r_at < 0 and r_ion < 0,
                   f"Spearman(A mean, atomic radius) {r_at:+.2f}, (A mean, ionic radius) {r_ion:+.2f}; "
                   f"down group 1 Li..Cs {' '.join(f'{v:.2f}' for v in g1)}; group 2 Be..Ba {' '.join(f'{v:.2f}' for v in g2)}"))  # fmt: skip
    # 2. A site: electropositive large cations (groups 1-3 incl. La and Y, Pb/Bi lone pairs aside) are low
    s_block = A[A["group"].isin([1, 2, 3])]["mean"]
    rest = A[~A["group"].isin([1, 2, 3])]["mean"]
    claims.append(("A: alkali, alkaline-earth and rare-earth (groups 1-3) A sites lower than the others",
                   s_block.mean() < rest.mean(),
                   f"groups 1-3 mean {s_block.mean():.2f} (n={len(s_block)}), other elements {rest.mean():.2f} (n={len(rest)})"))  # fmt: skip
    # 3. B site: early transition metals (d0 cations of groups 3-6) are the stablest B sites, alkali the least
    early = B.loc[[e for e in EARLY_TM if e in B.index], "mean"]
    ranks = B["mean"].rank()
    alk = B.loc[[e for e in ["Li", "Na", "K", "Rb", "Cs"] if e in B.index], "mean"]
    claims.append(("B: early transition metals (groups 3-6) lowest, alkali metals highest",
                   early.mean() < B["mean"].mean() < alk.mean(),
                   f"early TMs mean {early.mean():.2f} (ranks {', '.join(f'{e} {int(ranks[e])}' for e in early.index)} "
                   f"of {len(B)}); all B {B['mean'].mean():.2f}; alkali {alk.mean():.2f}"))  # fmt: skip
    # 4. site preference: large cations prefer A (A < B), small ones B
    both = A[["mean", "atomic_radius"]].join(B[["mean"]].rename(columns={"mean": "mean_B"}), how="inner")
    pref = both["mean_B"] - both["mean"]
    r_pref = rho(pref, both["atomic_radius"])
    claims.append(("preference B - A grows with the cation's size (large cations prefer A)", r_pref > 0,
                   f"Spearman(B mean - A mean, atomic radius) {r_pref:+.2f} over {len(both)} elements; "
                   f"prefer A: {(pref > 0).sum()}, prefer B: {(pref < 0).sum()}"))  # fmt: skip
    # 5. elements of the same group have similar site energies (the maps' group patterns)
    for name, m in (("A", A), ("B", B)):
        r2, null95 = group_r2(m)
        claims.append((f"{name}: the periodic group explains the element means (vs shuffled groups)", r2 > null95,
                       f"R² {r2:.2f}, shuffled-group 95th percentile {null95:.2f}"))  # fmt: skip

    # model-free reference: an additive per-(role, element) fit of the target on the training ids
    coef, fit = additive_fit(frame, set(split["train"]))
    comp = {}
    for name, m in (("A", A), ("B", B), ("X", element_table(frame, "X"))):
        c = coef[[k for k in coef.index if k.startswith(name + ":")]]
        c.index = [k.split(":")[1] for k in c.index]
        comp[name] = rho(m["mean"], c.reindex(m.index))
    print(f"\nadditive per-(role, element) least squares: train MAE {fit['train_mae']:.4f}, test MAE {fit['test_mae']:.4f}"
          f"; Spearman with CGCNN's element means: A {comp['A']:+.2f}, B {comp['B']:+.2f}, X {comp['X']:+.2f}")  # fmt: skip
    out.update(additive=fit, additive_spearman=comp)

    for other in args.compare:  # are the maps a property of the data or of one trained model?
        o = pd.read_csv(other, keep_default_na=False, na_values=[""])
        o["role"] = o["role"].fillna("")
        same = {r: rho(element_table(frame, r)["mean"], element_table(o, r)["mean"]) for r in ("A", "B", "X")}
        print(f"\nSpearman of the element means with {other}: " + ", ".join(f"{r} {v:+.2f}" for r, v in same.items()))
        out.setdefault("compare", {})[str(other)] = same  # type: ignore[union-attr]

    print("\n| finding (paraphrased) | agree? | numbers |\n|---|---|---|")
    for text, ok, nums in claims:
        print(f"| {text} | {'agree' if ok else 'disagree'} | {nums} |")
    out["claims"] = [{"claim": t, "agree": bool(ok), "numbers": nums} for t, ok, nums in claims]
    out["A"] = A["mean"].round(4).to_dict()
    out["B"] = B["mean"].round(4).to_dict()
    (args.contributions.parent / "claims.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
