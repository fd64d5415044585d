"""Numbers the prose glues in: read from the tables, formatted for the text."""
import json

import numpy as np
import pandas as pd
import pytest
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


def test_md_table_formats_aligns_and_escapes():
    df = pd.DataFrame({"model": ["a|b", "c"], "n": [1500, 20], "x": [0.12345, np.nan], "ok": [True, False]})
    df.attrs["formats"] = {"x": ".2f"}
    lines = report.md_table(df).splitlines()
    assert lines[0] == "| model | n | x | ok |" and lines[1] == "|:---|---:|---:|:---|"
    assert lines[2] == "| a\\|b | 1,500 | 0.12 | yes |" and lines[3] == "| c | 20 | — | no |"
    assert report.md_table(df, {"x": lambda v: f"{v:.1%}"}).splitlines()[2].split(" | ")[2] == "12.3%"


def test_full_tables_are_split_by_model_with_constant_columns_in_the_heading():
    t = pd.concat([profile_table([0.99, 0.97], [0.5, 0.4], [0.3, 0.2]),
                   profile_table([0.9, 0.8], [0.5, 0.4], [0.3, 0.2], trained=False, model="r")])
    text = report.tables_by_model(t[["model", "arch", "trained", "block", "n_tokens", "d", "score", "score_nores"]])
    first, second = text.split("**r**")
    assert first.startswith("**m** (trained decoder): n_tokens = 5,000, d = 16\n\n| block | score | score nores |")
    assert "| 1 | 0.970 | 0.400 |" in first and second.startswith(" (random decoder)")


def test_wide_model_tables_are_cut_with_their_key_columns_repeated():
    cols = {"model": ["m"] * 3, "task": ["a", "b", "c"], "seed": [0, 1, 2]}
    cols.update({f"v{i}": np.arange(3) + i / 10 for i in range(11)})
    text = report.tables_by_model(pd.DataFrame(cols), max_columns=8)
    heads = [ln for ln in text.splitlines() if ln.startswith("| task")]
    assert heads == ["| task | seed | v0 | v1 | v2 | v3 | v4 | v5 |", "| task | seed | v6 | v7 | v8 | v9 | v10 |"]
    assert "| c | 2 | 2.600 | 2.700 | 2.800 | 2.900 | 3.000 |" in text  # rows stay aligned in every slice
    assert report.tables_by_model(pd.DataFrame(cols), max_columns=13).count("| task") == 1


def test_summaries_have_one_row_per_model_that_fits_the_column():
    t = pd.concat([profile_table([0.99, 0.97], [0.5, 0.4], [0.3, 1.2]),
                   profile_table([0.9, 0.8], [0.5, 0.4], [0.3, 0.2], trained=False, model="r")])
    s1, s3 = report.fig1_summary(t), report.fig3_summary(t)
    assert len(s1) == len(s3) == 2 and len(s1.columns) <= 7 and len(s3.columns) <= 7
    assert s1["model"].tolist() == ["m<br><small>trained decoder</small>", "r<br><small>random decoder</small>"]
    assert s1.loc[0, "with residual"] == pytest.approx(0.98)
    row = report.md_table(s3).splitlines()[2]
    assert "| 0.75 | 0.30 | 1.20 | 50% | 0.900 |" in row


def test_reproduce_lists_the_commands_and_the_tables_the_page_read(tmp_path, monkeypatch):
    from lin_utils import results, runner, site

    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path))
    results.forget_reads()
    results.save_table(pd.DataFrame({"a": [1]}), "scan", "blocks", {"model": "m"}, "smoke")
    assert results.load_table("scan", "blocks", {"model": "m"}, "smoke") is not None
    assert results.load_table("scan", "blocks", {"model": "other"}, "smoke") is None  # not read: not listed
    csv, meta = results.table_paths("scan", "blocks", {"model": "m"}, "smoke")
    assert results.files_read() == [(csv, meta)]
    rel = csv.relative_to(tmp_path).as_posix()
    shown, downloads = report.reproduce_markdown("fig1_linearity_profiles", "smoke")
    assert downloads == [rel, rel[:-4] + ".json"]
    assert report.reproduce("fig1_linearity_profiles", "smoke") == {site.PAGE_METADATA: {"downloads": downloads}}
    for command in runner.reproduce_commands("fig1_linearity_profiles", "smoke"):
        assert command in shown
    assert f'href="../../_data/{rel}"' in shown and "m: scan/blocks" in shown
    results.forget_reads()


def test_claims_link_to_the_figure_when_its_page_has_the_label(tmp_path, monkeypatch):
    import nbformat

    from lin_utils import runner

    table = pd.DataFrame(dict(artifact=["Fig 1", "Fig 3", "Fig 2"], claim=["a", "b", "c"], paper="p", ours="o",
                              verdict=[claims.REPLICATED, claims.PARTLY, claims.NOT_RUN], rule="r",
                              notebook=["fig1_x", "fig3_y", ""]))
    monkeypatch.setenv(runner.PAGES_ENV, str(tmp_path))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Figure 1: x\n\n```{glue:figure} figure\n:name: fig1_x-figure\n```")]
    nb.metadata["lin_utils"] = {"profile": "smoke"}
    nbformat.write(nb, tmp_path / "fig1_x.ipynb")
    full = report.claims_markdown(table, "smoke").splitlines()
    assert full[0] == "| evidence | verdict | claim | paper | ours |"
    assert full[2].startswith("| {ref}`Fig 1 <fig1_x-figure>` | <span") and "| a | p | o |" in full[2]
    assert full[3].startswith("| {doc}`Fig 3 <fig3_y>` | <span")  # no executed page with the label
    assert full[4].startswith("| Fig 2 | <span") and "not run" in full[4]
    compact = report.claims_markdown(table, "smoke", compact=True).splitlines()
    assert compact[0] == "| evidence | claim | verdict |" and len(compact) == 4
    assert report.page_title(json.loads((tmp_path / "fig1_x.ipynb").read_text())) == "Figure 1: x"
    assert report.executed_page("fig1_x", "cpu") is None  # another profile's page is not this one's
    headline = report.claims_headline(table, "smoke")
    assert "tests 2 of the paper's 3 claims" in headline and "**1 replicated**" in headline
    assert "**0 not replicated**" in headline and "other 1 are *not run*" in headline


def test_glued_png_reads_what_glue_stored():
    import base64

    png = b"\x89PNG fake"
    cell = {"cell_type": "code", "outputs": [{"output_type": "display_data", "metadata": {
        "scrapbook": {"name": "figure", "mime_prefix": "application/papermill.record/"}},
        "data": {"application/papermill.record/image/png": base64.b64encode(png).decode()}}]}
    assert report.glued_png({"cells": [cell]}) == png
    assert report.glued_png({"cells": [cell]}, "other") is None
