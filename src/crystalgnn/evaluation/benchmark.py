"""Moved to :mod:`crystalgnn.experiments` (compatibility re-export of the old names)."""

from crystalgnn.experiments.learners import (
    SOAP_MLP_VARIANTS,
    available_models,
    model_kind,
)
from crystalgnn.experiments.network_learners import write_dataset_file
from crystalgnn.experiments.orchestration import pending_cells, run_benchmark, run_cell
from crystalgnn.experiments.preparation import BenchmarkData, make_splits, prepare_data
from crystalgnn.experiments.results import (
    RESULT_COLUMNS,
    BenchmarkMismatch,
    ResultStore,
    folder_settings,
)
from crystalgnn.experiments.summary import (
    BenchmarkResult,
    benchmark_figure,
    summarize,
    summary_markdown,
    write_reports,
)

__all__ = [
    "RESULT_COLUMNS",
    "SOAP_MLP_VARIANTS",
    "BenchmarkData",
    "BenchmarkMismatch",
    "BenchmarkResult",
    "ResultStore",
    "available_models",
    "benchmark_figure",
    "folder_settings",
    "make_splits",
    "model_kind",
    "pending_cells",
    "prepare_data",
    "run_benchmark",
    "run_cell",
    "summarize",
    "summary_markdown",
    "write_dataset_file",
    "write_reports",
]
