"""Numbers the prose glues in: read from the tables, formatted for the text."""
import numpy as np
import pandas as pd
from tables import profile_table

from lin_utils import claims, report


def test_glued_text_is_unquoted_and_numbers_are_floats():
    glued = report.glue_numbers("t", {"x": np.float64(0.5), "verdict": "partly"})
    assert type(glued["t_x"]) is float and glued["t_x"] == 0.5 and repr(glued["t_verdict"]) == "partly"


def test_training_effect_sentence_follows_the_numbers():
    trained = profile_table([0.7] * 3, [0.3] * 3, [0.5] * 3)
    less = pd.concat([trained, profile_table([0.9] * 3, [0.4] * 3, [0.5] * 3, trained=False, model="r")])
    more = pd.concat([trained, profile_table([0.5] * 3, [0.4] * 3, [0.5] * 3, trained=False, model="r")])
    assert report.fig1_numbers(less)["training_effect"].startswith("less linear")
    assert report.fig1_numbers(more)["training_effect"].startswith("at least as linear")
    assert report.fig1_numbers(trained)["training_effect"].startswith("not measured")


def test_figure_numbers_carry_the_claims_verdicts():
    t = profile_table([0.99, 0.97, 0.995], [0.5, 0.6, 0.4], [0.3, 0.2, 1.5])
    n1 = report.fig1_numbers(t)
    assert n1["verdict_score"] == claims.judge_score(t)[1] == claims.REPLICATED
    assert n1["score_mean"] == np.mean([0.99, 0.97, 0.995])
    n3 = report.fig3_numbers(t)
    assert n3["verdict_norms"] == claims.PARTLY and n3["ratio_max"] == 1.5 and n3["frac_below_one"] == 2 / 3
