"""The verdict rule of every comparative claim (issue 23), at each class and on both sides of each
boundary: replicated, contradicted, inconclusive by power, by chance and by constant answers."""
import math

import pytest

from lin_utils.claims import (CONTRADICTED, INCONCLUSIVE, MDE_Z, REPLICATED, Evidence, Test, decide)

UP = Test("x", +1, "seeds", paper_effect=0.5, paper_source="Table 9")
DOWN = Test("x", -1, "items", paper_effect=-0.5)
NEAR = Test("x", +1, "seeds", paper_effect=0.4)


@pytest.mark.parametrize("test, effect, se, verdict, reason", [
    (NEAR, 0.25, 0.125, INCONCLUSIVE, "within 2"),        # exactly 2 SE: not beyond; 1.2 SE from the paper's
    (UP, 0.2500001, 0.125, REPLICATED, "2.0 standard errors"),
    (DOWN, -0.2500001, 0.125, REPLICATED, "paper's direction"),
    (UP, -0.2500001, 0.125, CONTRADICTED, "against the paper's direction"),
    (UP, -0.25, 0.125, CONTRADICTED, "excludes the paper's effect"),  # -0.25 is 6 SE from +0.5
    (UP, 0.25, 0.125, CONTRADICTED, "excludes"),          # not beyond 2 SE, and 2 SE short of the paper's
    (NEAR, 0.16, 0.125, INCONCLUSIVE, "within 2"),        # 0.4 - 0.16 = 1.92 SE: the interval holds the paper's
    (UP, 0.2, 0.125, CONTRADICTED, "excludes"),           # 0.5 - 0.2 = 2.4 SE > 1.96
    (UP, 0.0, 0.5 / MDE_Z, CONTRADICTED, "excludes"),     # MDE exactly the paper's effect: powered
    (UP, 0.0, 0.5 / MDE_Z + 1e-9, INCONCLUSIVE, "minimum detectable effect"),
    (UP, -10.0, 1.0, INCONCLUSIVE, "minimum detectable effect 2.8 exceeds"),  # opposite, but no power
])
def test_verdict_boundaries(test, effect, se, verdict, reason):
    got, why = decide(test, Evidence(effect, se, n=3))
    assert got == verdict and reason in why


def test_without_a_paper_effect_only_the_sign_tests_decide():
    t = Test("x", +1, "blocks")
    assert decide(t, Evidence(-0.3, 0.1, 5))[0] == CONTRADICTED
    assert decide(t, Evidence(0.1, 0.1, 5))[0] == INCONCLUSIVE
    assert decide(t, Evidence(0.3, 0.1, 5))[0] == REPLICATED


def test_chance_constant_answers_and_missing_estimates_are_inconclusive():
    assert decide(UP, Evidence(5.0, 0.1, 3, at_chance=True)) == (
        INCONCLUSIVE, "the dense model is within 2 standard errors of chance")
    assert decide(UP, Evidence(5.0, 0.1, 3, constant=True))[1].startswith("the compared models give the same")
    assert decide(UP, Evidence(math.nan, 0.1, 3))[0] == INCONCLUSIVE
    assert decide(UP, Evidence(1.0, math.nan, 1))[0] == INCONCLUSIVE


def test_fewer_units_than_the_minimum_are_inconclusive_whatever_the_effect():
    assert decide(UP, Evidence(5.0, 0.1, 2)) == (INCONCLUSIVE, "2 seeds: fewer than 3, too few to estimate their spread")
    assert decide(Test("x", +1, "models", min_units=2), Evidence(5.0, 0.1, 2))[0] == REPLICATED


def test_the_rule_sentence_comes_from_the_declared_test():
    text = UP.rule()
    assert text.startswith("x, with its standard error over seeds: replicated if it is above 0 by more than 2")
    assert "paper's effect is +0.5 (Table 9)" in text and "2.8 standard errors" in text
    assert "below 0" in DOWN.rule() and "paper's effect is" in DOWN.rule()
    with pytest.raises(ValueError):
        Test("x", 0, "seeds")
    assert Evidence(1.0, 0.5, 2).mde == pytest.approx(1.4)


def test_an_effect_without_a_standard_error_is_no_estimate_whatever_the_units():
    assert decide(UP, Evidence(1.0, math.nan, 5)) == (INCONCLUSIVE, "no estimate with a standard error")
    assert decide(UP, Evidence(math.nan, 0.1, 5)) == (INCONCLUSIVE, "no estimate with a standard error")
    assert decide(UP, Evidence(1.0, -0.1, 5)) == (INCONCLUSIVE, "no estimate with a standard error")


def _row(verdict, reason, mde=0.3, paper_effect=float("nan")):
    import pandas as pd

    return pd.Series(dict(ours="ours", verdict=verdict, reason=reason, mde=mde, paper_effect=paper_effect))


def test_why_adds_the_minimum_detectable_effect_to_an_inconclusive_verdict_only_once():
    from lin_utils.book.verdicts import _why

    assert _why(_row(INCONCLUSIVE, "within 2 standard errors of no effect")) == (
        "ours<br><small>within 2 standard errors of no effect; minimum detectable effect 0.3</small>")
    assert _why(_row(INCONCLUSIVE, "x", paper_effect=-0.125)) == (
        "ours<br><small>x; minimum detectable effect 0.3 against the paper&#x27;s 0.125</small>")
    power = "the minimum detectable effect 0.3 exceeds the paper's effect 0.1"
    assert _why(_row(INCONCLUSIVE, power, paper_effect=0.1)) == f"ours<br><small>{power.replace(chr(39), '&#x27;')}</small>"
    assert _why(_row(REPLICATED, "2.5 standard errors in the paper's direction")) == (
        "ours<br><small>2.5 standard errors in the paper&#x27;s direction</small>")
    assert _why(_row(INCONCLUSIVE, "no estimate with a standard error", mde=float("nan"))) == (
        "ours<br><small>no estimate with a standard error</small>")


def test_the_headline_says_where_the_claims_not_run_are_explained():
    import pandas as pd

    from lin_utils.book.verdicts import claims_headline
    from lin_utils.claims import NOT_RUN

    t = pd.DataFrame(dict(verdict=[REPLICATED, NOT_RUN, NOT_RUN], kind="paper"))
    assert claims_headline(t, "cpu") == (
        "At the `cpu` profile this book tests 1 of the paper's 3 claims: **1 replicated**, **0 contradicted**, "
        "**0 inconclusive**. The other 2 are *not run* at this profile (the claims table says why).")
