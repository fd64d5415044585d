"""The Fig 5 page (:mod:`lin_utils.pages.fig5_linear_probes`): pairs over common boundaries, text and
verdicts on hand-built probe tables (dyadic standard errors), its configuration and its committed
tables."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from tables import probe_table, probe_table_seeded, zoo_cosine_pairs

from lin_utils.claims import NOT_REPLICATED, NOT_RUN, PARTLY, REPLICATED, Evidence
from lin_utils.pages import fig5_linear_probes as page

REP, PART, NOT = REPLICATED, PARTLY, NOT_REPLICATED

# two sizes of the cpu zoo: Table 2's and Fig 5's pairs come from the zoo's metadata
SIZES = ["cpu-small", "cpu-large"]
UNPAIRED = "zoo:gpu-small-mse0.5"  # a zoo model whose baseline is not in the table

# with standard errors 3/64 and 4/64 the joint one is exactly 5/64, so a difference of 10/64 is
# exactly 2 standard errors
SE_BASE, SE_COS, SE = 3 / 64, 4 / 64, 5 / 64
Z_DIFF = {"at": 2 * SE, "beyond": 2 * SE + 1 / 1024, "worse": -3 * SE, "zero": 0.0}


def _probe_table(rows):
    """rows: (model, boundary, test_acc, test_se), in any order, plus columns the rules ignore."""
    t = pd.DataFrame(rows, columns=["model", "boundary", "test_acc", "test_se"])
    return t.assign(n_blocks=8, cv_mean=0.99, cv_std=0.5, n_test=3000, chance=0.5)


# per-boundary differences (cosine - baseline) whose mean is exactly 10/64 (= 2 SE), just beyond, or far worse
PROBE_DIFFS = {"at": [0.3125, 0.0, 0.15625, 0.15625], "beyond": [0.3125, 0.0, 0.15625, 0.171875],
               "worse": [-0.234375] * 4, "zero": [0.0] * 4}
PROBE_BASE = [0.5, 0.25, 0.5, 0.25]


def _probes_for(kinds):
    rows = [(UNPAIRED, b, 0.99, 0.001) for b in range(4)]
    for i, kind in enumerate(kinds):
        for b, (a, d) in enumerate(zip(PROBE_BASE, PROBE_DIFFS[kind])):
            rows += [(f"zoo:{SIZES[i]}-cos0.5", b, a + d, SE_COS), (f"zoo:{SIZES[i]}-baseline", b, a, SE_BASE)]
    return _probe_table(rows)


def test_fig5_pairs_over_the_common_boundaries():
    # over the common boundaries 1-3 the means differ from the medians
    base = {0: (0.9, 0.5), 1: (0.5, 0.01), 2: (0.6, 0.02), 3: (0.45, 0.03)}
    cos = {1: (0.52, 0.02), 2: (0.6, 0.02), 3: (0.65, 0.04), 4: (0.1, 0.5)}
    rows = ([("zoo:cpu-large-cos0.5", b, a, s) for b, (a, s) in reversed(cos.items())]
            + [("zoo:cpu-large-baseline", b, a, s) for b, (a, s) in base.items()]
            + [("zoo:cpu-small-mse0.5", b, 0.2, 0.001) for b in range(5)]
            + [("zoo:cpu-small-baseline", b, 0.5, 0.25) for b in range(2)]
            + [("zoo:cpu-small-cos0.5", b, 0.75, 0.25) for b in range(2)])
    pairs = page.pairs(_probe_table(rows))
    assert [p["size"] for p in pairs] == ["cpu-large", "cpu-small"]
    p = pairs[0]
    assert set(p) == {"size", "baseline", "cosine", "diff", "z", "higher", "n"}
    common = [1, 2, 3]
    diffs = [cos[b][0] - base[b][0] for b in common]  # 0.02, 0.0 (not higher), 0.2
    se = statistics.mean(math.sqrt(base[b][1] ** 2 + cos[b][1] ** 2) for b in common)
    assert statistics.median(diffs) != pytest.approx(statistics.mean(diffs))
    assert p["n"] == 3 and p["higher"] == 2
    assert p["baseline"] == pytest.approx(statistics.mean(base[b][0] for b in common), abs=1e-15)
    assert p["cosine"] == pytest.approx(statistics.mean(cos[b][0] for b in common), abs=1e-15)
    assert p["diff"] == pytest.approx(statistics.mean(diffs), abs=1e-15)
    assert p["z"] == pytest.approx(statistics.mean(diffs) / se, rel=1e-12)
    small = pairs[1]
    assert (small["n"], small["higher"], small["diff"]) == (2, 2, 0.25)
    assert small["z"] == pytest.approx(0.25 / math.sqrt(2 * 0.25**2), rel=1e-12)


def test_numbers_and_summary():
    t = probe_table([0.5, 0.6, 0.55], [0.52, 0.56, 0.7])
    n = page.numbers(t)
    assert (n["best_model"], n["best_boundary"], n["best_acc"]) == ("cpu-large-cos0.5", 2, 0.7)
    assert (n["n_models"], n["n_test"], n["n_train"]) == (2, 3000, 720)
    assert (n["pairs_text"], n["verdict_probes"]) == (page.pairs_text(t), NOT_RUN)
    s = page.summary(t).set_index("model")
    assert list(s.index) == ["cpu-large-baseline", "cpu-large-cos0.5"]
    assert (s.at["cpu-large-baseline", "best boundary"], s.at["cpu-large-cos0.5", "last"]) == (1, 0.7)
    assert s.at["cpu-large-baseline", "mean"] == pytest.approx(0.55)


# ---------------------------------------------------------------------------------------------
# the paired comparison over stories behind the verdict (issue 23, item 5)

from lin_utils.claims import CONTRADICTED, INCONCLUSIVE  # noqa: E402

BASE, COS = "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5"


def _items(stories, boundaries=(0, 1), base_acc=None):
    """Per-example probe items of the cpu-large pair: ``stories`` is a list of (base right, cos
    right) per story, applied to both its endings at every boundary; predictions follow."""
    rows = []
    for b in boundaries:
        for s, (br, cr) in enumerate(stories):
            for k, label in enumerate((1, 0)):
                item = 2 * s + k
                for m, right in ((BASE, br), (COS, cr)):
                    pred = label if right else 1 - label
                    rows.append(dict(model=m, boundary=b, item=item, story=s, label=label, pred=pred,
                                     correct=int(right)))
    return pd.DataFrame(rows)


def _stories(n, up=0, down=0, base_right=None):
    rest = n - up - down
    both = rest // 2 if base_right is None else base_right
    return [(0, 1)] * up + [(1, 0)] * down + [(1, 1)] * both + [(0, 0)] * (rest - both)


def _judge(items):
    return page.judge_paired({"probes": None, "items": items})


def test_fig5_paired_effect_is_over_stories_averaged_over_boundaries_and_endings():
    items = _items(_stories(100, up=30, down=10))
    [r] = page.mean_comparison(items).itertuples()
    d = np.array([1] * 30 + [-1] * 10 + [0] * 60)
    assert (r.n, r.boundaries) == (100, 2)
    assert r.effect == pytest.approx(100 * d.mean()) and r.se == pytest.approx(100 * d.std(ddof=1) / 10)
    per = page.item_comparison(items)
    assert list(per.boundary) == [0, 1] and (per.better == 60).all() and (per.worse == 20).all()


@pytest.mark.parametrize("n, up, verdict", [(100, 3, INCONCLUSIVE), (100, 4, REPLICATED)])  # z = 1.75, 2.03
def test_fig5_replicated_only_beyond_two_standard_errors(n, up, verdict):
    j = _judge(_items(_stories(n, up=up, base_right=n - up)))  # the baseline well above chance
    assert j.evidence.effect / j.evidence.se == pytest.approx(math.sqrt(up * (n - 1) / (n - up)))
    assert not j.evidence.at_chance and j.verdict == verdict


def test_fig5_below_three_pairs_falls_back_to_stories_and_says_so():
    j = _judge(_items(_stories(100, up=4, base_right=96)))
    assert j.test is page.BY_STORIES and j.evidence.n == 100 and "not over training runs" in j.test.rule()
    assert j.ours.startswith("1 training-run pair, fewer than 3: standard errors over stories, not over training runs")


def test_fig5_without_a_paper_effect_a_clear_loss_contradicts():
    j = _judge(_items(_stories(1000, down=100, base_right=800)))
    assert page.TEST.paper_effect is None and j.verdict == CONTRADICTED


def test_fig5_inconclusive_when_the_baseline_probe_is_at_chance():
    j = _judge(_items(_stories(400, up=100, base_right=200)))  # baseline right on 200 of 400 stories: 50%
    assert j.evidence.at_chance and j.verdict == INCONCLUSIVE and "chance" in j.reason


def test_fig5_inconclusive_when_the_probes_answer_alike():
    j = _judge(_items(_stories(200, base_right=150)))
    assert j.evidence.constant and j.verdict == INCONCLUSIVE and "same answer" in j.reason


def test_fig5_without_items_or_a_pair_is_not_run():
    assert _judge(None).verdict == NOT_RUN
    items = _items(_stories(10, up=3))
    assert _judge(items[items.model == BASE]).verdict == NOT_RUN


def test_fig5_differences_paragraph():
    t = probe_table([0.5, 0.6], [0.52, 0.56])
    text = page.differences(page.CONFIG, t)
    assert text.startswith("**How this differs from the paper.**") and "cpu-large (8 blocks × 128 wide)" in text
    assert "3,000 en_eval examples" in text and "720 en_train" in text
    assert "4,096,000 TinyStories tokens, three seeds per arm (0, 1, 2)" in text and "one run per model" not in text
    assert ("the claim's unit is the training-run pair: three baseline / cos0.5 training-run pairs (size × seed), "
            "compared story by story inside each pair") in text and "one training run per arm" in text


# ---------------------------------------------------------------------------------------------
# seeds as the unit of replication (issue 24, item 4): each (size, seed) baseline/cosine pair is
# one unit; inside it the paired test over stories; the standard error is the spread over pairs

PAIRS = zoo_cosine_pairs()[3:]  # the cpu-large pairs of seeds 0, 1, 2: Fig 5's models


def _seeded(per_pair):
    """Items of the cpu-large pairs, one list of (base right, cos right) stories per pair."""
    parts = []
    for (base, cos), stories in zip(PAIRS, per_pair):
        parts.append(_items(stories).replace({BASE: base, COS: cos}))
    return pd.concat(parts, ignore_index=True)


def _gains(*ups_downs, n=100, base_right=None):
    """One pair per (up, down) over ``n`` stories: its gain is (up − down) · 100 / n points."""
    return [_stories(n, up=u, down=d, base_right=base_right if base_right is not None else n - u - d)
            for u, d in ups_downs]


def test_fig5_seed_level_evidence_is_the_mean_and_spread_of_the_pairs_gains():
    items = _seeded(_gains((3, 0), (6, 1), (8, 0)))
    test, ev, m = page.paired_evidence(items)
    assert test is page.BY_SEEDS and test.unit == "training-run pairs (size × seed)"
    assert list(m["size"]) == ["cpu-large", "cpu-large-s1", "cpu-large-s2"]
    gains = np.array([3.0, 5.0, 8.0])
    assert m.effect.to_numpy() == pytest.approx(gains) and ev.n == 3
    assert ev.effect == pytest.approx(gains.mean()) and ev.se == pytest.approx(gains.std(ddof=1) / math.sqrt(3))
    j = _judge(items)
    assert j.test is page.BY_SEEDS and j.verdict == REPLICATED
    assert j.ours.startswith(f"+5.3 ± {ev.se:.1f} points, the mean over 3 training-run pairs (size × seed)")
    assert f"cpu-large +5.3 ± {gains.std(ddof=1):.1f} (sd over 3 seeds)" in j.ours and "cpu-large-s2 +8.0 ± " in j.ours
    assert "with its standard error over training-run pairs (size × seed)" in page.CLAIMS[0].rule_text


@pytest.mark.parametrize("pairs, verdict", [
    (((2, 2), (3, 0), (3, 0)), INCONCLUSIVE),  # gains 0, 3, 3: exactly 2.0 standard errors, not beyond
    (((1, 0), (7, 0), (13, 0)), REPLICATED),   # gains 1, 7, 13: 2.02 standard errors
])
def test_fig5_seed_level_replicated_only_beyond_two_standard_errors(pairs, verdict):
    j = _judge(_seeded(_gains(*pairs)))
    z = j.evidence.effect / j.evidence.se
    assert z == (2.0 if verdict == INCONCLUSIVE else pytest.approx(2.0207, abs=1e-4))
    assert j.test is page.BY_SEEDS and j.verdict == verdict


def test_fig5_seed_level_a_consistent_loss_contradicts():
    j = _judge(_seeded(_gains((0, 30), (0, 31), (0, 29), n=1000)))
    assert j.verdict == CONTRADICTED and "against" in j.reason


def test_fig5_seed_level_disagreeing_seeds_are_inconclusive():
    """Each pair's gain is far beyond its story-level error, but the seeds disagree in sign."""
    j = _judge(_seeded(_gains((60, 0), (0, 50), (55, 0), n=400)))
    assert j.verdict == INCONCLUSIVE and "standard errors of no effect" in j.reason
    assert all(abs(r.z) > 5 for r in page.mean_comparison(_seeded(_gains((60, 0), (0, 50), (55, 0), n=400))).itertuples())


def test_fig5_seed_level_inconclusive_at_chance_and_with_constant_probes():
    j = _judge(_seeded([_stories(400, up=100, base_right=200)] * 3))  # baselines right on half the stories
    assert j.test is page.BY_SEEDS and j.evidence.at_chance and j.verdict == INCONCLUSIVE and "chance" in j.reason
    j = _judge(_seeded([_stories(200, base_right=150)] * 3))
    assert j.evidence.constant and j.evidence.n == 3 and j.verdict == INCONCLUSIVE and "same answer" in j.reason


def test_fig5_a_pair_whose_probes_answer_alike_is_not_a_unit():
    j = _judge(_seeded([_stories(200, base_right=150)] + _gains((30, 0), (20, 0))))
    assert j.test is page.BY_SEEDS and j.evidence.n == 2 and j.verdict == INCONCLUSIVE and "fewer than 3" in j.reason
    assert "cpu-large +0.0 ± 0.0 (probes alike: left out)" in j.ours


# the seeds on the page

SEEDED_ACC = {m: [0.5 + 0.01 * i + 0.02 * b for b in range(3)] for i, m in enumerate(np.ravel(PAIRS, order="F"))}


def test_fig5_seed_table_and_summary_give_mean_and_sd_over_seeds():
    t = probe_table_seeded(SEEDED_ACC)
    st = page.seed_table(t).set_index("arm")
    assert list(st.index) == ["cpu-large baseline", "cpu-large cos0.5"] and st.seeds.tolist() == [3, 3]
    assert st.at["cpu-large baseline", "b0"] == pytest.approx(0.51)
    assert st.at["cpu-large baseline", "b0 sd"] == pytest.approx(0.01)
    assert st.at["cpu-large cos0.5", "mean"] == pytest.approx(0.56)
    s = page.seeds_summary(t)
    assert list(s.columns) == ["boundary", "cpu-large baseline (seeds 0, 1, 2)", "cpu-large cos0.5 (seeds 0, 1, 2)"]
    assert s.boundary.tolist() == ["0", "1", "2", "mean over boundaries"]
    assert s.iloc[-1, 2] == "0.560 ± 0.010"
    n = page.numbers(t)
    assert (n["seeds_min"], n["seeds_max"]) == (3, 3) and n["mean_sd_max"] == pytest.approx(0.01)
    assert n["seed_means_text"] == ("cpu-large baseline 0.530 ± 0.010 (seeds 0, 1, 2); "
                                    "cpu-large cos0.5 0.560 ± 0.010 (seeds 0, 1, 2)")


def test_fig5_seeded_plot_draws_every_seed_and_the_mean():
    import matplotlib

    matplotlib.use("Agg")
    from lin_utils import plots
    from lin_utils.pages._zoo_pairs import arm_label

    t = probe_table_seeded(SEEDED_ACC)
    fig = plots.probe_accuracy_by_seed(t, {m: arm_label(m) for m in t.model.unique()})
    [ax] = [a for a in fig.axes if a.get_title() == "cpu-large"]
    thin = [line for line in ax.lines if line.get_alpha() == 0.45]
    assert len(thin) == 6  # one line per seed of each arm


def test_fig5_one_informative_pair_has_no_spread_to_report():
    m = pd.DataFrame([dict(size="cpu-large", boundaries=4, n=100, effect=3.0, se=1.5, mde=4.2, baseline_mean=60.0,
                           baseline_se=2.0, constant=False)])
    text = page.paired_text(m, Evidence.of([3.0]), page.BY_SEEDS)
    assert text.startswith("+3.0 points from the only informative training-run pair of 1: no standard error over pairs")
    assert "nan" not in text and "cpu-large: +3.0 ± 1.5 points over 4 boundaries and 100 stories" in text
