"""Tables for the text column: MyST tables, full tables per model cut to fit, per-model summaries."""
import numpy as np
import pandas as pd
import pytest
from tables import profile_table

from lin_utils.book.tables import md_table, tables_by_model
from lin_utils.pages import fig3_block_norms as fig3
from lin_utils.pages._scans import profile_summary

def test_md_table_formats_aligns_and_escapes():
    df = pd.DataFrame({"model": ["a|b", "c"], "n": [1500, 20], "x": [0.12345, np.nan], "ok": [True, False]})
    df.attrs["formats"] = {"x": ".2f"}
    lines = md_table(df).splitlines()
    assert lines[0] == "| model | n | x | ok |" and lines[1] == "|:---|---:|---:|:---|"
    assert lines[2] == "| a\\|b | 1,500 | 0.12 | yes |" and lines[3] == "| c | 20 | — | no |"
    assert md_table(df, {"x": lambda v: f"{v:.1%}"}).splitlines()[2].split(" | ")[2] == "12.3%"


def test_full_tables_are_split_by_model_with_constant_columns_in_the_heading():
    t = pd.concat([profile_table([0.99, 0.97], [0.5, 0.4], [0.3, 0.2]),
                   profile_table([0.9, 0.8], [0.5, 0.4], [0.3, 0.2], trained=False, model="r")])
    text = tables_by_model(t[["model", "arch", "trained", "block", "n_tokens", "d", "score", "score_nores"]])
    first, second = text.split("**r**")
    assert first.startswith("**m** (trained decoder): n_tokens = 5,000, d = 16\n\n| block | score | score nores |")
    assert "| 1 | 0.970 | 0.400 |" in first and second.startswith(" (random decoder)")


def test_wide_model_tables_are_cut_with_their_key_columns_repeated():
    cols = {"model": ["m"] * 3, "task": ["a", "b", "c"], "seed": [0, 1, 2]}
    cols.update({f"v{i}": np.arange(3) + i / 10 for i in range(11)})
    text = tables_by_model(pd.DataFrame(cols), max_columns=8)
    heads = [ln for ln in text.splitlines() if ln.startswith("| task")]
    assert heads == ["| task | seed | v0 | v1 | v2 | v3 | v4 | v5 |", "| task | seed | v6 | v7 | v8 | v9 | v10 |"]
    assert "| c | 2 | 2.600 | 2.700 | 2.800 | 2.900 | 3.000 |" in text  # rows stay aligned in every slice
    assert tables_by_model(pd.DataFrame(cols), max_columns=13).count("| task") == 1


def test_summaries_have_one_row_per_model_that_fits_the_column():
    t = pd.concat([profile_table([0.99, 0.97], [0.5, 0.4], [0.3, 1.2]),
                   profile_table([0.9, 0.8], [0.5, 0.4], [0.3, 0.2], trained=False, model="r")])
    s1, s3 = profile_summary(t), fig3.summary(fig3.with_output_ratio(t.assign(norm_out=[10.0, 20.0, 10.0, 10.0])))
    assert len(s1) == len(s3) == 2 and len(s1.columns) <= 7 and len(s3.columns) <= 7
    assert s1["model"].tolist() == ["m<br><small>trained decoder</small>", "r<br><small>random decoder</small>"]
    assert s1.loc[0, "with residual"] == pytest.approx(0.98)
    row = md_table(s3).splitlines()[2]  # ratios to the stream made: 3 / 10 and 12 / 20
    assert "| 0.45 | 0.30 | 0.60 | 100% | 0.75 | 0.900 |" in row
