"""Views shared by the pages that show per-block scans (Figs 1, 3 and 4): not a page itself."""
from __future__ import annotations

import pandas as pd

from .. import plots
from ..book.tables import per_model
from ._zoo_pairs import entry_of, seeds_text

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


#: the paper's measurement (its text and the authors' toolkit, ../shared/NOTES.md)
PAPER_SCAN = ("128 random 512-character windows of enwik8, BOS included, on GPT-2, OPT, Llama-2, BLOOM, Pythia and "
              "Mistral models 768 to 4,096 wide")
PAPER_MIN_WIDTH = 768  # the narrowest model the paper scores (GPT-2 small, OPT-125m)


def runs_text(models) -> str:
    """How many training runs stand behind the models: "one training run per model (no seeds)", or
    the zoo's seeds per arm (:func:`lin_utils.pages._zoo_pairs.seeds_text`) when an arm has several."""
    zoo_models = [m for m in models if entry_of(m) is not None]
    if plots.seeded(models):
        return f"zoo models with {seeds_text(zoo_models)}, any other model one run"
    return "one training run per model" + (f" (of the zoo's arms, {seeds_text(zoo_models)})" if zoo_models else
                                           " (no seeds)")


def scan_differences(config, table: pd.DataFrame) -> str:
    """"How this differs from the paper" for a page of per-block scans, from its config and table."""
    d = trained_decoders(table) if {"arch", "trained"} <= set(table.columns) else table
    widths = sorted({int(w) for w in d.d}) if len(d) else sorted({int(w) for w in table.d})
    n_tokens = int(table.n_tokens.min()) if len(table) else 0
    bos = "position 0 (BOS) excluded" if config.exclude_bos else "position 0 (BOS) included"
    narrow = (f", {PAPER_MIN_WIDTH / max(widths):.0f}–{4096 / min(widths):.0f}× narrower than the paper's"
              if widths and max(widths) < PAPER_MIN_WIDTH else "")
    return ("**How this differs from the paper.** "
            f"Here: the first {n_tokens:,} tokens of the {config.dataset} {config.split} split in rows of "
            f"{config.seq_len} tokens, {bos}; trained decoders {', '.join(map(str, widths))} wide{narrow}; "
            f"{runs_text(table.model.unique())}. The paper: {PAPER_SCAN}. Hidden states are the raw residual "
            "stream at block boundaries (hooks), never Hugging Face's final-norm'd last hidden state.")
