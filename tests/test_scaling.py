"""lin_utils.experiments.scaling (the scaling page): the identity
1 - score = (1 - score_nores) * ||B_c||^2 / ||Y_c||^2 on real models, the trend fit against the
closed form, the grid's configs, and a tiny grid trained and scanned for real."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lin_utils.arch import from_config
from lin_utils.errors import LinUtilsError
from lin_utils.experiments import scaling
from lin_utils.extract import iter_block_states
from lin_utils.linearity import LinearityAccumulator
from lin_utils.train import SIZES, TrainConfig
from lin_utils.train.configs import architecture, grid_size, zoo_config


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    return tmp_path_factory.mktemp("scaling_cache"), tmp_path_factory.mktemp("scaling_results")


@pytest.fixture(autouse=True)
def private_dirs(dirs, monkeypatch):
    """A model cache and a result cache of this module's own, never the user's."""
    monkeypatch.setenv("LIN_CACHE", str(dirs[0]))
    monkeypatch.setenv("LIN_RESULTS_DIR", str(dirs[1]))
    monkeypatch.delenv("LIN_RUN_ID", raising=False)


# ------------------------------------------------------------------------------------------- identity

def _direct(X: np.ndarray, Y: np.ndarray) -> dict:
    """Least squares of Y and of B = Y - X on [1, X] from the states themselves (float64)."""
    A = np.column_stack([np.ones(len(X)), X])
    B = Y - X
    sse_y = float(((Y - A @ np.linalg.lstsq(A, Y, rcond=None)[0]) ** 2).sum())
    sse_b = float(((B - A @ np.linalg.lstsq(A, B, rcond=None)[0]) ** 2).sum())
    ss_y = float(((Y - Y.mean(0)) ** 2).sum())
    ss_b = float(((B - B.mean(0)) ** 2).sum())
    return dict(sse_y=sse_y, sse_b=sse_b, ss_y=ss_y, ss_b=ss_b)


def _models():
    yield "mistral", from_config(zoo_config(grid_size(3, 32, "mistral"), 512, max_position_embeddings=64), seed=0)
    yield "olmo2", from_config(zoo_config(grid_size(3, 32, "olmo2"), 512, max_position_embeddings=64), seed=0)
    from lin_utils.models import load_model

    yield "stories260K", load_model("stories260K", dtype=torch.float32)[0]


@pytest.mark.parametrize("which", ["mistral", "olmo2", "stories260K"])
def test_the_identity_holds_to_1e9_in_float64_on_real_models(which):
    name, model = next((n, m) for n, m in _models() if n == which)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 500, (12, 64), generator=g)
    mask = torch.ones_like(ids, dtype=torch.bool)
    acc = LinearityAccumulator(precision="float64")
    states_all: dict[int, list[torch.Tensor]] = {}
    for states, m in iter_block_states(model, [(ids[i:i + 4], mask[i:i + 4]) for i in range(0, 12, 4)],
                                       progress=False):
        acc.update(states, m)
        for b, s in states.items():
            states_all.setdefault(b, []).append(s[m].double())
    table = acc.result()
    assert (scaling.identity_gap(table) < 1e-9).all()
    for row in table.itertuples():
        X = torch.cat(states_all[row.block]).numpy()
        Y = torch.cat(states_all[row.block + 1]).numpy()
        d = _direct(X, Y)
        # the residual of Y on X is that of B on X, and the statistics agree with the states
        assert d["sse_y"] == pytest.approx(d["sse_b"], rel=1e-9, abs=1e-9 * d["ss_y"])
        assert row.ss_y == pytest.approx(d["ss_y"], rel=1e-9)
        assert row.ss_block == pytest.approx(d["ss_b"], rel=1e-9)
        assert row.sse == pytest.approx(d["sse_y"], rel=1e-7, abs=1e-9 * d["ss_y"])
        lhs = d["sse_y"] / d["ss_y"]  # 1 - score, from the states
        rhs = (d["sse_b"] / d["ss_b"]) * d["ss_b"] / d["ss_y"]  # (1 - score_nores) * ||B_c||^2 / ||Y_c||^2
        assert abs(lhs - rhs) < 1e-9
        assert abs((1 - row.score) - (1 - row.score_nores) * row.ss_block / row.ss_y) < 1e-9
        assert abs((1 - row.score) - lhs) < 1e-7


def test_new_columns_leave_the_old_ones_as_they_were():
    model = from_config(zoo_config(grid_size(2, 16), 512, max_position_embeddings=32), seed=1)
    ids = torch.randint(3, 500, (8, 32), generator=torch.Generator().manual_seed(1))
    acc = LinearityAccumulator()
    for states, m in iter_block_states(model, [(ids, torch.ones_like(ids, dtype=torch.bool))], progress=False):
        acc.update(states, m)
    t = acc.result()
    assert list(t.columns[-3:]) == ["sse", "ss_y", "ss_block"]
    assert np.allclose(t.score, 1 - t.sse / t.ss_y, rtol=0, atol=1e-15)
    assert np.allclose(t.score_nores, 1 - t.sse / t.ss_block, rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------------------- fits

def test_the_fit_matches_closed_form_least_squares():
    rng = np.random.default_rng(0)
    L = np.log([2, 4, 8, 16] * 3)
    d = np.log(np.repeat([32, 64, 128], 4))
    y = 0.3 - 0.5 * L + 0.2 * d + rng.normal(0, 0.1, 12)
    f = scaling.fit_loglinear(y, {"log_blocks": L, "log_width": d})
    X = np.column_stack([np.ones(12), L, d])
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    resid = y - X @ beta
    sigma2 = resid @ resid / (12 - 3)
    cov = sigma2 * np.linalg.inv(X.T @ X)  # the closed form, for the test only
    assert f["terms"] == ["intercept", "log_blocks", "log_width"] and f["dof"] == 9
    np.testing.assert_allclose(f["coef"], beta, rtol=1e-10)
    np.testing.assert_allclose(f["se"], np.sqrt(np.diag(cov)), rtol=1e-10)
    assert f["r2"] == pytest.approx(1 - resid @ resid / ((y - y.mean()) ** 2).sum(), rel=1e-12)
    x0 = np.array([1, math.log(12), math.log(768)])
    mean, se, lo, hi = scaling.predict_loglinear(f, {"log_blocks": x0[1], "log_width": x0[2]})
    assert mean == pytest.approx(x0 @ beta, rel=1e-10)
    assert se == pytest.approx(math.sqrt(x0 @ cov @ x0), rel=1e-10)
    from scipy import stats

    assert hi - mean == pytest.approx(stats.t.ppf(0.975, 9) * se, rel=1e-10) and mean - lo == pytest.approx(hi - mean)


def test_fit_errors_name_the_problem():
    with pytest.raises(LinUtilsError, match="collinear"):
        scaling.fit_loglinear([1.0, 2.0, 3.0], {"a": [1.0, 1.0, 1.0]})
    with pytest.raises(LinUtilsError, match="2 points cannot fit 3 terms"):
        scaling.fit_loglinear([1.0, 2.0], {"a": [1.0, 2.0], "b": [0.0, 1.0]})
    with pytest.raises(LinUtilsError, match="finite"):
        scaling.fit_loglinear([1.0, np.nan, 2.0], {"a": [1.0, 2.0, 3.0]})


def test_the_factor_fits_add_up_to_the_score_fit():
    rng = np.random.default_rng(1)
    rows = []
    for L in (2, 4, 8):
        for d in (16, 32):
            nores, ratio = rng.uniform(0.2, 0.8), rng.uniform(0.01, 0.1)
            rows.append(dict(model=f"m{L}-{d}", init="trained", family="mistral", n_blocks=L, width=d,
                             train_tokens=1000, gm_one_minus_score=nores * ratio, gm_one_minus_nores=nores,
                             gm_ratio_sq=ratio))
    fit, extra = scaling.fit_tables(pd.DataFrame(rows), 1000, None)
    c = fit.set_index(["target", "term"]).coef
    for term in ("intercept", "log_blocks", "log_width"):
        assert c["one_minus_score", term] == pytest.approx(c["one_minus_nores", term] + c["ratio_sq", term], abs=1e-12)
    assert set(extra["shape"]) == set(scaling.PAPER_SHAPES)
    e = extra.set_index(["shape", "target"]).delta_log
    for s in scaling.PAPER_SHAPES:
        assert e[s, "one_minus_score"] == pytest.approx(e[s, "one_minus_nores"] + e[s, "ratio_sq"], abs=1e-12)


# ------------------------------------------------------------------------------------------- configs

_CPU = dict(vocab_size=2048, seq_len=256, batch_size=16, lr=2e-3, warmup_steps=20, val_tokens=16_384,
            log_every=10, precision="fp32", num_threads=1)


def test_grid_configs_hash_distinctly_and_leave_the_zoo_alone():
    models = scaling.grid_models([2, 4, 8, 16], [32, 64, 128], 1_500_000, _CPU, token_shape=[4, 64],
                                 token_budgets=[187_500, 375_000, 750_000, 1_500_000, 3_000_000],
                                 norm_shapes=[[4, 64], [8, 64]])
    keys = [m.config.key() for m in models]
    assert len(keys) == len(set(keys)) == 12 + 4 + 2  # the shared points are trained once
    assert len({m.label for m in models}) == len(models)
    assert {m.family for m in models} == {"mistral", "olmo2"}
    # a grid shape is a named size's shape, with its family added; the named sizes are untouched
    assert architecture("grid-mistral-L4-d128") == {"family": "mistral", **SIZES["cpu-small"]}
    assert "family" not in TrainConfig(size="cpu-small").weight_fields()["architecture"]
    a, b = (TrainConfig(size=grid_size(4, 64, f), max_tokens=4096) for f in ("mistral", "olmo2"))
    assert a.key() != b.key() and zoo_config(b.size, 512).model_type == "olmo2"


@pytest.mark.parametrize("kwargs, match", [
    (dict(depths=[0, 2]), "depths"),
    (dict(widths=[]), "widths"),
    (dict(train_config={"size": "cpu-small"}), "size"),
    (dict(train_config={"learning_rate": 1.0}), "learning_rate"),
    (dict(norm_families=["gemma9"]), "norm_families"),
    (dict(token_budgets=[1000]), "token_shape"),
    (dict(widths=[48]), "width 48"),
])
def test_bad_grid_arguments_are_named(kwargs, match):
    args = dict(depths=[2, 4], widths=[16, 32], train_tokens=4096, train_config={})
    args.update(kwargs)
    norm_families = args.pop("norm_families", ("mistral", "olmo2"))
    token_budgets = args.pop("token_budgets", ())
    with pytest.raises(LinUtilsError, match=match):
        scaling.grid_models(**args, norm_families=norm_families, token_budgets=token_budgets,
                            norm_shapes=[[2, 16]])


def test_unknown_grid_sizes_are_refused():
    for bad in ("grid-gemma-L2-d16", "grid-mistral-L0-d16", "grid-mistral-L2-d48", "grid-mistral-L2"):
        with pytest.raises(ValueError, match="size"):
            TrainConfig(size=bad)


# ------------------------------------------------------------------------------------------- end to end

_TINY = dict(vocab_size=512, tokenizer_stories=2000, data_stories=2000, seq_len=32, batch_size=8, lr=3e-3,
             warmup_steps=2, val_tokens=512, log_every=4, precision="fp32", num_threads=1)
_SCAN = dict(dataset="tinystories", split="validation", max_tokens=640, seq_len=32, batch_size=4, exclude_bos=True)


def test_a_two_model_grid_trains_and_scans_for_real(dirs):
    grid = dict(depths=[1, 2], widths=[16], train_tokens=2048, train_config=_TINY, scan=_SCAN, token_shape=None,
                token_budgets=(), norm_shapes=())
    cfg = scaling.ScalingConfig(**grid, jobs=2)  # two worker processes, as the cpu profile runs
    kw = dict(profile="smoke", progress=False)
    t = scaling.scaling_study(cfg, **kw)
    blocks, models = t["blocks"], t["models"]
    assert sorted(models.model) == sorted(["grid-mistral-L1-d16@2048", "grid-mistral-L2-d16@2048",
                                           "random:grid-mistral-L1-d16", "random:grid-mistral-L2-d16"])
    assert len(blocks) == 2 * (1 + 2)
    assert (blocks.identity_gap < 1e-9).all()
    assert np.allclose(blocks.one_minus_score, blocks.one_minus_nores * blocks.ratio_sq, rtol=1e-9, atol=0)
    trained = models[models.init == "trained"]
    assert trained.val_loss.notna().all() and (trained.train_tokens == 2048).all()
    for m in scaling.grid_models([1, 2], [16], 2048, _TINY):
        assert (dirs[0] / "zoo" / m.config.key() / "final" / "meta.json").is_file()
    assert t["fit"].empty and t["extrapolation"].empty  # one width: no depth-width fit
    import matplotlib.pyplot as plt

    from lin_utils import plots

    plt.close(plots.scaling(t))  # the page's figure draws without fits too
    # cached: the same tables again, without training or scanning; and from the cache alone
    again = scaling.scaling_study(cfg.replace(jobs=1), **kw)
    pd.testing.assert_frame_equal(again["blocks"], blocks)
    only = scaling.scaling_study(cfg, **kw, cache_only=True)
    pd.testing.assert_frame_equal(only["models"], models)
    assert scaling.scaling_study(cfg.replace(train_tokens=4096), **kw, cache_only=True) is None
