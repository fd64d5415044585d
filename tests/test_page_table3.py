"""The Table 3 page (:mod:`lin_utils.pages.table3_story_quality`): judge grades give a verdict, automatic
proxies never do; its numbers, summary, configuration and committed tables."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lin_utils.claims import NOT_REPLICATED, NOT_RUN, PARTLY, REPLICATED
from lin_utils.pages import table3_story_quality as page
from tables import seeded_models, zoo_cosine_pairs

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
        "no judge configured, so no verdict; automatic proxies only (perplexity under the scorer: "
        "smoke-small baseline 6.33, smoke-small cos0.5 5.48, stories260K 12.00)", NOT_RUN, "no judge configured")


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


def test_grades_below_three_pairs_pool_over_sizes_by_completions_and_say_so():
    t = graded({SMALL: [(6, 7)] * 30 + [(6, 6)] * 20, LARGE: [(8, 8)] * 40 + [(8, 7)] * 10})
    m = page.paired_grades(t["items"])
    assert list(m["size"]) == ["smoke-small", "smoke-large"]
    assert m.effect.tolist() == pytest.approx([0.6, -0.2]) and m.n.tolist() == [50, 50]
    j = page.judge_stories(t)
    assert j.test is page.BY_COMPLETIONS and j.evidence.n == 100 and "not over training runs" in j.test.rule()
    assert j.evidence.effect == pytest.approx(0.2) and j.evidence.se == pytest.approx(math.hypot(*m.se) / 2)
    assert j.ours.startswith("2 training-run pairs, fewer than 3: standard errors over openings, not over training "
                             "runs; smoke-small: baseline 6.00, cosine 6.60 (+0.60 ± ") and "pooled +0.20" in j.ours


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
    assert "4,096,000 TinyStories tokens, three seeds per arm (0, 1, 2)" in text and "one training run per arm" in text
    assert ("the claim's unit is the training-run pair: six baseline / cos0.5 training-run pairs (size × seed), "
            "compared opening by opening inside each pair") in text


# ---------------------------------------------------------------------------------------------
# seeds as the unit of replication (issue 24, item 4): each (size, seed) baseline/cosine pair is
# one unit; inside it grades are paired by opening; the standard error is the spread over pairs

PAIRS = zoo_cosine_pairs()  # cpu-small and cpu-large, seeds 0, 1, 2


def _gains(*ups_downs, n=50, base=5):
    """Per pair (up, down): ``up`` openings the cosine model grades one higher, ``down`` one lower,
    so its gain is (up − down) / n grade points."""
    return {pair: [(base, base + 1)] * u + [(base, base - 1)] * d + [(base, base)] * (n - u - d)
            for pair, (u, d) in zip(PAIRS, ups_downs)}


def test_stories_seed_level_evidence_is_the_mean_and_spread_of_the_pairs_gains():
    t = graded(_gains((5, 0), (10, 2), (7, 1), (4, 4), (9, 0), (6, 0)))
    j = page.judge_stories(t)
    gains = np.array([5, 8, 6, 0, 9, 6]) / 50
    assert j.test is page.BY_SEEDS and j.evidence.n == 6
    assert j.evidence.effect == pytest.approx(gains.mean())
    assert j.evidence.se == pytest.approx(gains.std(ddof=1) / math.sqrt(6)) and j.verdict == REPLICATED
    assert j.ours.startswith(f"+{gains.mean():.2f} ± {j.evidence.se:.2f}, the mean over 6 training-run pairs")
    assert "cpu-small-s1: baseline 5.00, cosine 5.16" in j.ours
    assert "with its standard error over training-run pairs (size × seed)" in page.CLAIMS[0].rule_text


@pytest.mark.parametrize("pairs, verdict", [
    (((2, 2), (3, 0), (3, 0)), INCONCLUSIVE),  # gains 0, 3, 3 (/ 50): exactly 2.0 standard errors, not beyond
    (((1, 0), (7, 0), (13, 0)), REPLICATED),   # gains 1, 7, 13 (/ 50): 2.02 standard errors
])
def test_stories_seed_level_replicated_only_beyond_two_standard_errors(pairs, verdict):
    j = page.judge_stories(graded(_gains(*pairs)))
    assert j.test is page.BY_SEEDS and j.evidence.n == 3
    assert j.evidence.effect / j.evidence.se == pytest.approx(2.0 if verdict == INCONCLUSIVE else 2.0207, abs=1e-4)
    assert j.verdict == verdict


def test_stories_seed_level_contradicted_and_inconclusive():
    j = page.judge_stories(graded(_gains((0, 20), (0, 21), (0, 19))))
    assert j.verdict == CONTRADICTED
    j = page.judge_stories(graded(_gains((30, 0), (0, 25), (28, 0))))  # each pair clear, the seeds disagree
    assert j.verdict == INCONCLUSIVE and "no effect" in j.reason


def test_stories_seed_level_constant_grades_are_inconclusive_and_a_constant_pair_is_no_unit():
    j = page.judge_stories(graded(dict.fromkeys(PAIRS[:3], [(7, 7)] * 20)))
    assert j.test is page.BY_SEEDS and j.evidence.constant and j.verdict == INCONCLUSIVE and "same answer" in j.reason
    t = graded({PAIRS[0]: [(7, 7)] * 20, **dict(list(_gains((0, 0), (10, 0), (12, 0)).items())[1:])})
    j = page.judge_stories(t)
    assert j.evidence.n == 2 and j.verdict == INCONCLUSIVE and "fewer than 3" in j.reason


# the seeds on the page: the automatic proxies per arm


def _proxies():
    models = seeded_models()
    rng = np.random.default_rng(0)
    return pd.DataFrame(dict(model=models, n=50, judged=0, scorer_ppl=rng.uniform(4, 8, len(models)),
                             distinct_2=rng.uniform(0.8, 0.95, len(models)),
                             repetition_4=rng.uniform(0.0, 0.05, len(models)),
                             **dict.fromkeys(GRADES, np.nan)))


def test_stories_seed_table_and_summary_give_the_proxies_mean_and_sd_over_seeds():
    t = _proxies()
    st = page.seed_table(t).set_index("arm")
    three = t[t.model.isin(["zoo:cpu-small-mse2.0", "zoo:cpu-small-mse2.0-s1", "zoo:cpu-small-mse2.0-s2"])]
    assert st.at["cpu-small mse2.0", "scorer_ppl"] == pytest.approx(three.scorer_ppl.mean())
    assert st.at["cpu-small mse2.0", "repetition_4 sd"] == pytest.approx(three.repetition_4.std(ddof=1))
    assert "grammar" not in st  # no judge: no grade columns
    s = page.seeds_summary(t)
    assert list(s.columns) == ["arm", "seeds", "scorer ppl (proxy)", "distinct-2 (proxy)", "repetition (proxy)"]
    assert s.arm.tolist()[-1] == "stories260K" and s.seeds.tolist()[0] == "0, 1, 2"
    r = st.loc["cpu-large cos0.5"]
    assert s.set_index("arm").at["cpu-large cos0.5", "scorer ppl (proxy)"] == (
        f"{r['scorer_ppl']:.2f} ± {r['scorer_ppl sd']:.2f}")
    n = page.numbers(t)
    assert (n["seeds_min"], n["seeds_max"], n["verdict_stories"]) == (3, 3, NOT_RUN)
    assert n["seed_ppl_text"].startswith("cpu-small baseline ") and "stories260K" not in n["seed_ppl_text"]
    assert "mean ± sd over seeds: cpu-small baseline " in n["judge_text"]


def test_stories_seeded_plot_has_one_row_per_arm():
    import matplotlib

    matplotlib.use("Agg")
    from lin_utils import plots
    from lin_utils.pages._zoo_pairs import arm_label

    t = _proxies()
    fig = plots.story_quality_by_seed(t, {m: arm_label(m) for m in t.model})
    assert len(fig.axes) == 3 and len(fig.axes[0].get_yticklabels()) == 7
