"""The book site: table of contents, vendored MathJax, the profile-mix guard and the real
Jupyter Book build (no mocks of papermill or jupyter-book)."""

import io
import json
import os
import re
import shutil
import tarfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from lin_utils import results, runner, site
from lin_utils.errors import LinUtilsError

REPO = Path(__file__).resolve().parents[1]
STEP = REPO / "tests" / "fixtures" / "notebooks" / "step.ipynb"
TOC = {
    "format": "jb-book",
    "root": "book/intro",
    "parts": [
        {"caption": "Figures", "chapters": [{"glob": "book/notebooks/fig*"}]},
        {"caption": "Claims", "chapters": [{"file": "book/notebooks/claims"}]},
    ],
}
INTRO = "# Intro\n\nThe score is $1 - \\min_A \\lVert XA - Y \\rVert_F^2$.\n"


def _book_root(tmp_path: Path, names=("fig1_a", "fig3_b", "claims")) -> Path:
    """A book project in tmp: the repository's _config.yml, a TOC with a glob, source notebooks."""
    root = tmp_path / "project"
    (root / "book" / "notebooks").mkdir(parents=True)
    (root / "notebooks").mkdir()
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    (root / "book" / "_toc.yml").write_text(yaml.safe_dump(TOC, sort_keys=False))
    (root / "book" / "intro.md").write_text(INTRO)
    for name in names:
        shutil.copy(STEP, root / "notebooks" / f"{name}.ipynb")
    return root


def _page(root: Path, name: str, profile: str | None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}")]
    if profile is not None:
        nb.metadata["lin_utils"] = {"profile": profile}
    path = root / "book" / "notebooks" / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def test_toc_entries_and_notebooks_in_reading_order():
    toc = {"root": "book/intro", "parts": [
        {"chapters": [{"file": "book/methods", "sections": [{"file": "book/notebooks/b"}]},
                      {"glob": "book/notebooks/fig*"}]},
        {"chapters": [{"url": "https://example.org", "title": "x"}, {"file": "book/notebooks/a.ipynb"}]},
    ]}
    assert site.toc_entries(toc) == [
        ("root", "book/intro"), ("file", "book/methods"), ("file", "book/notebooks/b"),
        ("glob", "book/notebooks/fig*"), ("file", "book/notebooks/a.ipynb")]
    names = ["a", "b", "fig10_x", "fig2_y", "fig1_z", "figure_note"]
    assert site.toc_notebooks(toc, names) == ["b", "fig10_x", "fig1_z", "fig2_y", "figure_note", "a"]


def test_missing_pages_expands_globs_against_the_sources(tmp_path):
    root = _book_root(tmp_path)
    assert site.missing_pages(root, root / "notebooks") == [
        "book/notebooks/fig1_a", "book/notebooks/fig3_b", "book/notebooks/claims"]
    for name in ("fig1_a", "fig3_b", "claims"):
        _page(root, name, "smoke")
    assert site.missing_pages(root, root / "notebooks") == []
    shutil.copy(STEP, root / "notebooks" / "fig2_new.ipynb")  # a new figure that has not run yet
    assert site.missing_pages(root, root / "notebooks") == ["book/notebooks/fig2_new"]
    (root / "book" / "intro.md").unlink()
    assert site.missing_pages(root, root / "notebooks")[0] == "book/intro"


def test_build_refuses_pages_of_different_profiles(tmp_path):
    root = _book_root(tmp_path)
    _page(root, "fig1_a", "cpu")
    _page(root, "fig3_b", "smoke")
    _page(root, "claims", "cpu")
    _page(root, "fig9_not_in_sources", None)  # says nothing: not counted
    assert site.page_profiles(root) == {"cpu": ["fig1_a", "claims"], "smoke": ["fig3_b"]}
    with pytest.raises(LinUtilsError) as err:
        site.build_book(root=root, notebooks_dir=root / "notebooks", mathjax=tmp_path / "none",
                        log=lambda _: None)
    msg = str(err.value)
    assert "\n" not in msg
    assert "different profiles (cpu: fig1_a, claims; smoke: fig3_b)" in msg
    assert not (root / "_build").exists()  # refused before anything was built

    _page(root, "fig3_b", "cpu")
    assert site.check_one_profile(root) == "cpu"


def test_page_profile_falls_back_to_papermill_parameters(tmp_path):
    root = _book_root(tmp_path)
    path = _page(root, "fig1_a", None)
    assert site.page_profile(path) is None
    nb = nbformat.read(path, as_version=4)
    nb.metadata["papermill"] = {"parameters": {"profile": "gpu", "force": False}}
    nbformat.write(nb, path)
    assert site.page_profile(path) == "gpu"
    assert site.page_profile(tmp_path / "nope.ipynb") is None


def _fake_npm(tmp_path: Path, version: str) -> tuple[Path, Path]:
    """A stand-in ``npm`` on PATH whose ``pack`` writes a MathJax-shaped tarball; logs calls."""
    files = {
        "package/package.json": "{}",
        "package/LICENSE": "Apache-2.0",
        "package/es5/tex-chtml.js": "/* entry */",
        "package/es5/tex-svg.js": "/* not needed */",
        "package/es5/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff": "font",
        "package/es5/input/tex/extensions/ams.js": "ams",
        "package/es5/sre/mathmaps/en.json": "{}",
    }
    tgz = tmp_path / f"mathjax-{version}.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    bin_dir, calls = tmp_path / "bin", tmp_path / "npm-calls.log"
    bin_dir.mkdir(exist_ok=True)
    npm = bin_dir / "npm"
    npm.write_text(f'#!/bin/sh\necho "$@" >> {calls}\ncp {tgz} "$PWD/"\n')
    npm.chmod(0o755)
    return bin_dir, calls


def test_ensure_mathjax_vendors_with_npm_pack_outside_the_source_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("LIN_CACHE", str(tmp_path / "cache"))
    assert site.mathjax_dir() == tmp_path / "cache" / "mathjax"
    bin_dir, calls = _fake_npm(tmp_path, "3.2.2")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    dest = site.ensure_mathjax()
    assert dest == tmp_path / "cache" / "mathjax"
    mj = dest / "mathjax"
    assert (mj / "es5" / "tex-chtml.js").read_text() == "/* entry */"
    assert (mj / "es5" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    assert (mj / "LICENSE").exists() and (mj / "VERSION").read_text().strip() == "3.2.2"
    assert not (mj / "es5" / "tex-svg.js").exists() and not (mj / "package.json").exists()
    assert calls.read_text().split() == ["pack", "mathjax@3.2.2", "--silent"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["mathjax"]  # no temp folder left

    assert site.ensure_mathjax() == dest  # already there: npm is not called again
    assert len(calls.read_text().splitlines()) == 1
    _fake_npm(tmp_path, "3.2.3")
    site.ensure_mathjax(version="3.2.3")  # another version replaces it
    assert (mj / "VERSION").read_text().strip() == "3.2.3"


def test_ensure_mathjax_explains_a_missing_or_failing_npm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(LinUtilsError) as err:
        site.ensure_mathjax(tmp_path / "mj")
    assert "\n" not in str(err.value) and str(err.value).startswith("npm not found")
    assert not (tmp_path / "mj").exists()

    (bin_dir / "npm").write_text("#!/bin/sh\necho 'npm ERR! code E404' >&2\necho 'more' >&2\nexit 1\n")
    (bin_dir / "npm").chmod(0o755)
    with pytest.raises(LinUtilsError, match=r"^npm pack mathjax@3\.2\.2 failed \(exit 1\): npm ERR! code E404$"):
        site.ensure_mathjax(tmp_path / "mj")
    assert not (tmp_path / "mj").exists() and sorted(os.listdir(tmp_path)) == ["bin"]


def test_check_offline_math(tmp_path):
    (tmp_path / "a.html").write_text('<script src="_static/x.js"></script>')
    site.check_offline_math(tmp_path)
    (tmp_path / "b.html").write_text('<script defer src="https://cdn.jsdelivr.net/mathjax.js"></script>')
    with pytest.raises(LinUtilsError, match="b.html: https://cdn.jsdelivr.net/mathjax.js"):
        site.check_offline_math(tmp_path)


def test_the_result_files_pages_offer_are_staged_for_download(tmp_path):
    root = _book_root(tmp_path)
    cache = tmp_path / "results"
    csv = results.save_table(pd.DataFrame({"block": [0, 1], "score": [0.5, 0.25]}), "scan", "t", {"a": 1},
                             "smoke", root=cache)
    csv.rename(csv.with_name("t-1.csv")), csv.with_suffix(".json").rename(csv.with_name("t-1.json"))
    sidecar = (cache / "smoke" / "scan" / "t-1.json").read_text()
    for name in ("fig1_a", "fig3_b", "claims"):
        _page(root, name, "smoke")
    page = root / "book" / "notebooks" / "fig1_a.ipynb"
    nb = nbformat.read(page, as_version=4)
    offered = ["smoke/scan/t-1.csv", "smoke/scan/t-1.json"]
    cell = nbformat.v4.new_code_cell("report.reproduce(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": "links"},
                                           metadata={"lin_utils": {"downloads": offered}})]
    nb.cells.append(cell)
    nbformat.write(nb, page)
    assert site.page_downloads(page) == offered
    assert site.stage_downloads(root, tmp_path / "out", results=cache) == offered
    assert (tmp_path / "out" / site.DOWNLOADS_DIR / "smoke" / "scan" / "t-1.json").read_text() == sidecar
    # a link to a table the cache does not hold would be dead: the build refuses
    (cache / "smoke" / "scan" / "t-1.csv").unlink()
    with pytest.raises(LinUtilsError, match=r"page fig1_a offers smoke/scan/t-1.csv for download"):
        site.stage_downloads(root, tmp_path / "out2", results=cache)
    nb.cells[-1].outputs[0].metadata["lin_utils"]["downloads"] = ["../secret.csv"]
    nbformat.write(nb, page)
    with pytest.raises(LinUtilsError, match="not a path inside the result cache"):
        site.stage_downloads(root, tmp_path / "out3", results=cache)


@pytest.mark.slow
def test_strict_build_with_globs_renders_offline_math_and_keeps_last_good_build(tmp_path):
    """Run fixture notebooks with papermill, then build them with the real jupyter-book, -W -n."""
    root = _book_root(tmp_path)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    # pages with figures, as the book's are
    (profiles / "smoke.yaml").write_text(yaml.safe_dump({n: {"draw": True} for n in ("fig1_a", "fig3_b", "claims")}))
    runner.run_profile("smoke", log=lambda _: None, profiles_dir=profiles,
                       notebooks_dir=root / "notebooks", book_dir=root / "book")
    source_files = sorted(p.relative_to(root) for p in root.rglob("*"))

    html = site.build_book(root=root, notebooks_dir=root / "notebooks", log=lambda _: None)
    assert html == root / "_build" / "html"
    for page in ("book/intro", "book/notebooks/fig1_a", "book/notebooks/fig3_b", "book/notebooks/claims"):
        assert (html / f"{page}.html").exists(), page
    nav = (html / "book" / "intro.html").read_text()
    positions = [nav.find(f"notebooks/{n}.html") for n in ("fig1_a", "fig3_b", "claims")]
    assert -1 not in positions and positions == sorted(positions)  # the TOC's (= the run's) order

    nested = html / "book" / "notebooks" / "fig1_a.html"
    srcs = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', nested.read_text())
    assert len(srcs) == 1
    target = (nested.parent / srcs[0].split("?")[0]).resolve()
    assert target == (html / "mathjax" / "es5" / "tex-chtml.js").resolve() and target.is_file()
    assert (html / "mathjax" / "es5" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    for page in html.rglob("*.html"):
        text = page.read_text()
        assert "cdn.jsdelivr" not in text and not re.search(r"src=\"https?://", text), page
    # the build wrote nothing into the source tree besides _build
    after = sorted(p.relative_to(root) for p in root.rglob("*") if p.parts[len(root.parts)] != "_build")
    assert after == source_files
    assert not (REPO / "book" / "_mathjax").exists()

    # a page with a warning fails the strict build, and the last good book stays in place
    (root / "book" / "intro.md").write_text("# Intro\n\nSee {ref}`no-such-label`.\n")
    with pytest.raises(LinUtilsError, match="jupyter-book build failed") as err:
        site.build_book(root=root, notebooks_dir=root / "notebooks", log=lambda _: None)
    assert "no-such-label" in str(err.value)
    assert "The score is" in (html / "book" / "intro.html").read_text()
    assert not list((root / "_build").glob(".book-staging-*"))


@pytest.mark.parametrize("tamper, message", [
    (lambda csv, js: csv.write_text(csv.read_text().replace("0.5", "0.9")),
     "download smoke/scan/t-1.csv does not match the sha256 in its sidecar smoke/scan/t-1.json"),
    (lambda csv, js: js.unlink(), "download smoke/scan/t-1.csv has no provenance sidecar smoke/scan/t-1.json"),
    (lambda csv, js: js.write_text("{not json"), "download smoke/scan/t-1.json is not readable JSON"),
    (lambda csv, js: js.write_text(json.dumps({**json.loads(js.read_text()), "rows": 3})),
     "download smoke/scan/t-1.csv has 2 rows, its sidecar smoke/scan/t-1.json says 3"),
    (lambda csv, js: js.write_text(json.dumps({**json.loads(js.read_text()), "sha256": None})),
     "download smoke/scan/t-1.json records no sha256 or row count"),
])
def test_a_table_edited_after_its_run_fails_the_build_in_one_line(tmp_path, tamper, message):
    root = _book_root(tmp_path)
    cache = tmp_path / "results"
    csv = results.save_table(pd.DataFrame({"block": [0, 1], "score": [0.5, 0.25]}), "scan", "t", {"a": 1},
                             "smoke", root=cache)
    js = csv.with_suffix(".json").rename(csv.with_name("t-1.json"))
    csv = csv.rename(csv.with_name("t-1.csv"))
    for name in ("fig1_a", "fig3_b", "claims"):
        _page(root, name, "smoke")
    page = root / "book" / "notebooks" / "fig1_a.ipynb"
    nb = nbformat.read(page, as_version=4)
    cell = nbformat.v4.new_code_cell("report.reproduce(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": "links"}, metadata={
        "lin_utils": {"downloads": ["smoke/scan/t-1.csv", "smoke/scan/t-1.json"]}})]
    nb.cells.append(cell)
    nbformat.write(nb, page)
    site.stage_downloads(root, tmp_path / "ok", results=cache)  # untouched: staged
    tamper(csv, js)
    with pytest.raises(LinUtilsError) as err:
        site.stage_downloads(root, tmp_path / "out", results=cache)
    msg = str(err.value)
    assert "\n" not in msg and message in msg and str(tmp_path) not in msg
