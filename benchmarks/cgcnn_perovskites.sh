#!/usr/bin/env bash
# CGCNN on all 8,596 perovskites (heat_all, eV/cell), 60/20/20 random split, seed 0,
# the original code's defaults (SGD lr 0.01, momentum 0.9, batch 256, 30 epochs, weight decay 0).
# End-to-end wall time includes reading the data, building graphs (empty cache) and testing.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out}
CACHE=$(mktemp -d)
rm -rf "$OUT/perov-default"
/usr/bin/time -f "end-to-end wall %e s, max RSS %M KB" \
  .venv/bin/crystalgnn train perovskites --target heat_all --split 0.6,0.2,0.2 --seed 0 \
    --epochs 30 --batch-size 256 --optimizer sgd --lr 0.01 --momentum 0.9 --weight-decay 0 \
    --cache-dir "$CACHE" --out "$OUT/perov-default" --no-progress
rm -rf "$CACHE"
cat "$OUT/perov-default/metrics.json"
