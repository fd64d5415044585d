"""CI's end-to-end run: the whole smoke profile, forced, then the strict book build.

Runs the real notebooks with papermill into a temporary copy of the book tree and a temporary
result cache, so the repository's executed pages and committed results are left alone. MathJax
comes from the user cache (lin_utils.site.ensure_mathjax), not the source tree.
"""
import hashlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from lin_utils import claims, pages, runner, site
from lin_utils.book import executed

ROOT = Path(__file__).resolve().parents[2]
FIGURE_PAGES = sorted([*(p.stem for p in (ROOT / "notebooks").glob("fig*.ipynb")), "scaling"])
# every page the landing page shows a thumbnail of: the figures, the tables and the model zoo
THUMBNAIL_PAGES = sorted(p.stem for pat in ("fig*", "table*", "model_zoo", "scaling") for p in (ROOT / "notebooks").glob(f"{pat}.ipynb"))


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
    # the landing page summarises the others, the claims included, so it runs last
    assert [r.name for r in records[-2:]] == ["claims", "intro"] and set(FIGURE_PAGES) <= {r.name for r in records}
    for r in records:
        assert any(re.search(rf"{r.name} done in [0-9.]+ s", line) for line in lines)
        assert site.page_profile(tmp / "book" / "notebooks" / f"{r.name}.ipynb") == "smoke"
    # the figures computed fresh tables with provenance under the temporary cache
    sidecars = list((tmp / "results" / "smoke").rglob("*.json"))
    assert sidecars
    for path in sidecars:
        meta = json.loads(path.read_text())
        assert meta["profile"] == "smoke" and len(meta["sha256"]) == 64, path


def test_landing_and_methods_render_with_local_mathjax(smoke_book):
    _, _, html, _ = smoke_book
    methods = (html / "book" / "methods.html").read_text()
    assert "d/(n" in methods or "frac{d}" in methods
    src = re.search(r"<script[^>]+src=\"([^\"?]*tex-chtml\.js)", methods).group(1)
    assert (html / "book" / src).resolve().exists()
    assert "cdn.jsdelivr" not in methods
    landing = (html / "book" / "notebooks" / "intro.html").read_text()
    src = re.search(r"<script[^>]+src=\"([^\"?]*tex-chtml\.js)", landing).group(1)
    assert (html / "book" / "notebooks" / src).resolve().exists() and "cdn.jsdelivr" not in landing


GLUE_TEXT = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")
VERDICT_SPAN = re.compile(r'<span class="lin-verdict"[^>]*>([^<]*)</span>')


@pytest.fixture
def smoke_results(smoke_book, monkeypatch):
    """The smoke run's result cache, for recomputing what the pages should show."""
    monkeypatch.setenv("LIN_RESULTS_DIR", str(smoke_book[0] / "results"))
    return smoke_book[0] / "results"


def _executed(tmp: Path, name: str) -> dict:
    return json.loads((tmp / "book" / "notebooks" / f"{name}.ipynb").read_text())


def _article(path: Path) -> str:
    """The page's main text (not its navigation), as HTML."""
    text = path.read_text()
    return text[text.index("<article"):text.index("</article>")]


def _plain(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text)).replace("\u2019", "'")


def _expected_glued_text(page: str) -> list[str] | None:
    """Each ``{glue:text}`` of the page's prose, in order, as it should read when formatted from
    numbers recomputed here from the result tables (None: no claim says how to load them)."""
    prefix = page.split("_")[0]
    module = pages.get(page)
    numbers_of = getattr(module, "page_numbers", None)
    if numbers_of is None:
        return None
    tables = module.tables(pages.config(module, "smoke"), profile="smoke", cache_only=True)
    assert tables is not None, f"{page}: its result table is not in the smoke cache"
    values = {f"{prefix}_{k}": v for k, v in numbers_of(tables).items()}
    source = json.loads((ROOT / "notebooks" / f"{page}.ipynb").read_text())
    prose = "\n".join("".join(c["source"]) for c in source["cells"] if c["cell_type"] == "markdown")
    roles = GLUE_TEXT.findall(prose)
    assert roles, f"{page}: no glued number in its prose"
    return [format(float(values[k]), fmt) if fmt else str(values[k]) for k, fmt in roles]


@pytest.mark.parametrize("page", FIGURE_PAGES)
def test_figure_pages_show_the_glued_figure_numbers_and_tables(smoke_book, smoke_results, page):
    tmp, _, html_dir, _ = smoke_book
    text = _article(html_dir / "book" / "notebooks" / f"{page}.html")
    assert "Traceback" not in text
    # the figure is the PNG the notebook glued (myst-nb names the file by its sha256)
    png = executed.glued_png(_executed(tmp, page))
    assert png is not None, "no figure glued"
    label = page.replace("_", "-") + "-figure"
    figure = re.search(rf'<figure[^>]+id="{label}"[^>]*>\s*<img[^>]+src="([^"]+)"', text)
    assert figure, "no figure element with the page's label"
    assert Path(figure.group(1)).stem == hashlib.sha256(png).hexdigest()
    assert (html_dir / "book" / "notebooks" / figure.group(1)).resolve().read_bytes() == png
    # every glued number of the prose equals the number recomputed from the result tables
    expected = _expected_glued_text(page)
    shown = [_plain(t) for t in re.findall(r'<span class="pasted-text">(.*?)</span>', text, re.S)]
    if expected is not None:
        assert shown == expected
    # the compact summary comes after the numbers, then the folded full table, then the reproduction
    numbers_at, reproduce_at = text.find("What the numbers say"), text.find("Reproduce this page<")
    tables = [m.start() for m in re.finditer("<table", text)]
    assert numbers_at < tables[0] < reproduce_at and len(tables) >= 2
    assert re.search(r"<details[^>]*>\s*<summary[^>]*>.*?full table", text, re.S)
    # one parameters cell shows, with the values that ran; the code is folded
    assert "Defaults = the cpu profile" not in text and text.count("# Parameters") == 1
    assert "Show the parameters this page ran with" in text and "Show the code" in text


@pytest.mark.parametrize("page", [*FIGURE_PAGES, "claims", "intro"])
def test_pages_end_with_their_commands_and_downloadable_tables(smoke_book, smoke_results, page):
    _, _, html_dir, _ = smoke_book
    text = _article(html_dir / "book" / "notebooks" / f"{page}.html")
    tail = _plain(text[text.find("Reproduce this page<"):])
    for command in runner.reproduce_commands(page, "smoke"):
        assert command in tail
    links = re.findall(r'href="(\.\./\.\./_data/[^"]+)"', text)
    assert links, "no result table to download"
    csvs = [link for link in links if link.endswith(".csv")]
    assert len(links) == 2 * len(csvs)  # each CSV with its provenance
    for link in csvs:
        data = (html_dir / "book" / "notebooks" / link).resolve()
        meta = json.loads(data.with_suffix(".json").read_text())
        assert hashlib.sha256(data.read_bytes()).hexdigest() == meta["sha256"] and meta["profile"] == "smoke"


def _judged_claims():
    expected = claims.claims_table("smoke")
    judged = expected[[c.judge is not None for c in pages.all_claims()]]
    assert len(judged) >= 4
    # every claim that has a rule got a real verdict from the smoke run's tables, except Table 3
    # without a judge endpoint: its automatic proxies never give a verdict, and it says why
    no_judge = (judged.artifact == "Table 3") & judged.ours.str.startswith("no judge configured")
    assert no_judge.any() == (not os.environ.get("LIN_JUDGE_URL"))
    assert set(judged[~no_judge].verdict) <= {claims.REPLICATED, claims.PARTLY, claims.CONTRADICTED,
                                              claims.INCONCLUSIVE}, judged
    assert (judged[~no_judge].reason.str.len() > 0).all()  # every verdict says why
    assert (judged[no_judge].verdict == claims.NOT_RUN).all()
    return expected, judged


def test_claims_page_has_verdicts(smoke_book, smoke_results):
    _, _, html_dir, _ = smoke_book
    text = _article(html_dir / "book" / "notebooks" / "claims.html")
    expected, judged = _judged_claims()
    from lin_utils.paper import evidence_table

    # the paper's claims, then our findings, then the paper's own numbers weighed by the same rule
    shown = VERDICT_SPAN.findall(text)
    assert shown == list(expected.verdict) + list(evidence_table().verdict)
    for row in judged.itertuples():  # each claim links to the figure that carries its evidence
        assert f'href="{row.notebook}.html#{row.notebook.replace("_", "-")}-figure"' in text


def test_landing_page_has_the_verdicts_and_a_thumbnail_per_figure(smoke_book, smoke_results):
    _, _, html_dir, _ = smoke_book
    assert "book/notebooks/intro.html" in (html_dir / "index.html").read_text()
    text = _article(html_dir / "book" / "notebooks" / "intro.html")
    _, judged = _judged_claims()
    # the landing page lists the claims that have a verdict (Table 3 without a judge has none)
    paper = judged[(judged.verdict != claims.NOT_RUN) & (judged.kind == claims.PAPER)]  # our findings: the headline
    assert VERDICT_SPAN.findall(text) == list(paper.verdict)
    cards = re.findall(r'<div class="sd-card[^"]*".*?</a>', text, re.S)
    linked = {re.search(r'href="([^"#]+)\.html"', card).group(1) for card in cards if "<img" in card}
    assert linked == set(THUMBNAIL_PAGES)
    assert text.find('class="lin-verdict"') < text.find("sd-card") < text.find("The paper\u2019s claim")


# -------------------------------------------------------------------------------------------------
# the pages as a reader sees them: headless Chromium, every page in one harness of iframes

FRAME_HEIGHT = 2400
MEASURE_JS = """<script>
function linMeasure(frame) {
  var doc = frame.contentDocument, art = doc.querySelector('article.bd-article');
  var col = (art.querySelector(':scope > section') || art).getBoundingClientRect();
  var out = {src: frame.getAttribute('src'), width: parseInt(frame.getAttribute('width')), column: [col.left, col.right],
             images: [], tables: []};
  art.querySelectorAll('img').forEach(function (i) {
    var r = i.getBoundingClientRect();
    out.images.push({src: i.getAttribute('src'), natural: i.naturalWidth, complete: i.complete,
                     box: [r.left, r.top, r.right, r.bottom]});
  });
  doc.querySelectorAll('details').forEach(function (d) { d.open = true; });  // folded tables too
  art.querySelectorAll('table').forEach(function (t) {
    var r = t.getBoundingClientRect();
    out.tables.push({left: r.left, right: r.right, rows: t.rows.length, head: t.innerText.slice(0, 40)});
  });
  return out;
}
window.addEventListener('load', function () { setTimeout(function () {
  var res = [];
  document.querySelectorAll('iframe').forEach(function (f) {
    try { res.push(linMeasure(f)); } catch (e) { res.push({src: f.getAttribute('src'), error: String(e)}); }
  });
  var pre = document.createElement('pre'); pre.id = 'lin-measure'; pre.textContent = JSON.stringify(res);
  document.body.appendChild(pre);
}, 2000); });
</script>"""


def _harness(html_dir: Path, pages: list[str], widths: list[int], script: str = "") -> Path:
    """A page that shows ``pages`` in iframes, one below the other, at each of ``widths``."""
    frames = "".join(f'<iframe src="{p}" width="{w}" height="{FRAME_HEIGHT}" style="border:0;display:block">'
                     "</iframe>\n" for w in widths for p in pages)
    path = html_dir / f".harness-{uuid.uuid4().hex}.html"
    path.write_text(f'<html><body style="margin:0">\n{frames}{script}</body></html>\n')
    return path


def _chromium(chromium: str, page: Path, width: int, height: int, *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile_dir:
        res = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--allow-file-access-from-files", f"--user-data-dir={profile_dir}",
             f"--window-size={width},{height}", "--virtual-time-budget=15000", *args, page.as_uri()],
            capture_output=True, text=True, timeout=180, check=True,
        )
    return res.stdout


@pytest.fixture(scope="module")
def in_chromium(smoke_book, tmp_path_factory):
    """Every page at 1300 px and at 390 px (a phone): the layout as measured in the browser, and a
    screenshot of each page at 1300 px (kept in the test's temporary folder)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian package `chromium`)")
    _, _, html_dir, _ = smoke_book
    pages = [f"book/notebooks/{name}.html" for name in runner.run_order()] + ["book/methods.html"]
    widths = [1300, 390]
    # one browser run: the DOM after the measuring script, and a screenshot of the 1300 px frames
    # (the window holds them; the 390 px frames below it load and lay out all the same)
    probe = _harness(html_dir, pages, widths, MEASURE_JS)
    out = tmp_path_factory.mktemp("screens")
    try:
        dom = _chromium(chromium, probe, widths[0], FRAME_HEIGHT * len(pages), "--dump-dom",
                        f"--screenshot={out / 'pages.png'}")
    finally:
        probe.unlink()
    found = re.search(r'<pre id="lin-measure"[^>]*>(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    layout = json.loads(html.unescape(found.group(1)))
    from PIL import Image

    screen = Image.open(out / "pages.png").convert("RGB")
    for i, page in enumerate(pages):  # one screenshot per page, for people to look at
        screen.crop((0, i * FRAME_HEIGHT, widths[0], (i + 1) * FRAME_HEIGHT)).save(out / f"{Path(page).stem}.png")
    return pages, layout, screen


def test_every_page_in_chromium_shows_its_figure_and_tables_that_fit(smoke_book, in_chromium):
    from PIL import Image, ImageChops, ImageStat

    tmp, _, _, _ = smoke_book
    pages, layout, screen = in_chromium
    assert [m.get("error") for m in layout] == [None] * len(layout)
    assert sorted({m["width"] for m in layout}) == [390, 1300] and len(layout) == 2 * len(pages)
    for m in layout:
        name, (left, right) = Path(m["src"]).stem, m["column"]
        assert right - left > (600 if m["width"] == 1300 else 300), m
        if m["width"] == 1300 and "/notebooks/" in m["src"]:  # no result table is wider than the text
            for t in m["tables"]:                                # column, the folded ones included
                assert t["rows"] > 1 and left - 1 <= t["left"] and t["right"] <= right + 1, (name, t)
        if name not in FIGURE_PAGES:
            continue
        png = executed.glued_png(_executed(tmp, name))
        figure = [i for i in m["images"] if Path(i["src"]).stem == hashlib.sha256(png).hexdigest()]
        assert len(figure) == 1, (name, m["images"])
        x0, y0, x1, y1 = figure[0]["box"]
        assert figure[0]["complete"] and figure[0]["natural"] > 0, (name, figure)
        assert 0.95 * (right - left) <= x1 - x0 <= right - left + 1, (name, m["width"], figure)  # full width
        if m["width"] != 1300:
            continue
        # where the page put it, the screenshot shows that plot: it matches the glued PNG
        top = pages.index(m["src"]) * FRAME_HEIGHT
        shown = screen.crop((round(x0), top + round(y0), round(x1), top + round(y1)))
        want = Image.open(io.BytesIO(png)).convert("RGB").resize(shown.size, Image.LANCZOS)
        diff = max(ImageStat.Stat(ImageChops.difference(shown, want)).mean)
        blank = max(ImageStat.Stat(ImageChops.difference(want, Image.new("RGB", want.size, "white"))).mean)
        assert diff < 0.3 * blank, (name, diff, blank)
        assert len(shown.getcolors(1 << 20) or []) > 200, name  # lines, markers and text: a plot
    for i, page in enumerate(pages):  # every page renders as a page, not a blank or an error
        shot = screen.crop((0, i * FRAME_HEIGHT, 1300, (i + 1) * FRAME_HEIGHT))
        assert len(shot.getcolors(1 << 20) or []) > 300, page


# -------------------------------------------------------------------------------------------------
# make publish: the smoke book pushed to a gh-pages branch of a local bare repository, then opened
# from a clone of that branch as a reader's browser would open the published site

PUBLISHED_JS = """<script>
window.addEventListener('load', function () { setTimeout(function () {
  var res = [];
  document.querySelectorAll('iframe').forEach(function (f) {
    try {
      var doc = f.contentDocument, art = doc.querySelector('article.bd-article');
      res.push({src: f.getAttribute('src'), math: doc.querySelectorAll('mjx-container').length,
                verdicts: Array.from(art.querySelectorAll('span.lin-verdict')).map(function (s) { return s.textContent; }),
                images: Array.from(art.querySelectorAll('img')).map(function (i) {
                  return {src: i.getAttribute('src'), natural: i.naturalWidth, complete: i.complete}; })});
    } catch (e) { res.push({src: f.getAttribute('src'), error: String(e)}); }
  });
  var pre = document.createElement('pre'); pre.id = 'lin-published'; pre.textContent = JSON.stringify(res);
  document.body.appendChild(pre);
}, 2000); });
</script>"""


def test_published_branch_holds_the_book_and_opens_in_chromium(smoke_book, smoke_results, tmp_path, monkeypatch):
    from lin_utils import publish

    tmp, _, html_dir, _ = smoke_book
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(key, "lin_utils tests")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, "tests@example.org")
    bare, repo, clone = tmp_path / "site.git", tmp_path / "repo", tmp_path / "clone"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "remote", "add", "origin", str(bare)], cwd=repo, check=True)
    publish.publish(html_dir, root=tmp, repo=repo, log=lambda _: None)
    subprocess.run(["git", "clone", "-q", "--branch", "gh-pages", str(bare), str(clone)], check=True)
    files = {p.relative_to(clone).as_posix() for p in clone.rglob("*")
             if p.is_file() and p.relative_to(clone).parts[0] != ".git"}
    assert files == {p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*") if p.is_file()} | {".nojekyll"}
    pages = [f"book/notebooks/{name}.html" for name in runner.run_order()] + ["book/methods.html"]
    assert "index.html" in files and set(pages) <= files and (clone / site.MATHJAX_ENTRY).is_file()
    figures = {name: hashlib.sha256(executed.glued_png(_executed(tmp, name))).hexdigest() for name in FIGURE_PAGES}
    names = {Path(f).name for f in files}
    assert all(f"{sha}.png" in names for sha in figures.values())
    # the result tables: every one a page links is there with its provenance, and nothing else from data/
    linked, dead = publish.linked_data_files(clone)
    assert not dead and linked == {f for f in files if f.startswith(site.DOWNLOADS_DIR + "/")}
    assert any(f.endswith(".csv") for f in linked) and not any(f.startswith("data/") for f in files)

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian package `chromium`)")
    shown = ["book/notebooks/intro.html", *(f"book/notebooks/{name}.html" for name in FIGURE_PAGES)]
    harness = _harness(clone, shown, [1300], PUBLISHED_JS)
    dom = _chromium(chromium, harness, 1300, 900, "--dump-dom")
    found = re.search(r'<pre id="lin-published"[^>]*>(.*?)</pre>', dom, re.S)
    assert found, "the script did not run"
    seen = {Path(m["src"]).stem: m for m in json.loads(html.unescape(found.group(1)))}
    assert [m.get("error") for m in seen.values()] == [None] * len(shown)
    # the landing page: its verdicts, its thumbnails loaded, its math typeset by the vendored MathJax
    _, judged = _judged_claims()
    intro = seen["intro"]
    paper = judged[(judged.verdict != claims.NOT_RUN) & (judged.kind == claims.PAPER)]
    assert intro["verdicts"] and intro["verdicts"] == list(paper.verdict)
    assert intro["images"] and all(i["complete"] and i["natural"] > 0 for i in intro["images"]), intro["images"]
    # every figure page shows its figure
    for name, sha in figures.items():
        (img,) = [i for i in seen[name]["images"] if Path(i["src"]).stem == sha]
        assert img["complete"] and img["natural"] > 0, name
    assert sum(m["math"] for m in seen.values()) > 0
