#!/usr/bin/env bash
# CGCNN on all 8,596 perovskites (heat_all, eV/cell), 60/20/20 random split, seed 0,
# the original code's defaults (SGD lr 0.01, momentum 0.9, batch 256, 30 epochs, weight decay 0).
# End-to-end wall time includes reading the data, building graphs (empty cache) and testing.
# SEED=1 ./benchmarks/cgcnn_perovskites.sh repeats it with another split and initialisation.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out}
CACHE=$(mktemp -d)
SEED=${SEED:-0}
RUN="$OUT/perov-default$([ "$SEED" = 0 ] || echo "-s$SEED")"
rm -rf "$RUN"
/usr/bin/time -f "end-to-end wall %e s, max RSS %M KB" \
  .venv/bin/crystalgnn train perovskites --target heat_all --split 0.6,0.2,0.2 --seed "$SEED" \
    --epochs 30 --batch-size 256 --optimizer sgd --lr 0.01 --momentum 0.9 --weight-decay 0 \
    --cache-dir "$CACHE" --out "$RUN" --no-progress
rm -rf "$CACHE"
cat "$RUN/metrics.json"
