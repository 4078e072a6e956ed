#!/usr/bin/env bash
# Issue 16 part 1: per-site contributions on the perovskites (heat_all, eV per 5-atom cell).
#
# 1. the CGCNN benchmark's split (the original code's 60/20/20, benchmarks/original_split.py);
# 2. the standard CGCNN and the site-linear CGCNN (prediction = mean of per-atom contributions)
#    with the original defaults (SGD lr 0.01, momentum 0.9, batch 256, 30 epochs, weight decay 0),
#    one thread each, one after the other;
# 3. `crystalgnn explain sites` of the site-linear run on all 8,596 perovskites (A/B/X maps);
# 4. the CGCNN paper's perovskite findings tested on those contributions
#    (benchmarks/explain_sites_claims.py).
#
#   PY=/path/to/python ./benchmarks/explain_sites_perovskites.sh      (default .venv/bin/python)
#   STAGES="explain claims" ./benchmarks/explain_sites_perovskites.sh  (skip the training)
#   SEED=1 KINDS=site-linear OUT=benchmarks/out/explain-sites-s1 SPLIT=benchmarks/out/explain-sites/original_split.json \
#     STAGES="train explain claims" ./benchmarks/explain_sites_perovskites.sh   (another seed: are the maps stable?)
#   COMPARE=benchmarks/out/explain-sites-s1/sites/site_contributions.csv STAGES=claims ./benchmarks/...  (compare the seeds)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/out/explain-sites}
SEED=${SEED:-0}
STAGES=${STAGES:-"split train explain claims"}
EXTRA=${EXTRA:-}   # e.g. "-m site_reduce=sum" or "-m site_head_hidden=64"
KINDS=${KINDS:-"graph site-linear"}   # readouts to train
SPLIT=${SPLIT:-$OUT/original_split.json}
mkdir -p "$OUT"
RECIPE=(--target heat_all --split-file "$SPLIT" --seed "$SEED" --epochs 30 --batch-size 256
        --optimizer sgd --lr 0.01 --momentum 0.9 --weight-decay 0 --threads 1 --jobs 1 --no-progress)
has() { [[ " $STAGES " == *" $1 "* ]]; }

if has split; then
  $PY benchmarks/original_split.py perovskites "$SPLIT"
fi
if has train; then
  for kind in $KINDS; do
    /usr/bin/time -f "$kind: wall %e s, max RSS %M KB" \
      $PY -m crystalgnn train perovskites "${RECIPE[@]}" --readout "$kind" $EXTRA --out "$OUT/cgcnn-$kind"
  done
  for kind in $KINDS; do
    $PY -c "import json,sys; m=json.load(open(sys.argv[1])); print(sys.argv[2], 'test MAE', m['test']['mae'])" \
      "$OUT/cgcnn-$kind/metrics.json" "$kind"
  done
fi
if has explain; then
  /usr/bin/time -f "explain sites: wall %e s, max RSS %M KB" \
    $PY -m crystalgnn explain sites "$OUT/cgcnn-site-linear" perovskites --out "$OUT/sites" --threads 1 --jobs 1
fi
if has claims; then
  $PY benchmarks/explain_sites_claims.py "$OUT/sites/site_contributions.csv" --split "$SPLIT" ${COMPARE:+--compare $COMPARE}
fi
