"""The claims page and the landing page as their notebooks show them, on frozen result tables.

The pages run under a profile of their own (``frozen``: the cpu profile's sections) whose result
cache holds the frozen tables of the figure pages (``tests/shown.py``), so the claims of those pages
are judged and the others are *not run*, whatever else lies in ``data/results`` or ``book/notebooks``.
"""
from __future__ import annotations

import base64
import html
import io
import shutil

import nbformat
import pytest
from PIL import Image
from shown import FROZEN, run_show, stage

from lin_utils import claims, pages, paths, results, runner
from lin_utils.book.verdicts import claims_headline, verdict_badge
from lin_utils.paper import evidence_for, evidence_table

PROFILE = "frozen"
#: the claims the frozen tables carry (every other claim is not run)
JUDGED = {"fig1_linearity_profiles", "fig3_block_norms", "fig6_pruning_perplexity", "fig8_pruning_arc_easy",
          "fig9_error_distribution", "table1_finetuning", "scaling"}


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def book(tmp_path, monkeypatch):
    """The ``frozen`` profile, its staged result cache and one executed figure page (Fig 1's)."""
    prof = tmp_path / "profiles"
    shutil.copytree(paths.REPO_ROOT / "profiles", prof)
    shutil.copy(prof / "cpu.yaml", prof / f"{PROFILE}.yaml")
    monkeypatch.setenv("LIN_PROFILES_DIR", str(prof))
    root, _ = stage(tmp_path, sorted(p.name for p in (FROZEN / "cpu").iterdir()), as_profile=PROFILE)
    executed = tmp_path / "executed"
    executed.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Figure 1: linearity by block\n\n```{glue:figure} figure\n"
                                              ":name: fig1_linearity_profiles-figure\n```"),
                nbformat.v4.new_code_cell("pages.show(...)")]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={
        "application/papermill.record/image/png": base64.b64encode(_png(1400, 700)).decode()},
        metadata={"scrapbook": {"name": "figure", "mime_prefix": "application/papermill.record/"}})]
    nb.metadata["lin_utils"] = {"profile": PROFILE}
    nbformat.write(nb, executed / "fig1_linearity_profiles.ipynb")
    monkeypatch.setenv(runner.PAGES_ENV, str(executed))
    monkeypatch.setenv("LIN_RESULTS_DIR", str(root))
    return root


def _downloads(root, profile):
    """The result files the claims' judges read, relative to the cache (what the page links)."""
    results.forget_reads()
    try:
        claims.claims_table(profile)
        return [p.resolve().relative_to(root.resolve()).as_posix() for pair in results.files_read() for p in pair]
    finally:
        results.forget_reads()


def test_the_claims_page_shows_every_claim_its_verdict_and_rule(book, monkeypatch):
    want = claims.claims_table(PROFILE)
    assert set(want[want.verdict != claims.NOT_RUN].notebook) == JUDGED
    downloads = _downloads(book, PROFILE)
    table, glued, shown = run_show("claims", monkeypatch, book, profile=PROFILE)
    assert table.equals(want)
    assert sorted(glued) == ["claims", "findings", "headline", "paper_evidence", "rules"]
    md = {k: v["text/markdown"] for k, v in glued.items()}
    assert md["headline"] == claims_headline(want, PROFILE)
    assert md["headline"].startswith(f"At the `{PROFILE}` profile this book tests 7 of the paper's ")

    paper = [c for c in pages.all_claims() if c.kind == claims.PAPER]
    rows = md["claims"].splitlines()
    assert rows[0] == "| evidence | verdict | claim | paper | ours |" and len(rows) == 2 + len(paper)
    for claim, row, (_, r) in zip(paper, rows[2:], want[want.kind == claims.PAPER].iterrows()):
        cells = row.split(" | ")
        assert verdict_badge(r.verdict) in row and claim.claim in row
        weighed = evidence_for(claim.artifact)
        expected_paper = claim.paper + (f"<br><small>weighed: {html.escape(weighed)}</small>" if weighed else "")
        assert expected_paper in row, claim.artifact
        if r.verdict == claims.NOT_RUN:
            assert row.endswith("| — |") and "<small>" not in cells[-1]
        else:
            assert r.ours in html.unescape(row) and f"<small>{html.escape(r.reason)}" in row
    assert rows[2 + [c.page for c in paper].index("fig1_linearity_profiles")].startswith(
        "| {ref}`Fig 1 <fig1_linearity_profiles-figure>` |")  # the executed page has the figure's label
    assert rows[2 + [c.page for c in paper].index("fig9_error_distribution")].startswith(
        "| {doc}`Fig 9 <fig9_error_distribution>` |")  # no executed page of that profile

    ours = want[want.kind == claims.OURS]
    if len(ours):
        assert md["findings"].splitlines()[0] == "| evidence | verdict | claim | paper | ours |"
        assert len(md["findings"].splitlines()) == 2 + len(ours)
    else:
        assert md["findings"] == "*None at this profile.*"

    t = evidence_table()
    assert md["paper_evidence"].splitlines()[0] == "| artifact | the paper's number | weighed | verdict | why |"
    assert len(md["paper_evidence"].split("\n\nSources")[0].splitlines()) == 2 + len(t)
    sources = [s for s in t.source if isinstance(s, str) and s]
    if sources:
        listed = md["paper_evidence"].split("Sources (by row):\n\n")[1].splitlines()
        assert listed == [f"{i + 1}. {s}" for i, s in enumerate(sources)]

    assert md["rules"].splitlines() == [f"- **{c.artifact}**, {c.claim[0].lower()}{c.claim[1:]}: {c.rule_text}."
                                        for c in pages.all_claims()]
    assert len(shown) == 1
    text = shown[0]["data"]["text/markdown"]
    for command in runner.reproduce_commands("claims", PROFILE):
        assert command in text
    assert shown[0]["metadata"] == {"lin_utils": {"downloads": downloads}} and len(downloads) > 10
    for rel in downloads:
        assert f'href="../../_data/{rel}"' in text


def test_the_landing_page_shows_the_judged_claims_and_a_card_per_executed_figure(book, monkeypatch):
    want = claims.claims_table(PROFILE)
    table, glued, shown = run_show("intro", monkeypatch, book, profile=PROFILE)
    assert table.equals(want)
    assert sorted(glued) == ["figures", "headline", "thumb_fig1_linearity_profiles", "verdicts"]
    assert glued["headline"]["text/markdown"] == claims_headline(want, PROFILE)
    rows = glued["verdicts"]["text/markdown"].splitlines()
    judged = want[(want.kind == claims.PAPER) & (want.verdict != claims.NOT_RUN)]
    assert rows[0] == "| evidence | claim | verdict |" and len(rows) == 2 + len(judged)
    for row, (_, r) in zip(rows[2:], judged.iterrows()):
        assert row.endswith(f"| {r.claim} | {verdict_badge(r.verdict)} |")
    assert glued["figures"]["text/markdown"] == (
        "::::{grid} 1 2 3 3\n:gutter: 2\n\n:::{grid-item-card} Figure 1: linearity by block\n"
        ":link: fig1_linearity_profiles\n:link-type: doc\n\n```{glue} thumb_fig1_linearity_profiles\n```\n:::\n::::")
    thumb = Image.open(io.BytesIO(base64.b64decode(glued["thumb_fig1_linearity_profiles"]["image/png"])))
    assert thumb.size == (600, 300)  # the 1,400 px figure at the landing page's width
    assert len(shown) == 1 and runner.reproduce_commands("intro", PROFILE)[0] in shown[0]["data"]["text/markdown"]
    assert shown[0]["metadata"] == {"lin_utils": {"downloads": _downloads(book, PROFILE)}}


def test_the_landing_page_without_executed_figure_pages_says_so(book, monkeypatch, tmp_path):
    monkeypatch.setenv(runner.PAGES_ENV, str(tmp_path / "none"))
    _, glued, _ = run_show("intro", monkeypatch, book, profile=PROFILE)
    assert glued["figures"]["text/markdown"] == "*No figure page has run at this profile yet.*"
    assert sorted(glued) == ["figures", "headline", "verdicts"]


def test_a_page_name_is_its_module_name_without_the_package():
    assert pages.name_of("lin_utils.pages.fig1_linearity_profiles") == "fig1_linearity_profiles"
    assert pages.name_of("fig1_linearity_profiles") == "fig1_linearity_profiles"
    assert pages.name_of("a.b.c.d") == "d"
