"""Table 2 and Fig 5's computations: the layout against direct computations, the plots, the
configurations and their cache keys, and one real run of each cached computation on a tiny zoo
model (the pages' pairs, texts and verdicts: tests/test_page_table2.py, tests/test_page_fig5.py)."""
import math
import re

import numpy as np
import pandas as pd
import pytest
from tables import HARNESS_MODELS, harness_scores, probe_table

from lin_utils import experiments, plots
from lin_utils.experiments.evaluation import HEADLINE


def test_table2_mean_is_the_mean_of_one_headline_metric_per_task():
    s = harness_scores(HARNESS_MODELS, np.random.default_rng(0))
    layout = experiments.table2_layout(s).set_index("model")
    assert list(layout.index) == HARNESS_MODELS + ["chance"]
    for m in HARNESS_MODELS:
        g = s[s.model == m]
        head = g[[HEADLINE.get(t, "acc") == k for t, k in zip(g.task, g.metric)]]
        assert len(head) == 5  # one number per task
        assert layout.at[m, "mean"] == pytest.approx(head.value.mean(), abs=1e-15)
        assert layout.at[m, "mean se"] == pytest.approx(math.sqrt((head.stderr**2).sum()) / 5, abs=1e-15)
        # tasks with two metrics get "<task> <metric>" columns, the others the task's name
        assert layout.at[m, "cb f1"] == g[(g.task == "cb") & (g.metric == "f1")].value.item()
        assert layout.at[m, "boolq se"] == g[g.task == "boolq"].stderr.item()
    assert layout.at["chance", "cb acc"] == pytest.approx(1 / 3)
    assert layout.at["chance", "mean"] == pytest.approx(np.mean([0.5, 1 / 3, 0.5, 0.14, 0.5]))


def test_plots_draw_every_cell_and_every_boundary():
    s = harness_scores(HARNESS_MODELS, np.random.default_rng(4))
    layout = experiments.table2_layout(s)
    fig = plots.benchmark_scores(layout)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [c for c in layout.columns if not c.endswith(" se") and c != "model"]
    ax = visible[0]  # boolq: one dot per model at its value, chance as a vertical line
    xs = sorted(line.get_xdata()[0] for line in ax.lines if line.get_marker() == "o")
    assert xs == pytest.approx(sorted(layout.set_index("model").drop(index="chance").boolq))
    fig = plots.probe_accuracy(probe_table([0.5, 0.55, 0.6], [0.52, 0.56, 0.58]))
    ys = [list(line.get_ydata()) for line in fig.axes[0].lines if line.get_marker() == "o"]
    assert ys == [pytest.approx([0.5, 0.55, 0.6]), pytest.approx([0.52, 0.56, 0.58])]


@pytest.fixture(scope="module")
def smoke_zoo(tmp_path_factory):
    """Two smoke zoo models trained for real into a model cache of this module's own."""
    from lin_utils import zoo

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIN_CACHE", str(tmp_path_factory.mktemp("zoo_cache")))
        for name in ("smoke-small-baseline", "smoke-small-cos0.5"):
            zoo.train(name, progress=False)
        yield ["zoo:smoke-small-baseline", "zoo:smoke-small-cos0.5"]


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_benchmarks_run_for_real_and_are_cached_per_model(smoke_zoo, results_dir):
    cfg = experiments.BenchmarksConfig(models=smoke_zoo, tasks=["copa", "cb"], limit=3, batch_size=4)
    s = experiments.benchmark_scores(cfg, profile="smoke", progress=False)
    assert set(s.model) == set(smoke_zoo) and (s.n == 3).all()
    assert set(zip(s.task, s.metric)) == {("copa", "acc"), ("cb", "acc"), ("cb", "f1")}
    assert s.value.between(0, 1).all() and (s.chance > 0).all()
    again = experiments.benchmark_scores(cfg.replace(models=smoke_zoo[:1], batch_size=16), profile="smoke",
                                         cache_only=True)  # the batch size is not in the key
    pd.testing.assert_frame_equal(again, s[s.model == smoke_zoo[0]].reset_index(drop=True))
    assert experiments.benchmark_scores(cfg.replace(tasks=["copa"]), profile="smoke", cache_only=True) is None
    # the per-document answers are stored beside the scores, under the same key (issue 23)
    items = experiments.benchmark_items(cfg, profile="smoke", cache_only=True)
    assert set(items.model) == set(smoke_zoo) and len(items) == len(smoke_zoo) * 6
    acc = s[s.metric == "acc"].set_index(["model", "task"]).value
    pd.testing.assert_series_equal(items.groupby(["model", "task"]).value.mean().loc[acc.index], acc,
                                   check_names=False)
    assert (items.pred == items.logliks.map(lambda t: int(np.argmax([float(v) for v in t.split(";")])))).all()


def test_probes_run_for_real_at_every_boundary(smoke_zoo, results_dir):
    cfg = experiments.ProbesConfig(models=smoke_zoo[:1], max_train=20, max_test=20, cv=2)
    t = experiments.probe_accuracy(cfg, profile="smoke", progress=False)
    n_blocks = t.n_blocks.iloc[0]
    assert list(t.boundary) == list(range(n_blocks + 1)) and (t.depth == t.boundary / n_blocks).all()
    assert np.allclose(t.test_se, np.sqrt(t.test_acc * (1 - t.test_acc) / t.n_test))
    assert (t.n_test == 40).all()  # two endings per story
    items = experiments.probe_items(cfg, profile="smoke", cache_only=True)  # each probe's test predictions
    assert len(items) == 40 * len(t) and set(items.story) == set(range(20))
    assert np.allclose(items.groupby("boundary").correct.mean().to_numpy(), t.test_acc.to_numpy())


@pytest.mark.parametrize("make, message", [
    (lambda: experiments.BenchmarksConfig(models=[]), "models must be a non-empty list of strings"),
    (lambda: experiments.BenchmarksConfig(limit=0), "limit must be an integer positive or null, got 0"),
    (lambda: experiments.BenchmarksConfig(tasks="boolq"), "tasks must be a list of strings, got 'boolq'"),
    (lambda: experiments.ProbesConfig(C=0.0), "C must be a positive number, got 0.0"),
    (lambda: experiments.ProbesConfig(cv=-1), "cv must be an integer >= 0, got -1"),
    (lambda: experiments.BenchmarksConfig.from_params({"modles": ["gpt2"]}), "unknown parameter(s) modles"),
])
def test_configs_name_a_bad_field(make, message):
    from lin_utils.errors import LinUtilsError

    with pytest.raises(LinUtilsError, match=re.escape(message)):
        make()


def test_cache_keys_leave_out_batch_size_and_device():
    b = experiments.BenchmarksConfig(tasks=["copa"], limit=5, batch_size=3, device="cuda")
    assert b.key() == dict(tasks=["copa"], limit=5, max_length=None, seed=0, num_fewshot=0)
    p = experiments.ProbesConfig(max_train=10, batch_size=3, device="cuda")
    assert p.key() == dict(max_train=10, max_test=None, cv=5, C=1.0, seed=0, pooling="mean over ending tokens")
