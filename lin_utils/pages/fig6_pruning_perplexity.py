"""Fig 6: perplexity after depth pruning of the first model, by the paper's criterion and the others,
removal against linear replacement (+ distillation). Carries the perplexity claim of Figs 6 and 7,
judged over every pruning page's model."""
from __future__ import annotations

from ..claims import Claim
from ..experiments.pruning import PruningConfig
from . import _pruning, name_of, study_configs
from ._pruning import page_numbers, tables  # noqa: F401 (the page's API)

__all__ = ["CLAIMS", "CONFIG", "NAME", "show", "tables"]

NAME = name_of(__name__)
CONFIG = PruningConfig(model="zoo:cpu-large-baseline", k_max=4, distill_steps=100, arc_limit=200)


def _every_pruning_page(config: PruningConfig, profile: str):
    """The results of every pruning page's study under ``profile`` (Figs 6 and 7: two models)."""
    return _pruning.results_over(study_configs(PruningConfig, profile), profile)


CLAIMS = [
    Claim("Figs 6-7", "Replacing the most linear blocks by linear maps and distilling them hurts perplexity less than "
                      "removing them",
          "lower WikiText perplexity than plain removal at every number of removed layers; the paper's perplexities "
          "are not stored in the project's data, so its effect is not weighed here",
          "", _pruning.judge_ppl, order=110, load=_every_pruning_page, test=_pruning.PPL_TEST),
]


def show(config: PruningConfig, *, profile: str, force: bool = False) -> dict:
    return _pruning.show(NAME, config, profile=profile, force=force, figure="perplexity")
