"""Publish the built book to a ``gh-pages`` branch, for hosting without GitHub Actions.

``make publish`` builds the book (``make book``), then runs::

    python -m lin_utils.publish [--remote origin] [--branch gh-pages] [_build/html]

which checks the HTML folder (:func:`check_site`) and commits it, as it is, to ``branch`` of the
repository it runs in with ``ghp-import`` (a ``.nojekyll`` file added, so that GitHub Pages serves
the ``_static``, ``_images`` and ``_data`` folders), then force-pushes that branch to ``remote``
(a remote name or a URL or path). The working tree and the checked-out branch are not touched.
On GitHub, ``.github/workflows/book.yml`` does the same build and deploys it with the official
Pages actions instead.

:func:`check_site` refuses a folder that would publish a broken or leaky book: no ``index.html``;
a page of ``book/_toc.yml`` without its HTML; no vendored MathJax; a link into ``_data/`` whose file
is missing, or a file in ``_data/`` (or a ``data/`` folder) that no page links (only the result
tables the pages offer are published).
"""
from __future__ import annotations

import argparse
import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urldefrag

from . import paths, site
from .errors import LinUtilsError, one_line

__all__ = ["check_site", "linked_data_files", "publish", "main"]

_HREF = re.compile(r"""\b(?:href|src)=["']([^"'#?]+)""", re.IGNORECASE)


def _toc_html(toc: dict, html_dir: Path) -> tuple[list[str], list[str]]:
    """``(expected, missing)``: the HTML files the table of contents' entries render to."""
    expected, missing = [], []
    for kind, entry in site.toc_entries(toc):
        entry = entry.strip()
        for suffix in (".ipynb", ".md"):
            entry = entry.removesuffix(suffix)
        if kind == "glob":
            found = sorted(p.relative_to(html_dir).as_posix() for p in html_dir.glob(entry + ".html"))
            found = [f for f in found if fnmatch.fnmatchcase(f, entry + ".html")]
            expected += found
            if not found:
                missing.append(f"{entry}.html (glob)")
        else:
            expected.append(entry + ".html")
            if not (html_dir / (entry + ".html")).is_file():
                missing.append(entry + ".html")
    return expected, missing


def linked_data_files(html_dir: Path | str) -> tuple[set[str], set[str]]:
    """``(linked, dead)``: the files under ``_data/`` that some page links (relative to the HTML
    root), and the ``_data/`` links that point at no file."""
    html_dir = Path(html_dir).resolve()
    data_root = html_dir / site.DOWNLOADS_DIR
    linked, dead = set(), set()
    for page in html_dir.rglob("*.html"):
        for ref in _HREF.findall(page.read_text(encoding="utf-8", errors="replace")):
            ref = unquote(urldefrag(ref)[0])
            if "://" in ref or ref.startswith(("mailto:", "data:", "/")) or site.DOWNLOADS_DIR not in ref:
                continue
            target = (page.parent / ref).resolve()
            if not target.is_relative_to(data_root):
                continue
            rel = target.relative_to(html_dir).as_posix()
            (linked if target.is_file() else dead).add(rel)
    return linked, dead


def check_site(html_dir: Path | str, *, root: Path | str | None = None) -> list[str]:
    """What would make ``html_dir`` a broken or leaky published book; an empty list when none.

    ``root`` is the book's source folder (default: the repository), whose ``book/_toc.yml`` names
    the pages that must be there.
    """
    html_dir = Path(html_dir)
    root = Path(root) if root is not None else paths.REPO_ROOT
    if not (html_dir / "index.html").is_file():
        return [f"{html_dir} has no index.html (build the book first: make book)"]
    problems = []
    _, missing = _toc_html(site.read_toc(root / "book" / "_toc.yml"), html_dir)
    problems += [f"page {m} of book/_toc.yml was not built" for m in missing]
    if not (html_dir / site.MATHJAX_ENTRY).is_file():
        problems.append(f"no vendored MathJax ({site.MATHJAX_ENTRY}): build with lin-utils book build")
    linked, dead = linked_data_files(html_dir)
    problems += [f"a page links {d}, which is not in the build" for d in sorted(dead)]
    data_root = html_dir / site.DOWNLOADS_DIR
    present = {p.relative_to(html_dir).as_posix() for p in data_root.rglob("*") if p.is_file()} if data_root.is_dir() else set()
    problems += [f"{f} is in the build but no page links it" for f in sorted(present - linked)]
    if (html_dir / "data").exists():
        problems.append("the build holds a data/ folder: only the result tables the pages link belong in it (_data/)")
    return problems


def _git(repo: Path, *args: str) -> str:
    res = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if res.returncode != 0:
        raise LinUtilsError(f"git {' '.join(args)} failed in {repo}: {one_line(res.stderr or res.stdout)}")
    return res.stdout.strip()


def publish(html_dir: Path | str | None = None, *, remote: str = "origin", branch: str = "gh-pages",
            repo: Path | str | None = None, root: Path | str | None = None, push: bool = True,
            message: str | None = None, log=print) -> str:
    """Check ``html_dir`` (default ``<root>/_build/html``) with :func:`check_site`, commit it to
    ``branch`` of the git repository ``repo`` (default ``root``, default the repository) with
    ghp-import, and force-push the branch to ``remote`` unless ``push`` is False.

    Returns the commit id of the published branch. Raises :class:`LinUtilsError` with one line
    when the folder fails the checks, ``repo`` is no git repository or the push fails.
    """
    root = Path(root) if root is not None else paths.REPO_ROOT
    repo = Path(repo) if repo is not None else root
    html_dir = Path(html_dir) if html_dir is not None else root / "_build" / "html"
    problems = check_site(html_dir, root=root)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise LinUtilsError(f"not publishing {html_dir}: {problems[0]}{more}")
    if shutil.which("git") is None:
        raise LinUtilsError("not publishing: git is not installed")
    _git(repo, "rev-parse", "--git-dir")
    if message is None:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True)
        try:
            profile = site.check_one_profile(root)
        except LinUtilsError:  # executed pages elsewhere (or gone): the message just names no profile
            profile = None
        message = (f"Publish the book" + (f" (profile {profile})" if profile else "")
                   + (f" built from {head.stdout.strip()}" if head.returncode == 0 else ""))
    cmd = [sys.executable, "-m", "ghp_import", "--no-jekyll", "--force", "--remote", remote, "--branch", branch,
           "--message", message, str(Path(html_dir).resolve())]
    if push:
        cmd.append("--push")
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    if res.returncode != 0:
        raise LinUtilsError(f"ghp-import failed (exit {res.returncode}): {one_line(res.stderr or res.stdout or 'no output')}")
    commit = _git(repo, "rev-parse", f"refs/heads/{branch}")
    log(f"published {html_dir} as {branch} {commit[:12]}" + (f", pushed to {remote}" if push else " (not pushed)"))
    return commit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lin_utils.publish",
                                     description="Check the built book and push it to a gh-pages branch (ghp-import).")
    parser.add_argument("html_dir", nargs="?", default=None, help="the built book (default _build/html)")
    parser.add_argument("--remote", default="origin", help="remote name, URL or path to push to (default origin)")
    parser.add_argument("--branch", default="gh-pages", help="branch to write (default gh-pages)")
    parser.add_argument("--no-push", action="store_true", help="commit to the local branch only")
    args = parser.parse_args(argv)
    try:
        publish(args.html_dir, remote=args.remote, branch=args.branch, push=not args.no_push)
    except LinUtilsError as e:
        print(f"lin-utils publish: error: {one_line(e, None)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
