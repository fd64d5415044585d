"""Fig 2's page: its numbers and claim rule on small tables whose answers are known by construction."""
from __future__ import annotations


import pandas as pd
import pytest

from lin_utils import claims
from lin_utils.pages import fig2_training_dynamics as page

R, P, N, NOT_RUN = claims.REPLICATED, claims.PARTLY, claims.NOT_REPLICATED, claims.NOT_RUN



# ------------------------------------------------------------------------------------------------
# Fig 2: linearity during pretraining


def dynamics_table(runs: dict[str, list[tuple[int, float, float]]]) -> pd.DataFrame:
    """One row per (model, step) from {model: [(step, score, score_nores), ...]}, the models' rows
    interleaved in the order given (which is not the order of the steps)."""
    rows = [dict(model=m, step=s, score=sc, score_nores=nr) for i in range(max(map(len, runs.values())))
            for m, r in runs.items() if i < len(r) for s, sc, nr in [r[i]]]
    return pd.DataFrame(rows)


RUNS = {  # score falls by 0.02, by 0.005 and rises by 0.01; the last step differs per model
    "a": [(1000, 0.93, 0.40), (0, 0.95, 0.60), (100, 0.99, 0.70)],
    "b": [(200, 0.80, 0.45), (500, 0.895, 0.35), (0, 0.90, 0.50)],
    "c": [(300, 0.81, 0.30), (0, 0.80, 0.40), (150, 0.70, 0.20)],
}


def test_fig2_numbers_compare_the_first_and_the_last_step_of_each_model():
    t = dynamics_table(RUNS)
    assert not t.step.is_monotonic_increasing and t.model.iloc[0] != t.model.iloc[1]
    n = page.dynamics(t)
    assert n == pytest.approx(dict(
        n_models=3, start_mean=(0.95 + 0.90 + 0.80) / 3, end_mean=(0.93 + 0.895 + 0.81) / 3,
        nores_start_mean=0.5, nores_end_mean=0.35, drop_min=-0.01, drop_max=0.02, frac_falling=1 / 3,
        last_step=1000))
    assert isinstance(n["last_step"], int) and isinstance(n["frac_falling"], float)


def test_dynamics_text():
    ours, verdict = page.judge_dynamics(dynamics_table(RUNS))
    assert ours == ("mean score 0.883 at initialisation, 0.878 after training "
                    "(drop -0.010 to 0.020 over 3 models)")
    assert verdict == P


def start_end(*pairs):
    """Models m0, m1, ... scored ``start`` at step 0 and ``end`` at step 2000, with a step between
    whose score is neither, and rows not in the order of the steps."""
    return dynamics_table({f"m{i}": [(2000, end, 0.3), (0, start, 0.5), (700, min(start, end) - 0.1, 0.4)]
                           for i, (start, end) in enumerate(pairs)})


@pytest.mark.parametrize("pairs, frac, verdict", [
    ([(0.95, 0.93), (0.90, 0.88)], 1.0, R),
    ([(0.95, 0.93)], 1.0, R),
    ([(0.95, 0.93), (0.90, 0.895)], 0.5, P),
    ([(0.02, 0.01), (0.95, 0.93)], 0.5, P),  # 0.02 - 0.01 is exactly 0.01 in floats: not "> 0.01"
    ([(0.02, 0.01)], 0.0, N),
    ([(0.90, 0.95), (0.90, 0.895)], 0.0, N),
])
def test_dynamics_verdicts_need_a_fall_of_more_than_0_01(pairs, frac, verdict):
    t = start_end(*pairs)
    assert page.dynamics(t)["frac_falling"] == pytest.approx(frac)
    assert page.judge_dynamics(t)[1] == verdict
