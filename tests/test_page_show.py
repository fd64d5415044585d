"""Each page's ``show()`` (what its notebook runs) glues what a real notebook run of it glued.

The pages run here on frozen copies of the result tables their notebooks read (``tests/shown.py``):
every glued number, sentence, markdown table and the figure must be there, under the same names and
with the same values as in the snapshot (an executed notebook's glue, or ``show()``'s own at a
reviewed commit: see ``tests/shown.py``), and the page must end with the re-run commands and links
to exactly the tables it read.
"""
from __future__ import annotations

import pytest
from shown import assert_same_glue, assert_same_reproduce, capture, show_frozen, snapshot, stage

from lin_utils import pages

FROZEN_PAGES = ["fig1_linearity_profiles", "fig3_block_norms", "fig6_pruning_perplexity", "fig7_pruning_second_model",
                "fig8_pruning_arc_easy", "fig9_error_distribution", "table1_finetuning", "scaling"]


@pytest.mark.parametrize("name", FROZEN_PAGES)
def test_show_glues_what_the_notebook_run_glued(name, monkeypatch, tmp_path):
    _, glued, shown, snap, renames = show_frozen(name, monkeypatch, tmp_path)
    assert_same_glue(glued, snap["glue"])
    assert_same_reproduce(shown, snap["reproduce"], renames)


def test_a_notebook_call_shows_its_page_from_the_namespace(monkeypatch, tmp_path):
    """``pages.show(name, globals())``, the notebooks' one call: the config from the parameters cell's
    variables (every parameters cell sets ``profile`` and ``force``) and nothing else."""
    name = "fig9_error_distribution"
    snap = snapshot(name)
    root, renames = stage(tmp_path, snap["computations"])
    monkeypatch.setenv("LIN_RESULTS_DIR", str(root))
    namespace = {**pages.config(name, "cpu").params(), "profile": "cpu", "force": False, "pages": pages}
    returned, glued, shown = capture(lambda: pages.show(name, namespace))
    assert returned is None
    assert_same_glue(glued, snap["glue"])
    assert_same_reproduce(shown, snap["reproduce"], renames)


@pytest.mark.parametrize("name", FROZEN_PAGES)
def test_force_recomputes_instead_of_reading_the_cached_tables(name, monkeypatch, tmp_path):
    """``force: true`` (the notebook's parameter) recomputes although every table is cached: with
    no model or data to compute from, the page fails at once, before it glues anything."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from lin_utils.errors import LinUtilsError

    root, _ = stage(tmp_path, snapshot(name)["computations"])
    monkeypatch.setenv("LIN_RESULTS_DIR", str(root))
    page = pages.get(name)
    cfg = pages.config(page, "cpu")
    assert page.tables(cfg, profile="cpu", cache_only=True) is not None
    monkeypatch.setenv("LIN_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("LIN_CACHE", str(tmp_path / "no-cache"))
    InteractiveShell.instance()
    with capture_output(stdout=False, stderr=False) as cap, pytest.raises(LinUtilsError, match="no-data|not trained yet"):
        page.show(cfg, profile="cpu", force=True)
    assert cap.outputs == []
