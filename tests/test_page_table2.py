"""The Table 2 page (:mod:`lin_utils.pages.table2_benchmarks`) and the zoo pairs it shares with
Figs 4 and 5 and Table 3: pairs, comparisons, text and verdicts on hand-built layouts (dyadic
standard errors, so that exactly 2 standard errors is exactly 2.0), its configuration and its
committed tables."""
from __future__ import annotations

import json
import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lin_utils import pages
from lin_utils.claims import NOT_REPLICATED, NOT_RUN, PARTLY, REPLICATED
from lin_utils.pages import table2_benchmarks as page
from lin_utils import experiments
from lin_utils.pages._zoo_pairs import beyond_two_se, compare_to_baseline, size_groups, size_pairs

REP, PART, NOT = REPLICATED, PARTLY, NOT_REPLICATED

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


@pytest.mark.parametrize("zs, verdict", [
    ([2.0], NOT), ([2.001], REP), ([2.0, 2.001], PART), ([2.001, 2.5, 40.0], REP), ([-3.0, 2.5], PART),
    ([-3.0], NOT), ([0.0, 1.0, 2.0], NOT), ([1.9, 2.1, 1.0], PART),
])
def test_beyond_two_standard_errors(zs, verdict):
    assert beyond_two_se([dict(z=z) for z in zs]) == verdict


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
                 ("zoo:cpu-large-mse2.0", 0.9, 0.001), ("zoo:cpu-small-baseline", 0.5, 0.01),
                 ("zoo:cpu-small-cos0.5", 0.45, 0.04), ("gpt2", 0.7, 0.01)])
    pairs = page.pairs(t)
    assert [p["size"] for p in pairs] == ["cpu-large", "cpu-small"]
    for p, (base, cos, se_b, se_c) in zip(pairs, [(0.55, 0.62, 0.03, 0.02), (0.5, 0.45, 0.01, 0.04)]):
        assert set(p) == {"size", "baseline", "cosine", "diff", "z"}
        assert (p["baseline"], p["cosine"]) == (base, cos)
        assert p["diff"] == pytest.approx(cos - base, abs=1e-15)
        assert p["z"] == pytest.approx((cos - base) / math.sqrt(se_b**2 + se_c**2), rel=1e-12)
    assert page.judge_benchmarks(t)[0] == ("cpu-large: mean 0.550 baseline, 0.620 cosine (+0.070, z = +1.9); "
                                             "cpu-small: mean 0.500 baseline, 0.450 cosine (-0.050, z = -1.2)")


KIND_CASES = [
    (["at"], NOT),                 # exactly 2 standard errors is not beyond them
    (["beyond"], REP),
    (["beyond", "beyond"], REP),
    (["beyond", "at"], PART),      # at one size of two
    (["at", "beyond"], PART),
    (["at", "at"], NOT),
    (["worse", "beyond"], PART),
    (["worse"], NOT),              # far worse is not better
    (["zero", "worse"], NOT),
]


@pytest.mark.parametrize("kinds, verdict", KIND_CASES)
def test_table2_verdict_two_standard_errors_at_every_size(kinds, verdict):
    t = _layout_for(kinds)
    pairs = page.pairs(t)
    assert [p["size"] for p in pairs] == SIZES[:len(kinds)]
    for p, kind in zip(pairs, kinds):
        assert p["z"] == pytest.approx(Z_DIFF[kind] / SE, abs=1e-12)
        if kind == "at":
            assert p["z"] == 2.0
    assert page.judge_benchmarks(t)[1] == verdict


def test_table2_text():
    ours, verdict = page.judge_benchmarks(_layout_for(["at", "worse"]))
    assert ours == ("cpu-small: mean 0.500 baseline, 0.656 cosine (+0.156, z = +2.0); "
                    "cpu-large: mean 0.500 baseline, 0.266 cosine (-0.234, z = -3.0)")
    assert verdict == NOT


def test_table2_without_a_pair_is_not_run():
    t = _layout([("zoo:cpu-large-baseline", 0.5, 0.01), ("zoo:cpu-large-mse0.5", 0.6, 0.01), ("gpt2", 0.6, 0.01)])
    assert page.pairs(t) == []
    assert page.judge_benchmarks(t) == ("no baseline / cosine pair in the table", NOT_RUN)


# harness-shaped tables


def _scores(models, rng):
    """A harness-shaped table: the paper's tasks, with cb's two metrics and record's two."""
    rows = []
    metrics = {"boolq": ["acc"], "cb": ["acc", "f1"], "copa": ["acc"], "record": ["f1", "em"], "wic": ["acc"]}
    chance = {("boolq", "acc"): 0.5, ("cb", "acc"): 1 / 3, ("cb", "f1"): 0.3, ("copa", "acc"): 0.5,
              ("record", "f1"): 0.14, ("record", "em"): 0.13, ("wic", "acc"): 0.5}
    for m in models:
        for task, ms in metrics.items():
            for metric in ms:
                rows.append(dict(model=m, task=task, metric=metric, value=rng.uniform(0.2, 0.8),
                                 stderr=rng.uniform(0.01, 0.05), n=100, n_total=200, chance=chance[task, metric],
                                 seconds=1.0))
    return pd.DataFrame(rows)


MODELS = ["zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5", "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5",
          "stories260K"]


MODELS = ["zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5", "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5",
          "stories260K"]


def test_comparisons_use_the_same_size_baseline_and_the_joint_standard_error():
    s = _scores(MODELS, np.random.default_rng(1))
    layout = experiments.table2_layout(s)
    cmp = compare_to_baseline(layout)
    t = layout.set_index("model")
    assert set(cmp.model) == {"zoo:cpu-small-cos0.5", "zoo:cpu-large-cos0.5"}
    row = cmp[(cmp.model == "zoo:cpu-large-cos0.5") & (cmp.column == "copa")].iloc[0]
    assert row.baseline == "zoo:cpu-large-baseline"
    diff = t.at["zoo:cpu-large-cos0.5", "copa"] - t.at["zoo:cpu-large-baseline", "copa"]
    se = math.sqrt(t.at["zoo:cpu-large-cos0.5", "copa se"] ** 2 + t.at["zoo:cpu-large-baseline", "copa se"] ** 2)
    assert row["diff"] == pytest.approx(diff) and row.z == pytest.approx(diff / se)


@pytest.mark.parametrize("shift, verdict", [(0.2, REP), (0.0, NOT),
                                            (-0.2, NOT)])
def test_table2_verdict_needs_two_standard_errors_at_every_size(shift, verdict):
    s = _scores(MODELS, np.random.default_rng(2))
    s.loc[s.model.str.endswith("cos0.5"), "value"] = s[s.model.str.endswith("baseline")].value.to_numpy() + shift
    assert page.judge_benchmarks(experiments.table2_layout(s))[1] == verdict


def test_table2_verdict_partly_when_one_size_improves():
    s = _scores(MODELS, np.random.default_rng(3))
    base = s[s.model == "zoo:cpu-small-baseline"].value.to_numpy()
    s.loc[s.model == "zoo:cpu-small-cos0.5", "value"] = base + 0.2
    s.loc[s.model == "zoo:cpu-large-cos0.5", "value"] = s[s.model == "zoo:cpu-large-baseline"].value.to_numpy()
    assert page.judge_benchmarks(experiments.table2_layout(s))[1] == PART


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


def test_judge_reads_the_pages_tables_or_the_layout():
    t = _layout_for(["beyond"])
    assert page.judge_benchmarks({"layout": t, "scores": None}) == page.judge_benchmarks(t)


def test_numbers_count_cells_near_chance_and_differences_beyond_two_standard_errors():
    s = _scores(MODELS, np.random.default_rng(5))
    layout = experiments.table2_layout(s)
    n = page.numbers(layout, s)
    assert n["n_models"] == len(MODELS) and n["n_columns"] == 7 and (n["n_min"], n["n_max"]) == (100, 100)
    assert n["n_diffs"] == 2 * 7  # two cosine models (no mse model has its baseline) x 7 columns besides the mean
    assert (n["pairs_text"], n["verdict_benchmarks"]) == page.judge_benchmarks(layout)


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
