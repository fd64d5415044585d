"""The zoo page: each arm's spread over seeds, the recipe's targets and the time, on a synthetic summary."""
from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest

from lin_utils import zoo
from lin_utils.experiments.pretraining import ZooConfig
from lin_utils.pages import model_zoo as page


def _row(name, val_loss, bpb, heldout=None, tokens=4_096_000, rate=10_000.0):
    e = zoo.entry(name)
    return dict(model=f"zoo:{name}", size=e.config.size, variant=e.variant, seed=e.seed, regularizer=e.config.regularizer,
                reg_lambda=e.config.reg_lambda, n_params=1, steps=1000, tokens=tokens, val_loss=val_loss, val_bpb=bpb,
                heldout_loss=val_loss - 0.1 if heldout is None else heldout, tokens_per_s=rate,
                tokens_per_cpu_s=rate, weights_key=e.config.key())


def summary_table():
    rows = [_row("cpu-small-baseline", 2.55, 0.99), _row("cpu-small-baseline-s1", 2.57, 1.00),
            _row("cpu-small-baseline-s2", 2.56, 0.995),
            _row("cpu-small-cos0.5", 2.60, 1.01), _row("cpu-small-cos0.5-s1", 2.58, 1.005),
            _row("cpu-large-baseline", 2.48, 0.96, rate=5_000.0), _row("cpu-large-cos0.5", 2.50, 0.97, rate=5_000.0)]
    rows.append(dict(model="stories260K", size="reference", variant="reference", seed=math.nan, regularizer="none",
                     reg_lambda=0.0, n_params=260032, steps=math.nan, tokens=math.nan, val_loss=math.nan, val_bpb=0.88,
                     heldout_loss=math.nan, tokens_per_s=math.nan, tokens_per_cpu_s=math.nan, weights_key=""))
    return pd.DataFrame(rows)


def test_arms_give_each_arm_its_mean_and_spread_over_seeds():
    a = page.arms(summary_table()).set_index(["size", "variant"])
    assert list(a.index) == [("cpu-small", "baseline"), ("cpu-small", "cos0.5"), ("cpu-large", "baseline"),
                             ("cpu-large", "cos0.5")]
    base = a.loc[("cpu-small", "baseline")]
    assert base.seeds == 3 and base["val loss"] == pytest.approx(2.56)
    assert base["val loss sd"] == pytest.approx(statistics.stdev([2.55, 2.57, 2.56]))
    assert math.isnan(base["− baseline"])  # a baseline has no baseline
    cos = a.loc[("cpu-small", "cos0.5")]
    assert cos.seeds == 2 and cos["− baseline"] == pytest.approx(statistics.mean([0.05, 0.01]))  # same seed's baseline
    assert cos["− baseline sd"] == pytest.approx(statistics.stdev([0.05, 0.01]))
    assert math.isnan(a.loc[("cpu-large", "cos0.5"), "val loss sd"])  # one seed: no spread
    assert a.loc[("cpu-large", "baseline"), "CPU-s per model"] == pytest.approx(4_096_000 / 5_000)


def test_targets_compare_the_baselines_over_seeds_and_count_the_time():
    t = page.targets(summary_table())
    assert t["small_base_loss"] == pytest.approx(2.56) and t["large_base_loss"] == pytest.approx(2.48)
    assert t["large_minus_small"] == pytest.approx(-0.08) and t["deeper_no_worse"] == "yes"
    assert t["best_base_bpb"] == pytest.approx(0.96) and t["bpb_target_met"] == "met"
    assert t["small_cpu_s"] == pytest.approx(5 * 409.6) and t["large_cpu_s"] == pytest.approx(2 * 819.2)
    assert t["cpu_s"] == pytest.approx(t["small_cpu_s"] + t["large_cpu_s"]) and t["cpu_h"] == pytest.approx(t["cpu_s"] / 3600)
    worse = summary_table()
    worse.loc[worse.variant == "baseline", "val_bpb"] += 0.1
    worse.loc[worse.model == "zoo:cpu-large-baseline", "val_loss"] = 2.7
    t = page.targets(worse)
    assert t["bpb_target_met"] == "not met" and t["deeper_no_worse"] == "no"


def test_recipe_text_checks_the_zoo_against_the_sweeps_choice():
    runs = pd.DataFrame([
        dict(size="cpu-small", lr=4e-3, warmup="0.05", warmup_steps=8, init_std=0.05, steps=160, tokens=655_360,
             heldout_loss=3.6, val_bpb=1.2, block0_ratio=40.0, tokens_per_cpu_s=10_000.0),
        dict(size="cpu-small", lr=2e-3, warmup="0.05", warmup_steps=8, init_std=0.02, steps=160, tokens=655_360,
             heldout_loss=3.9, val_bpb=1.3, block0_ratio=20.0, tokens_per_cpu_s=10_000.0),
        dict(size="cpu-large", lr=4e-3, warmup="0.2", warmup_steps=32, init_std=0.02, steps=160, tokens=655_360,
             heldout_loss=3.9, val_bpb=1.3, block0_ratio=60.0, tokens_per_cpu_s=5_000.0),
    ])
    text = page.recipe_text(runs, ZooConfig(entries=("cpu-small-baseline", "cpu-large-cos0.5-s2")))
    small, large = (zoo.entry(n).config for n in ("cpu-small-baseline", "cpu-large-cos0.5-s2"))
    assert text.startswith("The zoo above trains with, at cpu-small: the chosen recipe")
    assert f"{small.warmup_steps} warmup steps of {small.steps:,}" in text
    assert "; at cpu-large: the chosen recipe (peak learning rate 0.004" in text
    other = runs.assign(lr=[1e-3, 2e-3, 4e-3])  # the sweep chose another learning rate at cpu-small
    assert "cpu-small: NOT the chosen recipe" in page.recipe_text(other, ZooConfig(entries=("cpu-small-baseline",)))


def test_the_page_shows_each_arm_as_mean_and_sd_over_seeds():
    v = page.arms_view(summary_table()).set_index(["size", "variant"])
    assert list(v.columns) == ["seeds", "val loss", "bits / byte", "held-out loss", "− baseline", "CPU-s / model"]
    assert v.loc[("cpu-small", "baseline"), "val loss"] == f"2.560 ± {statistics.stdev([2.55, 2.57, 2.56]):.3f}"
    assert v.loc[("cpu-small", "baseline"), "− baseline"] == "—" and v.loc[("cpu-large", "cos0.5"), "val loss"] == "2.500"
