"""The Fig 5 page (:mod:`lin_utils.pages.fig5_linear_probes`): pairs over common boundaries, text and
verdicts on hand-built probe tables (dyadic standard errors), its configuration and its committed
tables."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from tables import probe_table

from lin_utils.claims import NOT_REPLICATED, NOT_RUN, PARTLY, REPLICATED
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
            + [("zoo:cpu-large-mse0.5", b, 0.2, 0.001) for b in range(5)]
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
