r"""XGNN model-level explanations adapted to crystals (Yuan et al., "XGNN: Towards Model-Level
Explanations of Graph Neural Networks", KDD 2020; the crystal adaptation of the thesis behind
crystalgnn).

A graph generator (the GCN policy of :mod:`~crystalgnn.explain.xgnn_policy`) is trained by
policy gradient to build label graphs (atoms labelled by periodic group or period) that a trained
classifier assigns to a target class; the graphs it then generates, kept when the classifier's
probability exceeds ``min_prob`` (0.8), show what the classifier has learned about each class.

Each episode starts from one atom (its label drawn from the label frequencies of the data) and
takes ``max_steps`` actions. The reward of action :math:`t` (XGNN Eq. 5-7) is

.. math::
    R_t = \big(p_c(G_{t+1}) - 1/C\big)
        + \lambda \frac{1}{m}\sum_{k=1}^{m}\big(p_c(\mathrm{Rollout}_k(G_{t+1})) - 1/C\big)

for a valid action and ``invalid_penalty`` (-1) for an action breaking the validity rules
(:mod:`~crystalgnn.explain.xgnn_env`), with :math:`m` rollouts of the current policy to the end of
the episode. The loss is REINFORCE's :math:`-\sum_t A_t \log \pi(a_t | G_t)` (XGNN Eq. 8) minus a
small entropy bonus, with :math:`A_t` the reward standardised over the batch at step :math:`t`
(a baseline; XGNN uses :math:`R_t` itself, which on crystal classifiers barely moved the
policy), averaged over a batch of episodes run side by side (XGNN updates after each step of a
single episode; one update per batch of episodes is the vectorised equivalent).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crystalgnn.explain.xgnn_data import label_pair_distances, radius_distances
from crystalgnn.explain.xgnn_env import Classifier, LabelGraphScorer, apply_actions, state_records
from crystalgnn.explain.xgnn_labels import (
    N_LABELS,
    check_kind,
    detect_labels,
    element_label,
    label_names,
    representative_elements,
)
from crystalgnn.explain.xgnn_policy import GraphStates, XGNNPolicy


@dataclass(frozen=True)
class XGNNConfig:
    """Generator settings.

    Args:
        max_nodes: atom limit of a generated graph (thesis: 6).
        max_degree: neighbour limit per atom (thesis: 4).
        max_steps: actions per episode.
        iterations: policy-gradient updates.
        batch: episodes per update.
        rollouts: rollouts per action (m); 0 disables them.
        rollout_weight: their weight (lambda).
        invalid_penalty: reward of an action breaking the rules.
        entropy: weight of the entropy bonus.
        baseline: subtract the batch's mean reward at each step and divide by its standard
            deviation (REINFORCE with a baseline, Williams 1992; XGNN uses the raw reward, which
            barely moves a policy whose rewards are all of one sign).
        lr: Adam learning rate.
        hidden: policy width.
        seed: seed of the policy's initialisation and sampling.
    """

    max_nodes: int = 6
    max_degree: int = 4
    max_steps: int = 7
    iterations: int = 150
    batch: int = 32
    rollouts: int = 4
    rollout_weight: float = 1.0
    invalid_penalty: float = -1.0
    entropy: float = 0.01
    baseline: bool = True
    lr: float = 0.02
    hidden: int = 32
    seed: int = 0


@dataclass
class Explanation:
    """One generated graph: atom labels (0-based), bonds ``i < j``, the classifier's probability."""

    labels: list[int]
    edges: list[tuple[int, int]]
    prob: float


@dataclass
class XGNNResult:
    """The explanations of one class and how they were obtained.

    Attributes:
        kind: ``"group"`` or ``"period"``.
        target_class: the explained class (0 = low, 1 = high for median-split classifiers).
        explanations: the kept graphs (probability above ``min_prob``), duplicates included.
        n_sampled: graphs examined to obtain them (``kept_fraction`` = kept / examined).
        history: mean target-class probability of the final graphs per training iteration.
        elements: atomic number fed for each label; ``distances``: bond length per label pair.
    """

    kind: str
    target_class: int
    explanations: list[Explanation]
    n_sampled: int
    min_prob: float
    history: list[float] = field(default_factory=list)
    elements: list[int] = field(default_factory=list)
    distances: list[list[float]] = field(default_factory=list)

    @property
    def kept_fraction(self) -> float:
        return len(self.explanations) / self.n_sampled if self.n_sampled else 0.0

    @property
    def n_distinct(self) -> int:
        return len({(tuple(e.labels), tuple(e.edges)) for e in self.explanations})

    def to_dict(self) -> dict[str, Any]:
        names = label_names(self.kind)
        d = asdict(self)
        d["label_names"] = names
        d["kept_fraction"] = self.kept_fraction
        d["n_distinct"] = self.n_distinct
        for e in d["explanations"]:
            e["label_names"] = [names[v] for v in e["labels"]]
        return d


def _episode(policy: XGNNPolicy, first: torch.Tensor, cfg: XGNNConfig, n_steps: int) -> GraphStates:
    """Run ``n_steps`` sampled actions from single atoms of labels ``first`` (no gradient)."""
    states = GraphStates.start(first, cfg.max_nodes)
    return _continue(policy, states, cfg, n_steps)


@torch.no_grad()
def _continue(policy: XGNNPolicy, states: GraphStates, cfg: XGNNConfig, n_steps: int) -> GraphStates:
    for _ in range(n_steps):
        start, end, _, _ = policy.act(states)
        states, _ = apply_actions(states, start, end, cfg.max_nodes, cfg.max_degree)
    return states


def train_generator(
    scorer: LabelGraphScorer,
    n_labels: int,
    target_class: int,
    cfg: XGNNConfig = XGNNConfig(),
    first_label_weights: np.ndarray | None = None,
    n_classes: int = 2,
    progress: Any = None,
) -> tuple[XGNNPolicy, list[float]]:
    """Train a policy to generate graphs of ``target_class`` (see the module doc).

    Args:
        scorer: the classifier on label graphs.
        n_labels: L.
        target_class: the class to explain.
        cfg: generator settings.
        first_label_weights: (L,) weights of the first atom's label (default: uniform).
        n_classes: C of the :math:`1/C` baseline.
        progress: optional callable ``progress(iteration, mean_prob)``.

    Returns:
        The policy and the mean target probability of the batch's final graphs per iteration.
    """
    torch.manual_seed(cfg.seed)
    policy = XGNNPolicy(n_labels, cfg.max_nodes, cfg.hidden)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    weights = torch.as_tensor(
        np.ones(n_labels) if first_label_weights is None else first_label_weights, dtype=torch.float
    )
    base = 1.0 / n_classes
    history: list[float] = []
    for it in range(cfg.iterations):
        states = GraphStates.start(torch.multinomial(weights, cfg.batch, replacement=True), cfg.max_nodes)
        loss = torch.zeros(())
        for t in range(cfg.max_steps):
            start, end, logp, entropy = policy.act(states)
            states, valid = apply_actions(states, start, end, cfg.max_nodes, cfg.max_degree)
            reward = scorer(states, target_class) - base
            left = cfg.max_steps - t - 1
            if cfg.rollouts and left:
                rolled = _continue(policy, states.repeat(cfg.rollouts), cfg, left)
                reward = reward + cfg.rollout_weight * (scorer(rolled, target_class) - base).view(
                    -1, cfg.rollouts
                ).mean(1)
            reward = torch.where(valid, reward, torch.full_like(reward, cfg.invalid_penalty))
            if cfg.baseline:  # REINFORCE with a baseline: the batch's mean reward at this step
                reward = (reward - reward.mean()) / (reward.std() + 1e-6)
            loss = loss - (reward * logp).mean() - cfg.entropy * entropy.mean()
        opt.zero_grad()
        (loss / cfg.max_steps).backward()
        opt.step()
        history.append(float(scorer(states, target_class).mean()))
        if progress is not None:
            progress(it, history[-1])
    return policy, history


def sample_explanations(
    policy: XGNNPolicy,
    scorer: LabelGraphScorer,
    target_class: int,
    cfg: XGNNConfig,
    n_explanations: int = 150,
    min_prob: float = 0.8,
    max_samples: int = 5000,
    first_label_weights: np.ndarray | None = None,
    batch: int = 250,
) -> tuple[list[Explanation], int]:
    """Sample episodes of the trained policy until ``n_explanations`` graphs have a target
    probability above ``min_prob`` (or ``max_samples`` were drawn). Returns them and the number
    of graphs examined up to the last one kept (their ratio is the fraction above ``min_prob``).
    """
    n_labels = policy.n_labels
    weights = torch.as_tensor(
        np.ones(n_labels) if first_label_weights is None else first_label_weights, dtype=torch.float
    )
    kept: list[Explanation] = []
    n = 0
    while len(kept) < n_explanations and n < max_samples:
        size = min(batch, max_samples - n)
        states = _episode(policy, torch.multinomial(weights, size, replacement=True), cfg, cfg.max_steps)
        probs = scorer(states, target_class)
        for (labels, edges), p in zip(state_records(states), probs.tolist(), strict=True):
            if len(kept) == n_explanations:
                break
            n += 1  # graphs examined, so len(kept) / n is the pass rate
            if p > min_prob:
                kept.append(Explanation(labels, edges, float(p)))
    return kept, n


def _task_of(predictor_or_run: Any) -> Any:
    """The trained task of a Predictor, a run folder / checkpoint, or a task itself."""
    if isinstance(predictor_or_run, (str, Path)):
        from crystalgnn.prediction.predictor import Predictor

        predictor_or_run = Predictor.load(predictor_or_run)
    return getattr(predictor_or_run, "task", predictor_or_run)


@dataclass
class XGNNSetup:
    """What the generator of every class of one classifier shares (:func:`prepare`).

    Attributes:
        task: the trained classifier; ``kind``: its labels; ``scorer``: it on label graphs;
        first_label_weights: (L,) weights of the first atom's label; ``n_classes``: C.
    """

    task: Any
    kind: str
    scorer: LabelGraphScorer
    first_label_weights: np.ndarray
    n_classes: int


def prepare(
    predictor_or_run: Any, labels: str | None = None, data: Any = None, max_structures: int = 1000
) -> XGNNSetup:
    """Load the classifier, check its atom features are labels and set up the scorer.

    Args:
        predictor_or_run: a :class:`~crystalgnn.prediction.predictor.Predictor`, a run folder or
            checkpoint of a graph-level classifier whose atom features are group or period labels.
        labels: ``"group"`` or ``"period"``; ``None`` reads it from the model's atom features. A
            given value that the features contradict raises ``ValueError``.
        data: structures (any :func:`~crystalgnn.data.readers.load_source` source or dataset) to
            read the bond length of each label pair, the first-atom label frequencies and the
            representative elements from; ``None`` uses sums of atomic radii and uniform labels.
        max_structures: at most this many structures of ``data`` are used (seeded sample).
    """
    task = _task_of(predictor_or_run)
    if getattr(task, "spec", None) is not None and (task.spec.kind != "classification" or task.spec.level != "graph"):
        raise ValueError("XGNN explains graph-level classifiers; this model is not one")
    model = task.model
    kind = detect_labels(model.atom_features.table.cpu().numpy())
    if labels is not None and check_kind(labels) != kind:
        raise ValueError(f"--labels {labels}: the model's atom features are {kind} labels")
    n_labels = N_LABELS[kind]
    supported = model.atom_features.supported_elements()
    if data is not None:
        graphs = _data_graphs(data, task, max_structures)
        zs = torch.cat([g.z for g in graphs]).tolist()
        elements = representative_elements(kind, zs, supported)
        distances = label_pair_distances(graphs, kind)
        weights = np.bincount([element_label(z, kind) for z in zs], minlength=n_labels).astype(float)
        weights = weights + 1e-3 * weights.sum()  # every label can start an episode
    else:
        elements = representative_elements(kind, (), supported)
        distances = radius_distances(elements)
        weights = np.ones(n_labels)
    scorer = LabelGraphScorer(_classifier(task), elements, distances)
    n_classes = int(scorer.probabilities(GraphStates.start(torch.zeros(1, dtype=torch.long), 1)).shape[1])
    return XGNNSetup(task, kind, scorer, weights, n_classes)


def explain_model(
    predictor_or_run: Any,
    labels: str | None = None,
    target_class: int = 1,
    n_explanations: int = 150,
    min_prob: float = 0.8,
    *,
    data: Any = None,
    max_structures: int = 1000,
    config: XGNNConfig = XGNNConfig(),
    max_samples: int = 5000,
    progress: Any = None,
) -> XGNNResult:
    """XGNN explanations of one class of a trained label classifier.

    Args:
        predictor_or_run: a Predictor, run folder or checkpoint (see :func:`prepare`), or the
            :class:`XGNNSetup` :func:`prepare` returned (to explain several classes).
        labels, data, max_structures: see :func:`prepare`.
        target_class: the class to explain (median-split classifiers: 0 = low, 1 = high).
        n_explanations: graphs to keep (thesis: 150).
        min_prob: keep a graph when the classifier's probability of the class exceeds this.
        config: generator settings.
        max_samples: stop sampling after this many graphs.
        progress: optional callable ``progress(iteration, mean_prob)`` during training.
    """
    setup = (
        predictor_or_run
        if isinstance(predictor_or_run, XGNNSetup)
        else prepare(predictor_or_run, labels, data, max_structures)
    )
    if not 0 <= target_class < setup.n_classes:
        raise ValueError(f"target class {target_class} outside 0..{setup.n_classes - 1}")
    n_labels, weights, scorer = N_LABELS[setup.kind], setup.first_label_weights, setup.scorer
    policy, history = train_generator(scorer, n_labels, target_class, config, weights, setup.n_classes, progress)
    kept, n = sample_explanations(policy, scorer, target_class, config, n_explanations, min_prob, max_samples, weights)
    elements = scorer.elements.tolist()
    return XGNNResult(setup.kind, target_class, kept, n, min_prob, history, elements, scorer.distances.tolist())


def _classifier(task: Any) -> Classifier:
    """Batch -> (B, C) probabilities, in eval mode without gradients."""
    task.eval()

    def probs(batch: Any) -> torch.Tensor:
        with torch.no_grad():
            out = task(batch)
        return out if getattr(task, "spec", None) is not None else torch.softmax(out, -1)

    return probs


def _data_graphs(data: Any, task: Any, max_structures: int) -> list[Any]:
    """Crystal graphs of (a seeded sample of) ``data``, as the model builds them."""
    from crystalgnn.data.dataset import CrystalDataset
    from crystalgnn.data.readers import load_source
    from crystalgnn.graphs.builder import build_graph_list
    from crystalgnn.graphs.crystal_graph import GraphConfig

    ds = data if isinstance(data, CrystalDataset) else load_source(data, subset=max_structures, show_progress=False)
    if len(ds) > max_structures:
        ds = ds.subset(np.sort(np.random.default_rng(0).choice(len(ds), max_structures, replace=False)))
    graph_config = GraphConfig.from_dict(task.hparams.graph_config)
    supported = task.model.atom_features.supported_elements()
    graphs, _ = build_graph_list(
        ds.structures, graph_config, supported_elements=supported, n_jobs=1, show_progress=False
    )
    kept = [g for g in graphs if g is not None]
    if not kept:
        raise ValueError("no structure of the data gives a graph the model can read")
    return kept
