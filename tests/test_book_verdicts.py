"""The claims table as the claims and landing pages show it; executed pages read back."""
import json

import numpy as np
import pandas as pd

from lin_utils import claims
from lin_utils.book import executed
from lin_utils.book.verdicts import claims_headline, claims_markdown

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
    full = claims_markdown(table, "smoke").splitlines()
    assert full[0] == "| evidence | verdict | claim | paper | ours |"
    assert full[2].startswith("| {ref}`Fig 1 <fig1_x-figure>` | <span") and "| a | p | o |" in full[2]
    assert full[3].startswith("| {doc}`Fig 3 <fig3_y>` | <span")  # no executed page with the label
    assert full[4].startswith("| Fig 2 | <span") and "not run" in full[4]
    compact = claims_markdown(table, "smoke", compact=True).splitlines()
    assert compact[0] == "| evidence | claim | verdict |" and len(compact) == 4
    assert executed.page_title(json.loads((tmp_path / "fig1_x.ipynb").read_text())) == "Figure 1: x"
    assert executed.executed_page("fig1_x", "cpu") is None  # another profile's page is not this one's
    headline = claims_headline(table, "smoke")
    assert "tests 2 of the paper's 3 claims" in headline and "**1 replicated**" in headline
    assert "**0 contradicted**" in headline and "other 1 is *not run*" in headline
    assert "not replicated" not in headline and "inconclusive" in headline  # classes with no claim: only the main three


def test_the_headline_counts_each_class_and_our_findings_apart():
    table = pd.DataFrame(dict(
        artifact=list("abcdef"), claim="c", paper="p", ours="o", rule="r", notebook="",
        verdict=[claims.REPLICATED, claims.INCONCLUSIVE, claims.INCONCLUSIVE, claims.CONTRADICTED, claims.REPLICATED,
                 claims.NOT_RUN],
        kind=[claims.PAPER] * 4 + [claims.OURS, claims.PAPER], reason="why", mde=[np.nan, 0.06, np.nan, 0, 0, 0],
        paper_effect=[np.nan, 0.024, np.nan, 0, 0, 0]))
    h = claims_headline(table, "cpu")
    assert h.startswith("At the `cpu` profile this book tests 4 of the paper's 5 claims: **1 replicated**, "
                        "**1 contradicted**, **2 inconclusive**.")
    assert "never counts as a failure to replicate (2 here" in h
    assert h.endswith("our own findings (1), counted apart: **1 replicated**, **0 contradicted**, **0 inconclusive**.")
    row = claims_markdown(table, "cpu").splitlines()[3]
    assert "o<br><small>why; minimum detectable effect 0.06 against the paper&#x27;s 0.024</small>" in row


def test_glued_png_reads_what_glue_stored():
    import base64

    png = b"\x89PNG fake"
    cell = {"cell_type": "code", "outputs": [{"output_type": "display_data", "metadata": {
        "scrapbook": {"name": "figure", "mime_prefix": "application/papermill.record/"}},
        "data": {"application/papermill.record/image/png": base64.b64encode(png).decode()}}]}
    assert executed.glued_png({"cells": [cell]}) == png
    assert executed.glued_png({"cells": [cell]}, "other") is None
