"""How the pages name the zoo seeds behind their models, from the zoo's metadata."""
from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest

from lin_utils.pages._scans import runs_text
from lin_utils.pages._zoo_pairs import replication_text, seed_summary, seeds_text, zoo_seed_text


def test_a_page_with_one_seed_per_arm_says_which():
    assert zoo_seed_text(["zoo:cpu-large-baseline"]) == " (the zoo's seed 0 of three pretraining seeds per arm)"
    assert zoo_seed_text(["stories260K", "zoo:cpu-small-baseline-s2"]) == (
        " (the zoo's seed 2 of three pretraining seeds per arm)")
    assert zoo_seed_text(["zoo:smoke-small-baseline"]) == " (the zoo's seed 0 of two pretraining seeds per arm)"
    assert zoo_seed_text(["stories260K", "minilm", "zoo:nope"]) == ""


def test_scan_pages_say_how_many_runs_stand_behind_their_models():
    assert runs_text(["stories260K", "minilm"]) == "one training run per model (no seeds)"
    assert runs_text(["stories260K", "zoo:cpu-small-baseline"]) == (
        "one training run per model (of the zoo's arms, seed 0 only)")
    seeded = ["zoo:cpu-small-baseline", "zoo:cpu-small-baseline-s1", "zoo:cpu-small-baseline-s2", "stories260K"]
    assert runs_text(seeded) == f"zoo models with {seeds_text(seeded)}, any other model one run"
    assert seeds_text(seeded) == "three seeds per arm (0, 1, 2)"


def test_seeds_text_names_each_arm_when_their_seeds_differ():
    models = ["zoo:cpu-small-baseline", "zoo:cpu-small-baseline-s1", "zoo:cpu-large-cos0.5"]
    assert seeds_text(models) == "seeds per arm: cpu-small baseline 0, 1; cpu-large cos0.5 0"
    assert zoo_seed_text(["zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5-s2"]) == (
        " (the zoo's seeds 0, 2 of three pretraining seeds per arm)")


def test_replication_text_says_sizes_only_when_pairs_span_several():
    one_size = [f"zoo:cpu-small-{v}{s}" for v in ("baseline", "cos0.5") for s in ("", "-s1", "-s2")]
    text = replication_text(one_size, "document")
    assert text.endswith("its standard error is the spread of the pairs' gains over seeds")
    both = one_size + ["zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5"]
    assert replication_text(both, "document").endswith("over seeds and sizes")


def test_seed_summary_gives_the_spread_from_two_seeds_on():
    t = pd.DataFrame({"model": ["zoo:cpu-small-baseline", "zoo:cpu-small-baseline-s1", "zoo:cpu-small-cos0.5"],
                      "mean": [50.0, 54.0, 60.0]})
    s = seed_summary(t, ["mean"]).set_index("variant")
    assert s.at["baseline", "mean"] == 52.0 and s.at["baseline", "mean sd"] == pytest.approx(statistics.stdev([50, 54]))
    assert math.isnan(s.at["cos0.5", "mean sd"])
