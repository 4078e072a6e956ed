"""CGCNN prediction speed on the screen's candidate cells: graph building and one model's
forward passes, one torch thread (issue 17, the scoring floor).

Candidates: the 352 discharged + charged cells of ``screen_throughput.py --hosts 150`` (704
structures). Prints graphs/s and, for ``--repeats`` prediction passes of ``mp-formation-energy``,
every pass time and structures/s of the fastest; with ``--save`` the predictions (to compare two
code versions: run the script in both trees).

    PYTHONPATH=src python benchmarks/cgcnn_predict_speed.py --repeats 5 --save /tmp/pred_new.npy
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default="mp-formation-energy")
    ap.add_argument("--save", default=None, help="write the predictions (.npy)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")

    from crystalgnn.data.dataset import CrystalDataset
    from crystalgnn.data.examples import examples_dir
    from crystalgnn.discovery.candidates import load_hosts
    from crystalgnn.discovery.screen import prepare_candidates
    from crystalgnn.discovery.screen_config import ScreenConfig
    from crystalgnn.prediction import Predictor, predictable_graphs

    hosts, _ = load_hosts("electrodes", "Li", subset=args.hosts * 3, subset_seed=0)
    hosts = [h for h in hosts if len(h.structure) <= 30][: args.hosts] + load_hosts(str(examples_dir()), "Li")[0]
    config = ScreenConfig(
        hosts=["(sampled)"],
        substitute="Co->Ni,Mn,Fe; Ni->Co,Mn; Mn->Fe,Ni,Co; Fe->Mn,Co,Ni; V->Cr,Mn; P->Si,S",
        prototypes=["layered", "spinel", "olivine"],
        metals=["Co", "Ni", "Mn", "Fe", "V", "Cr"],
        known_references=[],
    )
    pairs = prepare_candidates(hosts, config)[0]
    structures = [d.structure for d, _ in pairs] + [c.structure for _, c in pairs]
    predictor = Predictor.load(args.model)
    ds = CrystalDataset(ids=[str(i) for i in range(len(structures))], structures=structures)
    t = time.perf_counter()
    graphs, _, _ = predictable_graphs(
        ds, predictor.graph_config, predictor.supported_elements(), n_jobs=1, show_progress=False
    )
    build = time.perf_counter() - t
    print(f"graphs: {len(graphs)} in {build:.2f} s, {len(graphs) / build:.0f}/s")
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        values = predictor.predict_graphs(graphs)
        times.append(time.perf_counter() - t)
    print(f"predict passes (s): {[round(x, 3) for x in times]}; fastest {len(graphs) / min(times):.0f} structures/s")
    if args.save:
        np.save(args.save, np.asarray(values))


if __name__ == "__main__":
    main()
