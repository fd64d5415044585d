"""CI's end-to-end run: the whole smoke profile, forced, then the strict book build.

Runs the real notebooks with papermill into a temporary copy of the book tree and a temporary
result cache, so the repository's executed pages and committed results are left alone. MathJax
comes from the user cache (lin_utils.site.ensure_mathjax), not the source tree.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from lin_utils import runner, site

ROOT = Path(__file__).resolve().parents[2]
FIGURE_PAGES = sorted(p.stem for p in (ROOT / "notebooks").glob("fig*.ipynb"))


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smoke")
    shutil.copy(ROOT / "_config.yml", tmp / "_config.yml")
    shutil.copytree(ROOT / "book", tmp / "book", ignore=shutil.ignore_patterns("notebooks", "_mathjax"))
    saved = os.environ.get("LIN_RESULTS_DIR")
    os.environ["LIN_RESULTS_DIR"] = str(tmp / "results")
    try:
        lines = []
        records = runner.run_profile("smoke", force=True, book_dir=tmp / "book", cwd=ROOT, log=lines.append)
        html = site.build_book(root=tmp, out_dir=tmp / "_build" / "html", log=lines.append)
    finally:
        if saved is None:
            os.environ.pop("LIN_RESULTS_DIR")
        else:
            os.environ["LIN_RESULTS_DIR"] = saved
    return tmp, records, html, lines


def test_every_notebook_ran_and_logged_its_wall_time(smoke_book):
    tmp, records, _, lines = smoke_book
    assert [r.name for r in records] == runner.run_order()
    assert records[-1].name == "claims" and set(FIGURE_PAGES) <= {r.name for r in records}
    for r in records:
        assert any(re.search(rf"{r.name} done in [0-9.]+ s", line) for line in lines)
        assert site.page_profile(tmp / "book" / "notebooks" / f"{r.name}.ipynb") == "smoke"
    # the figures computed fresh tables with provenance under the temporary cache
    sidecars = list((tmp / "results" / "smoke").rglob("*.json"))
    assert sidecars
    for path in sidecars:
        meta = json.loads(path.read_text())
        assert meta["profile"] == "smoke" and len(meta["sha256"]) == 64, path


@pytest.mark.parametrize("page", FIGURE_PAGES)
def test_figure_pages_show_a_figure_a_table_and_glued_numbers(smoke_book, page):
    _, _, html, _ = smoke_book
    text = (html / "book" / "notebooks" / f"{page}.html").read_text()
    assert re.search(r'<img[^>]+src="[^"]+\.png"', text), "no figure"
    assert "<table" in text, "no table"
    assert "Traceback" not in text
    prose = text[text.find("What the numbers say"):]
    assert re.search(r"\d\.\d{2}", prose), "no glued number in the discussion"


def test_claims_page_has_verdicts(smoke_book):
    _, _, html, _ = smoke_book
    text = (html / "book" / "notebooks" / "claims.html").read_text()
    assert "<table" in text and "Fig 1" in text
    assert re.search(r"replicated|partly", text)


def test_intro_and_methods_render_with_local_mathjax(smoke_book):
    _, _, html, _ = smoke_book
    methods = (html / "book" / "methods.html").read_text()
    assert "d/(n" in methods or "frac{d}" in methods
    src = re.search(r"<script[^>]+src=\"([^\"?]*tex-chtml\.js)", methods).group(1)
    assert (html / "book" / src).resolve().exists()
    assert "cdn.jsdelivr" not in methods


def test_fig1_page_screenshot(smoke_book):
    """Headless Chromium renders the Fig 1 page (skipped only where chromium is not installed)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian package `chromium`)")
    _, _, html, _ = smoke_book
    out = Path(tempfile.mkdtemp()) / "fig1.png"
    page = html / "book" / "notebooks" / "fig1_linearity_profiles.html"
    with tempfile.TemporaryDirectory() as profile_dir:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile_dir}",
             "--window-size=1200,2000", f"--screenshot={out}", page.as_uri()],
            capture_output=True, timeout=120, check=True,
        )
    from PIL import Image

    img = Image.open(out).convert("RGB")
    assert img.size == (1200, 2000)
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text and a plot, not a blank page


def test_missing_dataset_shows_the_loaders_error_with_the_notebook_name(tmp_path, monkeypatch):
    """A real notebook, a real loader: the run stops with the notebook's name and the paths tried."""
    from lin_utils.errors import LinUtilsError

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "nodata.yaml").write_text("fig1_linearity_profiles:\n  models: [minilm]\n  max_tokens: 500\n")
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    monkeypatch.setenv("LIN_DATA_DIR", str(empty))
    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path / "results"))
    (tmp_path / "book").mkdir()
    lines = []
    with pytest.raises(LinUtilsError) as err:
        runner.run_profile("nodata", only=["fig1_linearity_profiles"], force=True, profiles_dir=profiles,
                           book_dir=tmp_path / "book", toc=ROOT / "book" / "_toc.yml", cwd=ROOT,
                           log=lines.append)
    msg = str(err.value)
    assert "fig1_linearity_profiles" in msg and "DataNotFoundError" in msg and str(empty) in msg
    assert any("FAILED" in line and "fig1_linearity_profiles" in line for line in lines)
