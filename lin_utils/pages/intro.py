"""The landing page: the verdicts of the claims page and a linked thumbnail of every figure page."""
from __future__ import annotations

import pandas as pd

from .. import runner
from ..book.executed import executed_page, glued_png, page_title, thumbnail
from ..book.glue import glue_markdown, reproduce
from ..book.verdicts import claims_headline, claims_markdown
from ..claims import PAPER, claims_table
from . import name_of

NAME = name_of(__name__)
CONFIG = None
CLAIMS: list = []


def figure_cards(profile: str) -> list[tuple[str, str, bytes]]:
    """``(page, title, thumbnail PNG)`` of every other page of the profile that glued a figure, in
    run order."""
    cards = []
    for page in runner.run_order():
        nb = executed_page(page, profile) if page != NAME else None
        png = glued_png(nb) if nb else None
        if png is not None:
            cards.append((page, page_title(nb) or page, thumbnail(png)))
    return cards


def show(config: None, *, profile: str, force: bool = False) -> pd.DataFrame:
    """Glue ``headline``, ``verdicts`` (the judged claims, from the same
    :func:`lin_utils.claims.claims_table` as the claims page) and ``figures`` (a linked thumbnail
    of each figure page of this profile, read from the executed pages)."""
    from IPython.display import Image  # notebook kernels only
    from myst_nb import glue  # heavy (Sphinx): only where a page glues

    table = claims_table(profile)
    glue_markdown("headline", claims_headline(table, profile))
    glue_markdown("verdicts", claims_markdown(table[table.kind == PAPER], profile, compact=True))
    cards = []
    for page, title, png in figure_cards(profile):
        glue(f"thumb_{page}", Image(data=png, format="png"), display=False)
        cards.append(f":::{{grid-item-card}} {title}\n:link: {page}\n:link-type: doc\n\n"
                     f"```{{glue}} thumb_{page}\n```\n:::")
    grid = ("::::{grid} 1 2 3 3\n:gutter: 2\n\n" + "\n\n".join(cards) + "\n::::" if cards
            else "*No figure page has run at this profile yet.*")
    glue_markdown("figures", grid)
    reproduce(NAME, profile)
    return table
