"""The figure functions draw the table's own numbers, on synthetic tables."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import numpy as np
import pandas as pd
import pytest
from tables import profile_table

from lin_utils import plots, profiles


def _lines_with_y(ax, y):
    return [ln for ln in ax.lines if len(ln.get_ydata()) == len(y) and np.allclose(ln.get_ydata(), y)]


@pytest.fixture
def two_models():
    return pd.concat([profile_table([0.99, 0.9, 0.95], [0.5, 0.3, 0.4], [0.3, 0.2, 0.5]),
                      profile_table([0.91, 0.92, 0.93], [-3.0, 0.2, 0.1], [1.3, 1.1, 0.9], trained=False, model="r")])


def test_fig1_draws_each_models_scores_and_heldout_against_depth(two_models):
    fig = plots.linearity_profiles(two_models)
    left, right = fig.axes[:2]
    for model, grp in two_models.groupby("model"):
        for ax, score, held in ((left, "score", "heldout"), (right, "score_nores", "heldout_nores")):
            (line,) = _lines_with_y(ax, grp[score].to_numpy())
            np.testing.assert_allclose(line.get_xdata(), grp.depth)
            assert line.get_marker() == "o"
            (dotted,) = _lines_with_y(ax, grp[held].to_numpy())
            assert dotted.get_linestyle() == ":" and dotted.get_color() == line.get_color()
    # one colour per model, the same in both panels
    colours = {m: _lines_with_y(left, g.score.to_numpy())[0].get_color() for m, g in two_models.groupby("model")}
    assert len(set(map(str, colours.values()))) == 2
    assert right.get_ylim()[0] == pytest.approx(plots.Y_FLOOR)  # -3 is clipped, and said so
    assert any("clipped" in txt.get_text() for txt in right.texts)
    assert left.get_ylim()[0] < 0.3  # nothing clipped on the left


def test_fig3_draws_norms_and_their_ratio(two_models):
    fig = plots.block_norms(two_models)
    left, right = fig.axes[:2]
    assert left.get_yscale() == "log"
    for _, grp in two_models.groupby("model"):
        assert _lines_with_y(left, grp.norm_resid.to_numpy()) and _lines_with_y(left, grp.norm_block.to_numpy())
        assert len(_lines_with_y(right, grp.norm_ratio.to_numpy())) == 1


def test_fig9_draws_the_survival_function_of_each_block():
    rng = np.random.default_rng(0)
    sample = pd.DataFrame(dict(model="m", arch="decoder", trained=True, block=np.repeat([0, 1], 200),
                               position=np.tile(np.arange(100), 4), error=rng.lognormal(size=400)))
    sample["is_bos"] = sample.position == 0
    fig = plots.error_tails(sample)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "decoder, trained" in ax.get_title()
    for block, g in sample.groupby("block"):
        e = np.sort(g.error.to_numpy())
        curves = [ln for ln in ax.lines if len(ln.get_xdata()) == len(e) and np.allclose(ln.get_xdata(), e)]
        assert len(curves) == 1
        survival = curves[0].get_ydata()
        np.testing.assert_allclose(survival, 1 - np.arange(len(e)) / len(e))  # P(error >= e_i)
        bos = [ln for ln in ax.lines if ln.get_marker() == "x" and ln.get_color() == curves[0].get_color()]
        assert len(bos) == 1 and np.allclose(np.sort(bos[0].get_xdata()), np.sort(g.error[g.is_bos]))


def test_fig9_draws_the_gaussian_reference_next_to_the_observed_tail():
    rng = np.random.default_rng(0)
    sample = pd.DataFrame(dict(model="m", arch="decoder", trained=True, block=np.repeat([0, 1], 200),
                               position=np.tile(np.arange(100), 4), error=rng.lognormal(size=400)))
    sample["is_bos"] = sample.position == 0
    summary = pd.DataFrame(dict(model="m", block=[0, 1], median=[1.0, 1.1], p999=[9.0, 8.0],
                                gauss_median=[0.9, 1.0], gauss_p999=[2.0, 2.2]))
    fig = plots.error_tails(sample, summary)
    ax = fig.axes[0]
    for row in summary.itertuples():
        circles = [ln for ln in ax.lines if ln.get_marker() == "o" and np.allclose(ln.get_xdata(), [row.gauss_median, row.gauss_p999])]
        assert len(circles) == 1 and np.allclose(circles[0].get_ydata(), [0.5, 1e-3])
        diamonds = [ln for ln in ax.lines if ln.get_marker() == "D" and np.allclose(ln.get_xdata(), [row.p999])]
        assert len(diamonds) == 1 and diamonds[0].get_color() == circles[0].get_color()
    assert ax.get_ylim()[0] < 1e-3  # the 1-in-1000 level is on the plot


def test_model_kind_labels():
    assert plots.model_kind(pd.Series(dict(arch="encoder", trained=False))) == "encoder, random init"
    assert plots.model_kind(pd.Series(dict(model="x"))) == ""


def test_one_model_one_colour_on_every_page():
    cpu = plots.model_palette(["stories260K", "random:stories260K", "minilm", "stories260K"])
    assert list(cpu) == ["stories260K", "random:stories260K", "minilm"]
    fig3 = plots.model_palette(["minilm", "stories260K"])  # another page, another order: same colours
    assert fig3["minilm"] == cpu["minilm"] == plots.model_colour("minilm") and fig3["stories260K"] == cpu["stories260K"]
    # each profile's arms are told apart (the seeds of an arm share its colour), never in the grey kept for
    # references
    for profile in ("smoke", "cpu", "gpu", "full"):
        for section in profiles.load_profile(profile).values():
            names = section.get("models", [])
            arms = list(dict.fromkeys(plots.arms(names).values()))
            colours = plots.model_palette(arms)
            assert len(set(colours.values())) == len(arms) and plots.GREY not in colours.values(), (profile, names)
            seeds = plots.arm_palette(names)
            assert all(seeds[m] == colours[a] for m, a in plots.arms(names).items())


def test_seeds_of_an_arm_are_drawn_in_its_colour_with_their_mean():
    names = ["zoo:cpu-small-baseline", "zoo:cpu-small-baseline-s1", "zoo:cpu-small-cos0.5", "stories260K"]
    assert plots.arms(names) == {"zoo:cpu-small-baseline": "zoo:cpu-small-baseline",
                                 "zoo:cpu-small-baseline-s1": "zoo:cpu-small-baseline",
                                 "zoo:cpu-small-cos0.5": "zoo:cpu-small-cos0.5", "stories260K": "stories260K"}
    assert plots.seeded(names) and not plots.seeded(names[:1] + names[2:])
    rows = [dict(model=m, block=b, score=0.5 + 0.1 * k + 0.01 * b, heldout=0.4, score_nores=0.3, heldout_nores=0.2,
                 chance=0.01) for k, m in enumerate(names[:2]) for b in range(3)]
    fig = plots.linearity_profiles(pd.DataFrame(rows))
    lines = fig.axes[0].get_lines()
    bold = [ln for ln in lines if ln.get_linewidth() > 1.5 and ln.get_linestyle() == "-"]
    assert len(bold) == 1 and list(bold[0].get_ydata()) == pytest.approx([0.55, 0.56, 0.57])  # the mean of 2 seeds
    assert len([ln for ln in lines if ln.get_alpha() == 0.35]) == 2  # each seed, thin
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "cpu-small-baseline (2 seeds)" in " ".join(labels)
    plt.close(fig)
    # a model outside the list gets a colour from a stable hash of its name...
    assert plots.model_colour("zoo:mistral-150m") == plots.model_colour("zoo:mistral-150m") in plots.PALETTE
    # ...and moves to a free colour only when it would share one with another model of the figure
    unknown = [f"zoo:m{i}" for i in range(12)]
    assert len(set(plots.model_palette(unknown[:9]).values())) == 9
    assert set(plots.model_palette(unknown).values()) <= set(plots.PALETTE) - {plots.GREY}
