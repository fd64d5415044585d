"""The book as a site: its table of contents, offline MathJax, and the Jupyter Book build.

The table of contents ``book/_toc.yml`` (Jupyter Book 1.x) is the one list of the book's pages
*and* of the notebooks that :mod:`lin_utils.runner` executes, in order. Entries under
``book/notebooks/`` are executed notebooks: ``file: book/notebooks/<name>`` names one, and
``glob: book/notebooks/fig*`` names every source notebook ``notebooks/fig*.ipynb`` (sorted, as
Sphinx sorts a glob). A new ``notebooks/fig2_xxx.ipynb`` therefore joins the run and the book
with no edit here or in the TOC.

:func:`build_book` renders the executed pages (no execution at build time) with warnings as
errors, into a staging folder that replaces ``_build/html`` only on success. It refuses to build
when a page is missing or when the executed pages come from different profiles, and it checks that
no built page loads a script from the network. MathJax is vendored once per machine into
``<cache_dir>/mathjax`` (:func:`ensure_mathjax`, ``npm pack``) and copied into every build.

A page offers the result tables it used for download by listing them, relative to the result
cache, in an output's metadata (``{"lin_utils": {"downloads": [...]}}``, written by
:func:`lin_utils.book.glue.reproduce`); the build copies exactly those files (CSV and provenance
JSON) to ``<html>/_data/`` (:data:`DOWNLOADS_DIR`), where the page's links point, after checking
each table against its sidecar (:func:`verify_download`): a table edited after its run fails the
build rather than ship beside a page that shows the original numbers.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from lin_utils import paths
from lin_utils.errors import LinUtilsError, one_line

PAGES_DIR = "book/notebooks"  # where the TOC points for executed notebooks, from the book root
PAGE_METADATA = "lin_utils"  # notebook metadata key the runner writes ({"profile": ...})
DOWNLOADS_DIR = "_data"  # under the HTML root: the result files that pages offer for download
MATHJAX_VERSION = "3.2.2"
MATHJAX_ENTRY = Path("mathjax") / "es5" / "tex-chtml.js"  # inside the vendored folder
# Sphinx prefixes a relative mathjax_path with "_static/": this resolves to <html>/mathjax/es5/tex-chtml.js
# from every page depth. Set by build_book only, so that `jupyter-book build` alone keeps its default.
MATHJAX_PATH = "../" + MATHJAX_ENTRY.as_posix()
_MATHJAX_PARTS = ("input", "output", "ui", "a11y", "sre", "adaptors")  # loaded lazily by the entry
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=[\"']([^\"']+)[\"']", re.IGNORECASE)


# -------------------------------------------------------------------------------------------------
# table of contents


def read_toc(toc: Path | str | None = None) -> dict:
    """Parse ``book/_toc.yml`` (default: the repository's)."""
    toc = Path(toc) if toc is not None else paths.book_dir() / "_toc.yml"
    try:
        data = yaml.safe_load(toc.read_text(encoding="utf-8"))
    except OSError:
        raise LinUtilsError(f"no table of contents at {toc}") from None
    except yaml.YAMLError as e:
        raise LinUtilsError(f"{toc} is not valid YAML: {one_line(e)}") from None
    if not isinstance(data, dict):
        raise LinUtilsError(f"{toc} must be a mapping (Jupyter Book 1.x table of contents)")
    return data


def toc_entries(toc: dict) -> list[tuple[str, str]]:
    """Every ``(kind, path)`` of a table of contents in reading order; kind is root/file/glob."""
    found: list[tuple[str, str]] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key in ("root", "file", "glob"):
                if isinstance(node.get(key), str):
                    found.append((key, node[key]))
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


def _strip_suffix(path: str) -> str:
    for suffix in (".ipynb", ".md"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def toc_notebooks(toc: dict, available: list[str], *, where: str = "") -> list[str]:
    """The notebooks a table of contents names, in its order; globs expanded against ``available``.

    ``available`` are notebook names (file stems). A ``file:`` entry must be among them; a
    ``glob:`` entry must match at least one, and its matches come sorted. Each name appears once.
    """
    prefix = PAGES_DIR + "/"
    available = sorted(set(available))
    order: list[str] = []
    for kind, path in toc_entries(toc):
        path = _strip_suffix(path.strip())
        if not path.startswith(prefix):
            continue
        pattern = path[len(prefix):]
        if kind == "glob":
            names = [n for n in available if fnmatch.fnmatchcase(n, pattern)]
            if not names:
                raise LinUtilsError(f"table of contents{where}: glob {path} matches no notebook")
        else:
            if pattern not in available:
                raise LinUtilsError(
                    f"table of contents{where} lists {path}, but there is no notebook {pattern!r}"
                )
            names = [pattern]
        order += [n for n in names if n not in order]
    return order


def root_notebook(toc: dict) -> str | None:
    """The executed notebook that is the book's root page (the landing page), or None."""
    root = toc.get("root")
    if not isinstance(root, str):
        return None
    path = _strip_suffix(root.strip())
    return path[len(PAGES_DIR) + 1:] if path.startswith(PAGES_DIR + "/") else None


def _stems(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.ipynb")) if folder.is_dir() else []


def missing_pages(
    root: Path | str | None = None, notebooks_dir: Path | str | None = None
) -> list[str]:
    """Pages of ``book/_toc.yml`` without a file: plain pages, and executed notebooks that the
    source notebooks (``notebooks_dir``, default ``notebooks/``) say the book should have."""
    root = Path(root) if root is not None else paths.REPO_ROOT
    sources = Path(notebooks_dir) if notebooks_dir is not None else paths.notebooks_dir()
    toc = read_toc(root / "book" / "_toc.yml")
    missing = [
        path for kind, path in toc_entries(toc)
        if kind != "glob" and not path.startswith(PAGES_DIR + "/")
        and not any((root / f"{path}{suffix}").exists() for suffix in ("", ".md", ".ipynb"))
    ]
    pages = root / PAGES_DIR
    for name in toc_notebooks(toc, _stems(sources), where=f" {root / 'book' / '_toc.yml'}"):
        if not (pages / f"{name}.ipynb").exists():
            missing.append(f"{PAGES_DIR}/{name}")
    return missing


def page_profile(page: Path | str) -> str | None:
    """The profile an executed notebook was run with (None if it does not say)."""
    try:
        meta = json.loads(Path(page).read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return None
    ours = meta.get(PAGE_METADATA) or {}
    profile = ours.get("profile") or (meta.get("papermill") or {}).get("parameters", {}).get("profile")
    return profile if isinstance(profile, str) else None


def page_profiles(root: Path | str | None = None) -> dict[str, list[str]]:
    """``{profile: [page names]}`` over the executed pages the book renders."""
    root = Path(root) if root is not None else paths.REPO_ROOT
    pages = root / PAGES_DIR
    toc = read_toc(root / "book" / "_toc.yml")
    found: dict[str, list[str]] = {}
    for name in toc_notebooks(toc, _stems(pages), where=f" {root / 'book' / '_toc.yml'}"):
        profile = page_profile(pages / f"{name}.ipynb")
        if profile is not None:
            found.setdefault(profile, []).append(name)
    return found


def check_one_profile(root: Path | str | None = None) -> str | None:
    """Raise LinUtilsError (one line) when the executed pages come from different profiles."""
    found = page_profiles(root)
    if len(found) > 1:
        mix = "; ".join(f"{p}: {', '.join(names)}" for p, names in sorted(found.items()))
        raise LinUtilsError(
            f"cannot build the book: its pages come from different profiles ({mix}); "
            "run all notebooks with one profile (lin-utils book run --profile NAME)"
        )
    return next(iter(found), None)


def page_downloads(page: Path | str) -> list[str]:
    """The result files an executed page offers for download, relative to the result cache."""
    try:
        nb = json.loads(Path(page).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found: list[str] = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            ours = (output.get("metadata") or {}).get(PAGE_METADATA) or {}
            found += [f for f in ours.get("downloads", []) if isinstance(f, str) and f not in found]
    return found


def stage_downloads(root: Path | str, dest: Path | str, results: Path | str | None = None) -> list[str]:
    """Copy the files the book's pages offer for download into ``dest/_data/`` (same layout as the
    result cache ``results``, default :func:`lin_utils.paths.results_root`); return their paths.

    A page that links a file the cache does not hold fails the build (its link would be dead).
    """
    root, dest = Path(root), Path(dest)
    results = Path(results) if results is not None else paths.results_root()
    pages = root / PAGES_DIR
    copied: list[str] = []
    for name in toc_notebooks(read_toc(root / "book" / "_toc.yml"), _stems(pages)):
        for rel in page_downloads(pages / f"{name}.ipynb"):
            parts = Path(rel).parts
            if Path(rel).is_absolute() or ".." in parts or not parts:
                raise LinUtilsError(f"page {name} offers {rel!r} for download: not a path inside the result cache")
            source = results / rel
            if not source.is_file():
                raise LinUtilsError(
                    f"cannot build the book: page {name} offers {rel} for download, but {source} does not "
                    "exist (re-run the page: lin-utils book run --profile NAME --only " + name + ")"
                )
            verify_download(source, rel)
            target = dest / DOWNLOADS_DIR / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            copied.append(rel)
    return copied


def verify_download(source: Path | str, rel: str | None = None) -> None:
    """Check a result file offered for download against its provenance sidecar.

    A table ``X.csv`` must have a sidecar ``X.json`` (a JSON object) whose ``sha256`` and ``rows``
    match the CSV; a sidecar ``X.json`` must parse, and its table, when present, must match it.
    Raises LinUtilsError with one line naming the file (``rel``, relative to the result cache).
    """
    source = Path(source)
    rel = rel or source.name
    csv_path, json_path = source.with_suffix(".csv"), source.with_suffix(".json")
    shown = str(Path(rel).with_suffix(source.suffix))
    side = str(Path(rel).with_suffix(".json"))

    def fail(what: str, why: str):
        raise LinUtilsError(f"cannot build the book: download {what} {why} (re-run its page)")

    if source.suffix not in (".csv", ".json"):
        fail(shown, "is neither a result table (.csv) nor its sidecar (.json)")
    if not json_path.is_file():
        fail(shown, f"has no provenance sidecar {side}")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        fail(side, f"is not readable JSON ({type(e).__name__})")
    if not isinstance(meta, dict):
        fail(side, "is not a JSON object")
    if not csv_path.is_file():
        if source.suffix == ".csv":
            fail(shown, "does not exist")
        return
    csv_rel = str(Path(rel).with_suffix(".csv"))
    data = csv_path.read_bytes()
    want_hash, want_rows = meta.get("sha256"), meta.get("rows")
    if not isinstance(want_hash, str) or not isinstance(want_rows, int):
        fail(side, "records no sha256 or row count")
    if hashlib.sha256(data).hexdigest() != want_hash:
        fail(csv_rel, f"does not match the sha256 in its sidecar {side} (edited after its run?)")
    import pandas as pd  # heavy: this module stays light (imported by the CLI via the runner)

    try:
        rows = 0 if not data.strip() else len(pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False,
                                                         lineterminator="\n"))
    except (ValueError, pd.errors.ParserError) as e:
        fail(csv_rel, f"is not a readable table ({type(e).__name__})")
    if rows != want_rows:
        fail(csv_rel, f"has {rows} rows, its sidecar {side} says {want_rows}")


# -------------------------------------------------------------------------------------------------
# offline math


def mathjax_dir() -> Path:
    """Where MathJax is vendored: ``<cache_dir>/mathjax`` (outside the source tree)."""
    return paths.cache_dir() / "mathjax"


def ensure_mathjax(dest: Path | str | None = None, version: str = MATHJAX_VERSION) -> Path:
    """Vendor MathJax ``version`` into ``dest`` (default :func:`mathjax_dir`) unless it is there.

    Returns ``dest``, which holds ``mathjax/es5/tex-chtml.js``, the components it loads lazily,
    MathJax's LICENSE and a VERSION file; a build copies ``dest``'s contents into the HTML root.
    Needs ``npm`` once (``npm pack mathjax@VERSION``); the new copy replaces an old one only when
    it is complete.
    """
    dest = Path(dest) if dest is not None else mathjax_dir()
    entry, version_file = dest / MATHJAX_ENTRY, dest / "mathjax" / "VERSION"
    if entry.is_file() and version_file.is_file() and version_file.read_text().strip() == version:
        return dest
    npm = shutil.which("npm")
    if npm is None:
        raise LinUtilsError(
            f"npm not found; it is needed once to vendor MathJax {version} into {dest} for "
            f"offline math (or unpack mathjax-{version}.tgz from the npm registry so that "
            f"{entry} exists, and write {version} to {version_file})"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mathjax-", dir=dest.parent) as tmp:
        tmp = Path(tmp)
        res = subprocess.run([npm, "pack", f"mathjax@{version}", "--silent"], cwd=tmp,
                             capture_output=True, text=True)
        packed = tmp / f"mathjax-{version}.tgz"
        if res.returncode != 0 or not packed.is_file():
            raise LinUtilsError(
                f"npm pack mathjax@{version} failed (exit {res.returncode}): "
                f"{one_line(res.stderr or res.stdout or 'no output')}"
            )
        stage = tmp / "stage"
        _extract_mathjax(packed, stage / "mathjax")
        if not (stage / MATHJAX_ENTRY).is_file():
            raise LinUtilsError(f"{packed.name} has no package/es5/tex-chtml.js")
        (stage / "mathjax" / "VERSION").write_text(version + "\n")
        old = dest.with_name(dest.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            os.replace(dest, old)
        os.replace(stage, dest)
        shutil.rmtree(old, ignore_errors=True)
    return dest


def _extract_mathjax(tgz: Path, out: Path) -> None:
    """Copy LICENSE, es5/tex-chtml.js and its lazily loaded components out of an npm tarball."""
    wanted = ("package/LICENSE", "package/es5/tex-chtml.js",
              *(f"package/es5/{part}/" for part in _MATHJAX_PARTS))
    out.mkdir(parents=True)
    with tarfile.open(tgz, "r:gz") as tar:
        members = []
        for m in tar.getmembers():
            if not (m.isfile() or m.isdir()) or ".." in Path(m.name).parts:
                continue
            if any(m.name == w or (w.endswith("/") and m.name.startswith(w)) for w in wanted):
                m.name = m.name[len("package/"):]
                members.append(m)
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(out, members=members, **kwargs)


def check_offline_math(html_dir: Path | str) -> None:
    """Raise LinUtilsError if a built page loads a script from the network (e.g. a MathJax CDN).

    The book must render offline, so every ``<script src>`` has to be a relative path.
    """
    html_dir = Path(html_dir)
    bad = []
    for page in sorted(html_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8", errors="replace")
        for src in _SCRIPT_SRC.findall(text):
            if re.match(r"^(https?:)?//", src, re.IGNORECASE):
                bad.append(f"{page.relative_to(html_dir)}: {src}")
    if bad:
        raise LinUtilsError(f"pages load scripts from the network: {'; '.join(bad[:3])}")


# -------------------------------------------------------------------------------------------------
# building the book


def _log_summary(text: str, limit: int = 20) -> str:
    """The warnings and errors of a build log (else its last lines), without colour codes."""
    lines = [ln for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    problems = [ln for ln in lines if re.search(r"\b(WARNING|ERROR|CRITICAL)\b|Error:|Exception", ln)]
    if not problems:
        return "\n".join(lines[-limit:])
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "\n".join(problems[:limit]) + more


def _build_config(root: Path, mathjax: Path, staging: Path, *extra: Path) -> Path:
    """``<root>/_config.yml`` with the vendored MathJax folder (and the ``extra`` folders, e.g. the
    staged downloads) as its ``html_extra_path``, written into the staging folder (the source
    tree is not touched)."""
    source = root / "_config.yml"
    try:
        config = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise LinUtilsError(f"cannot read the book configuration {source}: {one_line(e)}") from None
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx_config["html_extra_path"] = [str(mathjax.resolve()), *(str(p.resolve()) for p in extra)]
    sphinx_config["mathjax_path"] = MATHJAX_PATH
    out = staging / "_config.yml"
    out.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


def build_book(
    strict: bool = True,
    *,
    root: Path | str | None = None,
    out_dir: Path | str | None = None,
    notebooks_dir: Path | str | None = None,
    mathjax: Path | str | None = None,
    log: Callable[[str], Any] = print,
) -> Path:
    """Render the book from the executed notebooks; return the HTML folder.

    Equivalent to ``jupyter-book build <root> --toc book/_toc.yml --config _config.yml
    -W -n --keep-going`` (``strict=False`` drops ``-W -n --keep-going``), with the vendored
    MathJax (``mathjax``, default :func:`ensure_mathjax`) copied into the HTML root. Refuses to
    build when a page is missing (:func:`missing_pages`, against ``notebooks_dir``) or when the
    executed pages come from different profiles. The build goes to a staging folder; only a
    successful build replaces ``out_dir`` (default ``<root>/_build/html``), so the last good book
    survives a failed build. The result files the pages offer for download are copied from the
    result cache (:func:`stage_downloads`). The full log is kept next to ``out_dir`` as ``build.log``.
    """
    root = Path(root) if root is not None else paths.REPO_ROOT
    final = Path(out_dir) if out_dir is not None else root / "_build" / "html"
    missing = missing_pages(root, notebooks_dir)
    if missing:
        raise LinUtilsError(
            f"cannot build the book: missing page(s) {', '.join(missing)}; executed notebooks "
            "appear under book/notebooks/ after a run (lin-utils book run --profile NAME)"
        )
    profile = check_one_profile(root)
    mathjax = Path(mathjax) if mathjax is not None else ensure_mathjax()
    if not (mathjax / MATHJAX_ENTRY).is_file():
        raise LinUtilsError(f"no MathJax at {mathjax / MATHJAX_ENTRY}")

    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".book-staging-", dir=final.parent))
    try:
        downloads = staging / "downloads"
        downloads.mkdir()
        stage_downloads(root, downloads)
        config = _build_config(root, mathjax, staging, downloads)
        cmd = [
            sys.executable, "-c",
            "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
            "build", str(root),
            "--toc", str(root / "book" / "_toc.yml"),
            "--config", str(config),
            "--path-output", str(staging),
            "--builder", "html",
        ]
        if strict:
            cmd += ["-W", "-n", "--keep-going"]
        log(f"building the book from {root}" + (f" (profile {profile})" if profile else "") + " ...")
        start = time.perf_counter()
        env = {**os.environ, "NO_COLOR": "1"}
        res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        build_log = final.parent / "build.log"
        build_log.write_text(_ANSI.sub("", res.stdout + "\n" + res.stderr), encoding="utf-8")
        built = staging / "_build" / "html"
        if res.returncode != 0 or not (built / "index.html").exists():
            raise LinUtilsError(
                f"jupyter-book build failed (exit {res.returncode}); full log: {build_log}\n"
                + _log_summary(res.stdout + "\n" + res.stderr)
            )
        check_offline_math(built)
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(built, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"book built in {time.perf_counter() - start:.1f} s -> {final / 'index.html'}")
    return final
