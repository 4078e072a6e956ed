r"""Crystal Twins: self-supervised pretraining of an encoder on unlabelled crystals.

Magar, Wang & Barati Farimani, "Crystal Twins: self-supervised learning for crystalline material
property prediction", npj Comput. Mater. 8, 231 (2022). Two augmented views of every structure
(:mod:`crystalgnn.training.augment`: position noise, atom masking, edge dropping) go through the
same encoder; the graph embedding is the mean of the per-atom features followed by a projector
MLP, and one of two losses pulls the views together:

- **Barlow Twins** (Zbontar et al., ICML 2021, Eq. 1): with :math:`\tilde z` the embeddings
  standardised over the batch and :math:`C = \tilde z_1^\top \tilde z_2 / N` their
  cross-correlation,

  .. math:: \mathcal L_{BT} = \sum_i (1 - C_{ii})^2 + \lambda \sum_i \sum_{j \ne i} C_{ij}^2,
            \qquad \lambda = 5\cdot 10^{-3};

- **SimSiam** (Chen & He, CVPR 2021, Eqs. 1-2): a predictor MLP :math:`h` and a stop-gradient,

  .. math:: \mathcal L_{SS} = -\tfrac12 \big[\cos(h(z_1), \mathrm{sg}(z_2))
            + \cos(h(z_2), \mathrm{sg}(z_1))\big].

Labels are not used. :func:`pretrain` writes ``OUT/model.ckpt``, a regular crystalgnn checkpoint
whose encoder is the pretrained one (its head is a placeholder for the target
``crystal_twins``), so ``crystalgnn train SOURCE --target T --init-from OUT`` fine-tunes it
(:func:`crystalgnn.training.finetune.init_weights`; the head is new since the target differs).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn
from torch_geometric.nn import global_mean_pool

from crystalgnn.models.registry import build_model, make_config
from crystalgnn.training.augment import Augmentation, masked_atom_inputs

METHODS = ("barlow", "simsiam")
GRAPH_MODELS = ("cgcnn", "megnet", "schnet", "alignn")
PLACEHOLDER_TARGET = "crystal_twins"


def barlow_twins_loss(z1: Tensor, z2: Tensor, lambd: float = 5e-3, eps: float = 1e-5) -> Tensor:
    """Barlow Twins' redundancy-reduction loss of two (N, D) batches of embeddings (Eq. 1):
    zero when the batch-standardised views are equal and their features are uncorrelated.
    """
    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / z1.std(0, unbiased=False).clamp_min(eps)
    b = (z2 - z2.mean(0)) / z2.std(0, unbiased=False).clamp_min(eps)
    c = a.T @ b / n
    diag = torch.diagonal(c)
    on = (diag - 1).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    return on + lambd * off


def simsiam_loss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """SimSiam's symmetric negative cosine similarity with stop-gradient on the projections
    (Eq. 2): -1 when each prediction points along the other view's projection.
    """
    return -0.5 * (
        F.cosine_similarity(p1, z2.detach(), dim=-1).mean() + F.cosine_similarity(p2, z1.detach(), dim=-1).mean()
    )


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    """Linear -> batch norm -> ReLU -> linear (the projector/predictor of both papers)."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.BatchNorm1d(d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


class CrystalTwins(L.LightningModule):
    """An encoder trained on pairs of augmented views (Barlow Twins or SimSiam).

    Args:
        model_name: registry name of the architecture (``cgcnn``, ``megnet``, ``schnet``, ``alignn``).
        model_config: its hyper-parameters (dict).
        atom_table: (max_Z + 1, F) atom-feature table (kept in the encoder's ``state_dict``).
        method: ``barlow`` or ``simsiam``.
        projector_dim: width of the projector (and of the SimSiam predictor's output).
        lambd: Barlow Twins' off-diagonal weight.
        augmentation: :class:`~crystalgnn.training.augment.Augmentation` fields.
        lr, weight_decay: Adam's.
        seed: seeds the views of each epoch (a resumed run draws the same ones).
    """

    def __init__(
        self,
        model_name: str,
        model_config: dict[str, Any],
        atom_table: Any,
        method: str = "barlow",
        projector_dim: int = 128,
        lambd: float = 5e-3,
        augmentation: dict[str, float] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"--method must be one of {', '.join(METHODS)} (got {method!r})")
        self.save_hyperparameters(ignore=["atom_table"])
        cfg = make_config(model_name, model_config)
        self.encoder = build_model(model_name, cfg, torch.as_tensor(atom_table), out_dim=1).encoder
        width = int(self.encoder.out_channels)
        self.projector = _mlp(width, projector_dim, projector_dim)
        self.predictor = _mlp(projector_dim, max(projector_dim // 4, 1), projector_dim) if method == "simsiam" else None
        self.augment = Augmentation(**(augmentation or {}))
        self.method, self.lambd, self.seed = method, lambd, seed
        self.views = torch.Generator()

    def embed(self, view: Any) -> Tensor:
        """Projected graph embedding of one view: mean-pooled encoder features -> projector."""
        with masked_atom_inputs(self.encoder, getattr(view, "atom_mask", None)):
            x = self.encoder(view).x
        pooled = global_mean_pool(x, view.batch, size=view.num_graphs)
        return self.projector(pooled)

    def pair_loss(self, batch: Any) -> Tensor:
        """The loss of two augmented views of ``batch``."""
        z1 = self.embed(self.augment(batch, self.views))
        z2 = self.embed(self.augment(batch, self.views))
        if self.predictor is None:
            return barlow_twins_loss(z1, z2, self.lambd)
        return simsiam_loss(self.predictor(z1), self.predictor(z2), z1, z2)

    def on_train_epoch_start(self) -> None:
        self.views.manual_seed(self.seed * 1_000_003 + self.current_epoch)
        torch.manual_seed(self.seed * 100_003 + self.current_epoch)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        if int(batch.num_graphs) < 2:  # batch statistics need two structures: skip a lone one
            return None
        loss = self.pair_loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=int(batch.num_graphs), prog_bar=True)
        return loss

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return torch.optim.Adam(self.parameters(), lr=float(hp["lr"]), weight_decay=float(hp["weight_decay"]))


@dataclass
class PretrainConfig:
    """A Crystal Twins run (``crystalgnn pretrain``); saved as ``OUT/pretrain.yaml``.

    Args:
        sources: files, folders or dataset short names (their labels are not read).
        method: ``barlow`` or ``simsiam``.
        model, model_options: the encoder (use the options of the runs to fine-tune).
        epochs, batch_size, lr, weight_decay, seed: the optimisation (Adam).
        noise, atom_mask, edge_drop: the augmentations.
        projector_dim, lambd: the projector width and Barlow Twins' lambda.
        subset: pretrain on a seeded random subset of this many structures.
        out: the output folder.
    """

    sources: list[str] = field(default_factory=list)
    method: str = "barlow"
    model: str = "cgcnn"
    model_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-6
    seed: int = 0
    noise: float = 0.05
    atom_mask: float = 0.10
    edge_drop: float = 0.10
    projector_dim: int = 128
    lambd: float = 5e-3
    subset: int | None = None
    out: str = "runs/crystal-twins"
    n_jobs: int | None = None
    num_threads: int | None = None
    cache_dir: str | None = None
    progress: bool = True

    # options that may change when a pretraining run is resumed
    RESUME_FREE = ("epochs", "n_jobs", "num_threads", "cache_dir", "progress")

    def validate(self) -> PretrainConfig:
        """One-line ``ValueError`` naming the flag of a bad value (no torch needed)."""
        if not self.sources:
            raise ValueError("no SOURCE given")
        if self.method not in METHODS:
            raise ValueError(f"--method must be one of {', '.join(METHODS)} (got {self.method!r})")
        if self.model not in GRAPH_MODELS:
            raise ValueError(f"--model must be a graph model: {', '.join(GRAPH_MODELS)} (got {self.model!r})")
        for name, lo in (("epochs", 1), ("batch_size", 2), ("projector_dim", 1), ("subset", 2)):
            v = getattr(self, name)
            if v is not None and v < lo:
                raise ValueError(f"--{name.replace('_', '-')} must be >= {lo} (got {v})")
        if not self.lr > 0 or not self.weight_decay >= 0 or not self.lambd >= 0:
            raise ValueError("--lr must be > 0, --weight-decay and --lambd >= 0")
        Augmentation(self.noise, self.atom_mask, self.edge_drop)  # raises for bad values
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if k not in self.RESUME_FREE}


@dataclass
class PretrainResult:
    """A finished pretraining run: its folder, the fine-tunable checkpoint and a summary."""

    out: Path
    checkpoint: Path
    summary: dict[str, Any]


def _check_folder(out: Path, cfg: PretrainConfig) -> None:
    saved = out / "pretrain.yaml"
    if saved.is_file():
        old = {k: v for k, v in (yaml.safe_load(saved.read_text()) or {}).items() if k not in cfg.RESUME_FREE}
        if old != json.loads(json.dumps(cfg.identity())):
            diff = sorted(k for k, v in cfg.identity().items() if old.get(k) != v)
            raise ValueError(
                f"{out} holds another pretraining run (differs in: {', '.join(diff)}); choose another --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def load_structures_graphs(cfg: PretrainConfig, graph_config: Any) -> tuple[Any, list[Any], torch.Tensor, str]:
    """The sources as one unlabelled dataset, their graphs, the atom table and its name."""
    from crystalgnn.data.readers import load_source
    from crystalgnn.graphs.atom_features import AtomFeaturizer
    from crystalgnn.graphs.builder import build_dataset_graphs
    from crystalgnn.graphs.cache import GraphCache

    source: Any = cfg.sources if len(cfg.sources) > 1 else cfg.sources[0]
    ds = load_source(source, n_jobs=cfg.n_jobs, show_progress=cfg.progress, subset=cfg.subset, subset_seed=cfg.seed)
    feat = AtomFeaturizer.from_json(ds.atom_init) if ds.atom_init else AtomFeaturizer.cgcnn()
    table = torch.tensor(feat.matrix())
    supported = [int(z) for z in torch.nonzero(~torch.isnan(table).any(dim=1)).flatten()]
    cache = GraphCache(Path(cfg.cache_dir) / "graphs.lmdb" if cfg.cache_dir else None)
    graphs, _ = build_dataset_graphs(ds, graph_config, cache=cache, supported_elements=supported,
                                     n_jobs=cfg.n_jobs, show_progress=cfg.progress)  # fmt: skip
    if len(graphs) < 2:
        raise ValueError(f"{', '.join(cfg.sources)}: {len(graphs)} usable structures; pretraining needs at least 2")
    return ds, list(graphs), table, (str(ds.atom_init) if ds.atom_init else "cgcnn")


def export_encoder(
    module: CrystalTwins, table: torch.Tensor, featurizer: str, path: Path, extra: dict[str, Any]
) -> Path:
    """Save the pretrained encoder as a crystalgnn checkpoint with a placeholder head."""
    from crystalgnn.training.checkpoints import save_task
    from crystalgnn.training.task import CrystalTask

    hp = module.hparams
    cfg = make_config(hp["model_name"], hp["model_config"])
    task = CrystalTask(
        model_name=hp["model_name"], model_config=cfg.to_dict(), graph_config=cfg.graph_config().to_dict(),
        target={"names": [PLACEHOLDER_TARGET]}, atom_table=table, featurizer=featurizer, seed=int(hp["seed"]),
        extra={"pretrained": f"crystal-twins-{hp['method']}", **extra},
    )  # fmt: skip
    task.model.encoder.load_state_dict(module.encoder.state_dict())
    return save_task(task, path)


def pretrain(cfg: PretrainConfig) -> PretrainResult:
    """Pretrain ``cfg.model``'s encoder on the structures of ``cfg.sources`` (Crystal Twins).

    Writes into ``cfg.out``: ``pretrain.yaml`` (the configuration), ``log/metrics.csv`` (loss per
    epoch), ``checkpoints/last.ckpt`` (the resume point: the same command continues an
    interrupted run, more ``epochs`` extend a finished one), ``model.ckpt`` (the encoder to
    fine-tune) and ``summary.json``.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from crystalgnn.training.loaders import make_loader
    from crystalgnn.training.loop import _merge_resumed_log
    from crystalgnn.training.quiet import quiet_lightning

    cfg.validate()
    quiet_lightning()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    out = Path(cfg.out)
    _check_folder(out, cfg)
    t0 = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model_cfg = make_config(cfg.model, cfg.model_options)
    ds, graphs, table, feat_name = load_structures_graphs(cfg, model_cfg.graph_config())
    ds.write_rejections(out / "rejected.csv")
    data_time = time.perf_counter() - t0
    torch.manual_seed(cfg.seed)
    module = CrystalTwins(
        cfg.model, model_cfg.to_dict(), table, method=cfg.method, projector_dim=cfg.projector_dim, lambd=cfg.lambd,
        augmentation={"noise": cfg.noise, "atom_mask": cfg.atom_mask, "edge_drop": cfg.edge_drop},
        lr=cfg.lr, weight_decay=cfg.weight_decay, seed=cfg.seed,
    )  # fmt: skip
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    trainer = L.Trainer(
        max_epochs=cfg.epochs, accelerator="cpu", devices=1, logger=CSVLogger(str(out), name="log", version=""),
        callbacks=[ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, enable_version_counter=False)],
        enable_progress_bar=cfg.progress, enable_model_summary=False, deterministic=True, log_every_n_steps=1,
    )  # fmt: skip
    loader = make_loader(graphs, cfg.batch_size, shuffle=True, seed=cfg.seed)
    log_csv = out / "log" / "metrics.csv"
    old_log = log_csv.read_bytes() if last.is_file() and log_csv.is_file() else None  # the CSV logger restarts it
    trainer.fit(module, loader, ckpt_path=str(last) if last.is_file() else None)
    if old_log is not None:
        _merge_resumed_log(old_log, log_csv)
    loss = trainer.callback_metrics.get("train_loss")
    summary = {
        "method": cfg.method, "model": cfg.model, "sources": list(cfg.sources), "n_structures": len(graphs),
        "n_rejected": len(ds.rejections), "epochs_run": int(trainer.current_epoch),
        "final_loss": float(loss) if loss is not None else None, "data_time_s": round(data_time, 3),
        "wall_time_s": round(time.perf_counter() - t0, 3),
    }  # fmt: skip
    path = export_encoder(
        module, table, feat_name, out / "model.ckpt", {"sources": list(cfg.sources), "n_pretrain": len(graphs)}
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return PretrainResult(out, path, summary)


__all__ = [
    "CrystalTwins",
    "PretrainConfig",
    "PretrainResult",
    "barlow_twins_loss",
    "export_encoder",
    "pretrain",
    "simsiam_loss",
]
