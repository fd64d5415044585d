"""The Table 3 page (:mod:`lin_utils.pages.table3_story_quality`): judge grades give a verdict, automatic
proxies never do; its numbers, summary, configuration and committed tables."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lin_utils import pages
from lin_utils.claims import NOT_REPLICATED, NOT_RUN, PARTLY, REPLICATED
from lin_utils.pages import table3_story_quality as page

REP, PART, NOT = REPLICATED, PARTLY, NOT_REPLICATED
R, P, N = REP, PART, NOT


GRADES = page.GRADES


def story_table(grades: dict[str, tuple | None], ppl: dict[str, float] | None = None) -> pd.DataFrame:
    """A Table 3 summary: per model the four mean judge grades (None: not judged)."""
    rows = []
    for m, g in grades.items():
        row = dict(model=m, n=50, judged=0 if g is None else 50, scorer_ppl=(ppl or {}).get(m, 5.0))
        row.update(zip(GRADES, (np.nan,) * 4 if g is None else g))
        rows.append(row)
    return pd.DataFrame(rows)


PPL = {"zoo:smoke-small-baseline": 6.3318, "zoo:smoke-small-cos0.5": 5.4751, "stories260K": 12.0}


@pytest.mark.parametrize("judged_column", [True, False])
def test_stories_without_judge_grades_give_no_verdict(judged_column):
    t = story_table(dict.fromkeys(PPL), PPL)
    if not judged_column:
        t = t.drop(columns=["judged", *GRADES])
    assert page.judge_stories(t) == (
        "no judge configured, so no verdict; automatic proxies only (perplexity under the scorer "
        "smoke-small-baseline 6.33, smoke-small-cos0.5 5.48, stories260K 12.00)", NOT_RUN)


def judged_table(small_cos, large_cos):
    return story_table({
        "zoo:smoke-small-baseline": (6, 7, 8, 5),  # mean grade 6.5
        "zoo:smoke-small-cos0.005": (9, 9, 9, 9),  # another variant, never a baseline
        "stories260K": (3, 4, 5, 6),
        "zoo:smoke-small-cos0.5": small_cos,
        "zoo:smoke-large-baseline": (8, 9, 7, 8),  # 8.0
        "zoo:smoke-large-cos0.5": large_cos,
    })


@pytest.mark.parametrize("small_cos, large_cos, ours, verdict", [
    ((7, 8, 8, 7), (9, 8, 8, 8), "smoke-small: baseline 6.50, cosine 7.50; smoke-large: baseline 8.00, cosine 8.25", R),
    ((7, 8, 8, 7), (8, 8, 8, 8), "smoke-small: baseline 6.50, cosine 7.50; smoke-large: baseline 8.00, cosine 8.00", P),
    ((8, 5, 6, 7), (7, 8, 8, 7), "smoke-small: baseline 6.50, cosine 6.50; smoke-large: baseline 8.00, cosine 7.50", N),
])
def test_stories_verdicts_compare_the_mean_of_the_four_grades(small_cos, large_cos, ours, verdict):
    assert page.judge_stories(judged_table(small_cos, large_cos)) == (ours, verdict)


def test_stories_without_a_judged_pair_are_not_run():
    t = story_table({"zoo:smoke-small-baseline": (6, 7, 8, 5), "stories260K": (3, 4, 5, 6),
                     "zoo:smoke-large-cos0.5": (9, 8, 8, 8)})
    assert page.judge_stories(t) == ("no baseline / cosine pair was judged", NOT_RUN)


def test_a_pair_with_an_unjudged_side_is_not_compared():
    t = story_table({"zoo:smoke-small-baseline": (6, 7, 8, 5), "zoo:smoke-small-cos0.5": None,
                     "zoo:smoke-large-baseline": (5, 5, 5, 5), "zoo:smoke-large-cos0.5": (6, 6, 6, 6)})
    assert page.judge_stories(t) == ("smoke-large: baseline 5.00, cosine 6.00", R)
    t = story_table({"zoo:smoke-small-baseline": (6, 7, 8, 5), "zoo:smoke-small-cos0.5": None})
    assert page.judge_stories(t) == ("no baseline / cosine pair was judged", NOT_RUN)


def test_the_judge_reads_the_pages_tables():
    t = story_table(dict.fromkeys(PPL), PPL)
    none = pd.DataFrame({"grammar": [np.nan] * 3, "judge_error": [""] * 3})
    assert page.judge_stories({"summary": t, "items": none}) == page.judge_stories(t)


def test_a_configured_judge_that_failed_is_not_called_absent():
    """Issue 25: the page says a judge was configured and failed, with the count and the first error."""
    t = story_table(dict.fromkeys(PPL), PPL)
    failed = pd.DataFrame({"grammar": [np.nan] * 3, "judge_error": ["HTTP 500: boom", "garbage", ""]})
    ours, verdict = page.judge_stories({"summary": t, "items": failed})
    assert verdict == NOT_RUN and "no judge configured" not in ours
    assert ours.startswith("a judge was configured but failed on all 2 of 3 completions (first error: HTTP 500: boom)")
    n = page.page_numbers({"summary": t.assign(repetition_4=0.1, distinct_2=0.5), "items": failed})
    assert n["judge_text"] == ours


def test_numbers_and_summary_without_a_judge():
    t = story_table(dict.fromkeys(PPL), PPL).assign(repetition_4=[0.1, 0.3, 0.2], distinct_2=0.5, distinct_2_se=0.25)
    n = page.numbers(t)
    assert (n["n_models"], n["n_stories"], n["judged"], n["verdict_stories"]) == (3, 50, 0, NOT_RUN)
    assert (n["ppl_min"], n["ppl_max"], n["rep_min"], n["rep_max"]) == (5.4751, 12.0, 0.1, 0.3)
    s = page.summary(t)
    assert list(s.columns) == ["model", "scorer ppl (proxy)", "distinct-2 (proxy)", "repetition (proxy)"]
    assert s.model.tolist() == ["smoke-small-baseline", "smoke-small-cos0.5", "stories260K"]
    assert s["distinct-2 (proxy)"].tolist() == ["0.50 ± 0.25"] * 3 and s["repetition (proxy)"].iloc[0] == "0.10"


def test_summary_with_a_judge_shows_the_four_grades():
    t = judged_table((7, 8, 8, 7), (9, 8, 8, 8)).assign(distinct_2=0.5, repetition_4=0.1, grammar_se=0.5)
    s = page.summary(t)
    assert list(s.columns)[:5] == ["model", *GRADES] and s.grammar.iloc[0] == "6.00 ± 0.50"


# ---------------------------------------------------------------------------------------------
# the page: its configuration is the cpu profile's, and the committed cpu tables load


def test_config_is_the_cpu_profile_and_the_notebook_repeats_it():
    assert pages.config(page, "cpu") == page.CONFIG
    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / f"{page.NAME}.ipynb").read_text())
    [cell] = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    namespace: dict = {}
    exec("".join(cell["source"]), namespace)
    assert type(page.CONFIG).from_namespace(namespace) == page.CONFIG


def test_the_committed_cpu_tables_load():
    assert page.tables(pages.config(page, "cpu"), profile="cpu", cache_only=True) is not None
