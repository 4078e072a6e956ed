r"""Per-site contributions of a model trained with the site-linear readout, and their maps.

A model trained with ``--readout site-linear`` (:class:`~crystalgnn.models.readouts.SiteLinearReadout`)
predicts one scalar :math:`c_i` per atom from the encoder's atom features and pools them; this is
the linear pooling with which the CGCNN paper (Xie & Grossman, PRL 120, 145301 (2018), Fig. 4)
reads "site energies" out of a trained model and maps them on the periodic table for the A and B
sites of perovskites. In the target's units (the training normaliser :math:`\mu, \sigma` undone):

.. math::
    \text{mean:}\quad \hat y = \frac{1}{N}\sum_i e_i,\ e_i = \sigma c_i + \mu \qquad
    \text{sum:}\quad \hat y = \sum_i e_i,\ e_i = \sigma c_i + \mu / N

(for ``site_reduce=sum`` the normaliser's offset :math:`\mu` is shared equally by the :math:`N`
atoms). :func:`site_contributions` returns the :math:`e_i` with the site roles of
:mod:`crystalgnn.explain.site_roles`; the ``prediction`` column is their mean (or sum), checked
against the model's own forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.data.dataset import CrystalDataset, Rejection
from crystalgnn.prediction.results import SitePredictions

#: columns of :func:`site_contributions`' frame (``target`` is added when the data set holds the label)
COLUMNS = ("id", "site_index", "element", "role", "contribution", "prediction")


class NotSiteLinearError(ValueError):
    """The checkpoint was not trained with the site-linear readout (or is not a regression model)."""


def check_site_linear(predictor: Any) -> str:
    """The readout's reduction (``"mean"`` or ``"sum"``); :class:`NotSiteLinearError` when the
    predictor's model has no per-site contributions.
    """
    from crystalgnn.models.readouts import SiteLinearReadout

    readout = getattr(predictor.task.model, "readout", None)
    if not isinstance(readout, SiteLinearReadout):
        kind = getattr(predictor.task.hparams, "readout", None) or type(readout).__name__
        raise NotSiteLinearError(
            f"{predictor.source or 'the model'} was trained with --readout {kind}: per-site contributions "
            "need a model trained with --readout site-linear (crystalgnn train ... --readout site-linear)"
        )
    if predictor.kind != "regression":
        raise NotSiteLinearError(
            f"{predictor.source or 'the model'} is a {predictor.kind} model: per-site contributions are "
            "defined for regression (a classifier's pooled logits are not its probability)"
        )
    return str(readout.reduce)


@dataclass
class SiteContributions:
    """Per-site contributions of a set of structures (:func:`explain_sites`).

    Attributes:
        frame: one row per site: id, site_index, element, role, contribution, prediction
            [, target]; contribution and prediction in ``unit``.
        target, unit: what the model predicts.
        reduce: ``"mean"`` or ``"sum"``: how the contributions make the prediction.
        dataset: the structures (for :meth:`write_structures`).
        rejected: inputs without contributions, with the reason.
    """

    frame: Any
    target: str
    unit: str
    reduce: str
    dataset: CrystalDataset
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return list(dict.fromkeys(self.frame["id"]))

    def element_means(self) -> Any:
        """Mean, standard deviation and count of the contribution per (role, element), lowest mean first."""
        g = self.frame.groupby(["role", "element"])["contribution"]
        out = g.agg(["mean", "std", "count"]).reset_index()
        return out.sort_values(["role", "mean"], kind="stable").reset_index(drop=True)

    def property_name(self) -> str:
        return f"contribution_{self.target}"

    def to_structures(self) -> list[Any]:
        """Copies of the structures with the site properties ``contribution_<target>`` and ``site_role``."""
        return _as_site_predictions(self).to_structures(self.dataset)

    def write_structures(self, out_dir: str | Path) -> list[Path]:
        """``<id>.json`` (pymatgen ``Structure``, contribution and role as site properties) and
        ``<id>.cif`` (the contribution as an atom-site column) per structure, plus ``index.csv``
        and ``site_property.json`` (as ``crystalgnn predict --structures-out`` writes them).
        """
        return _as_site_predictions(self).write_structures(self.dataset, out_dir)

    def write_maps(self, out_dir: str | Path, *, prefix: str = "map") -> list[Path]:
        """Periodic-table heatmaps of the mean contribution per element: one per site role
        (``map_A.png``, ``map_B.png``, ``map_X.png``); sites without a role go to ``map_all.png``
        when no site has one, else to ``map_other.png``.
        """
        from crystalgnn.explain.periodic_table import periodic_table_heatmap

        means = self.element_means()
        roles = sorted(set(means["role"]))
        centre = float(self.frame["contribution"].mean()) if len(self.frame) else None
        unit = f" ({self.unit})" if self.unit else ""
        paths = []
        for role in roles:
            m = means[means["role"] == role]
            name = role or ("other" if len(roles) > 1 else "all")
            what = f"{role} sites" if role else ("sites without a role" if len(roles) > 1 else "all sites")
            paths.append(
                periodic_table_heatmap(
                    dict(zip(m["element"], m["mean"], strict=True)),
                    Path(out_dir) / f"{prefix}_{name}.png",
                    title=f"mean contribution to {self.target} ({self.reduce} of the site terms), {what}",
                    label=f"mean contribution{unit}",
                    counts=dict(zip(m["element"], m["count"].astype(int), strict=True)),
                    center=centre,
                )
            )
        return paths


class _ContributionStructures(SitePredictions):
    """:class:`SitePredictions` writing ``contribution_<target>`` (and ``site_role``) instead of ``predicted_<target>``."""

    roles: dict[str, list[str]]

    def property_name(self) -> str:
        return f"contribution_{self.site_target}"

    def to_structures(self, dataset: CrystalDataset) -> list[Any]:
        out = super().to_structures(dataset)
        for sid, s in zip(self.ids, out, strict=True):
            s.add_site_property("site_role", list(self.roles[sid]))
        return out


def _as_site_predictions(sc: SiteContributions) -> _ContributionStructures:
    ids = sc.ids
    groups = {k: g for k, g in sc.frame.groupby("id", sort=False)}
    res = _ContributionStructures(
        ids, [groups[k]["contribution"].to_numpy(float) for k in ids], sc.target, {sc.target: sc.unit}
    )
    res.roles = {k: [str(r) for r in groups[k]["role"]] for k in ids}
    return res


def explain_sites(
    predictor: Any,
    data: Any,
    *,
    target: str | None = None,
    roles: str = "auto",
    batch_size: int = 256,
    n_jobs: int | None = None,
    show_progress: bool = False,
) -> SiteContributions:
    """Per-site contributions of ``predictor`` (a site-linear regression model) for ``data``.

    Args:
        predictor: a :class:`~crystalgnn.prediction.Predictor` (``Predictor.load(run)``); for an
            ensemble (``EnsemblePredictor``) the members' site terms are averaged, which pools
            into the ensemble's mean prediction as each member's terms pool into its own.
        data: a :class:`~crystalgnn.data.dataset.CrystalDataset` or anything
            :func:`~crystalgnn.data.readers.load_source` reads (paths, dataset names, structures).
        target: which of the model's targets (default: its first).
        roles: site-role scheme of :func:`~crystalgnn.explain.site_roles.site_roles`.
        batch_size, n_jobs, show_progress: batching, graph-building workers, progress bars.

    Raises:
        NotSiteLinearError: the model has no site-linear readout, or is a classifier.
    """
    import pandas as pd
    import torch

    from crystalgnn.explain.site_roles import site_roles
    from crystalgnn.prediction.predictor import predictable_graphs
    from crystalgnn.progress import progress

    reduce = check_site_linear(predictor)
    for m in getattr(predictor, "members", None) or []:
        if check_site_linear(m) != reduce:
            raise NotSiteLinearError("the ensemble's members pool their site terms differently (mean and sum)")
    name = target or predictor.targets[0]
    if name not in predictor.targets:
        raise ValueError(f"the model predicts {', '.join(predictor.targets)}, not {name!r}")
    k = predictor.targets.index(name)
    if not isinstance(data, CrystalDataset):
        from crystalgnn.data.readers import load_source

        data = load_source(data, show_progress=show_progress)
    graphs, keep, rejected = predictable_graphs(
        data,
        predictor.graph_config,
        predictor.supported_elements(),
        n_jobs=n_jobs,
        show_progress=show_progress,
    )
    for g in graphs:
        if getattr(g, "y", None) is None:
            g.y = torch.zeros(1, len(predictor.targets))
    members = list(getattr(predictor, "members", None) or [predictor])  # an ensemble: its members' mean
    total = len(graphs) * len(members)
    with torch.no_grad(), progress(total=total, desc="contributions", disable=not show_progress) as bar:
        per_member = [_contributions(m, graphs, k, reduce, batch_size, bar) for m in members]
    contributions = [np.mean(terms, axis=0) for terms in zip(*per_member, strict=True)]
    structures = [data.structures[i] for i in keep]
    role_lists = site_roles(structures, roles, show_progress=show_progress)
    rows: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    truth = data.targets.get(name)
    labels: list[float] = []
    for i, s, e, r in zip(keep, structures, contributions, role_lists, strict=True):
        if len(e) != len(s):
            raise RuntimeError(f"{data.ids[i]}: {len(e)} contributions for {len(s)} sites")
        n = len(s)
        rows["id"] += [data.ids[i]] * n
        rows["site_index"] += list(range(n))
        rows["element"] += [site.specie.symbol for site in s]
        rows["role"] += r
        rows["contribution"] += e.tolist()
        rows["prediction"] += [float(e.mean() if reduce == "mean" else e.sum())] * n
        if truth is not None:
            labels += [float(truth[i])] * n
    frame = pd.DataFrame(rows)
    if truth is not None:
        frame["target"] = labels
    unit = predictor.units.get(name, "")
    return SiteContributions(frame, name, unit, reduce, data, rejected)


def _contributions(member: Any, graphs: list[Any], k: int, reduce: str, batch_size: int, bar: Any) -> list[np.ndarray]:
    """One model's site terms e_i (target units) per graph, each checked to pool into its prediction."""
    from crystalgnn.training.loaders import make_loader

    task, model = member.task, member.task.model  # CrystalTask.forward: model(b) * y_std + y_mean
    mu, sigma = float(task.y_mean[k]), float(task.y_std[k])
    out: list[np.ndarray] = []
    for b in make_loader(graphs, batch_size):
        enc = model.encoder(b)  # once: the contributions and the model's own pooling read it
        c = model.readout.contributions(enc)[:, k].double().numpy()
        forward = (model.readout(enc, b)[:, k].double() * sigma + mu).numpy()
        counts = np.bincount(b.batch.numpy(), minlength=b.num_graphs)
        for j, cj in enumerate(np.split(c, np.cumsum(counts)[:-1])):
            e = sigma * cj + (mu if reduce == "mean" else mu / len(cj))
            pooled = e.mean() if reduce == "mean" else e.sum()
            if not np.isclose(pooled, forward[j], rtol=1e-4, atol=1e-4 * max(1.0, abs(sigma))):
                raise RuntimeError(
                    f"pooled contributions {pooled:.6g} != prediction {forward[j]:.6g}: the readout is not linear pooling"
                )
            out.append(e)
        bar.update(int(b.num_graphs))
    return out


def site_contributions(predictor: Any, data: Any, **kwargs: Any) -> Any:
    """The per-site table of :func:`explain_sites` (a pandas ``DataFrame``: id, site_index,
    element, role, contribution, prediction [, target]); the rejected inputs are in
    ``frame.attrs["rejected"]``.
    """
    res = explain_sites(predictor, data, **kwargs)
    res.frame.attrs["rejected"] = res.rejected
    return res.frame
