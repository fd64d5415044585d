"""``make publish``: the built book is checked, then pushed to a gh-pages branch with ghp-import.

Against a local bare repository and a small HTML folder laid out as a build is; the whole smoke
book is published (and opened in Chromium) in tests/integration/test_book_smoke.py.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from lin_utils import publish, site
from lin_utils.errors import LinUtilsError

ROOT = Path(__file__).resolve().parents[1]
TOC = {"format": "jb-book", "root": "book/notebooks/intro",
       "parts": [{"caption": "Method", "chapters": [{"file": "book/methods"}]},
                 {"caption": "Figures", "chapters": [{"glob": "book/notebooks/fig*"}]}]}
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A book source folder with a table of contents, a build of it, a git repository whose
    ``origin`` is a local bare repository."""
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    root, html, bare = tmp_path / "src", tmp_path / "src" / "_build" / "html", tmp_path / "remote.git"
    (root / "book").mkdir(parents=True)
    (root / "book" / "_toc.yml").write_text(yaml.safe_dump(TOC))
    pages = {"index.html": '<meta http-equiv="Refresh" content="0; url=book/notebooks/intro.html" />',
             "book/methods.html": "<p>method</p>",
             "book/notebooks/intro.html": '<a href="../../_data/smoke/scan/blocks-1.csv" download>t</a>'
                                          '<a href="../../_data/smoke/scan/blocks-1.json">p</a>',
             "book/notebooks/fig1_a.html": '<img src="../../_images/abc.png"><a href="../../_data/smoke/scan/blocks-1.csv">t</a>',
             "_images/abc.png": "png", "_static/x.css": "css",
             "_data/smoke/scan/blocks-1.csv": "a,b\n1,2\n", "_data/smoke/scan/blocks-1.json": "{}",
             str(site.MATHJAX_ENTRY): "// mathjax"}
    for rel, text in pages.items():
        (html / rel).parent.mkdir(parents=True, exist_ok=True)
        (html / rel).write_text(text)
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(tmp_path, "init", "-q", str(root))
    git(root, "remote", "add", "origin", str(bare))
    return root, html, bare


def branch_files(bare, branch="gh-pages") -> set[str]:
    return set(git(bare, "ls-tree", "-r", "--name-only", branch).split())


def test_publish_pushes_the_build_as_it_is_to_the_bare_remote(project):
    root, html, bare = project
    log = []
    commit = publish.publish(html, root=root, log=log.append)
    expected = {p.relative_to(html).as_posix() for p in html.rglob("*") if p.is_file()} | {".nojekyll"}
    assert branch_files(bare) == expected
    assert git(bare, "rev-parse", "gh-pages").strip() == commit and log == [
        f"published {html} as gh-pages {commit[:12]}, pushed to origin"]
    assert git(bare, "show", "gh-pages:_data/smoke/scan/blocks-1.csv") == "a,b\n1,2\n"
    # the checked-out branch and the working tree are left alone
    assert git(root, "status", "--porcelain", "--untracked-files=no") == ""
    # publishing again replaces the files: a page removed from the build leaves the branch
    (html / "_static" / "x.css").unlink()
    publish.publish(html, root=root, log=log.append)
    assert "_static/x.css" not in branch_files(bare)


def test_publish_can_commit_without_pushing_and_to_another_branch(project):
    root, html, bare = project
    commit = publish.publish(html, root=root, branch="site", push=False, log=lambda _: None)
    assert git(root, "rev-parse", "site").strip() == commit
    assert git(bare, "branch", "--list") == ""


@pytest.mark.parametrize("damage, message", [
    (lambda h: (h / "index.html").unlink(), "has no index.html"),
    (lambda h: (h / "book" / "methods.html").unlink(), "page book/methods.html of book/_toc.yml was not built"),
    (lambda h: [p.unlink() for p in (h / "book" / "notebooks").glob("fig*.html")], "book/notebooks/fig*.html (glob)"),
    (lambda h: (h / site.MATHJAX_ENTRY).unlink(), "no vendored MathJax"),
    (lambda h: (h / "_data" / "smoke" / "scan" / "blocks-1.json").unlink(), "links _data/smoke/scan/blocks-1.json, which is not"),
    (lambda h: (h / "_data" / "smoke" / "other.csv").write_text("x"), "_data/smoke/other.csv is in the build but no page links it"),
    (lambda h: (h / "data").mkdir(), "holds a data/ folder"),
])
def test_a_broken_or_leaky_build_is_not_published(project, damage, message):
    root, html, bare = project
    damage(html)
    with pytest.raises(LinUtilsError, match="not publishing") as err:
        publish.publish(html, root=root, log=lambda _: None)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert git(bare, "branch", "--list") == ""  # nothing pushed


def test_a_failed_push_or_no_repository_is_one_line(project, tmp_path, capsys):
    root, html, _ = project
    with pytest.raises(LinUtilsError, match="ghp-import failed"):
        publish.publish(html, root=root, remote=str(tmp_path / "absent.git"), log=lambda _: None)
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    with pytest.raises(LinUtilsError, match="git rev-parse --git-dir failed"):
        publish.publish(html, root=root, repo=elsewhere, log=lambda _: None)
    assert publish.main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lin-utils publish: error: not publishing") and len(err.splitlines()) == 1


def test_make_publish_builds_the_book_then_publishes_it():
    out = subprocess.run(["make", "-n", "publish", "REMOTE=/tmp/x.git", "BRANCH=pages"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    lines = [ln for ln in out.splitlines() if "lin-utils book" in ln or "lin_utils.publish" in ln]
    assert "book run --profile cpu" in lines[0] and "book build" in lines[1]
    assert lines[2].endswith("-m lin_utils.publish --remote /tmp/x.git --branch pages _build/html")


def test_jupyter_book_alone_builds_a_working_book_with_the_repository_buttons(tmp_path):
    """`jupyter-book build` without lin_utils: MathJax from Jupyter Book's default source, and the
    repository, issues and edit buttons from the one `repository:` block of _config.yml."""
    import nbformat

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo_url = config["repository"]["url"].rstrip("/")
    root = tmp_path / "book-src"
    (root / "book" / "notebooks").mkdir(parents=True)
    (root / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    (root / "book" / "_toc.yml").write_text(yaml.safe_dump(
        {"format": "jb-book", "root": "book/methods", "chapters": [{"file": "book/notebooks/fig1_a"}]}))
    (root / "book" / "methods.md").write_text("# Method\n\nThe score is $1 - d/(n-1)$.\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Figure 1\n\n$$R^2$$")]
    nbformat.write(nb, root / "book" / "notebooks" / "fig1_a.ipynb")
    res = subprocess.run([str(Path(os.sys.executable).parent / "jupyter-book"), "build", str(root), "--toc",
                          str(root / "book" / "_toc.yml"), "-W", "-n", "--keep-going"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    html = root / "_build" / "html"
    page = (html / "book" / "notebooks" / "fig1_a.html").read_text()
    assert re.search(r'<script[^>]+src="https://cdn\.jsdelivr\.net/npm/mathjax@3[^"]*"', page)
    assert f'href="{repo_url}"' in page and f'href="{repo_url}/issues/new?title=Issue%20on%20page%20' in page
    # "edit this page" opens the notebook's source (book/notebooks/ holds executed copies, not in git)
    assert f'href="{repo_url}/edit/main/notebooks/fig1_a.ipynb"' in page
    assert f'href="{repo_url}/edit/main/book/methods.md"' in (html / "book" / "methods.html").read_text()
    for launch in ("binder", "colab", "jupyterhub", "thebe"):
        assert f"launch-{launch}" not in page and f"{launch}-launch" not in page.lower()


def test_licence_and_citation():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["license"] == "MIT"
    assert cff["title"] and cff["authors"] and cff["message"]
    (paper,) = cff["references"]
    assert paper["title"] == "Your Transformer is Secretly Linear" and paper["year"] == 2024
    assert paper["authors"][0]["family-names"] == "Razzhigaev" and len(paper["authors"]) == 7
    assert {"type": "doi", "value": "10.48550/arXiv.2405.12250", "description": "arXiv"} in paper["identifiers"]
    readme = (ROOT / "README.md").read_text()
    assert "## How to cite" in readme and "arXiv:2405.12250" in readme
