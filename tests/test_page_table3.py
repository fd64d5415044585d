"""The Table 3 page (:mod:`lin_utils.pages.table3_story_quality`): judge grades give a verdict, automatic
proxies never do; its numbers, summary, configuration and committed tables."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

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
    j = page.judge_stories(t)
    assert (j.ours, j.verdict, j.reason) == (
        "no judge configured, so no verdict; automatic proxies only (perplexity under the scorer "
        "smoke-small-baseline 6.33, smoke-small-cos0.5 5.48, stories260K 12.00)", NOT_RUN, "no judge configured")


def test_the_judge_reads_the_pages_tables():
    t = story_table(dict.fromkeys(PPL), PPL)
    none = pd.DataFrame({"grammar": [np.nan] * 3, "judge_error": [""] * 3})
    assert page.judge_stories({"summary": t, "items": none}) == page.judge_stories(t)
    assert page.judge_stories(t).verdict == NOT_RUN


def test_a_configured_judge_that_failed_is_not_called_absent():
    """Issue 25: the page says a judge was configured and failed, with the count and the first error."""
    t = story_table(dict.fromkeys(PPL), PPL)
    failed = pd.DataFrame({"grammar": [np.nan] * 3, "judge_error": ["HTTP 500: boom", "garbage", ""]})
    j = page.judge_stories({"summary": t, "items": failed})
    ours, verdict = j.ours, j.verdict
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
    t = story_table({"zoo:smoke-small-baseline": (6, 7, 8, 5), "zoo:smoke-small-cos0.5": (7, 8, 8, 7)}).assign(
        distinct_2=0.5, repetition_4=0.1, grammar_se=0.5)
    s = page.summary(t)
    assert list(s.columns)[:5] == ["model", *GRADES] and s.grammar.iloc[0] == "6.00 ± 0.50"


# ---------------------------------------------------------------------------------------------
# judge grades compared opening by opening (issue 23): every verdict class

from lin_utils.claims import CONTRADICTED, INCONCLUSIVE  # noqa: E402

SMALL = ("zoo:smoke-small-baseline", "zoo:smoke-small-cos0.5")
LARGE = ("zoo:smoke-large-baseline", "zoo:smoke-large-cos0.5")


def graded(pairs: dict, extra: dict | None = None):
    """``{"summary", "items"}`` with per-opening grades: pairs maps (baseline, cosine) to a list of
    (baseline grade, cosine grade) per opening (the four grades all equal to it)."""
    rows = []
    for (base, cos), grades in pairs.items():
        for i, (gb, gc) in enumerate(grades):
            for m, g in ((base, gb), (cos, gc)):
                rows.append(dict(model=m, item=i, opening=f"Once upon a time {i}", judge_error="",
                                 **dict.fromkeys(GRADES, float(g))))
    for m, grades in (extra or {}).items():
        for i, g in enumerate(grades):
            rows.append(dict(model=m, item=i, opening=f"Once upon a time {i}", judge_error="",
                             **dict.fromkeys(GRADES, float(g))))
    items = pd.DataFrame(rows)
    summary = items.groupby("model", sort=False)[list(GRADES)].mean().reset_index()
    summary = summary.assign(n=items.groupby("model", sort=False).size().to_numpy(), judged=lambda t: t.n,
                             scorer_ppl=5.0)
    return {"summary": summary, "items": items}


def test_grades_pair_by_opening_and_pool_over_sizes():
    t = graded({SMALL: [(6, 7)] * 30 + [(6, 6)] * 20, LARGE: [(8, 8)] * 40 + [(8, 7)] * 10})
    m = page.paired_grades(t["items"])
    assert list(m["size"]) == ["smoke-small", "smoke-large"]
    assert m.effect.tolist() == pytest.approx([0.6, -0.2]) and m.n.tolist() == [50, 50]
    j = page.judge_stories(t)
    assert j.evidence.effect == pytest.approx(0.2) and j.evidence.se == pytest.approx(math.hypot(*m.se) / 2)
    assert j.ours.startswith("smoke-small: baseline 6.00, cosine 6.60 (+0.60 ± ") and "pooled +0.20" in j.ours


def test_openings_are_matched_not_positions():
    t = graded({SMALL: [(5, 6), (7, 8), (6, 7)]})
    items = t["items"]
    cos = items.model == SMALL[1]
    items.loc[cos] = items.loc[cos].iloc[::-1].to_numpy()  # the cosine rows in another order
    assert page.paired_grades(items).effect.iloc[0] == pytest.approx(1.0)


@pytest.mark.parametrize("n, up, verdict", [(100, 3, INCONCLUSIVE), (100, 4, REPLICATED)])  # z = 1.75, 2.03
def test_stories_replicated_only_beyond_two_standard_errors(n, up, verdict):
    t = graded({SMALL: [(5, 6)] * up + [(5, 5)] * (n - up)})
    assert page.judge_stories(t).verdict == verdict


def test_stories_contradicted_by_a_clear_loss():
    t = graded({SMALL: [(6, 5)] * 40 + [(6, 6)] * 60})
    assert page.judge_stories(t).verdict == CONTRADICTED  # no paper effect stored: the sign decides


def test_stories_inconclusive_when_every_grade_is_the_same():
    t = graded({SMALL: [(7, 7)] * 30})
    j = page.judge_stories(t)
    assert j.evidence.constant and j.verdict == INCONCLUSIVE and "same answer" in j.reason


def test_a_pair_with_an_unjudged_side_is_not_compared():
    t = graded({LARGE: [(5, 6)] * 10}, extra={SMALL[0]: [6] * 10})
    items = pd.concat([t["items"], t["items"][t["items"].model == SMALL[0]].assign(model=SMALL[1], grammar=np.nan)])
    m = page.paired_grades(items)
    assert list(m["size"]) == ["smoke-large"]


def test_stories_without_a_judged_pair_are_not_run():
    t = graded({}, extra={SMALL[0]: [6] * 5, "stories260K": [4] * 5})
    j = page.judge_stories(t)
    assert (j.verdict, j.ours) == (NOT_RUN, "no baseline / cosine pair was judged")


def test_judged_summary_without_items_is_not_run():
    t = graded({SMALL: [(6, 7)] * 5})
    assert page.judge_stories(t["summary"]).verdict == NOT_RUN


def test_table3_differences_paragraph():
    t = story_table(dict.fromkeys(PPL), PPL)
    text = page.differences(page.CONFIG, t)
    assert text.startswith("**How this differs from the paper.**") and "no judge configured" in text
    assert "cpu-large (8 blocks × 128 wide)" in text and "50 held-out TinyStories openings" in text
