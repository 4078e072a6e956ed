"""The environment of the crystal XGNN: actions on label graphs, validity rules, and the reward
read from the trained classifier.

Validity (XGNN's graph rules, Yuan et al. KDD 2020 Sec. 4.3, as the thesis set them for
crystals): at most ``max_nodes`` (6) atoms, at most ``max_degree`` (4) neighbours per atom, no
repeated bond, no self-bond. An invalid action leaves the graph unchanged and is penalised, so
every graph the generator holds is valid and connected (each new atom arrives with its bond).

:class:`LabelGraphScorer` turns label graphs into the crystal graphs the classifier reads:
each atom gets a representative element of its label (all elements of a label have the same
one-hot features), each bond, in both directions, the median bond length of its label pair
(:func:`~crystalgnn.explain.xgnn_data.label_pair_distances`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from crystalgnn.explain.xgnn_policy import GraphStates
from crystalgnn.graphs.batching import assemble_batch

#: a classifier: batch of crystal graphs -> (B, C) class probabilities
Classifier = Callable[[Any], Tensor]


def apply_actions(
    states: GraphStates, start: Tensor, end: Tensor, max_nodes: int, max_degree: int
) -> tuple[GraphStates, Tensor]:
    """Add the bond ``start``-``end`` to each graph (a candidate end slot ``max_nodes + l`` adds a
    new atom of label ``l``). Returns the new states and the (B,) validity of each action;
    invalid actions leave their graph as it was.
    """
    b = torch.arange(start.shape[0])
    n = states.n_atoms
    cand = end >= max_nodes
    target = torch.where(cand, n.clamp(max=max_nodes - 1), end)
    deg = states.adj.sum(2)
    duplicate = ~cand & (states.adj[b, start, target.clamp(max=max_nodes - 1)] > 0)
    valid = (
        (~cand | (n < max_nodes))
        & ~duplicate
        & (start != target)
        & (deg[b, start] < max_degree)
        & (cand | (deg[b, target.clamp(max=max_nodes - 1)] < max_degree))
    )
    new = states.clone()
    add_atom = cand & valid
    new.labels[b[add_atom], n[add_atom]] = end[add_atom] - max_nodes
    vb, vs, vt = b[valid], start[valid], target[valid]
    new.adj[vb, vs, vt] = 1.0
    new.adj[vb, vt, vs] = 1.0
    return new, valid


def graph_is_valid(labels: Sequence[int], edges: Sequence[tuple[int, int]], n_labels: int, max_nodes: int = 6,
                   max_degree: int = 4) -> list[str]:  # fmt: skip
    """The broken rules of one generated graph (empty when valid): size, labels, degrees,
    self/repeated bonds, connectivity.
    """
    problems = []
    n = len(labels)
    if not 1 <= n <= max_nodes:
        problems.append(f"{n} atoms (1..{max_nodes} allowed)")
    if any(not 0 <= int(v) < n_labels for v in labels):
        problems.append("a label outside 0..n_labels-1")
    pairs = {tuple(sorted((int(i), int(j)))) for i, j in edges}
    if len(pairs) != len(edges) or any(i == j for i, j in pairs) or any(not 0 <= v < n for p in pairs for v in p):
        problems.append("a repeated, self or dangling bond")
    deg = np.bincount(np.array([v for p in pairs for v in p], dtype=int), minlength=n)
    if n and deg.max(initial=0) > max_degree:
        problems.append(f"an atom with {int(deg.max())} neighbours (max {max_degree})")
    seen, todo = {0}, [0]
    while todo and n:
        i = todo.pop()
        for a, c in pairs:
            for u, v in ((a, c), (c, a)):
                if u == i and v not in seen:
                    seen.add(v)
                    todo.append(v)
    if n and len(seen) != n:
        problems.append("not connected")
    return problems


def state_records(states: GraphStates) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """Each graph as (labels of its atoms, bonds ``i < j``)."""
    out = []
    for labels, adj in zip(states.labels.tolist(), states.adj, strict=True):
        atoms = [v for v in labels if v >= 0]
        iu = torch.triu_indices(len(atoms), len(atoms), 1)
        keep = adj[iu[0], iu[1]] > 0
        out.append((atoms, [(int(i), int(j)) for i, j in iu[:, keep].T.tolist()]))
    return out


class LabelGraphScorer:
    """The classifier's probability of a class for label graphs.

    Args:
        classifier: batch of crystal graphs -> (B, C) class probabilities (a trained task).
        elements: (L,) atomic number fed for each label.
        distances: (L, L) bond length (Å) given to a bond of each label pair.
    """

    def __init__(self, classifier: Classifier, elements: Sequence[int], distances: np.ndarray) -> None:
        self.classifier = classifier
        self.elements = torch.as_tensor(list(elements), dtype=torch.long)
        self.distances = torch.as_tensor(np.asarray(distances), dtype=torch.float32)

    def batch(self, states: GraphStates) -> Batch:
        """The crystal graphs of ``states`` as one PyG batch (``z``, ``edge_index`` with row 1
        the centre atom, ``edge_dist``; no cell, so no ``edge_vec``), built without a loop.
        """
        atoms = states.labels >= 0
        counts = atoms.sum(1)
        offsets = torch.zeros(len(counts) + 1, dtype=torch.long)
        torch.cumsum(counts, 0, out=offsets[1:])
        gid = torch.cumsum(atoms.flatten(), 0).view_as(atoms) - 1
        g, i, j = states.adj.nonzero(as_tuple=True)  # (graph, centre, neighbour), sorted by graph
        lab = states.labels
        fields = {
            "z": self.elements[lab[atoms]],
            "edge_index": torch.stack([gid[g, j], gid[g, i]]),
            "edge_dist": self.distances[lab[g, i], lab[g, j]],
        }
        n_edges = torch.bincount(g, minlength=len(counts))
        edge_slices = torch.zeros_like(offsets)
        torch.cumsum(n_edges, 0, out=edge_slices[1:])
        slices = {"z": offsets, "edge_index": edge_slices, "edge_dist": edge_slices}
        zeros = torch.zeros(len(counts), dtype=torch.long)
        incs = {"z": zeros, "edge_index": offsets[:-1].clone(), "edge_dist": zeros}
        return assemble_batch(fields, slices, incs, counts, offsets, Data, with_num_nodes=False)

    @torch.no_grad()
    def probabilities(self, states: GraphStates) -> Tensor:
        """(B, C) class probabilities of the graphs."""
        return self.classifier(self.batch(states))

    def __call__(self, states: GraphStates, target_class: int) -> Tensor:
        """(B,) probability of ``target_class``."""
        return self.probabilities(states)[:, target_class]
