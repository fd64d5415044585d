"""Table 3: quality of the stories the zoo's models write, graded by a judge when one is configured,
else by automatic proxies that never give a verdict."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page
from ..claims import NOT_REPLICATED, NOT_RUN, PARTLY, REPLICATED, Claim
from ..experiments.pretraining import StoriesConfig, story_quality
from . import name_of
from ._zoo_pairs import size_pairs

NAME = name_of(__name__)
CONFIG = StoriesConfig(
    models=("zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5", "zoo:cpu-small-mse0.5", "zoo:cpu-small-mse2.0",
            "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5", "zoo:cpu-large-mse0.5", "zoo:cpu-large-mse2.0",
            "stories260K"),
    n_stories=50, max_new_tokens=120, temperature=0.8, top_k=50, seed=0, scorer="stories260K", judge_model=None)

GRADES = ("grammar", "creativity", "consistency", "plot")  # the judge's four columns, as in the paper
#: the full table's columns (one row per completion)
ITEM_COLUMNS = ["model", "item", "n_words", "scorer_tokens", "scorer_nll", "distinct_2", "repetition_4"]


def tables(config: StoriesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> dict[str, pd.DataFrame] | None:
    """``{"summary": one row per model, "items": one row per completion}``:
    :func:`lin_utils.experiments.story_quality`."""
    return story_quality(config, profile=profile, force=force, cache_only=cache_only, progress=progress)


def judge_stories(t):
    """Table 3's summary (or the page's tables): judge grades when present; proxies alone give no verdict."""
    from ..evaluate.judge import judge_status  # lin_utils.evaluate imports lm-eval's tasks: only when judging

    status = judge_status(t["items"]) if isinstance(t, dict) else None
    if isinstance(t, dict):
        t = t["summary"]
    if "judged" not in t or t.judged.sum() == 0:
        said = "no judge configured" if status is None or not status["configured"] else status["text"]
        ours = (f"{said}, so no verdict; automatic proxies only (perplexity under the scorer "
                + ", ".join(f"{m.split(':')[-1]} {v:.2f}" for m, v in zip(t.model, t.scorer_ppl)) + ")")
        return ours, NOT_RUN
    judged = t[t.judged > 0]  # a model the judge failed on has no grades: its pair is not compared
    grade = judged[list(GRADES)].mean(axis=1)
    scores = dict(zip(judged.model, grade))
    pairs = [(size, scores[base], scores[cos]) for size, base, cos in size_pairs(scores)]
    if not pairs:
        return "no baseline / cosine pair was judged", NOT_RUN
    ours = "; ".join(f"{size}: baseline {b:.2f}, cosine {c:.2f}" for size, b, c in pairs)
    higher = sum(c > b for _, b, c in pairs)
    return ours, REPLICATED if higher == len(pairs) else PARTLY if higher else NOT_REPLICATED


CLAIMS = [
    Claim("Table 3", "The regularizer raises judged story quality", "higher GPT-4 scores",
          "replicated if the cosine model's mean judge grade beats its baseline's at every size; partly if at some; "
          "automatic proxies never give a verdict", judge_stories, order=100),
]


def numbers(summary_: pd.DataFrame, items: pd.DataFrame | None = None) -> dict:
    """The prose's numbers: models, stories, judged completions, the verdict (and, with the
    ``items``, whether a configured judge failed) and the proxies' ranges."""
    judged = int(summary_.judged.sum()) if "judged" in summary_ else 0
    ours, verdict = judge_stories(summary_ if items is None else {"summary": summary_, "items": items})
    return dict(n_models=len(summary_), n_stories=int(summary_.n.max()), judged=judged, verdict_stories=verdict,
                judge_text=ours, ppl_min=summary_.scorer_ppl.min(), ppl_max=summary_.scorer_ppl.max(),
                rep_min=summary_.repetition_4.min(), rep_max=summary_.repetition_4.max())


def summary(summary_: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3 layout: one row per model, the four judge columns, then the proxies."""
    def pm(col):
        return [f"{m:.2f} ± {e:.2f}" if pd.notna(m) and pd.notna(e) else ("—" if pd.isna(m) else f"{m:.2f}")
                for m, e in zip(summary_[col], summary_.get(f"{col}_se", pd.Series(np.nan, index=summary_.index)))]
    out = pd.DataFrame({"model": summary_.model.str.replace("zoo:", "", regex=False)})
    if "judged" in summary_ and summary_.judged.sum() > 0:  # without a judge the four columns are empty
        for col in GRADES:
            out[col] = pm(col)
    out["scorer ppl (proxy)"] = summary_.scorer_ppl
    out["distinct-2 (proxy)"] = pm("distinct_2")
    out["repetition (proxy)"] = pm("repetition_4")
    out.attrs["formats"] = {"scorer ppl (proxy)": ".2f"}
    return out


def page_numbers(t: dict) -> dict:
    """The glued numbers from what :func:`tables` returns."""
    return numbers(t["summary"], t["items"])


def show(config: StoriesConfig, *, profile: str, force: bool = False) -> dict[str, pd.DataFrame]:
    t = tables(config, profile=profile, force=force)
    figure_page(NAME, profile, plots.story_quality(t["summary"]), numbers=page_numbers(t),
                summary=summary(t["summary"]), table=t["items"][ITEM_COLUMNS])
    return t
