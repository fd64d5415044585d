"""``lin-utils profile --plot``: the profile figure of any model, and its bad paths (one line, exit 2)."""
import numpy as np
import pandas as pd
import pytest

from lin_utils import plots_profile
from lin_utils.cli import main
from lin_utils.errors import LinUtilsError

SMALL = ["--max-tokens", "1200", "--seq-len", "128", "--batch-size", "4", "--quiet"]


def _table(model: str, n_blocks: int, d: int = 64, n: int = 4000, low: float = 0.1) -> pd.DataFrame:
    blocks = np.arange(n_blocks)
    return pd.DataFrame(dict(
        model=model, n_blocks=n_blocks, block=blocks, depth=blocks / max(n_blocks - 1, 1), n_tokens=n, d=d,
        chance=d / (n - 1), score=np.linspace(0.9, 0.99, n_blocks), heldout=np.linspace(0.88, 0.98, n_blocks),
        score_nores=np.linspace(0.3, 0.6, n_blocks), heldout_nores=np.linspace(low, 0.5, n_blocks),
        norm_ratio=np.linspace(0.2, 1.2, n_blocks)))


def test_cli_draws_one_line_per_model_and_writes_both_models_rows(tmp_path, capsys):
    from PIL import Image

    out, png = tmp_path / "p.csv", tmp_path / "p.png"
    assert main(["profile", "--model", "stories260K", "--model", "random:stories260K", "--dataset", "tinystories",
                 "--exclude-bos", "--out", str(out), "--plot", str(png), *SMALL]) == 0
    table = pd.read_csv(out)
    assert table.model.drop_duplicates().tolist() == ["stories260K", "random:stories260K"]
    assert table.groupby("model").block.apply(list).tolist() == [[0, 1, 2, 3, 4]] * 2
    printed = capsys.readouterr().out
    assert printed.count("# stories260K on tinystories/validation") == 1 and f"# drew {png}" in printed
    img = Image.open(png)
    # the book's figure width (7 in) at 200 dpi; three panels stacked; a plot, not a blank
    assert img.format == "PNG" and 1300 <= img.width <= 1500 and img.height > img.width
    assert len(img.convert("RGB").getcolors(1 << 20) or []) > 200


def test_cli_writes_svg_and_a_repeated_model_is_scanned_once(tmp_path, capsys):
    svg = tmp_path / "p.SVG"
    assert main(["profile", "--model", "stories260K", "--model", "stories260K", "--plot", str(svg), *SMALL]) == 0
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert capsys.readouterr().out.count("# stories260K on") == 1


@pytest.mark.parametrize("where, message", [
    ("missing/p.png", "does not exist"),
    ("p.jpg", "got '.jpg'"),
    ("p", "got no suffix"),
    (".", "no suffix"),
    ("folder.png", "is a folder"),
    ("", "empty path"),
])
def test_bad_plot_paths_exit_2_with_one_line_before_any_scan(tmp_path, capsys, monkeypatch, where, message):
    (tmp_path / "folder.png").mkdir()
    monkeypatch.chdir(tmp_path)
    import lin_utils.scan

    monkeypatch.setattr(lin_utils.scan, "scan_blocks", lambda *a, **k: pytest.fail("scanned despite a bad --plot"))
    assert main(["profile", "--model", "stories260K", "--plot", where]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("lin-utils: error:") and "--plot" in err and message in err
    assert "Traceback" not in err


def test_figure_has_three_panels_one_line_per_model_and_a_legend_entry_each():
    import matplotlib.pyplot as plt

    table = pd.concat([_table("a", 5), _table("random:a", 5, n=3000)], ignore_index=True)
    fig = plots_profile.profile_figure(table)
    try:
        axes = fig.axes
        assert len(axes) == 3 and axes[2].get_xlabel() == "block"
        assert [len(ax.lines) for ax in axes[:2]] == [4, 4]  # in-sample and held-out per model
        assert len([ln for ln in axes[2].lines if ln.get_marker() == "o"]) == 2
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert labels[:2] == ["a (d=64, n=4,000)", "random:a (d=64, n=3,000)"]
        assert {"held-out R²", "chance d/(n−1)"} <= set(labels)
        assert len(axes[0].collections) == 2  # a chance band per model
    finally:
        plt.close(fig)


def test_models_of_different_depth_share_a_relative_depth_axis_and_low_heldout_is_clipped():
    import matplotlib.pyplot as plt

    table = pd.concat([_table("a", 5), _table("b", 12, low=-3.0)], ignore_index=True)
    fig = plots_profile.profile_figure(table)
    try:
        assert fig.axes[2].get_xlabel().startswith("relative depth")
        assert fig.axes[1].get_ylim()[0] == pytest.approx(plots_profile.plots.Y_FLOOR)
        assert any("clipped: lowest value -3" in t.get_text() for t in fig.axes[1].texts)
    finally:
        plt.close(fig)


def test_figure_refuses_a_table_without_its_columns(tmp_path):
    with pytest.raises(LinUtilsError, match="lacks column.*norm_ratio"):
        plots_profile.profile_figure(_table("a", 3).drop(columns="norm_ratio"))
    with pytest.raises(LinUtilsError, match="empty"):
        plots_profile.profile_figure(_table("a", 3).iloc[:0])
    with pytest.raises(LinUtilsError, match="got '.pdf'"):
        plots_profile.save_profile(_table("a", 3), tmp_path / "p.pdf")
    assert plots_profile.save_profile(_table("a", 3), tmp_path / "p.png").stat().st_size > 10_000
