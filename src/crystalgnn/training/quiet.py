"""Lightning's chatter and irrelevant warnings, silenced in one place for the library and the CLI."""

from __future__ import annotations

import logging
import warnings

_QUIET_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
    "lightning.pytorch.trainer.connectors.signal_connector",
    "lightning.fabric",
    "lightning.pytorch",
    "pytorch_lightning",
    "lightning_fabric",
    "lightning.fabric.utilities.distributed",
)
_QUIET_MESSAGES = (
    r".*does not have many workers.*",  # PossibleUserWarning: num_workers
    r".*number of training batches .* is smaller than the logging interval.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",  # torch FutureWarning raised from Lightning
    r".*litlogger.*",
    r".*litmodels.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*Experiment logs directory .* exists and is not empty.*",  # a resumed run: the library keeps the old rows
    r".*The `srun` command is available on your system.*",
)


def quiet_lightning() -> None:
    """Hide Lightning's tips, "GPU/TPU/HPU available" lines, "fit stopped" and the warnings that
    say nothing to our users (data-loader workers, library deprecations); errors and real
    warnings still show. Imports nothing heavy itself: the warning categories that live in
    Lightning are filtered when it is already loaded. Called by every fit and by the CLI.
    """
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in _QUIET_MESSAGES:
        warnings.filterwarnings("ignore", message=pattern)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"lightning(\.|_).*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"lightning(\.|_).*")
    try:  # the categories live in Lightning: filter them only when it is already imported
        from lightning.fabric.utilities.rank_zero import LightningDeprecationWarning
        from lightning.fabric.utilities.warnings import PossibleUserWarning

        warnings.filterwarnings("ignore", category=LightningDeprecationWarning)
        warnings.filterwarnings("ignore", category=PossibleUserWarning)
    except ImportError:  # pragma: no cover - Lightning is a dependency
        pass
