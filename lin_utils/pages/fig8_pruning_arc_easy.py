"""Fig 8: ARC-Easy accuracy after depth pruning (the Fig 6 model's study, read again), removal
against linear replacement + distillation."""
from __future__ import annotations

from ..claims import Claim
from ..experiments.pruning import PruningConfig
from . import _pruning, name_of
from ._pruning import page_numbers, tables  # noqa: F401 (the page's API)

__all__ = ["CLAIMS", "CONFIG", "NAME", "judge_arc", "show", "tables"]

NAME = name_of(__name__)
CONFIG = PruningConfig(model="zoo:cpu-large-baseline", k_max=4, distill_steps=100, arc_limit=200)


def judge_arc(t: dict):
    """The ARC-Easy claim over this page's study (its ``results`` table)."""
    return _pruning.judge_arc(t["results"])


CLAIMS = [
    Claim("Fig 8", "Linear replacement plus distillation keeps ARC-Easy accuracy above plain removal",
          "higher ARC-Easy accuracy than removal (OPT-1.3B); the paper's accuracies are not stored in the project's "
          "data, so its effect is not weighed here",
          "", judge_arc, order=120, test=_pruning.ARC_TEST),
]


def show(config: PruningConfig, *, profile: str, force: bool = False) -> dict:
    return _pruning.show(NAME, config, profile=profile, force=force, figure="arc")
