"""The computations behind the book's figures, one module per part of the paper.

* :mod:`.linearity` (Section 3: Figs 1, 3 and 9): per-model scans, cached once per profile and
  reused by every figure; the per-token error of the linear maps.
* :mod:`.pretraining` (Section 4: the model zoo, Fig 2, Fig 4, Table 3).
* :mod:`.evaluation` (Section 4: benchmarks for Table 2, linear probes for Fig 5).
* :mod:`.finetuning` (Section 3.2: Table 1, linearity before and after fine-tuning).
* :mod:`.pruning` (Section 5: Figs 6, 7 and 8, depth pruning next to ShortGPT, SLEB, Gromov et al., ReplaceMe).
* :mod:`.scaling` (beyond the paper, Fig 10: linearity against depth, width, tokens and norm placement).

Each function returns tidy pandas tables cached by what it computes (:mod:`lin_utils.results`),
with a ``cache_only=True`` mode for the claims page.
"""
from .linearity import (ERRORS, SCAN, gaussian_norm_quantiles, linearity_profiles, scan_table,
                        token_error_distribution, token_error_tables)
from .evaluation import (BenchmarksConfig, ProbesConfig, benchmark_items, benchmark_scores, probe_accuracy,
                         probe_items, table2_layout)
from .finetuning import FinetuningConfig, finetuning_deltas
from .pretraining import StoriesConfig, checkpoint_specs, story_quality, training_dynamics, zoo_training
from .pruning import PRUNING, PruningConfig, pruning_study
from .scaling import SCALING, scaling_study

__all__ = [
    "FinetuningConfig", "finetuning_deltas",
    "PRUNING", "PruningConfig", "pruning_study",
    "SCALING", "scaling_study",
    "BenchmarksConfig", "ProbesConfig", "benchmark_items", "benchmark_scores", "probe_accuracy", "probe_items",
    "table2_layout",
    "ERRORS", "SCAN", "checkpoint_specs", "gaussian_norm_quantiles", "linearity_profiles", "scan_table",
    "StoriesConfig", "story_quality", "token_error_distribution", "token_error_tables", "training_dynamics", "zoo_training",
]
