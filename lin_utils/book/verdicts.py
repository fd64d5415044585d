"""The claims table as the claims page and the landing page show it: coloured verdicts, each claim
linked to the figure that carries its evidence, and the headline count."""
from __future__ import annotations

import html

import pandas as pd

from ..claims import NOT_REPLICATED, NOT_RUN, PARTLY, REPLICATED, VERDICT_COLOURS
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


def claims_markdown(table: pd.DataFrame, profile: str, *, compact: bool = False) -> str:
    """The claims table as MyST: each claim linked to its evidence, the verdict coloured.

    The full table puts the verdict next to the evidence, where a narrow screen still shows it;
    ``compact`` (the landing page): evidence, claim and verdict of the claims that were judged.
    """
    rows = table if not compact else table[table.verdict != NOT_RUN]
    out = pd.DataFrame({"evidence": [_evidence(r, profile) for _, r in rows.iterrows()]})
    verdicts = [verdict_badge(v) for v in rows.verdict]
    if compact:
        out["claim"], out["verdict"] = rows.claim.to_numpy(), verdicts
    else:
        out["verdict"], out["claim"] = verdicts, rows.claim.to_numpy()
        out["paper"], out["ours"] = rows.paper.to_numpy(), rows.ours.to_numpy()
    return md_table(out)


def claims_headline(table: pd.DataFrame, profile: str) -> str:
    """One sentence: how many of the judged claims replicated at this profile."""
    counts = table.verdict.value_counts()
    judged = int(len(table) - counts.get(NOT_RUN, 0))
    parts = [f"**{counts.get(v, 0)} {v}**" for v in (REPLICATED, PARTLY, NOT_REPLICATED)]
    pending = int(counts.get(NOT_RUN, 0))
    text = (f"At the `{profile}` profile this book tests {judged} of the paper's {len(table)} claims: "
            f"{parts[0]}, {parts[1]}, {parts[2]}.")
    if pending:
        text += f" The other {pending} are *not run* yet: later parts of the project add their experiments."
    return text
