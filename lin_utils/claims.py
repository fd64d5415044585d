"""The paper's claims next to our numbers, with verdicts computed from the result tables.

A :class:`Claim` lives in the page module that carries its evidence (:mod:`lin_utils.pages`):
it says what the paper claims, the rule that decides the verdict, and a judge that reads the
page's tables. :func:`claims_table` collects every page's claims and judges each from exactly the
tables the profile selects for its page (the page's ``tables(config, cache_only=True)`` with the
profile's configuration), never "the newest file". A verdict is one of ``replicated``,
``partly``, ``not replicated`` or ``not run`` (no result table for those parameters yet).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import pages

__all__ = ["Claim", "Evidence", "Judgement", "Test", "PAPER", "OURS", "judge_effect", "REPLICATED", "PARTLY", "CONTRADICTED", "INCONCLUSIVE", "NOT_REPLICATED",
           "NOT_RUN", "VERDICTS", "VERDICT_COLOURS", "MDE_Z", "claims_table", "decide"]

REPLICATED, PARTLY, NOT_REPLICATED, NOT_RUN = "replicated", "partly", "not replicated", "not run"
CONTRADICTED, INCONCLUSIVE = "contradicted", "inconclusive"
VERDICTS = (REPLICATED, PARTLY, CONTRADICTED, INCONCLUSIVE, NOT_REPLICATED, NOT_RUN)
VERDICT_COLOURS = {REPLICATED: "#cde8d4", PARTLY: "#fbeab4", NOT_REPLICATED: "#f5ccd0", CONTRADICTED: "#f5ccd0",
                   INCONCLUSIVE: "#dfe7f3", NOT_RUN: "#e2e3e5"}

#: z of the minimum detectable effect: 80% power for a two-sided test at 5% (1.96 + 0.84)
MDE_Z = 2.8
#: z of a 95% interval
CI_Z = 1.96


@dataclass(frozen=True)
class Test:
    """How a comparative claim is tested, declared once as data; :meth:`rule` writes its sentence.

    Attributes:
        quantity: what is compared, in the paper's units ("mean no-residual score, cosine − baseline").
        direction: +1 when the paper says the quantity rises (is positive), -1 when it falls.
        unit: the unit of replication whose spread gives the standard error ("seeds", "items"...).
        threshold: how many standard errors the effect must clear in the paper's direction.
        paper_effect: the paper's own effect in the same units (None when it gives none).
        paper_source: where the paper's effect is read (table and row).
        min_units: fewer units of replication than this cannot estimate their spread: inconclusive.
    """

    quantity: str
    direction: int
    unit: str
    threshold: float = 2.0
    paper_effect: float | None = None
    paper_source: str = ""
    min_units: int = 3

    def __post_init__(self):
        if self.direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {self.direction!r}")

    def rule(self) -> str:
        """The verdict rule in words, from the declared fields alone."""
        way = "above 0" if self.direction > 0 else "below 0"
        paper = (f"; the paper's effect is {self.paper_effect:+.3g} ({self.paper_source})"
                 if self.paper_effect is not None else "")
        return (f"{self.quantity}, with its standard error over {self.unit}: replicated if it is {way} by more "
                f"than {self.threshold:g} standard errors; contradicted if it is on the other side by more than "
                f"{self.threshold:g} standard errors, or its 95% interval excludes the paper's effect, and the "
                f"test could detect the paper's effect (minimum detectable effect {MDE_Z:g} standard errors); "
                f"inconclusive otherwise, and always with fewer than {self.min_units} {self.unit}{paper}")


@dataclass(frozen=True)
class Evidence:
    """An effect measured for a :class:`Test`: estimate, standard error and what limits it.

    ``at_chance``: the dense model is within 2 standard errors of chance; ``constant``: the
    compared models give the same answer to every item. Either makes a test inconclusive.
    """

    effect: float
    se: float
    n: int
    at_chance: bool = False
    constant: bool = False

    @property
    def mde(self) -> float:
        return MDE_Z * self.se

    @classmethod
    def of(cls, values) -> "Evidence":
        """The mean of per-unit values and its standard error (sample std / sqrt(n); NaN below 2 units)."""
        v = np.asarray(values, dtype=float)
        n = len(v)
        return cls(float(v.mean()) if n else math.nan, float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan, n)


def decide(test: Test, ev: Evidence) -> tuple[str, str]:
    """``(verdict, reason)`` of ``ev`` under ``test``; see :meth:`Test.rule`."""
    if not (math.isfinite(ev.effect) and math.isfinite(ev.se)) or ev.se < 0:
        return INCONCLUSIVE, "no estimate with a standard error"
    if ev.constant:
        return INCONCLUSIVE, "the compared models give the same answer to every item"
    if ev.at_chance:
        return INCONCLUSIVE, "the dense model is within 2 standard errors of chance"
    if ev.n < test.min_units:
        return INCONCLUSIVE, f"{ev.n} {test.unit}: fewer than {test.min_units}, too few to estimate their spread"
    signed = test.direction * ev.effect
    if signed > test.threshold * ev.se:
        return REPLICATED, f"{signed / ev.se:.1f} standard errors in the paper's direction" if ev.se else \
            "in the paper's direction, without spread"
    paper = test.paper_effect
    powered = paper is None or ev.mde <= abs(paper)
    if not powered:
        return INCONCLUSIVE, (f"the minimum detectable effect {ev.mde:.3g} exceeds the paper's effect "
                              f"{abs(paper):.3g}")
    if signed < -test.threshold * ev.se:
        return CONTRADICTED, "beyond 2 standard errors against the paper's direction"
    if paper is not None and abs(ev.effect - paper) > CI_Z * ev.se:
        return CONTRADICTED, f"the 95% interval excludes the paper's effect {paper:+.3g}"
    return INCONCLUSIVE, f"within {test.threshold:g} standard errors of no effect"


@dataclass(frozen=True)
class Judgement:
    """A claim's outcome: our numbers in a sentence, the verdict and why, and the evidence."""

    ours: str
    verdict: str
    reason: str = ""
    evidence: Evidence | None = None
    test: Test | None = None  # the test applied, when it is not the claim's own (e.g. another unit)

    def __iter__(self):  # ``ours, verdict = judge(t)``, as judges returned before
        return iter((self.ours, self.verdict))

    def __getitem__(self, i):
        return (self.ours, self.verdict)[i]


def judge_effect(test: Test, ev: Evidence, ours: str) -> Judgement:
    """The :class:`Judgement` of ``ev`` under ``test`` (:func:`decide`), with ``ours`` as its text."""
    verdict, reason = decide(test, ev)
    return Judgement(ours, verdict, reason, ev, test)


#: a claim of the paper, or a finding of our own beyond it (counted apart)
PAPER, OURS = "paper", "ours"


@dataclass(frozen=True)
class Claim:
    """One claim of the paper (or one finding of ours), judged from one page's tables.

    Attributes:
        artifact: the paper's figure or table ("Fig 1").
        claim: the claim in a sentence; ``paper``: the paper's number or wording.
        rule: how the verdict is decided, in words (shown on the claims page); with a ``test``,
            leave it empty: the test writes it (:meth:`Test.rule`).
        judge: the page's tables -> a :class:`Judgement` (or ``(ours, verdict)``).
        order: the claim's row on the claims page (the paper's order of argument).
        load: ``(config, profile) -> tables or None`` when the claim reads more than its page's
            ``tables(config, cache_only=True)`` (e.g. every pruning page).
        test: the claim's test declared as data (quantity, direction, unit, threshold, the
            paper's effect), for a comparative claim.
        kind: :data:`PAPER` (the paper's claim) or :data:`OURS` (our own finding, counted apart).
        page: the page module (notebook) carrying the evidence; set by :func:`lin_utils.pages.all_claims`.
    """

    artifact: str
    claim: str
    paper: str
    rule: str
    judge: Callable[[Any], Judgement | tuple[str, str]]
    order: int
    load: Callable[[Any, str], Any] | None = None
    test: Test | None = None
    kind: str = PAPER
    page: str = ""

    @property
    def rule_text(self) -> str:
        return self.rule or (self.test.rule() if self.test is not None else "")

    def tables(self, profile: str) -> Any:
        """The tables this claim is judged from under ``profile`` (None when one is not cached)."""
        module = pages.get(self.page)
        cfg = pages.config(module, profile)
        if self.load is not None:
            return self.load(cfg, profile)
        return module.tables(cfg, profile=profile, cache_only=True)


COLUMNS = ["artifact", "claim", "paper", "ours", "verdict", "rule", "notebook", "kind", "reason", "effect", "se",
           "mde", "paper_effect", "unit"]


def claims_table(profile: str) -> pd.DataFrame:
    """One row per claim: artifact, claim, paper, ours, verdict, rule, notebook, kind (the paper's
    or ours), reason, and for a comparative claim its effect, standard error, minimum detectable
    effect, the paper's effect and the unit of replication.

    A claim whose tables are not in the cache (its page has not run with the profile's
    parameters) is ``not run``.
    """
    rows = []
    for c in pages.all_claims():
        tables = c.tables(profile)
        j = Judgement("—", NOT_RUN, "its result table is not computed yet") if tables is None else c.judge(tables)
        if not isinstance(j, Judgement):
            j = Judgement(*j)
        ev, test = j.evidence, j.test or c.test
        rows.append(dict(artifact=c.artifact, claim=c.claim, paper=c.paper, ours=j.ours, verdict=j.verdict,
                         rule=c.rule or (test.rule() if test else ""), notebook=c.page, kind=c.kind, reason=j.reason,
                         effect=ev.effect if ev else math.nan, se=ev.se if ev else math.nan,
                         mde=ev.mde if ev else math.nan,
                         paper_effect=test.paper_effect if test and test.paper_effect is not None else math.nan,
                         unit=test.unit if test else ""))
    return pd.DataFrame(rows, columns=COLUMNS)
