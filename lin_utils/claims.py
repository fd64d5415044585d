"""The paper's claims next to our numbers, with verdicts computed from the result tables.

A :class:`Claim` lives in the page module that carries its evidence (:mod:`lin_utils.pages`):
it says what the paper claims, the rule that decides the verdict, and a judge that reads the
page's tables. :func:`claims_table` collects every page's claims and judges each from exactly the
tables the profile selects for its page (the page's ``tables(config, cache_only=True)`` with the
profile's configuration), never "the newest file". A verdict is one of ``replicated``,
``partly``, ``not replicated`` or ``not run`` (no result table for those parameters yet).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import pages

__all__ = ["Claim", "REPLICATED", "PARTLY", "NOT_REPLICATED", "NOT_RUN", "VERDICTS", "VERDICT_COLOURS",
           "claims_table"]

REPLICATED, PARTLY, NOT_REPLICATED, NOT_RUN = "replicated", "partly", "not replicated", "not run"
VERDICTS = (REPLICATED, PARTLY, NOT_REPLICATED, NOT_RUN)
VERDICT_COLOURS = {REPLICATED: "#cde8d4", PARTLY: "#fbeab4", NOT_REPLICATED: "#f5ccd0", NOT_RUN: "#e2e3e5"}


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, judged from one page's tables.

    Attributes:
        artifact: the paper's figure or table ("Fig 1").
        claim: the claim in a sentence; ``paper``: the paper's number or wording.
        rule: how the verdict is decided, in words (shown on the claims page).
        judge: the page's tables -> ``(ours, verdict)``: our numbers in a sentence and the verdict.
        order: the claim's row on the claims page (the paper's order of argument).
        load: ``(config, profile) -> tables or None`` when the claim reads more than its page's
            ``tables(config, cache_only=True)`` (e.g. every pruning page).
        page: the page module (notebook) carrying the evidence; set by :func:`lin_utils.pages.claims`.
    """

    artifact: str
    claim: str
    paper: str
    rule: str
    judge: Callable[[Any], tuple[str, str]]
    order: int
    load: Callable[[Any, str], Any] | None = None
    page: str = ""

    def tables(self, profile: str) -> Any:
        """The tables this claim is judged from under ``profile`` (None when one is not cached)."""
        module = pages.get(self.page)
        cfg = pages.config(module, profile)
        if self.load is not None:
            return self.load(cfg, profile)
        return module.tables(cfg, profile=profile, cache_only=True)


def claims_table(profile: str) -> pd.DataFrame:
    """One row per claim: artifact, claim, paper, ours, verdict, rule, notebook.

    A claim whose tables are not in the cache (its page has not run with the profile's
    parameters) is ``not run``.
    """
    rows = []
    for c in pages.claims():
        tables = c.tables(profile)
        ours, verdict = ("—", NOT_RUN) if tables is None else c.judge(tables)
        rows.append(dict(artifact=c.artifact, claim=c.claim, paper=c.paper, ours=ours, verdict=verdict,
                         rule=c.rule, notebook=c.page))
    return pd.DataFrame(rows, columns=["artifact", "claim", "paper", "ours", "verdict", "rule", "notebook"])
