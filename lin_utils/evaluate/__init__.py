"""Evaluation: perplexity, lm-evaluation-harness benchmarks and linear probes.

- :mod:`~lin_utils.evaluate.perplexity`: :func:`perplexity` on WikiText-2 / TinyStories / a text
  file, non-overlapping windows (the book's convention, as SLEB) or a sliding window (HF's).
- :mod:`~lin_utils.evaluate.harness`: :func:`run_harness`, benchmarks through lm-eval, offline
  from the local mirror or from the hub with lm-eval's built-in tasks.
- :mod:`~lin_utils.evaluate.probes`: :func:`linear_probes`, per-boundary logistic-regression
  probes on xStoryCloze-en.

``lm_eval`` is imported only when the harness runs.
"""

from lin_utils.evaluate.harness import (
    DEFAULT_TASKS, PAPER_TASKS, TASKS, HarnessRun, resolve_tasks, run_harness, write_task_dir,
)
from lin_utils.evaluate.perplexity import (
    PerplexityResult, perplexity, perplexity_of_ids, perplexity_text, windows,
)
from lin_utils.evaluate.probes import ending_examples, fit_probe, linear_probes, story_ending_features

__all__ = [
    "perplexity", "perplexity_of_ids", "perplexity_text", "PerplexityResult", "windows",
    "run_harness", "resolve_tasks", "write_task_dir", "HarnessRun", "TASKS", "PAPER_TASKS",
    "DEFAULT_TASKS", "linear_probes", "story_ending_features", "fit_probe", "ending_examples",
]
