"""The Table 1 page (:mod:`lin_utils.pages.table1_finetuning`): its cells, the decoders' evidence,
the shuffled-label control, the verdict at each class and boundary, on hand-built runs whose
answers are known by construction (expected numbers from ``statistics``); its configuration and
its committed tables."""
from __future__ import annotations

import math
import statistics

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from lin_utils import pages, plots
from lin_utils.claims import CONTRADICTED, INCONCLUSIVE, NOT_RUN, REPLICATED, Judgement
from lin_utils.pages import table1_finetuning as page


def _runs(cells, control: dict | None = None):
    """cells: (model, task, delta_corpus per seed, delta_task per seed, learned per seed[, arch]);
    control: {(model, task): delta_corpus per seed} of the shuffled-label runs.

    Steps and batch size vary by seed so that their maximum differs from their minimum."""
    rows = []
    for model, task, dc, dt, learned, *arch in cells:
        for seed, (a, b, ok) in enumerate(zip(dc, dt, learned, strict=True)):
            base = dict(model=model, arch=(arch or ["decoder"])[0], task=task, seed=seed, steps=10 * (seed + 1),
                        batch_size=16 if seed == 1 else 8, acc_before=0.5, baseline=0.5, n_finetune=28,
                        n_tokens_corpus=4000, d=64, n_blocks=5)
            rows.append(dict(base, condition="task", delta_corpus=a, delta_task=b, acc_after=0.75 if ok else 0.5,
                             learned=ok))
            for c in (control or {}).get((model, task), [])[seed:seed + 1]:
                rows.append(dict(base, condition="shuffled", delta_corpus=c, delta_task=c, acc_after=0.5,
                                 learned=False))
    return pd.DataFrame(rows)


def test_cells_columns_order_means_and_standard_errors():
    runs = _runs([("zoo:cpu-large-baseline", "cb", [0.0, 0.5, 1.0], [0.1, 0.2, 0.6], [True, False, True]),
                  ("b", "boolq", [0.25], [-0.25], [False], "encoder")],
                 control={("zoo:cpu-large-baseline", "cb"): [0.0, 0.25, 0.25]})
    c = page.cells(runs)
    assert list(c.model) == ["zoo:cpu-large-baseline", "b"] and list(c.task) == ["cb", "boolq"]  # run order
    assert list(c.arch) == ["decoder", "encoder"] and list(c.n_seeds) == [3, 1]  # control rows not counted
    first = c.iloc[0]
    assert first.delta == 0.5 and first.delta_std == 0.5 and first.delta_se == pytest.approx(0.5 / math.sqrt(3))
    assert first.delta_task == pytest.approx(0.3)
    assert first.delta_task_se == pytest.approx(statistics.stdev([0.1, 0.2, 0.6]) / math.sqrt(3))
    assert first.learned_seeds == 2 and first.learned and first.positive and not first.beyond_se
    assert first.control == pytest.approx(0.5 / 3)
    paired = [0.0, 0.25, 0.75]  # task − control, seed by seed
    assert first.excess == pytest.approx(statistics.mean(paired))
    assert first.excess_se == pytest.approx(statistics.stdev(paired) / math.sqrt(3))
    one = c.iloc[1]  # one seed: no spread; no control
    assert one.delta == 0.25 and math.isnan(one.delta_se) and not one.beyond_se
    assert math.isnan(one.control) and math.isnan(one.excess)


def test_a_table_without_a_condition_column_is_all_task():
    runs = _runs([("m", "cb", [0.1, 0.2, 0.3], [0.1] * 3, [True] * 3)]).drop(columns="condition")
    c = page.cells(runs).iloc[0]
    assert c.delta == pytest.approx(0.2) and math.isnan(c.control)


@pytest.mark.parametrize("learned, n, majority", [
    ([True, True, False, False], 2, False),  # exactly half is not a majority
    ([True, True, True, False], 3, True),
    ([True, False, False], 1, False),
    ([True], 1, True),
])
def test_learned_needs_a_majority_of_seeds(learned, n, majority):
    cell = page.cells(_runs([("m", "cb", [0.1] * len(learned), [0.1] * len(learned), learned)])).iloc[0]
    assert cell.learned_seeds == n and bool(cell.learned) is majority


def test_pooled_is_the_mean_of_cells_with_the_se_of_a_mean_of_independent_means():
    assert page.pooled([0.1, 0.3], [0.03, 0.04]) == (pytest.approx(0.2), pytest.approx(0.025))
    assert math.isnan(page.pooled([0.1, 0.3], [0.03, math.nan])[1])
    assert all(math.isnan(v) for v in page.pooled([], []))


def test_the_evidence_is_the_decoders_only():
    enc = ("minilm", "cb", [-1.0, -2.0, -3.0], [0.0] * 3, [True] * 3, "encoder")
    dec = [("a", "cb", [0.1, 0.2, 0.3], [0.0] * 3, [True] * 3), ("b", "cb", [0.3, 0.4, 0.5], [0.0] * 3, [True] * 3)]
    ev = page.evidence(_runs(dec + [enc]))
    se_a = statistics.stdev([0.1, 0.2, 0.3]) / math.sqrt(3)
    assert ev.effect == pytest.approx(0.3) and ev.se == pytest.approx(math.sqrt(2 * se_a ** 2) / 2) and ev.n == 3
    assert page.evidence(_runs(dec)) == ev  # the encoder changes nothing
    dec[1] = ("b", "cb", [0.3, 0.4, 0.5], [0.0] * 3, [True, False, False])  # b learned nothing
    learned = page.evidence(_runs(dec + [enc]), learned_only=True)
    assert learned.effect == pytest.approx(0.2) and learned.se == pytest.approx(se_a)


# the verdict classes and their boundaries: three seeds per cell, two decoder cells with the same
# spread (sample std 0.1, se 0.1 / sqrt 3 per cell, 0.1 / sqrt 6 pooled)
SE = 0.1 / math.sqrt(6)


def _two_cells(mean: float):
    seeds = [mean - 0.1, mean, mean + 0.1]
    return _runs([("a", "cb", seeds, seeds, [True] * 3), ("b", "boolq", seeds, seeds, [True] * 3)])


@pytest.mark.parametrize("mean, verdict, reason", [
    (2 * SE + 1e-6, REPLICATED, "2.0 standard errors in the paper's direction"),
    (0.5, REPLICATED, "standard errors in the paper's direction"),
    (2 * SE - 1e-6, INCONCLUSIVE, "within 2 standard errors of no effect"),   # just short of the threshold
    (0.0, INCONCLUSIVE, "within 2"),
    (-2 * SE + 1e-6, INCONCLUSIVE, "within 2"),
    (-2 * SE - 1e-6, CONTRADICTED, "against the paper's direction"),        # no paper effect: the sign decides
])
def test_verdict_classes_and_boundaries(mean, verdict, reason):
    j = page.judge_finetuning(_two_cells(mean))
    assert isinstance(j, Judgement) and j.verdict == verdict and reason in j.reason
    assert j.evidence.effect == pytest.approx(mean) and j.evidence.se == pytest.approx(SE)
    assert j.evidence.mde == pytest.approx(2.8 * SE)


def test_one_seed_or_two_is_inconclusive():
    one = _runs([("a", "cb", [0.5], [0.5], [True])])
    assert page.judge_finetuning(one).verdict == INCONCLUSIVE  # no spread to estimate
    two = _runs([("a", "cb", [0.5, 0.6], [0.5, 0.6], [True] * 2), ("b", "cb", [0.5, 0.7], [0.5] * 2, [True] * 2)])
    j = page.judge_finetuning(two)
    assert j.verdict == INCONCLUSIVE and "fewer than 3" in j.reason


def test_the_claim_is_declared_as_a_test_without_a_paper_effect():
    [claim] = page.CLAIMS
    assert claim.test is page.TEST and claim.test.direction == +1 and claim.test.unit == "seeds"
    assert claim.test.paper_effect is None and "not stored" in claim.paper
    assert claim.rule == "" and claim.rule_text == page.TEST.rule()


# the control: task and shuffled-label deltas compared seed by seed
_DEC = [("a", "cb", [0.4, 0.5, 0.6], [0.0] * 3, [True] * 3), ("b", "cb", [0.4, 0.5, 0.6], [0.0] * 3, [True] * 3)]


@pytest.mark.parametrize("control, starts", [
    ([0.0, 0.01, -0.01], "learning the task adds to the rise"),
    ([0.3, 0.31, 0.29], "learning the task adds to the rise: the task's delta exceeds the shuffled-label control's by"),
    ([0.4, 0.5, 0.6], "any update raises it"),
    ([0.9, 1.0, 1.1], "the shuffled-label control changes linearity more than the task does"),
    ([-0.4, 0.5, 1.4], "neither the control"),
])
def test_control_reading(control, starts):
    runs = _runs(_DEC, control={("a", "cb"): control, ("b", "cb"): control})
    assert page.control_reading(runs).startswith(starts)


def test_control_reading_without_a_control_or_a_spread():
    assert page.control_reading(_runs(_DEC)).startswith("no shuffled-label control was run")
    one = _runs([("a", "cb", [0.5], [0.5], [True])], control={("a", "cb"): [0.1]})
    assert "one seed" in page.control_reading(one)


def test_counts_and_numbers_name_the_decoder_cells():
    cells = [("zoo:x", "cb", [0.4, 0.5, 0.6], [0.1] * 3, [True] * 3),
             ("zoo:x", "boolq", [-0.1, 0.0, 0.05], [0.1] * 3, [False] * 3),
             ("minilm", "cb", [-1.0, -1.0, -1.0], [0.1] * 3, [False] * 3, "encoder")]
    runs = _runs(cells, control={("zoo:x", "cb"): [0.0, 0.0, 0.0], ("zoo:x", "boolq"): [0.0, 0.0, 0.0]})
    n = page.counts(runs)
    assert (n["n_cells"], n["n_decoder_cells"], n["n_positive"], n["n_beyond"], n["n_learned"]) == (3, 2, 1, 1, 1)
    assert n["not_positive"] == "x / boolq" and n["not_learned"] == "x / boolq"
    assert (n["steps"], n["batch_size"], n["n_seeds_min"]) == (30, 16, 3)
    nums = page.numbers(runs)
    j = page.judge_finetuning(runs)
    assert nums["verdict_finetuning"] == j.verdict and nums["reason_finetuning"] == j.reason
    assert nums["effect"] == pytest.approx(j.evidence.effect) and nums["n_runs"] == 6
    assert nums["control_effect"] == 0.0 and nums["excess_effect"] == pytest.approx(nums["effect"])
    assert nums["excess_learned_effect"] == pytest.approx(0.5)  # the one cell that learned (x / cb)
    assert j.ours.startswith(f"mean delta {j.evidence.effect:+.4f} ± {j.evidence.se:.4f} (standard error over seeds) over 2 "
                             "decoder cells; 1 of them positive, 1 beyond 2 se; the models learned in 1 of the 2")


def test_summary_figure_and_differences():
    runs = _runs(_DEC + [("minilm", "boolq", [0.1, 0.2, 0.3], [0.1] * 3, [False] * 3, "encoder")],
                 control={("a", "cb"): [0.0, 0.1, 0.2]})
    s = page.summary(runs).set_index("model")
    assert list(s.columns) == ["kind", "CB", "BoolQ"]
    assert s.loc["a", "CB"] == "+0.5000 ± 0.0577 (control +0.1000); acc 0.75 vs 0.50, learned 3/3"
    assert s.loc["minilm", "BoolQ"].endswith("learned nothing (0/3)") and "control" not in s.loc["minilm", "BoolQ"]
    fig = plots.finetuning_deltas(runs)
    assert len(fig.axes) == 2
    plt.close(fig)
    text = page.differences(page.CONFIG, runs)
    assert text.startswith("**How this differs from the paper.**")
    for part in ("a (decoder, 5 blocks × 64 wide)", "3 fine-tuning seeds", "CB is binary",
                 "4,000 tokens of the tinystories validation", f"{page.CONFIG.steps} AdamW steps of 8", "shuffled labels", "The paper: 7 pretrained decoders (opt-125m, opt-1.3b"):
        assert part in text, part


def test_the_claim_reads_the_profiles_table(tmp_path, monkeypatch):
    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path))
    [claim] = [c for c in pages.all_claims() if c.artifact == "Table 1"]
    assert claim.page == page.NAME and claim.order == 60
    assert claim.tables("smoke") is None  # not run yet


def test_not_run_without_tables():
    assert NOT_RUN == "not run"  # the claims table marks a claim without tables (lin_utils.claims)


def test_differences_without_a_control():
    text = page.differences(page.CONFIG.with_params({"control": False}), _runs(_DEC))
    assert "; no shuffled-label control. The paper:" in text and "shuffled labels" not in text
