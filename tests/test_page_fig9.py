"""Fig 9's page: its numbers and claim rule on small tables whose answers are known by construction."""
from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest

from lin_utils import claims
from lin_utils.pages import fig9_error_distribution as page

R, I, C = claims.REPLICATED, claims.INCONCLUSIVE, claims.CONTRADICTED



# ------------------------------------------------------------------------------------------------
# Fig 9: the tail of the per-token error


def tail_table(excess, tail=(2.0, 9.0, 3.0), gauss=(1.2, 1.5, 1.1), p999=(10.0, 30.0, 20.0),
               median=(5.0, 6.0, 4.0)):
    """Three trained decoder blocks with the given values, between an untrained decoder block and
    a trained encoder block whose values would change every answer if they were counted."""
    blocks = pd.DataFrame(dict(arch="decoder", trained=True, tail_ratio=tail, gauss_tail_ratio=gauss,
                               excess_tail=excess, p999=p999, median=median))
    ignored = pd.DataFrame(dict(arch=["decoder", "encoder"], trained=[False, True], tail_ratio=100.0,
                                gauss_tail_ratio=50.0, excess_tail=0.1, p999=1000.0, median=900.0))
    return pd.concat([ignored.iloc[:1], blocks, ignored.iloc[1:]], ignore_index=True)


def test_fig9_numbers_are_over_trained_decoders_only():
    n = page.tails(tail_table(excess=(1.6, 6.0, 2.5)))
    # Medians of three blocks (the means would be 4.67, 1.27 and 3.37).
    assert n == pytest.approx(dict(tail_ratio_median=3.0, gauss_tail_ratio_median=1.2, excess_median=2.5,
                                   excess_min=1.6, p999_max=30.0, median_max=6.0))


def test_tail_text_gives_the_median_tail_ratios_and_the_log_excess():
    j = page.judge_tail(tail_table(excess=(1.6, 6.0, 2.5)))
    logs = [math.log(x) for x in (1.6, 6.0, 2.5)]
    assert j.evidence.effect == pytest.approx(statistics.mean(logs))
    assert j.evidence.se == pytest.approx(statistics.stdev(logs) / math.sqrt(3)) and j.evidence.n == 3
    assert j.ours.startswith("p99.9 / median of the per-token error 3.00, vs 1.20 for Gaussian errors of the same "
                             "covariance (median over blocks); log excess +1.06 ± 0.39 over 3 blocks")
    assert j.verdict == R and page.judge_tail({"summary": tail_table(excess=(1.6, 6.0, 2.5))}).verdict == R


@pytest.mark.parametrize("excess, verdict", [
    ((2.0, 2.1, 2.2), R),   # heavier than Gaussian in every block, with little spread
    ((0.8, 1.0, 1.25), I),  # about Gaussian
    ((0.5, 0.55, 0.6), C),  # lighter than Gaussian beyond 2 SE
])
def test_tail_verdicts(excess, verdict):
    assert page.judge_tail(tail_table(excess)).verdict == verdict
