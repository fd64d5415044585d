"""The claims page: every claim of the paper with our numbers, its verdict and the rule behind it."""
from __future__ import annotations

import html

import pandas as pd

from ..book.glue import glue_markdown, reproduce
from ..book.tables import md_table
from ..book.verdicts import claims_headline, claims_markdown, verdict_badge
from ..claims import OURS, PAPER, claims_table
from ..paper import evidence_for, evidence_table
from . import name_of

NAME = name_of(__name__)
CONFIG = None  # the page reads the other pages' tables; it has no parameters of its own
CLAIMS: list = []


def paper_evidence_markdown() -> str:
    """The paper's own numbers weighed by the same rule (:func:`lin_utils.paper.evidence_table`), with
    their sources as a list under the table."""
    t = evidence_table()
    if t.empty:
        return "*No number of the paper is stored.*"
    out = pd.DataFrame({
        "artifact": t.artifact, "the paper's number": t.what,
        "weighed": [("not stored" if pd.isna(r.paper) else f"{r.paper:g}: z = {r.z:+.2f}, MDE {r.mde:.2g}")
                    for r in t.itertuples()],
        "verdict": [verdict_badge(v) for v in t.verdict],
        "why": t.reason})
    sources = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(t.source) if isinstance(s, str) and s)
    return md_table(out) + ("\n\nSources (by row):\n\n" + sources if sources else "")


def show(config: None, *, profile: str, force: bool = False) -> pd.DataFrame:
    """Glue ``claims`` (the table), ``rules`` (how each verdict is decided) and ``headline``; then
    the re-run commands and the tables the verdicts read."""
    table = claims_table(profile)
    glue_markdown("headline", claims_headline(table, profile))
    paper, ours = table[table.kind == PAPER].copy(), table[table.kind == OURS]
    weighed = [evidence_for(a) for a in paper.artifact]  # the paper's own numbers, by the same rule
    paper["paper"] = [p + (f"<br><small>weighed: {html.escape(w)}</small>" if w else "")
                      for p, w in zip(paper.paper, weighed)]
    glue_markdown("claims", claims_markdown(paper, profile))
    glue_markdown("findings", claims_markdown(ours, profile) if len(ours) else "*None at this profile.*")
    glue_markdown("paper_evidence", paper_evidence_markdown())
    rules = [f"- **{r.artifact}**, {r.claim[0].lower()}{r.claim[1:]}: {r.rule}." for r in table.itertuples()]
    glue_markdown("rules", "\n".join(rules))
    reproduce(NAME, profile)
    return table
