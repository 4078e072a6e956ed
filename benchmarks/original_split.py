"""The train/validation/test split the original CGCNN code makes of a dataset, as an id-list file.

The reference ``CIFData`` shuffles the rows of ``id_prop.csv`` with ``random.seed(123)`` and
``random.shuffle``; ``get_train_val_test_loader`` then takes the first ``int(0.6 n)`` rows for
training and the last ``int(0.2 n)`` for testing, the ``int(0.2 n)`` before those for validation
(the rows in between, if any, are unused). Assuming ``id_prop.csv`` listed the structures in the
order of our data file, this reproduces its split exactly, so our model can be scored on the same
test crystals as the original run.

    python benchmarks/original_split.py perovskites benchmarks/out/original_split.json
    crystalgnn train perovskites --target heat_all --split-file benchmarks/out/original_split.json ...
"""

from __future__ import annotations

import argparse
import json
import random

from crystalgnn.data.catalog import catalog_path
from crystalgnn.data.readers import iter_table_rows


def original_split(
    ids: list[str], ratios: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 123
) -> dict[str, list[str]]:
    rows = list(ids)
    random.seed(seed)
    random.shuffle(rows)
    n = len(rows)
    n_train, n_val, n_test = int(ratios[0] * n), int(ratios[1] * n), int(ratios[2] * n)
    return {"train": rows[:n_train], "val": rows[n - n_val - n_test : n - n_test], "test": rows[n - n_test :]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", help="dataset short name, e.g. perovskites")
    ap.add_argument("out", help="split JSON to write")
    args = ap.parse_args()
    ids = [str(r["id"]) for r in iter_table_rows(catalog_path(args.source))]
    split = original_split(ids)
    with open(args.out, "w") as f:
        json.dump(split, f)
    print({k: len(v) for k, v in split.items()}, "unused:", len(ids) - sum(len(v) for v in split.values()))


if __name__ == "__main__":
    main()
