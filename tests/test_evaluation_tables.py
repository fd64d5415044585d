"""Table 2 and Fig 5: the layout, the comparisons and the verdicts, against direct computations;
and one real run of each cached computation on a tiny zoo model."""
import math

import numpy as np
import pandas as pd
import pytest

from lin_utils import claims, experiments, plots
from lin_utils.experiments.evaluation import HEADLINE


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


def test_table2_mean_is_the_mean_of_one_headline_metric_per_task():
    s = _scores(MODELS, np.random.default_rng(0))
    layout = experiments.table2_layout(s).set_index("model")
    assert list(layout.index) == MODELS + ["chance"]
    for m in MODELS:
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


def test_comparisons_use_the_same_size_baseline_and_the_joint_standard_error():
    s = _scores(MODELS, np.random.default_rng(1))
    layout = experiments.table2_layout(s)
    cmp = experiments.compare_to_baseline(layout)
    t = layout.set_index("model")
    assert set(cmp.model) == {"zoo:cpu-small-cos0.5", "zoo:cpu-large-cos0.5"}
    row = cmp[(cmp.model == "zoo:cpu-large-cos0.5") & (cmp.column == "copa")].iloc[0]
    assert row.baseline == "zoo:cpu-large-baseline"
    diff = t.at["zoo:cpu-large-cos0.5", "copa"] - t.at["zoo:cpu-large-baseline", "copa"]
    se = math.sqrt(t.at["zoo:cpu-large-cos0.5", "copa se"] ** 2 + t.at["zoo:cpu-large-baseline", "copa se"] ** 2)
    assert row["diff"] == pytest.approx(diff) and row.z == pytest.approx(diff / se)


@pytest.mark.parametrize("shift, verdict", [(0.2, claims.REPLICATED), (0.0, claims.NOT_REPLICATED),
                                            (-0.2, claims.NOT_REPLICATED)])
def test_table2_verdict_needs_two_standard_errors_at_every_size(shift, verdict):
    s = _scores(MODELS, np.random.default_rng(2))
    s.loc[s.model.str.endswith("cos0.5"), "value"] = s[s.model.str.endswith("baseline")].value.to_numpy() + shift
    assert claims.judge_benchmarks(experiments.table2_layout(s))[1] == verdict


def test_table2_verdict_partly_when_one_size_improves():
    s = _scores(MODELS, np.random.default_rng(3))
    base = s[s.model == "zoo:cpu-small-baseline"].value.to_numpy()
    s.loc[s.model == "zoo:cpu-small-cos0.5", "value"] = base + 0.2
    s.loc[s.model == "zoo:cpu-large-cos0.5", "value"] = s[s.model == "zoo:cpu-large-baseline"].value.to_numpy()
    assert claims.judge_benchmarks(experiments.table2_layout(s))[1] == claims.PARTLY


def _probes(acc_base, acc_cos, n_test=3000):
    rows = []
    for m, accs in (("zoo:cpu-large-baseline", acc_base), ("zoo:cpu-large-cos0.5", acc_cos)):
        for b, a in enumerate(accs):
            rows.append(dict(model=m, boundary=b, test_acc=a, test_se=math.sqrt(a * (1 - a) / n_test), cv_mean=a,
                             cv_std=0.01, n_test=n_test, n_train=720))
    return pd.DataFrame(rows)


def test_probe_verdict_against_the_mean_difference_in_standard_errors():
    base = [0.50, 0.52, 0.53, 0.54]
    se = np.mean([math.sqrt(2 * a * (1 - a) / 3000) for a in base])  # both models alike: sqrt(2) x one se
    up = [a + 3 * se for a in base]
    assert claims.judge_probes(_probes(base, up))[1] == claims.REPLICATED
    assert claims.judge_probes(_probes(base, [a + se for a in base]))[1] == claims.NOT_REPLICATED
    pair = claims.fig5_pairs(_probes(base, up))[0]
    assert pair["higher"] == 4 and pair["n"] == 4 and pair["diff"] == pytest.approx(3 * se, rel=1e-3)


def test_plots_draw_every_cell_and_every_boundary():
    s = _scores(MODELS, np.random.default_rng(4))
    layout = experiments.table2_layout(s)
    fig = plots.benchmark_scores(layout)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [c for c in layout.columns if not c.endswith(" se") and c != "model"]
    ax = visible[0]  # boolq: one dot per model at its value, chance as a vertical line
    xs = sorted(line.get_xdata()[0] for line in ax.lines if line.get_marker() == "o")
    assert xs == pytest.approx(sorted(layout.set_index("model").drop(index="chance").boolq))
    fig = plots.probe_accuracy(_probes([0.5, 0.55, 0.6], [0.52, 0.56, 0.58]))
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
    s = experiments.benchmark_scores(smoke_zoo, ["copa", "cb"], limit=3, batch_size=4, profile="smoke",
                                     progress=False)
    assert set(s.model) == set(smoke_zoo) and (s.n == 3).all()
    assert set(zip(s.task, s.metric)) == {("copa", "acc"), ("cb", "acc"), ("cb", "f1")}
    assert s.value.between(0, 1).all() and (s.chance > 0).all()
    again = experiments.benchmark_scores(smoke_zoo[:1], ["copa", "cb"], limit=3, profile="smoke", cache_only=True)
    pd.testing.assert_frame_equal(again, s[s.model == smoke_zoo[0]].reset_index(drop=True))
    assert experiments.benchmark_scores(smoke_zoo, ["copa"], limit=3, profile="smoke", cache_only=True) is None


def test_probes_run_for_real_at_every_boundary(smoke_zoo, results_dir):
    t = experiments.probe_accuracy(smoke_zoo[:1], max_train=20, max_test=20, cv=2, profile="smoke", progress=False)
    n_blocks = t.n_blocks.iloc[0]
    assert list(t.boundary) == list(range(n_blocks + 1)) and (t.depth == t.boundary / n_blocks).all()
    assert np.allclose(t.test_se, np.sqrt(t.test_acc * (1 - t.test_acc) / t.n_test))
    assert (t.n_test == 40).all()  # two endings per story
