"""Views shared by the pages that show per-block scans (Figs 1, 3 and 4): not a page itself."""
from __future__ import annotations

import pandas as pd

from ..book.tables import per_model

__all__ = ["profile_summary", "trained_decoders", "PROFILE_COLUMNS"]

#: the full table of a linearity-profile page (Figs 1 and 4)
PROFILE_COLUMNS = ["model", "arch", "trained", "block", "n_tokens", "d", "chance", "score", "heldout",
                   "score_nores", "heldout_nores"]


def trained_decoders(t: pd.DataFrame) -> pd.DataFrame:
    """The rows of trained decoders: the paper's subject."""
    return t[(t.arch == "decoder") & t.trained]


def profile_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: tokens n, width d, chance d/(n−1), mean score with and without the residual."""
    return per_model(table, lambda g: {
        "n": g.n_tokens.min(), "d": g.d.max(), "chance": g.chance.max(),
        "with residual": g.score.mean(), "without": g.score_nores.mean(),
        "without, held out": g.heldout_nores.mean(),
    }, {"n": ",d", "d": ",d"})
