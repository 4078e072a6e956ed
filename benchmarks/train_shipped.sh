#!/usr/bin/env bash
# Trains the pretrained models shipped in src/crystalgnn/pretrained/ with `crystalgnn train`
# on ../shared/data, then copies each best checkpoint (weights only) and writes its model card.
# Usage: benchmarks/train_shipped.sh [name ...]   (default: all)
# The three mp-36k models in the package were trained by benchmarks/mp36k_full.sh (the same
# settings, the three targets side by side, one torch thread each) and shipped with ship_run;
# electrode-voltage is benchmarks/voltage_electrodes.py's random-split L1 run (the same settings).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/shipped}
COMMON="--optimizer adamw --lr 0.001 --weight-decay 0.0001 --scheduler cosine --batch-size 64 --no-progress ${THREADS:+--threads $THREADS}"

declare -A CMD DATA DESC
CMD[perovskite-formation-energy]="perovskites --target heat_all --split 0.6,0.2,0.2 --seed 0 --epochs 100 $COMMON"
DATA[perovskite-formation-energy]="castelli_perovskites_cdvae (8,596 cubic ABX3 perovskites, Castelli et al. 2012)"
DESC[perovskite-formation-energy]="CGCNN predicting the heat of formation of cubic perovskites (eV per 5-atom cell)."
CMD[mp-formation-energy]="mp-36k --target formation_energy_per_atom --split 0.8,0.1,0.1 --seed 0 --epochs 30 $COMMON"
DATA[mp-formation-energy]="mp_crysxpp_36k (Materials Project legacy), all 36,737 structures"
DESC[mp-formation-energy]="CGCNN predicting the DFT formation energy per atom of inorganic crystals (eV/atom)."
CMD[mp-band-gap]="mp-36k --target band_gap --split 0.8,0.1,0.1 --seed 0 --epochs 30 $COMMON"
DATA[mp-band-gap]="mp_crysxpp_36k (Materials Project legacy), all 36,737 structures"
DESC[mp-band-gap]="CGCNN predicting the PBE/GGA(+U) band gap (eV)."
CMD[mp-metal-classifier]="mp-36k --target is_metal --split 0.8,0.1,0.1 --seed 0 --epochs 30 $COMMON"
DATA[mp-metal-classifier]="mp_crysxpp_36k (Materials Project legacy), all 36,737 structures; is_metal = band gap 0"
DESC[mp-metal-classifier]="CGCNN classifier: probability that a crystal is a metal (PBE band gap 0)."
CMD[log10-bulk-modulus]="mp-elastic --target log10_bulk_modulus_vrh --split 0.8,0.1,0.1 --seed 0 --epochs 100 $COMMON"
DATA[log10-bulk-modulus]="mp_elastic_crysxpp_3k (3,191 MP elastic tensors, de Jong et al. 2015)"
DESC[log10-bulk-modulus]="CGCNN predicting log10 of the Voigt-Reuss-Hill bulk modulus (GPa)."
CMD[log10-shear-modulus]="mp-elastic --target log10_shear_modulus_vrh --split 0.8,0.1,0.1 --seed 0 --epochs 100 $COMMON"
DATA[log10-shear-modulus]="mp_elastic_crysxpp_3k (3,191 MP elastic tensors, de Jong et al. 2015)"
DESC[log10-shear-modulus]="CGCNN predicting log10 of the Voigt-Reuss-Hill shear modulus (GPa)."
CMD[electrode-voltage]="electrodes --target average_voltage --end-member discharged --loss l1 --split 0.8,0.1,0.1 --seed 0 --epochs 60 $COMMON"
DATA[electrode-voltage]="mp_insertion_electrodes_gatgnn (4,148 MP insertion electrodes, ten working ions), discharged end member"
DESC[electrode-voltage]="CGCNN predicting the average voltage (V vs the working-ion metal) of an insertion electrode from its discharged structure; screen's voltage (a)."

names=("$@")
[ ${#names[@]} -eq 0 ] && names=(perovskite-formation-energy log10-bulk-modulus log10-shear-modulus mp-formation-energy mp-band-gap mp-metal-classifier)
for name in "${names[@]}"; do
  cmd="crystalgnn train ${CMD[$name]} --out $OUT/$name"
  echo "== $name: $cmd"
  .venv/bin/$cmd
  .venv/bin/python -c "
from crystalgnn.pretrained import ship_run
ship_run('$OUT/$name', '$name', command='''$cmd''', description='''${DESC[$name]}''', data='''${DATA[$name]}''', in_demo=('$name' != 'perovskite-formation-energy'))
print('shipped $name')"
done
