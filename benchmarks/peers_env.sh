#!/usr/bin/env bash
# Recreate the peers' environment for benchmarks/zoo_throughput.py (issue 15): matgl (MEGNet) and
# alignn (ALIGNN) in a virtual environment OUTSIDE the repo. Never a project dependency.
#
#   bash benchmarks/peers_env.sh [/work/peers-venv]
#
# torch is pinned to the CPU build 2.13.0 (an unpinned torch pulls GBs of CUDA wheels).
# matgl 4.1.2 runs on PyTorch Geometric (no DGL). alignn 2026.8.11's classic ALIGNN
# (alignn.models.alignn) needs DGL, and the only DGL on PyPI (2.1.0) ships C++ libraries for
# torch 2.0.0-2.2.1 only: with torch 2.13 `import dgl` fails with
#   FileNotFoundError: Cannot find DGL C++ graphbolt library at .../libgraphbolt_pytorch_2.13.0.so
# (after first failing on torchdata 0.11 without `torchdata.datapipes`). The benchmark therefore
# uses alignn's own DGL-free implementation (alignn.models.alignn_atomwise_pure, same layers),
# and DGL is not installed here.
set -euo pipefail
VENV=${1:-/work/peers-venv}
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "torch==2.13.0" "matgl==4.1.2" "alignn==2026.8.11"
"$VENV/bin/python" - <<'PY'
import torch, matgl, alignn, torch_geometric
from matgl.models import MEGNet
from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure
print("torch", torch.__version__, "matgl", matgl.__version__, "alignn", alignn.__version__,
      "torch_geometric", torch_geometric.__version__)
PY
