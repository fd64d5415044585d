"""What a page glues: numbers as plain text and floats, the re-run commands and the tables it read."""
import numpy as np
import pandas as pd

from lin_utils.book import glue

def test_glued_text_is_unquoted_and_numbers_are_floats():
    glued = glue.glue_numbers("t", {"x": np.float64(0.5), "verdict": "partly"})
    assert type(glued["t_x"]) is float and glued["t_x"] == 0.5 and repr(glued["t_verdict"]) == "partly"


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
    shown, downloads = glue.reproduce_markdown("fig1_linearity_profiles", "smoke")
    assert downloads == [rel, rel[:-4] + ".json"]
    assert glue.reproduce("fig1_linearity_profiles", "smoke") == {site.PAGE_METADATA: {"downloads": downloads}}
    for command in runner.reproduce_commands("fig1_linearity_profiles", "smoke"):
        assert command in shown
    assert f'href="../../_data/{rel}"' in shown and "m: scan/blocks" in shown
    results.forget_reads()
