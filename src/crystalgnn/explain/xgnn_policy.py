r"""The graph-generation policy of XGNN (Yuan et al., KDD 2020, Sec. 4.2), on label graphs.

A state is a partial graph of at most ``max_nodes`` atoms, each with one of ``L`` labels
(periodic group or period). As in XGNN, the policy sees the partial graph *plus one isolated
candidate node per label*, so every graph of a batch is a dense block of ``S = max_nodes + L``
slots: slots ``0 .. max_nodes-1`` hold the atoms (unused ones masked), slots ``max_nodes + l``
the candidate of label ``l``. Node features are the one-hot labels.

.. math::
    H = \mathrm{GCN}(X, A), \qquad
    p_\text{start} = \mathrm{softmax}_{i \in \text{atoms}}\big(\mathrm{MLP}_s(H_i)\big), \qquad
    p_\text{end} = \mathrm{softmax}_{j \ne s}\big(\mathrm{MLP}_e([H_s \oplus H_j])\big)

The start node is drawn among the existing atoms, the end node among the existing atoms and the
candidates (a candidate end adds a new atom of its label). The GCN is PyG's
:class:`~torch_geometric.nn.DenseGCNConv` (Kipf & Welling) on the padded adjacency, so a whole
batch of states is one tensor operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import DenseGCNConv


@dataclass
class GraphStates:
    """A batch of B partial label graphs.

    Attributes:
        labels: (B, max_nodes) label of each atom slot, ``-1`` for unused slots.
        adj: (B, max_nodes, max_nodes) symmetric 0/1 adjacency of the atoms.
    """

    labels: Tensor
    adj: Tensor

    @classmethod
    def start(cls, first: Tensor, max_nodes: int) -> GraphStates:
        """One single-atom graph per entry of ``first`` (B,) labels."""
        b = first.shape[0]
        labels = torch.full((b, max_nodes), -1, dtype=torch.long)
        labels[:, 0] = first
        return cls(labels, torch.zeros(b, max_nodes, max_nodes))

    @property
    def n_atoms(self) -> Tensor:
        """(B,) atoms per graph (atoms fill the first slots)."""
        return (self.labels >= 0).sum(1)

    def clone(self) -> GraphStates:
        return GraphStates(self.labels.clone(), self.adj.clone())

    def repeat(self, m: int) -> GraphStates:
        """Each graph ``m`` times in a row (for rollouts)."""
        return GraphStates(self.labels.repeat_interleave(m, 0), self.adj.repeat_interleave(m, 0))


class XGNNPolicy(nn.Module):
    """GCN policy: start-node and end-node distributions over a batch of :class:`GraphStates`.

    Args:
        n_labels: L, the number of node labels (18 groups or 7 periods).
        max_nodes: the atom limit (the candidates come after it).
        hidden: width of the GCN and MLPs.
        n_layers: GCN layers (XGNN: 3).
    """

    def __init__(self, n_labels: int, max_nodes: int, hidden: int = 32, n_layers: int = 3) -> None:
        super().__init__()
        self.n_labels, self.max_nodes = n_labels, max_nodes
        dims = [n_labels, *[hidden] * n_layers]
        self.convs = nn.ModuleList(DenseGCNConv(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.start_head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.end_head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def embed(self, states: GraphStates) -> tuple[Tensor, Tensor]:
        """(B, S, hidden) node embeddings and the (B, S) mask of used slots.

        The candidates are isolated nodes, so their embeddings do not depend on the graph: they
        are computed once, on an edgeless graph of the L labels, and appended to each graph's
        atom embeddings (the same numbers as one GCN over all S slots, with S = max_nodes + L
        reduced to max_nodes rows per graph).
        """
        b, big_l = states.labels.shape[0], self.n_labels
        atoms = states.labels >= 0
        x = F.one_hot(states.labels.clamp(min=0), big_l).float() * atoms.unsqueeze(-1)
        c = torch.eye(big_l).unsqueeze(0)
        empty = torch.zeros(1, big_l, big_l)
        for conv in self.convs:
            x = F.relu(conv(x, states.adj, atoms))
            c = F.relu(conv(c, empty))
        h = torch.cat([x, c.expand(b, -1, -1)], 1)
        return h, torch.cat([atoms, torch.ones(b, big_l, dtype=torch.bool)], 1)

    def forward(self, states: GraphStates) -> tuple[Tensor, Tensor]:
        """(B, S) start-node logits (atoms only; others ``-inf``) and the embeddings (B, S, H)."""
        h, mask = self.embed(states)
        n = self.max_nodes
        atoms = self.start_head(h[:, :n]).squeeze(-1).masked_fill(~mask[:, :n], float("-inf"))
        logits = torch.cat([atoms, atoms.new_full((h.shape[0], self.n_labels), float("-inf"))], 1)
        return logits, h

    def end_logits(self, h: Tensor, start: Tensor, states: GraphStates) -> Tensor:
        r"""(B, S) end-node logits given the start slots (B,): used slots except the start.

        The first layer of the end MLP on :math:`[H_s \oplus H_j]` is evaluated as
        :math:`H_s W_a + H_j W_b` (the start term once per graph, not once per slot).
        """
        b, hidden = h.shape[0], h.shape[2]
        first, rest = self.end_head[0], self.end_head[1:]
        assert isinstance(first, nn.Linear)
        w = first.weight
        hs = h[torch.arange(b), start] @ w[:, :hidden].T + first.bias
        logits = rest(hs.unsqueeze(1) + h @ w[:, hidden:].T).squeeze(-1)
        mask = torch.cat([states.labels >= 0, torch.ones(b, self.n_labels, dtype=torch.bool)], 1)
        mask[torch.arange(b), start] = False
        return logits.masked_fill(~mask, float("-inf"))

    def act(self, states: GraphStates, greedy: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Sample (or take the most likely) actions: start (B,), end (B,) slots, their joint
        log-probability (B,) and the sum of the two choices' entropies (B,).
        """
        logits_s, h = self(states)
        start, logp_s, ent_s = _choose(logits_s, greedy)
        end, logp_e, ent_e = _choose(self.end_logits(h, start, states), greedy)
        return start, end, logp_s + logp_e, ent_s + ent_e


def _choose(logits: Tensor, greedy: bool) -> tuple[Tensor, Tensor, Tensor]:
    """A choice per row of masked logits (B, S) (``-inf`` = not allowed): the index (sampled or
    argmax), its log-probability and the row's entropy.
    """
    logp = torch.log_softmax(logits, -1)
    probs = logp.exp()
    pick = logits.argmax(1) if greedy else torch.multinomial(probs, 1).squeeze(1)
    entropy = -(probs * logp.masked_fill(probs == 0, 0.0)).sum(-1)
    return pick, logp.gather(1, pick.unsqueeze(1)).squeeze(1), entropy
