"""The claims table as the claims page and the landing page show it: coloured verdicts, each claim
linked to the figure that carries its evidence, and the headline count."""
from __future__ import annotations

import html

import pandas as pd

from ..claims import (CONTRADICTED, INCONCLUSIVE, NOT_REPLICATED, NOT_RUN, OURS, PAPER, PARTLY, REPLICATED,
                      VERDICT_COLOURS)
from .executed import executed_page, figure_label, has_label
from .tables import md_table

__all__ = ["claims_headline", "claims_markdown", "verdict_badge"]


def verdict_badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "")
    return (f'<span class="lin-verdict" style="background:{colour};padding:0.1em 0.4em;border-radius:0.25em;'
            f'display:inline-block;font-weight:600">{html.escape(verdict)}</span>')


def _evidence(row, profile: str) -> str:
    """The claim's artifact, linked to the figure on its page (or to the page) when there is one."""
    name = row["notebook"]
    if not name:
        return str(row["artifact"])
    if has_label(executed_page(name, profile), figure_label(name)):
        return f"{{ref}}`{row['artifact']} <{figure_label(name)}>`"
    return f"{{doc}}`{row['artifact']} <{name}>`"


def _why(row) -> str:
    """Our numbers and, in small type, why the verdict is what it is; for an inconclusive verdict
    with an estimate, the minimum detectable effect next to the paper's effect."""
    text = str(row["ours"])
    reason = str(row.get("reason", "") or "")
    mde, paper = row.get("mde", float("nan")), row.get("paper_effect", float("nan"))
    if row["verdict"] == INCONCLUSIVE and pd.notna(mde) and "minimum detectable" not in reason:
        reason += f"; minimum detectable effect {mde:.3g}" + (f" against the paper's {abs(paper):.3g}" if pd.notna(paper)
                                                              else "")
    return text + (f"<br><small>{html.escape(reason)}</small>" if reason and row["verdict"] != NOT_RUN else "")


def claims_markdown(table: pd.DataFrame, profile: str, *, compact: bool = False) -> str:
    """The claims table as MyST: each claim linked to its evidence, the verdict coloured.

    The full table puts the verdict next to the evidence, where a narrow screen still shows it, and
    says under our numbers why the verdict is what it is; ``compact`` (the landing page): evidence,
    claim and verdict of the claims that were judged.
    """
    rows = table if not compact else table[table.verdict != NOT_RUN]
    out = pd.DataFrame({"evidence": [_evidence(r, profile) for _, r in rows.iterrows()]})
    verdicts = [verdict_badge(v) for v in rows.verdict]
    if compact:
        out["claim"], out["verdict"] = rows.claim.to_numpy(), verdicts
    else:
        out["verdict"], out["claim"] = verdicts, rows.claim.to_numpy()
        out["paper"], out["ours"] = rows.paper.to_numpy(), [_why(r) for _, r in rows.iterrows()]
    return md_table(out)


def _counts(table: pd.DataFrame) -> str:
    counts = table.verdict.value_counts()
    order = [REPLICATED, PARTLY, CONTRADICTED, INCONCLUSIVE, NOT_REPLICATED]
    return ", ".join(f"**{counts.get(v, 0)} {v}**" for v in order if counts.get(v, 0) or v in
                     (REPLICATED, CONTRADICTED, INCONCLUSIVE))


def claims_headline(table: pd.DataFrame, profile: str) -> str:
    """How many of the paper's judged claims fall in each class at this profile, and apart from them
    our own findings."""
    kind = table["kind"] if "kind" in table else pd.Series(PAPER, index=table.index)
    paper, ours = table[kind == PAPER], table[kind == OURS]
    judged = paper[paper.verdict != NOT_RUN]
    pending = len(paper) - len(judged)
    text = (f"At the `{profile}` profile this book tests {len(judged)} of the paper's {len(paper)} claims: "
            f"{_counts(judged)}.")
    if pending:
        text += (f" The other {pending} {'is' if pending == 1 else 'are'} *not run* at this profile (the claims table "
                 "says why).")
    inconclusive = judged[judged.verdict == INCONCLUSIVE]
    if len(inconclusive):
        text += (f" An inconclusive verdict means our test could not tell; it never counts as a failure to "
                 f"replicate ({len(inconclusive)} here: the claims table says why for each).")
    found = ours[ours.verdict != NOT_RUN]
    if len(found):
        text += f" Beyond the paper, our own findings ({len(found)}), counted apart: {_counts(found)}."
    return text
