"""Fig 2's page: the fall of linearity after the initial transient, judged on unregularized models."""
from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest

from lin_utils.claims import CONTRADICTED, INCONCLUSIVE, REPLICATED
from lin_utils.pages import fig2_training_dynamics as page


def dynamics_table(runs: dict[str, list[tuple[int, float]]]) -> pd.DataFrame:
    """One row per (model, step) with the mean score; each model's steps reversed so that a sort matters."""
    rows = [dict(model=m, step=s, score=v, score_nores=v / 2) for m, pts in runs.items() for s, v in reversed(pts)]
    return pd.DataFrame(rows)


def _run(start, end, last=100, init=0.8, peak_step=4):
    """Init at step 0, a rise to ``start`` by ``peak_step`` (before 5% of ``last``), then ``end``."""
    return [(0, init), (1, 0.85), (peak_step, 0.99), (5, start), (50, (start + end) / 2), (last, end)]


def test_only_unregularized_models_from_past_the_transient_are_judged():
    t = dynamics_table({"zoo:cpu-small-baseline": _run(0.95, 0.90), "zoo:cpu-small-cos0.5": _run(0.5, 0.99),
                        "EleutherAI/pythia-160m": _run(0.96, 0.88), "zoo:cpu-large-baseline": _run(0.97, 0.90)})
    m = page.dynamics(t)["models"]
    assert m.model.tolist() == ["zoo:cpu-small-baseline", "EleutherAI/pythia-160m", "zoo:cpu-large-baseline"]
    assert m.start_step.tolist() == [5, 5, 5] and m.init.tolist() == [0.8] * 3  # step 4 < 5% of 100
    j = page.judge_dynamics(t)
    drops = [0.05, 0.08, 0.07]
    assert j.evidence.effect == pytest.approx(statistics.mean(drops)) and j.evidence.n == 3
    assert j.evidence.se == pytest.approx(statistics.stdev(drops) / math.sqrt(3)) and j.verdict == REPLICATED
    assert j.ours.startswith("cpu-small-baseline: 0.950 at step 5 → 0.900 at step 100")


@pytest.mark.parametrize("ends, verdict", [
    ((0.90, 0.91, 0.89), REPLICATED),
    ((0.95, 0.97, 0.93), INCONCLUSIVE),   # drops 0, -0.01, +0.01
    ((0.99, 0.995, 0.985), CONTRADICTED),  # a rise beyond 2 SE
])
def test_dynamics_verdicts(ends, verdict):
    t = dynamics_table({f"m{i}": _run(0.95, e) for i, e in enumerate(ends)})
    assert page.judge_dynamics(t).verdict == verdict


def test_two_models_are_too_few():
    t = dynamics_table({"a": _run(0.99, 0.5), "b": _run(0.99, 0.49)})
    j = page.judge_dynamics(t)
    assert j.verdict == INCONCLUSIVE and "2 unregularized runs: fewer than 3" in j.reason
    n = page.numbers(t)
    assert (n["n_models"], n["n_unregularized"], n["post_step_min"]) == (2, 2, 5)


def test_seed_spread_summarises_each_arm_over_its_seeds():
    runs = {"zoo:cpu-small-baseline": _run(0.95, 0.90), "zoo:cpu-small-baseline-s1": _run(0.97, 0.92),
            "zoo:cpu-small-baseline-s2": _run(0.93, 0.85), "zoo:cpu-small-cos0.5": _run(0.5, 0.99)}
    s = page.seed_spread(dynamics_table(runs)).set_index("arm")
    assert s.seeds.to_dict() == {"cpu-small-baseline": 3, "cpu-small-cos0.5": 1}
    assert s.at["cpu-small-baseline", "score past 5%"] == pytest.approx(0.95)
    assert s.at["cpu-small-baseline", "score, last"] == pytest.approx(statistics.mean([0.90, 0.92, 0.85]))
    assert s.at["cpu-small-baseline", "score, last sd"] == pytest.approx(statistics.stdev([0.90, 0.92, 0.85]))
    assert s.at["cpu-small-baseline", "no residual, last"] == pytest.approx(statistics.mean([0.45, 0.46, 0.425]))
    assert math.isnan(s.at["cpu-small-cos0.5", "score, last sd"])


def test_the_page_shows_each_arm_as_mean_and_sd_over_seeds():
    runs = {"zoo:cpu-small-baseline": _run(0.95, 0.90), "zoo:cpu-small-baseline-s1": _run(0.97, 0.92),
            "zoo:cpu-small-cos0.5": _run(0.5, 0.99)}
    v = page.seed_spread_view(dynamics_table(runs)).set_index("arm")
    assert list(v.columns) == ["seeds", "score past 5%", "score, last", "no residual past 5%", "no residual, last"]
    assert v.at["cpu-small-baseline", "score, last"] == f"0.910 ± {statistics.stdev([0.90, 0.92]):.3f}"
    assert v.at["cpu-small-cos0.5", "score, last"] == "0.990"  # one seed: no spread
