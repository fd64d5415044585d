"""The claims page: every claim of the paper with our numbers, its verdict and the rule behind it."""
from __future__ import annotations

import pandas as pd

from ..book.glue import glue_markdown, reproduce
from ..book.verdicts import claims_headline, claims_markdown
from ..claims import OURS, PAPER, claims_table
from . import name_of

NAME = name_of(__name__)
CONFIG = None  # the page reads the other pages' tables; it has no parameters of its own
CLAIMS: list = []


def show(config: None, *, profile: str, force: bool = False) -> pd.DataFrame:
    """Glue ``claims`` (the table), ``rules`` (how each verdict is decided) and ``headline``; then
    the re-run commands and the tables the verdicts read."""
    table = claims_table(profile)
    glue_markdown("headline", claims_headline(table, profile))
    paper, ours = table[table.kind == PAPER], table[table.kind == OURS]
    glue_markdown("claims", claims_markdown(paper, profile))
    glue_markdown("findings", claims_markdown(ours, profile) if len(ours) else "*None at this profile.*")
    rules = [f"- **{r.artifact}**, {r.claim[0].lower()}{r.claim[1:]}: {r.rule}." for r in table.itertuples()]
    glue_markdown("rules", "\n".join(rules))
    reproduce(NAME, profile)
    return table
