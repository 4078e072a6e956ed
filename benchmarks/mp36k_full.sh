#!/usr/bin/env bash
# CGCNN on the full mp_crysxpp_36k (the thesis' dataset), 80/10/10 random split (seed 0):
# formation energy per atom, band gap and metal/non-metal (ROC-AUC), one process per target.
# Same settings as the shipped models (AdamW lr 1e-3, wd 1e-4, cosine, batch 64, 30 epochs).
# Graphs are built once into one cache, then the three targets train side by side.
# Usage: THREADS=1 EPOCHS=30 OUT=benchmarks/out benchmarks/mp36k_full.sh [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out}
EPOCHS=${EPOCHS:-30}
THREADS=${THREADS:-1}
CACHE=${CACHE:-$OUT/mp36k-cache}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(formation_energy_per_atom band_gap is_metal)
mkdir -p "$OUT"
/usr/bin/time -f "graphs: wall %e s" .venv/bin/crystalgnn graphs build mp-36k --cache-dir "$CACHE"
pids=()
for t in "${targets[@]}"; do
  run="$OUT/mp36k-full-$t"
  /usr/bin/time -f "$t: end-to-end wall %e s, max RSS %M KB" \
    .venv/bin/crystalgnn train mp-36k --target "$t" --split 0.8,0.1,0.1 --seed 0 --epochs "$EPOCHS" \
      --optimizer adamw --lr 0.001 --weight-decay 0.0001 --scheduler cosine --batch-size 64 \
      --threads "$THREADS" --cache-dir "$CACHE" --out "$run" --no-progress > "$run.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
for t in "${targets[@]}"; do echo "== $t"; tail -1 "$OUT/mp36k-full-$t.log"; cat "$OUT/mp36k-full-$t/metrics.json"; done
exit $status
