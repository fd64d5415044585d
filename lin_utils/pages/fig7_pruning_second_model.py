"""Fig 7: perplexity after depth pruning of a second model (the paper's Llama-2 panel); its table
counts in the perplexity claim of Figs 6 and 7 (carried by the Fig 6 page)."""
from __future__ import annotations

from ..experiments.pruning import PruningConfig
from . import _pruning, name_of
from ._pruning import page_numbers, tables  # noqa: F401 (the page's API)

__all__ = ["CONFIG", "NAME", "show", "tables"]

NAME = name_of(__name__)
CONFIG = PruningConfig(model="stories260K", k_max=2, distill_steps=100, arc_limit=0)


def show(config: PruningConfig, *, profile: str, force: bool = False) -> dict:
    return _pruning.show(NAME, config, profile=profile, force=force, figure="perplexity")
