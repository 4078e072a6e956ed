#!/usr/bin/env bash
# XGNN benchmark, step 2: the four label classifiers (band gap / formation energy x group / period)
# on the 10k subset written by xgnn_mp36k_prepare.py. One thread, modest epochs.
# The classifiers read each atom's 4 nearest neighbours (-m max_neighbors=4), the generator's
# neighbour limit, so generated graphs look like the graphs the classifier was trained on.
set -euo pipefail
OUT=${1:-benchmarks/out/xgnn}
PY=${PY:-python}
EPOCHS=${EPOCHS:-15}
for target in band_gap formation_energy_per_atom; do
  for kind in group period; do
    $PY -m crystalgnn train "$OUT/$target/${target}_median_split.jsonl.gz" \
      --target "${target}_high" --task classification --model cgcnn -m "max_neighbors=${NBR:-4}" \
      --atom-init "$OUT/atom_init_$kind.json" --split-file "$OUT/$target/split.json" \
      --optimizer adam --lr 0.003 --batch-size 128 --epochs "$EPOCHS" --scheduler cosine \
      --threads 1 --jobs 1 --max-time-minutes "${MAX_MIN:-6}" --no-progress \
      --out "$OUT/runs/$target-$kind" > "$OUT/train-$target-$kind.log" 2>&1
    tail -3 "$OUT/train-$target-$kind.log"
  done
done
