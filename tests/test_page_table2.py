"""The Table 2 page (:mod:`lin_utils.pages.table2_benchmarks`) and the zoo pairs it shares with
Figs 4 and 5 and Table 3: pairs, comparisons, text and verdicts on hand-built layouts (dyadic
standard errors, so that exactly 2 standard errors is exactly 2.0), its configuration and its
committed tables."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from tables import HARNESS_MODELS, harness_scores, seeded_models, zoo_cosine_pairs

from lin_utils.claims import NOT_RUN, REPLICATED, Evidence
from lin_utils.pages import table2_benchmarks as page
from lin_utils import experiments
from lin_utils.pages._zoo_pairs import compare_to_baseline, size_groups, size_pairs


# two sizes of the cpu zoo: Table 2's and Fig 5's pairs come from the zoo's metadata
SIZES = ["cpu-small", "cpu-large"]
UNPAIRED = "zoo:gpu-small-mse0.5"  # a zoo model whose baseline is not in the table


# ---------------------------------------------------------------------------------------------
# pairing the zoo's baselines with their regularized twins: by the zoo's metadata (profile, size,
# seed, variant), never by the spelling of a name (pages/_zoo_pairs.py)


@pytest.mark.parametrize("models, variant, pairs", [
    (["zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5"], "cos0.5",
     [("cpu-large", "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5")]),
    # in the baselines' order; duplicates once; no twin, not from the zoo, unknown or a checkpoint: no pair
    (["zoo:cpu-small-cos0.5", "zoo:cpu-small-baseline", "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5",
      "zoo:gpu-small-baseline", "zoo:gpu-small-mse0.5", "hf:x-baseline", "hf:x-cos0.5", "zoo:a-baseline", "zoo:a-cos0.5",
      "zoo:gpu-large-baseline@8", "zoo:gpu-large-cos0.5@8", "gpt2", "zoo:cpu-large-baseline", "zoo:cpu-small-cos0.5"],
     "cos0.5", [("cpu-small", "zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5"),
                ("cpu-large", "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5")]),
    (["zoo:gpu-small-baseline", "zoo:gpu-small-mse0.5", "zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5"], "mse0.5",
     [("gpu-small", "zoo:gpu-small-baseline", "zoo:gpu-small-mse0.5")]),
    (["zoo:gpu-small-baseline", "zoo:gpu-small-mse0.5"], "cos0.5", []),
    (pd.Series(["zoo:cpu-small-baseline"] * 3 + ["zoo:cpu-small-cos0.5"] * 3), "cos0.5",
     [("cpu-small", "zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5")]),
    # seeds pair with their own seed only, and name it
    (["zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5-s1", "zoo:cpu-small-baseline-s1", "zoo:cpu-small-cos0.5-s2"],
     "cos0.5", [("cpu-small-s1", "zoo:cpu-small-baseline-s1", "zoo:cpu-small-cos0.5-s1")]),
])
def test_size_pairs(models, variant, pairs):
    assert size_pairs(models, variant) == pairs


def test_size_pairs_default_is_the_cosine_model():
    models = ["zoo:cpu-small-baseline", "zoo:cpu-small-mse0.5", "zoo:cpu-small-cos0.5"]
    assert size_pairs(models) == [("cpu-small", "zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5")]
    assert size_pairs(pd.Index(models)) == [("cpu-small", "zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5")]


def test_pairs_follow_the_zoos_metadata_not_the_names(monkeypatch):
    """Two entries whose names say nothing pair by their size and seed; a look-alike name does not."""
    from lin_utils import zoo

    base, cos = zoo.entry("cpu-large-baseline"), zoo.entry("cpu-large-cos0.5")
    monkeypatch.setitem(zoo.ENTRIES, "plain", dataclasses.replace(base, name="plain"))
    monkeypatch.setitem(zoo.ENTRIES, "fancy", dataclasses.replace(cos, name="fancy"))
    assert size_pairs(["zoo:plain", "zoo:fancy"]) == [("cpu-large", "zoo:plain", "zoo:fancy")]
    monkeypatch.setitem(zoo.ENTRIES, "cpu-small-cos0.5", dataclasses.replace(cos, name="cpu-small-cos0.5"))
    assert size_pairs(["zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5"]) == []  # a cpu-large model by its metadata


def test_size_groups_put_a_lone_model_beside_the_last_size():
    models = ["zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5", "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5",
              "stories260K"]
    assert size_groups(models) == [models[:2], models[2:]]
    assert size_groups(["stories260K", "gpt2"]) == [["stories260K", "gpt2"]]


# ---------------------------------------------------------------------------------------------
# Table 2: the cosine model against its baseline, in standard errors

# with standard errors 3/64 and 4/64 the joint one is exactly 5/64, so a difference of 10/64 is
# exactly 2 standard errors
SE_BASE, SE_COS, SE = 3 / 64, 4 / 64, 5 / 64
Z_DIFF = {"at": 2 * SE, "beyond": 2 * SE + 1 / 1024, "worse": -3 * SE, "zero": 0.0}


def _layout(rows):
    """A Table 2 layout: (model, mean, mean se) rows, another column, and the chance row."""
    t = pd.DataFrame([dict(model=m, cb=0.9, **{"cb se": 0.2, "mean": v, "mean se": s}) for m, v, s in rows])
    chance = pd.DataFrame([dict(model="chance", cb=1 / 3, **{"cb se": np.nan, "mean": 0.43, "mean se": np.nan})])
    return pd.concat([t, chance], ignore_index=True)


def _layout_for(kinds):
    rows = [(UNPAIRED, 0.9, 0.001)]
    for i, kind in enumerate(kinds):
        rows += [(f"zoo:{SIZES[i]}-baseline", 0.5, SE_BASE), (f"zoo:{SIZES[i]}-cos0.5", 0.5 + Z_DIFF[kind], SE_COS)]
    return _layout(rows)


def test_table2_pairs_difference_and_joint_standard_error():
    t = _layout([("zoo:cpu-large-cos0.5", 0.62, 0.02), ("zoo:cpu-large-baseline", 0.55, 0.03),
                 ("zoo:cpu-small-mse2.0", 0.9, 0.001), ("zoo:cpu-small-baseline", 0.5, 0.01),
                 ("zoo:cpu-small-cos0.5", 0.45, 0.04), ("gpt2", 0.7, 0.01)])
    pairs = page.pairs(t)
    assert [p["size"] for p in pairs] == ["cpu-large", "cpu-small"]
    for p, (base, cos, se_b, se_c) in zip(pairs, [(0.55, 0.62, 0.03, 0.02), (0.5, 0.45, 0.01, 0.04)]):
        assert set(p) == {"size", "baseline", "cosine", "diff", "z"}
        assert (p["baseline"], p["cosine"]) == (base, cos)
        assert p["diff"] == pytest.approx(cos - base, abs=1e-15)
        assert p["z"] == pytest.approx((cos - base) / math.sqrt(se_b**2 + se_c**2), rel=1e-12)
    assert page.pairs_text(t) == ("cpu-large: mean 0.550 baseline, 0.620 cosine (+0.070, z = +1.9); "
                                  "cpu-small: mean 0.500 baseline, 0.450 cosine (-0.050, z = -1.2)")


# harness-shaped tables


def test_comparisons_use_the_same_size_baseline_and_the_joint_standard_error():
    s = harness_scores(HARNESS_MODELS, np.random.default_rng(1))
    layout = experiments.table2_layout(s)
    cmp = compare_to_baseline(layout)
    t = layout.set_index("model")
    assert set(cmp.model) == {"zoo:cpu-small-cos0.5", "zoo:cpu-large-cos0.5"}
    row = cmp[(cmp.model == "zoo:cpu-large-cos0.5") & (cmp.column == "copa")].iloc[0]
    assert row.baseline == "zoo:cpu-large-baseline"
    diff = t.at["zoo:cpu-large-cos0.5", "copa"] - t.at["zoo:cpu-large-baseline", "copa"]
    se = math.sqrt(t.at["zoo:cpu-large-cos0.5", "copa se"] ** 2 + t.at["zoo:cpu-large-baseline", "copa se"] ** 2)
    assert row["diff"] == pytest.approx(diff) and row.z == pytest.approx(diff / se)


def test_table2_summary_has_one_table_per_zoo_size_with_n_and_se_in_the_row_label():
    models = ["zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5", "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5",
              "stories260K"]
    layout = pd.DataFrame({"model": models + ["chance"], "boolq": [0.5, 0.6, 0.7, 0.8, 0.9, 0.5],
                           "boolq se": [0.01, 0.03, 0.02, 0.02, 0.02, 0.0], "mean": [0.5, 0.6, 0.7, 0.8, 0.9, 0.5],
                           "mean se": [0.01] * 5 + [0.0]})
    scores = pd.DataFrame({"task": ["boolq"], "n": [1200]})
    text = page.summary(layout, scores)
    small, large = text.split("**cpu-large**")
    assert small.startswith("**cpu-small**") and "| column | baseline | cos0.5 | chance |" in small
    assert "| boolq (n = 1,200, se ≤ 0.030) | 0.500 | 0.600 | 0.500 |" in small
    assert "| column | baseline | cos0.5 | stories260K | chance |" in large and "| mean (se ≤ 0.010) | 0.700 | 0.800 | 0.900" in large


def test_numbers_count_cells_near_chance_and_differences_beyond_two_standard_errors():
    s = harness_scores(HARNESS_MODELS, np.random.default_rng(5))
    layout = experiments.table2_layout(s)
    n = page.numbers(layout, s)
    assert n["n_models"] == len(HARNESS_MODELS) and n["n_columns"] == 7 and (n["n_min"], n["n_max"]) == (100, 100)
    assert n["n_diffs"] == 2 * 7  # two cosine models (no mse model has its baseline) x 7 columns besides the mean
    assert n["pairs_text"] == page.pairs_text(layout)
    assert (n["verdict_benchmarks"], n["constant_text"]) == (NOT_RUN, "per-document answers not stored")


# ---------------------------------------------------------------------------------------------
# the paired (per-document) comparison behind the verdict (issue 23, item 5)

from lin_utils.claims import CONTRADICTED, INCONCLUSIVE  # noqa: E402

BASE, COS = "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5"


def _items(task_docs: dict, chance: float | None = None):
    """Per-document items of the cpu-large pair. ``task_docs``: task -> list of (base right, cos
    right[, base answer, cos answer]) per document; answers default to "right" being choice 0."""
    rows = []
    for task, docs in task_docs.items():
        for i, doc in enumerate(docs):
            b, c = doc[:2]
            pb, pc = doc[2:] if len(doc) > 2 else (1 - b, 1 - c)
            rows.append(dict(model=BASE, task=task, doc_id=i, n_choices=2, gold=0, pred=pb, metric="acc",
                             value=float(b), logliks=""))
            rows.append(dict(model=COS, task=task, doc_id=i, n_choices=2, gold=0, pred=pc, metric="acc",
                             value=float(c), logliks=""))
    items = pd.DataFrame(rows)
    scores = None if chance is None else pd.DataFrame(
        [dict(model=m, task=t, metric="acc", chance=chance) for m in (BASE, COS) for t in task_docs])
    return items, scores


def _docs(n, up=0, down=0, base_right=None):
    """n documents: ``up`` where only the cosine model is right, ``down`` where only the baseline
    is, the rest alike (both right for the first ``base_right`` of them, default half)."""
    rest = n - up - down
    both = rest // 2 if base_right is None else base_right
    return [(0, 1)] * up + [(1, 0)] * down + [(1, 1)] * both + [(0, 0)] * (rest - both)


def _verdict(items, scores=None):
    return page.judge_paired({"items": items, "scores": scores})


def test_paired_effect_is_the_mean_per_document_difference_with_its_standard_error():
    items, _ = _items({"copa": _docs(100, up=30, down=10)})
    [r] = page.item_comparison(items).itertuples()
    d = np.array([1] * 30 + [-1] * 10 + [0] * 60)
    assert r.effect == pytest.approx(100 * d.mean()) and r.se == pytest.approx(100 * d.std(ddof=1) / 10)
    assert (r.better, r.worse, r.n, r.constant) == (30, 10, 100, False)
    assert r.mde == pytest.approx(2.8 * r.se)


@pytest.mark.parametrize("n, up, verdict", [
    (10, 3, INCONCLUSIVE),   # z = sqrt(3 * 9 / 7) = 1.96: not beyond 2 standard errors
    (13, 4, REPLICATED),     # z = sqrt(4 * 12 / 9) = 2.31
])
def test_table2_replicated_only_beyond_two_standard_errors(n, up, verdict):
    items, _ = _items({"copa": _docs(n, up=up)})
    j = _verdict(items)
    assert j.evidence.effect / j.evidence.se == pytest.approx(math.sqrt(up * (n - 1) / (n - up)))
    assert j.verdict == verdict


def test_table2_contradicted_with_the_power_to_see_the_papers_effect():
    items, _ = _items({"copa": _docs(4000, down=200)})  # -5 points, se 0.34: MDE 1.0 < the paper's 2.4
    j = _verdict(items)
    assert j.evidence.mde < page.TEST.paper_effect and j.verdict == CONTRADICTED


def test_table2_inconclusive_by_power():
    items, _ = _items({"copa": _docs(100, down=5)})  # -5 points, se 2.2: MDE 6.1 > 2.4
    j = _verdict(items)
    assert j.verdict == INCONCLUSIVE and "minimum detectable effect" in j.reason
    assert j.evidence.mde > page.TEST.paper_effect


def test_table2_inconclusive_when_the_baseline_is_at_chance():
    at = _docs(200, up=100, base_right=50)  # baseline right on 50 of 200 + ... : 25% against chance 25%
    items, scores = _items({"copa": at}, chance=0.25)
    j = _verdict(items, scores)
    assert j.evidence.at_chance and j.verdict == INCONCLUSIVE and "chance" in j.reason
    items, scores = _items({"copa": at}, chance=0.05)  # far from chance: the same gain replicates
    assert _verdict(items, scores).verdict == REPLICATED


@pytest.mark.parametrize("answers", ["same", "each constant"])
def test_a_task_with_constant_answers_is_left_out_of_the_mean(answers):
    const = ([(1, 1, 0, 0)] * 37 + [(0, 0, 1, 1)] * 63 if answers == "same"  # both answer every item alike
             else [(1, 0, 0, 1)] * 37 + [(0, 1, 0, 1)] * 63)                # one always "0", the other always "1"
    items, _ = _items({"boolq": const, "copa": _docs(13, up=4)})
    ic = page.item_comparison(items).set_index("task")
    assert ic.at["boolq", "constant"] and not ic.at["copa", "constant"]
    [m] = page.mean_comparison(ic.reset_index()).itertuples()
    assert (m.tasks, m.left_out) == (1, "boolq") and m.effect == pytest.approx(ic.at["copa", "effect"])
    j = _verdict(items)
    assert j.verdict == REPLICATED and "boolq" in j.ours
    assert page.constant_text(ic.reset_index()) == "boolq (1 of 1)"


def test_table2_inconclusive_when_every_task_has_constant_answers():
    items, _ = _items({"boolq": [(1, 1, 0, 0)] * 40 + [(0, 0, 1, 1)] * 60,
                       "record": [(1, 1, 3, 3)] * 10 + [(0, 0, 2, 2)] * 22})
    j = _verdict(items)
    assert j.evidence.constant and j.verdict == INCONCLUSIVE and "same answer" in j.reason


def test_a_task_where_only_one_model_is_constant_still_counts():
    docs = [(1, 1, 0, 0)] * 50 + [(0, 1, 0, 1)] * 10 + [(0, 0, 0, 1)] * 40  # the baseline always answers 0
    items, _ = _items({"boolq": docs})
    [r] = page.item_comparison(items).itertuples()
    assert r.baseline_constant and not r.model_constant and not r.constant and r.effect == pytest.approx(10.0)


def test_table2_below_three_pairs_falls_back_to_documents_pooled_over_sizes_and_says_so():
    items, _ = _items({"copa": _docs(100, up=20)})
    small = items.replace({BASE: "zoo:cpu-small-baseline", COS: "zoo:cpu-small-cos0.5"})
    items2, _ = _items({"copa": _docs(100, down=10)})
    both = pd.concat([small, items2], ignore_index=True)
    test, ev, m = page.paired_evidence(both)
    assert test is page.BY_DOCUMENTS and test.unit.startswith("documents") and ev.n == 200
    assert list(m["size"]) == ["cpu-small", "cpu-large"]
    assert ev.effect == pytest.approx((20 + -10) / 2)
    assert ev.se == pytest.approx(math.hypot(*m.se) / 2)
    j = page.judge_paired({"items": both, "scores": None})
    assert j.test is page.BY_DOCUMENTS and "not over training runs" in j.test.rule()
    assert j.ours.startswith("2 training-run pairs, fewer than 3: standard errors over documents, not over "
                             "training runs; cpu-small: +20.0 ± ") and "pooled over sizes +5.0" in j.ours


def test_table2_without_items_or_a_pair_is_not_run():
    assert page.judge_paired({"items": None, "scores": None}).verdict == NOT_RUN
    items, _ = _items({"copa": _docs(10, up=3)})
    alone = items[items.model == BASE]
    assert page.judge_paired({"items": alone, "scores": None}).verdict == NOT_RUN


def test_the_claims_test_reads_the_papers_effect_from_the_data_file():
    from lin_utils import paper

    gains = paper.table2_mean_effects()
    assert page.TEST.paper_effect == gains.value.min() == 2.4
    [claim] = page.CLAIMS
    assert claim.test is page.TEST is page.BY_SEEDS and "+2.4" in claim.rule_text
    assert "with its standard error over training-run pairs (size × seed)" in claim.rule_text
    assert "always with fewer than 3 training-run pairs (size × seed)" in claim.rule_text


def test_differences_paragraph_comes_from_the_config_and_scores():
    scores = pd.DataFrame([dict(model=BASE, task="copa", n=100, n_total=100, split="validation"),
                           dict(model=BASE, task="record", n=32, n_total=32, split="fewglue_train32")])
    text = page.differences(page.CONFIG, scores)
    assert text.startswith("**How this differs from the paper.**")
    assert "cpu-large (8 blocks × 128 wide)" in text and "copa 100 of 100" in text and "record 32 of 10,000" in text
    assert "FewGLUE" in text and "4,096,000 TinyStories tokens, three seeds per arm (0, 1, 2)" in text
    assert ("The claim's unit is the training-run pair: six baseline / cos0.5 training-run pairs (size × seed), "
            "compared document by document inside each pair") in text
    assert "one run per model" not in text and "one training run per arm" in text
    one_seed = dataclasses.replace(page.CONFIG, models=("zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5"))
    text = page.differences(one_seed, scores)
    assert "seed 0 only" in text and "One baseline / cos0.5 training-run pair (size × seed), fewer than three" in text


def test_a_task_where_no_document_is_scored_differently_is_left_out():
    """ReCoRD: different wrong entities, the same zero score on every passage: no discordant document."""
    items, _ = _items({"record": [(0, 0, 1, 2), (0, 0, 3, 0), (1, 1, 0, 0)] * 5, "copa": _docs(13, up=4)})
    ic = page.item_comparison(items).set_index("task")
    assert not ic.at["record", "same_answers"] and ic.at["record", "same_scores"] and ic.at["record", "constant"]
    assert page.mean_comparison(ic.reset_index()).left_out.iloc[0] == "record"


def test_the_paired_table_says_why_a_task_is_left_out():
    items, _ = _items({"boolq": [(1, 1, 0, 0)] * 4 + [(0, 0, 1, 1)] * 6,
                       "multirc": [(1, 0, 0, 1)] * 4 + [(0, 1, 0, 1)] * 6,
                       "record": [(0, 0, 1, 2), (0, 0, 3, 0), (1, 1, 0, 0)],
                       "copa": _docs(13, up=4)})
    t = page.paired_table(items, None).set_index("task")
    assert t.at["boolq", "model − baseline (points)"] == "left out: the same answer to every document"
    assert t.at["multirc", "model − baseline (points)"] == "left out: each gives one answer to every document"
    assert t.at["record", "model − baseline (points)"] == "left out: no document scored differently"
    assert t.at["copa", "model − baseline (points)"].startswith("+30.8 ± ") and math.isnan(t.at["boolq", "MDE"])
    assert t.at["mean of 1", "n"] == 13


# ---------------------------------------------------------------------------------------------
# seeds as the unit of replication (issue 24, item 4): every (size, seed) baseline/cosine pair is
# one unit; inside it the paired per-document test as above; the claim's standard error is the
# spread of the pairs' mean gains over seeds

PAIRS = zoo_cosine_pairs()  # six pairs: cpu-small and cpu-large, seeds 0, 1, 2


def _seeded(per_pair: list[dict], chance: float | None = None):
    """Items of the first ``len(per_pair)`` cpu cosine pairs: each pair's task -> docs (:func:`_docs`)."""
    parts, scores = [], []
    for (base, cos), task_docs in zip(PAIRS, per_pair):
        items, sc = _items(task_docs, chance)
        parts.append(items.replace({BASE: base, COS: cos}))
        if sc is not None:
            scores.append(sc.replace({BASE: base, COS: cos}))
    return pd.concat(parts, ignore_index=True), (pd.concat(scores, ignore_index=True) if scores else None)


def _gains(*ups_downs, n=100):
    """One pair per (up, down): copa on ``n`` documents, so its gain is (up − down) · 100 / n points."""
    return [{"copa": _docs(n, up=u, down=d)} for u, d in ups_downs]


def test_seed_level_evidence_is_the_mean_and_spread_of_the_pairs_gains():
    items, _ = _seeded(_gains((3, 0), (5, 1), (6, 0), (2, 2), (8, 1), (4, 0)))
    test, ev, m = page.paired_evidence(items)
    assert test is page.BY_SEEDS and test.unit == "training-run pairs (size × seed)"
    assert list(m["size"]) == ["cpu-small", "cpu-small-s1", "cpu-small-s2", "cpu-large", "cpu-large-s1",
                               "cpu-large-s2"]
    gains = np.array([3, 4, 6, 0, 7, 4], dtype=float)
    assert m.effect.to_numpy() == pytest.approx(gains)
    assert (ev.n, ev.effect) == (6, pytest.approx(gains.mean()))
    assert ev.se == pytest.approx(gains.std(ddof=1) / math.sqrt(6)) and ev.mde == pytest.approx(2.8 * ev.se)
    j = page.judge_paired({"items": items, "scores": None})
    assert j.test is page.BY_SEEDS and j.verdict == REPLICATED
    assert j.ours.startswith(f"+4.0 ± {ev.se:.1f} points, the mean over 6 training-run pairs (size × seed) with its "
                             "standard error over the pairs")
    assert f"cpu-small {gains[:3].mean():+.1f} ± {gains[:3].std(ddof=1):.1f} (sd over 3 seeds)" in j.ours
    assert "cpu-large-s1 +7.0 ± " in j.ours and "against the paper's +2.4" in j.ours


@pytest.mark.parametrize("pairs, verdict", [
    (((2, 2), (3, 0), (3, 0)), INCONCLUSIVE),  # gains 0, 3, 3: exactly 2.0 standard errors, not beyond
    (((1, 0), (7, 0), (13, 0)), REPLICATED),   # gains 1, 7, 13: 2.02 standard errors
])
def test_seed_level_replicated_only_beyond_two_standard_errors_over_pairs(pairs, verdict):
    items, _ = _seeded(_gains(*pairs))
    j = page.judge_paired({"items": items, "scores": None})
    assert j.test is page.BY_SEEDS and j.evidence.n == 3
    z = j.evidence.effect / j.evidence.se
    assert z == (2.0 if verdict == INCONCLUSIVE else pytest.approx(2.0207, abs=1e-4))
    assert j.verdict == verdict


def test_seed_level_item_noise_alone_does_not_replicate():
    """Each pair's gain is far beyond its own document-level standard error, but the pairs disagree:
    over seeds the gain is within noise and the test cannot see the paper's effect."""
    items, _ = _seeded(_gains((40, 0), (0, 30), (35, 0), (0, 30), n=400))
    j = page.judge_paired({"items": items, "scores": None})
    assert (j.evidence.n, j.verdict) == (4, INCONCLUSIVE) and "minimum detectable effect" in j.reason
    assert j.evidence.mde > page.TEST.paper_effect
    assert all(abs(r.z) > 5 for r in page.mean_comparison(page.item_comparison(items)).itertuples())


@pytest.mark.parametrize("pairs, reason", [
    (((0, 30), (0, 31), (0, 29)), "beyond 2 standard errors against"),           # about −3 points, se 0.06
    (((1, 1), (11, 10), (2, 3)), "the 95% interval excludes the paper's effect"),  # about 0 ± 0.06
])
def test_seed_level_contradicted_when_the_pairs_could_see_the_papers_effect(pairs, reason):
    items, _ = _seeded(_gains(*pairs, n=1000))
    j = page.judge_paired({"items": items, "scores": None})
    assert j.evidence.mde < page.TEST.paper_effect and j.verdict == CONTRADICTED and reason in j.reason


def test_seed_level_inconclusive_when_the_baselines_are_at_chance():
    at = _docs(200, up=100, base_right=50)  # the baselines right on 50 of 200 documents: 25%
    items, scores = _seeded([{"copa": at}] * 3, chance=0.25)
    j = page.judge_paired({"items": items, "scores": scores})
    assert j.test is page.BY_SEEDS and j.evidence.at_chance and j.verdict == INCONCLUSIVE and "chance" in j.reason


def test_seed_level_inconclusive_when_every_pair_gives_constant_answers():
    const = {"boolq": [(1, 1, 0, 0)] * 40 + [(0, 0, 1, 1)] * 60}
    items, _ = _seeded([const] * 3)
    j = page.judge_paired({"items": items, "scores": None})
    assert j.test is page.BY_SEEDS and j.evidence.constant and j.evidence.n == 3
    assert j.verdict == INCONCLUSIVE and "same answer" in j.reason


def test_a_pair_without_an_informative_task_is_not_a_unit():
    """Three pairs in the table, one of them constant: two units, too few to estimate their spread."""
    const = {"boolq": [(1, 1, 0, 0)] * 40 + [(0, 0, 1, 1)] * 60}
    items, _ = _seeded([const] + _gains((30, 0), (30, 1)))
    j = page.judge_paired({"items": items, "scores": None})
    assert j.test is page.BY_SEEDS and j.evidence.n == 2
    assert j.verdict == INCONCLUSIVE and "fewer than 3" in j.reason
    assert "cpu-small: no task carries information" in j.ours and "cpu-small-s1 +30.0 ± 4.6 over 1 task," in j.ours


def test_constant_tasks_are_left_out_inside_each_pair():
    const = [(1, 1, 0, 0)] * 37 + [(0, 0, 1, 1)] * 63
    items, _ = _seeded([{"boolq": const, **g} for g in _gains((4, 0), (5, 0), (6, 0))])
    test, ev, m = page.paired_evidence(items)
    assert list(m.left_out) == ["boolq"] * 3 and list(m.tasks) == [1, 1, 1]
    assert ev.effect == pytest.approx(5.0) and ev.se == pytest.approx(1 / math.sqrt(3))
    assert "(left out: boolq)" in page.judge_paired({"items": items, "scores": None}).ours


# the seeds on the page: mean and spread over seeds per arm


def _seeded_layout(seed=3):
    scores = harness_scores(seeded_models(), np.random.default_rng(seed))
    return experiments.table2_layout(scores), scores


def test_seed_table_gives_mean_sd_and_range_over_seeds_per_arm():
    layout, _ = _seeded_layout()
    st = page.seed_table(layout).set_index("arm")
    assert list(st.index) == ["cpu-small baseline", "cpu-small cos0.5", "cpu-small mse0.5", "cpu-small mse2.0",
                              "cpu-large baseline", "cpu-large cos0.5", "stories260K"]
    assert st.seeds.tolist() == [3] * 6 + [1] and st.at["cpu-small cos0.5", "seed_list"] == "0, 1, 2"
    t = layout.set_index("model")
    three = t.loc[["zoo:cpu-large-cos0.5", "zoo:cpu-large-cos0.5-s1", "zoo:cpu-large-cos0.5-s2"]]
    for c in ("copa", "mean"):
        assert st.at["cpu-large cos0.5", c] == pytest.approx(three[c].mean())
        assert st.at["cpu-large cos0.5", f"{c} sd"] == pytest.approx(three[c].std(ddof=1))
        assert (st.at["cpu-large cos0.5", f"{c} min"], st.at["cpu-large cos0.5", f"{c} max"]) == (
            three[c].min(), three[c].max())
    assert math.isnan(st.at["stories260K", "mean sd"])


def test_seeds_summary_has_one_table_per_size_with_mean_and_sd_over_seeds():
    layout, scores = _seeded_layout()
    text = page.seeds_summary(layout, scores)
    small, large = text.split("**cpu-large**")
    assert small.startswith("**cpu-small**")
    assert ("| column | baseline (seeds 0, 1, 2) | cos0.5 (seeds 0, 1, 2) | mse0.5 (seeds 0, 1, 2) | "
            "mse2.0 (seeds 0, 1, 2) | chance |") in small
    assert "| column | baseline (seeds 0, 1, 2) | cos0.5 (seeds 0, 1, 2) | stories260K | chance |" in large
    st = page.seed_table(layout).set_index("arm")
    r = st.loc["cpu-large cos0.5"]
    assert f"| {r['mean']:.3f} ± {r['mean sd']:.3f} |" in large and "| boolq (n = 100) |" in small
    assert f"| {st.at['stories260K', 'mean']:.3f} |" in large  # one run: no spread


def test_numbers_carry_the_seeds_and_the_unit():
    layout, scores = _seeded_layout()
    n = page.numbers(layout, scores)
    assert (n["seeds_min"], n["seeds_max"], n["verdict_benchmarks"], n["n_units"]) == (3, 3, NOT_RUN, 0)
    st = page.seed_table(layout)
    sds = st[st.seed_list != "—"]["mean sd"]
    assert (n["mean_sd_min"], n["mean_sd_max"]) == (sds.min(), sds.max())
    assert n["seed_means_text"].startswith("cpu-small baseline ") and "(seeds 0, 1, 2)" in n["seed_means_text"]
    items, _ = _seeded(_gains((3, 0), (5, 1), (6, 0), (2, 2), (8, 1), (4, 0)))
    n = page.numbers(layout, scores, items)
    assert (n["n_units"], n["unit"], n["by_seeds"], n["n_pairs"]) == (6, "training-run pairs (size × seed)", True, 6)


def test_the_seeded_plot_has_one_row_per_arm():
    import matplotlib

    matplotlib.use("Agg")
    from lin_utils import plots
    from lin_utils.pages._zoo_pairs import arm_label

    layout, _ = _seeded_layout()
    fig = plots.benchmark_scores_by_seed(layout, {m: arm_label(m) for m in layout.model if m != "chance"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["cpu-small baseline", "cpu-small cos0.5"]
    assert len(ax.get_yticklabels()) == 7 and len(ax.collections) >= 7  # seven arms, each its seeds' points


def test_one_informative_pair_of_several_has_no_spread_to_report():
    m = pd.DataFrame([dict(size="cpu-small", tasks=0, left_out="boolq", effect=math.nan, se=math.nan),
                      dict(size="cpu-large", tasks=2, left_out="", effect=25.0, se=4.0)])
    ev = Evidence.of([25.0])
    text = page.paired_text(m, ev, page.BY_SEEDS)
    assert text.startswith("+25.0 points from the only informative training-run pair of 2: no standard error over pairs")
    assert "nan" not in text and "cpu-large +25.0 ± 4.0 over 2 tasks" in text
