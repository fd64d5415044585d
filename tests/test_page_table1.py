"""The Table 1 page (:mod:`lin_utils.pages.table1_finetuning`): its cells, counts, text and verdict
on hand-built runs whose answers are known by construction (expected numbers from ``statistics``),
its configuration and its committed tables."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from lin_utils import pages, plots
from lin_utils.claims import NOT_REPLICATED, NOT_RUN, PARTLY, REPLICATED
from lin_utils.pages import table1_finetuning as page

REP, PART, NOT = REPLICATED, PARTLY, NOT_REPLICATED


def _runs(cells):
    """cells: (model, task, delta_corpus per seed, delta_task per seed, learned per seed[, arch]).

    Steps and batch size vary by seed so that their maximum differs from their minimum."""
    rows = []
    for model, task, dc, dt, learned, *arch in cells:
        for seed, (a, b, ok) in enumerate(zip(dc, dt, learned, strict=True)):
            rows.append(dict(model=model, arch=(arch or ["decoder"])[0], task=task, seed=seed, steps=10 * (seed + 1),
                             batch_size=16 if seed == 1 else 8, delta_corpus=a, delta_task=b, acc_before=0.5,
                             acc_after=0.75 if ok else 0.5, baseline=0.5, learned=ok))
    return pd.DataFrame(rows)


def test_table1_cells_columns_order_and_means():
    runs = _runs([("zoo:cpu-large-baseline", "cb", [0.0, 0.5, 1.0], [0.1, 0.2, 0.6], [True, False, True]),
                  ("b", "boolq", [0.25], [-0.25], [False], "encoder")])
    # acc_before / acc_after / baseline whose mean differs from their median and first value
    runs.loc[:2, "acc_before"] = [0.1, 0.2, 0.6]
    runs.loc[:2, "acc_after"] = [0.5, 0.6, 1.0]
    runs.loc[:2, "baseline"] = [0.3, 0.3, 0.45]
    c = page.cells(runs)
    assert list(c.columns) == ["model", "arch", "task", "n_seeds", "delta", "delta_std", "positive", "beyond_std",
                               "delta_task", "delta_task_std", "delta_task_positive", "delta_task_beyond_std",
                               "acc_before", "acc_after", "baseline", "learned_seeds", "learned"]
    # cells in the order of the runs, not sorted
    assert list(c.model) == ["zoo:cpu-large-baseline", "b"] and list(c.task) == ["cb", "boolq"]
    assert list(c.arch) == ["decoder", "encoder"] and list(c.n_seeds) == [3, 1]
    first = c.iloc[0]
    assert first.delta == 0.5 and first.delta_std == 0.5
    assert first.delta_task == pytest.approx(0.3)
    assert first.delta_task_std == pytest.approx(statistics.stdev([0.1, 0.2, 0.6]))
    assert first.acc_before == pytest.approx(0.3) and first.acc_after == pytest.approx(0.7)
    assert first.baseline == pytest.approx(0.35)
    assert first.learned_seeds == 2 and first.learned
    one = c.iloc[1]  # a single seed: its std is undefined, and it is never beyond it
    assert one.delta == 0.25 and math.isnan(one.delta_std) and math.isnan(one.delta_task_std)
    assert one.positive and not one.beyond_std and not one.delta_task_positive
    assert one.learned_seeds == 0 and not one.learned


@pytest.mark.parametrize("deltas, positive, beyond", [
    ([0.0, 0.5, 1.0], True, False),         # mean 0.5 exactly equal to its sample std 0.5
    ([0.01, 0.5, 1.0], True, True),          # mean just above its std
    ([0.125, 0.5, 0.875], True, True),
    ([-0.25, 0.0, 0.0, 0.25], False, False),  # mean exactly 0
    ([-0.5, -0.5, -0.5], False, False),      # std 0, mean negative
    ([0.5, 0.5, 0.5], True, True),           # std 0, mean positive
    ([0.5, 0.75], True, True),               # two seeds have a std
    ([0.3], True, False),                    # one seed has none
])
@pytest.mark.parametrize("column, prefix", [("delta_corpus", ""), ("delta_task", "delta_task_")])
def test_table1_positive_and_beyond_std(deltas, positive, beyond, column, prefix):
    other = [1.0] * len(deltas)
    dc, dt = (deltas, other) if column == "delta_corpus" else (other, deltas)
    cell = page.cells(_runs([("m", "cb", dc, dt, [True] * len(deltas))])).iloc[0]
    name = "delta" if column == "delta_corpus" else "delta_task"
    assert cell[name] == pytest.approx(statistics.mean(deltas), abs=1e-15)
    if len(deltas) > 1:
        assert cell[f"{name}_std"] == pytest.approx(statistics.stdev(deltas), abs=1e-15)  # ddof = 1
    assert bool(cell[f"{prefix}positive"]) is positive
    assert bool(cell[f"{prefix}beyond_std"]) is beyond


@pytest.mark.parametrize("learned, n, majority", [
    ([True, True, False, False], 2, False),  # exactly half is not a majority
    ([True, True, True, False], 3, True),
    ([True, False, False], 1, False),
    ([True, True, False], 2, True),
    ([True, False], 1, False),
    ([False], 0, False),
    ([True], 1, True),
])
def test_table1_learned_needs_a_majority_of_seeds(learned, n, majority):
    cell = page.cells(_runs([("m", "cb", [0.1] * len(learned), [0.1] * len(learned), learned)])).iloc[0]
    assert cell.learned_seeds == n and bool(cell.learned) is majority


# five cells; the comments say (corpus delta: positive, vs its std), (task delta: ...), learned by a majority
_FIVE = [
    ("zoo:cpu-large-baseline", "cb", [0.0, 0.5, 1.0], [0.125, 0.5, 0.875], [True, True, True]),  # (+, =), (+, >); y
    ("zoo:cpu-large-baseline", "boolq", [0.125, 0.5, 0.875], [0.0, 0.5, 1.0], [False, True, True]),  # (+, >), (+, =); y
    ("stories260K", "cb", [-0.5, -0.25, 0.0], [0.0, 0.5, 1.0], [True, False, False]),  # (-), (+, =); n
    ("stories260K", "boolq", [0.5, 0.75], [-0.5, 0.25], [True, False]),  # (+, >), (-); half: n
    ("zoo:cpu-small-cos0.5", "cb", [-0.25, 0.0, 0.0, 0.25], [-0.25, 0.25, 0.25, 0.25], [True, True, True, False]),
    # (mean exactly 0), (+, mean 0.125 below its std 0.25); y
]


def test_table1_numbers_count_the_cells():
    runs = _runs(_FIVE)
    n = page.counts(runs)
    means = [statistics.mean(dc) for _, _, dc, _, _ in _FIVE]
    task_means = [statistics.mean(dt) for _, _, _, dt, _ in _FIVE]
    expected = dict(n_cells=5, n_models=3, n_tasks=2, n_seeds_min=2, steps=40, batch_size=16,
                    n_positive=3, n_beyond=2, n_positive_task=4, n_beyond_task=1,
                    n_learned=3, n_positive_learned=2, n_beyond_learned=1,
                    delta_min=-0.25, delta_max=0.625, delta_median=statistics.median(means),
                    delta_task_min=-0.125, delta_task_max=0.5,
                    not_positive="stories260K / cb, cpu-small-cos0.5 / cb",
                    not_learned="stories260K / cb, stories260K / boolq")
    assert set(n) == set(expected)
    for k, v in expected.items():
        assert n[k] == (pytest.approx(v, abs=1e-15) if isinstance(v, float) else v), k
    assert (min(means), max(means), min(task_means), max(task_means)) == (-0.25, 0.625, -0.125, 0.5)
    assert n["delta_median"] == 0.5 != pytest.approx(statistics.mean(means))


def test_table1_names_none_when_every_cell_is_positive_and_learned():
    n = page.counts(_runs([("zoo:x-baseline", "cb", [0.5, 0.5], [0.5, 0.5], [True, True])]))
    assert n["not_positive"] == "none" and n["not_learned"] == "none"


def test_table1_cell_whose_model_learned_nothing_is_named_and_counts_alike():
    cells = [("zoo:cpu-large-baseline", "cb", [0.125, 0.5, 0.875], [0.1] * 3, [True] * 3),
             ("zoo:cpu-large-baseline", "boolq", [0.125, 0.5, 0.875], [0.1] * 3, [False] * 3)]
    n = page.counts(_runs(cells))
    assert n["not_learned"] == "cpu-large-baseline / boolq" and n["n_learned"] == 1
    ours, verdict = page.judge_finetuning(_runs(cells))
    assert verdict == REP  # it counts like the others
    assert ours.endswith("the model learned in 1 of 2 cells")


def test_table1_claim_text():
    ours, verdict = page.judge_finetuning(_runs(_FIVE))
    assert ours == ("3 of 5 mean deltas positive, 2 beyond their std over seeds (on the fixed corpus; on the tasks' "
                    "held-out inputs 4 and 1); the model learned in 3 of 5 cells")
    assert verdict == PART


BEYOND, EQUAL, POS = [0.125, 0.5, 0.875], [0.0, 0.5, 1.0], [0.1, 0.2, 0.6]  # EQUAL: mean exactly its std
ZERO, NEG = [-0.25, 0.0, 0.25], [-0.5, -0.25, 0.0]


@pytest.mark.parametrize("deltas, verdict", [
    ([BEYOND] * 4, REP),
    ([BEYOND] * 3 + [EQUAL], PART),          # every mean positive, one exactly at its std
    ([BEYOND] * 3 + [ZERO], PART),           # 3 of 4 positive
    ([POS] * 3 + [NEG], PART),
    ([POS, POS, ZERO, NEG], NOT),            # exactly half positive
    ([POS, POS, NEG], PART),                 # 2 of 3
    ([POS, ZERO, NEG], NOT),                 # 1 of 3
    ([NEG] * 3, NOT),
    ([ZERO] * 2, NOT),
])
def test_table1_verdict_thresholds(deltas, verdict):
    cells = [(f"m{i}", "cb", d, [0.5] * 3, [True] * 3) for i, d in enumerate(deltas)]
    assert page.judge_finetuning(_runs(cells))[1] == verdict


def _seed_runs(deltas: dict, learned_: dict | None = None) -> pd.DataFrame:
    rows = []
    for (model, task), ds in deltas.items():
        for seed, dv in enumerate(ds):
            ok = (learned_ or {}).get((model, task), True)
            rows.append(dict(model=model, arch="decoder", task=task, seed=seed, steps=10, batch_size=8,
                             delta_corpus=dv, delta_task=dv / 2, acc_before=0.5, acc_after=0.8 if ok else 0.5,
                             baseline=0.5, learned=ok))
    return pd.DataFrame(rows)


def test_table1_verdicts_and_counts_on_synthetic_runs():
    all_beyond = _seed_runs({("a", "cb"): [0.02, 0.03, 0.025], ("a", "boolq"): [0.01, 0.012, 0.011]})
    assert page.judge_finetuning(all_beyond)[1] == REP
    mixed = _seed_runs({("a", "cb"): [0.02, 0.03, 0.025], ("a", "boolq"): [0.01, -0.012, 0.011],
                   ("b", "cb"): [0.01, 0.02, 0.015]}, {("b", "cb"): False})
    n = page.counts(mixed)
    assert (n["n_cells"], n["n_positive"], n["n_beyond"], n["n_learned"]) == (3, 3, 2, 2)
    assert n["not_learned"] == "b / cb" and n["not_positive"] == "none"
    assert page.judge_finetuning(mixed)[1] == PART
    neg = _seed_runs({("a", "cb"): [-0.02, -0.03, 0.001], ("a", "boolq"): [0.01, 0.012, 0.011]})
    assert page.judge_finetuning(neg)[1] == NOT
    cells = page.cells(mixed).set_index(["model", "task"])
    assert cells.loc[("a", "boolq"), "delta_std"] == pytest.approx(np.std([0.01, -0.012, 0.011], ddof=1))
    summary = page.summary(mixed)
    assert list(summary.columns) == ["model", "kind", "CB", "BoolQ"]
    assert "learned nothing" in summary.set_index("model").loc["b", "CB"]
    fig = plots.finetuning_deltas(mixed)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_numbers_carry_the_verdict():
    runs = _runs(_FIVE)
    n = page.numbers(runs)
    assert n["verdict_finetuning"] == page.judge_finetuning(runs)[1] == PART
    assert {k: v for k, v in n.items() if k != "verdict_finetuning"} == page.counts(runs)


def test_the_claim_reads_the_profiles_table(tmp_path, monkeypatch):
    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path))
    [claim] = [c for c in pages.claims() if c.artifact == "Table 1"]
    assert claim.page == page.NAME and claim.order == 60
    assert claim.tables("smoke") is None  # not run yet


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
