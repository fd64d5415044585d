"""Run the book's notebooks with papermill for one profile, then build the Jupyter Book.

A *profile* (smoke, cpu, gpu, full) is one YAML file ``profiles/<profile>.yaml`` with one section
per notebook, named after the notebook's file stem; each section maps parameter names to values::

    fig1_linearity_profiles:
      models: [stories260K]
      max_tokens: 4096
    claims: {}            # empty or missing section: the notebook's own defaults

Top-level keys starting with ``_`` are ignored (use them for YAML anchors shared by sections).
Every parameter must be declared in the notebook's ``parameters``-tagged cell. On top of its
section every notebook receives ``profile`` (the profile name) and ``force`` (recompute cached
results), so each notebook must declare those two as well. ``LIN_PROFILE`` is set in the kernel's
environment.

Notebooks run in dependency order (:data:`NOTEBOOKS`); ``only`` runs just the named ones (still
in that order) without pulling in their dependencies, whose results are read from the cache.
Each notebook is executed from
``notebooks/<name>.ipynb`` into a staging file, and only on success moved to
``book/notebooks/<name>.ipynb``, the executed copy that the book renders; a failure leaves the
previous executed copy in place. :func:`build_book` then renders the book (no execution at build
time) with warnings as errors, into a staging folder that replaces ``_build/html`` on success.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from lin_utils.errors import LinUtilsError

REPO_ROOT = Path(__file__).resolve().parents[1]

# notebook name -> the notebooks whose results it reads. Run order is topological, ties broken
# by the order below. A new notebook goes here and in every profiles/*.yaml.
NOTEBOOKS: dict[str, list[str]] = {
    "fig1_linearity_profiles": [],
    "fig3_block_norms": [],
    "fig9_error_distribution": [],
    "claims": ["fig1_linearity_profiles", "fig3_block_norms", "fig9_error_distribution"],
}

INJECTED = ("profile", "force")  # parameters every notebook gets from the runner
KERNEL = "python3"  # jupyter_client starts it with this interpreter (sys.executable)
MATHJAX_DIR = Path("book") / "_mathjax"  # relative to the book root; see _config.yml
MATHJAX_ENTRY = Path("mathjax") / "es5" / "tex-chtml.js"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=[\"']([^\"']+)[\"']", re.IGNORECASE)


@dataclass
class RunRecord:
    """One executed notebook: where its executed copy is and how long it took."""

    name: str
    output: Path
    wall_time_s: float
    parameters: dict[str, Any] = field(default_factory=dict)


# -------------------------------------------------------------------------------------------------
# profiles and the notebook registry


def available_profiles(profiles_dir: Path | str | None = None) -> list[str]:
    """Profile names: the stems of ``*.yaml`` files in the profiles folder."""
    folder = Path(profiles_dir) if profiles_dir is not None else REPO_ROOT / "profiles"
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_profile(profile: str, profiles_dir: Path | str | None = None) -> dict[str, dict]:
    """Read ``<profiles_dir>/<profile>.yaml`` into ``{notebook: {param: value}}``."""
    folder = Path(profiles_dir) if profiles_dir is not None else REPO_ROOT / "profiles"
    valid = available_profiles(folder)
    if profile not in valid:
        raise LinUtilsError(
            f"unknown profile {profile!r}; valid profiles: {', '.join(valid) or '(none found)'}"
            f" (in {folder})"
        )
    path = folder / f"{profile}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise LinUtilsError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(raw, dict):
        raise LinUtilsError(f"{path} must be a mapping of notebook name -> parameters")
    sections: dict[str, dict] = {}
    for name, section in raw.items():
        if str(name).startswith("_"):
            continue
        if section is None:
            section = {}
        if not isinstance(section, dict):
            raise LinUtilsError(f"{path}: section {name!r} must be a mapping of parameters")
        sections[str(name)] = section
    return sections


def run_order(registry: dict[str, list[str]], only: list[str] | None = None) -> list[str]:
    """Topological order of the registry (ties in registry order), restricted to ``only``.

    ``only`` selects notebooks without pulling in their dependencies: those are expected to have
    run before, and their results are read from the result cache.
    """
    for name, deps in registry.items():
        for dep in deps:
            if dep not in registry:
                raise LinUtilsError(f"notebook {name!r} depends on unknown notebook {dep!r}")
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(registry):
        ready = [n for n in registry if n not in done and all(d in done for d in registry[n])]
        if not ready:
            cycle = sorted(set(registry) - done)
            raise LinUtilsError(f"notebook dependencies form a cycle among: {', '.join(cycle)}")
        order.append(ready[0])
        done.add(ready[0])
    if only is None:
        return order
    unknown = [n for n in only if n not in registry]
    if unknown:
        raise LinUtilsError(
            f"unknown notebook(s) {', '.join(map(repr, unknown))}; valid: {', '.join(order)}"
        )
    return [n for n in order if n in set(only)]


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """Parameters declared in the notebook's ``parameters``-tagged cell (papermill's view)."""
    import papermill

    return papermill.inspect_notebook(str(notebook))


def _notebook_parameters(
    name: str, source: Path, section: dict, profile: str, force: bool
) -> dict[str, Any]:
    """Validate a profile section against the notebook and add the injected parameters."""
    if not source.exists():
        raise LinUtilsError(f"notebook {name}: source {source} does not exist")
    declared = declared_parameters(source)
    if not declared:
        raise LinUtilsError(f"notebook {name}: no cell tagged 'parameters' in {source}")
    missing = [p for p in INJECTED if p not in declared]
    if missing:
        raise LinUtilsError(
            f"notebook {name} must declare {', '.join(missing)} in its parameters cell "
            f"(the runner injects {', '.join(INJECTED)})"
        )
    for key in section:
        if key in INJECTED:
            raise LinUtilsError(
                f"profile {profile}: section {name} sets {key!r}, which the runner injects itself"
            )
        if key not in declared:
            raise LinUtilsError(
                f"profile {profile}: parameter {key!r} is not declared by notebook {name} "
                f"(declared: {', '.join(sorted(declared))})"
            )
    return {**section, "profile": profile, "force": bool(force)}


def _failed_cell(source: Path, error) -> str:
    """Describe the failing cell as 'cell N of M (In [k]: first line)', N counted in the source.

    papermill's ``cell_index`` counts cells of the executed notebook, which has one extra cell,
    the injected parameters, right after the ``parameters`` cell.
    """
    import nbformat

    nb = nbformat.read(source, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    injected_at = tagged[0] + 1 if tagged else 0
    index = error.cell_index
    if index == injected_at:
        where = "the injected-parameters cell"
    else:
        src_index = index - 1 if index > injected_at else index
        where = f"cell {src_index + 1} of {len(nb.cells)}"
    first = next((ln.strip() for ln in str(error.source).splitlines() if ln.strip()), "")
    if len(first) > 60:
        first = first[:57] + "..."
    return f"{where} (In [{error.exec_count}]: {first})"


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


# -------------------------------------------------------------------------------------------------
# running notebooks


def run_profile(
    profile: str,
    only: list[str] | None = None,
    force: bool = False,
    log: Callable[[str], Any] = print,
    *,
    profiles_dir: Path | str | None = None,
    notebooks_dir: Path | str | None = None,
    book_dir: Path | str | None = None,
    registry: dict[str, list[str]] | None = None,
    cwd: Path | str | None = None,
) -> list[RunRecord]:
    """Execute the notebooks of a profile in dependency order; return one record per notebook.

    Everything is validated before the first notebook starts: the profile name, the section
    names, every parameter against the notebook's ``parameters`` cell, and ``only``. The first
    failing notebook stops the run with a one-line LinUtilsError naming the notebook, the cell
    and the exception (``ename: evalue``).

    The overrides (``profiles_dir``, ``notebooks_dir``, ``book_dir``, ``registry``, ``cwd``)
    default to the repository's ``profiles/``, ``notebooks/``, ``book/``, :data:`NOTEBOOKS`
    and the repository root (the kernel's working directory).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    registry = NOTEBOOKS if registry is None else registry
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else REPO_ROOT / "notebooks"
    book_dir = Path(book_dir) if book_dir is not None else REPO_ROOT / "book"
    cwd = Path(cwd) if cwd is not None else REPO_ROOT

    sections = load_profile(profile, profiles_dir)
    unknown = [name for name in sections if name not in registry]
    if unknown:
        raise LinUtilsError(
            f"profile {profile} has section(s) for unknown notebook(s) {', '.join(unknown)}; "
            f"notebooks: {', '.join(registry)}"
        )
    order = run_order(registry, only)
    plan = []
    for name in order:
        source = notebooks_dir / f"{name}.ipynb"
        params = _notebook_parameters(name, source, sections.get(name, {}), profile, force)
        plan.append((name, source, params))

    out_dir = book_dir / "notebooks"
    staging_dir = out_dir / ".staging"
    staging_dir.mkdir(parents=True, exist_ok=True)
    log(f"profile {profile}: running {len(plan)} notebook(s): {', '.join(order)}"
        + (" (force)" if force else ""))

    records: list[RunRecord] = []
    # The kernel inherits this environment. Notebooks show no progress bars (the run log has the
    # wall times), and tqdm's "IProgress not found" warning would otherwise land in the book.
    kernel_env = {"LIN_PROFILE": profile, "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                  "PYTHONWARNINGS": "ignore:IProgress not found"}
    previous_env = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    try:
        for i, (name, source, params) in enumerate(plan, 1):
            staged = staging_dir / f"{name}.ipynb"
            final = out_dir / f"{name}.ipynb"
            log(f"[{i}/{len(plan)}] {name} ...")
            start = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(source),
                    str(staged),
                    parameters=params,
                    kernel_name=KERNEL,
                    cwd=str(cwd),
                    progress_bar=False,
                    log_output=False,
                )
            except PapermillExecutionError as e:
                wall = time.perf_counter() - start
                log(f"[{i}/{len(plan)}] {name} FAILED after {wall:.1f} s; partial output: {staged}")
                raise LinUtilsError(
                    f"notebook {name} failed at {_failed_cell(source, e)}: "
                    f"{e.ename}: {_one_line(e.evalue)}"
                ) from None
            except Exception as e:  # kernel died, timeout, unreadable notebook...
                wall = time.perf_counter() - start
                log(f"[{i}/{len(plan)}] {name} FAILED after {wall:.1f} s; partial output: {staged}")
                raise LinUtilsError(
                    f"notebook {name} failed: {type(e).__name__}: {_one_line(e)}"
                ) from e
            wall = time.perf_counter() - start
            os.replace(staged, final)
            log(f"[{i}/{len(plan)}] {name} done in {wall:.1f} s -> {final}")
            records.append(RunRecord(name, final, wall, params))
    finally:
        for k, v in previous_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    total = sum(r.wall_time_s for r in records)
    log(f"profile {profile}: {len(records)} notebook(s) done in {total:.1f} s")
    return records


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


def ensure_mathjax(root: Path | str | None = None) -> Path:
    """Vendor MathJax into ``<root>/book/_mathjax`` unless it is there; return its entry script."""
    root = Path(root) if root is not None else REPO_ROOT
    dest = root / MATHJAX_DIR
    entry = dest / MATHJAX_ENTRY
    if entry.exists():
        return entry
    script = REPO_ROOT / "scripts" / "vendor_mathjax.sh"
    res = subprocess.run(["bash", str(script), str(dest)], capture_output=True, text=True)
    if res.returncode != 0 or not entry.exists():
        raise LinUtilsError(
            f"could not vendor MathJax into {dest}: {_one_line(res.stderr or res.stdout)}"
        )
    return entry


def _toc_files(node) -> list[str]:
    """Every ``root``/``file`` entry of a Jupyter Book table of contents, in order."""
    found = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                found.append(node[key])
        for value in node.values():
            if isinstance(value, (list, dict)):
                found += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            found += _toc_files(item)
    return found


def missing_pages(root: Path | str | None = None) -> list[str]:
    """Pages listed in ``book/_toc.yml`` that have no source file (.md or .ipynb) yet."""
    root = Path(root) if root is not None else REPO_ROOT
    toc = yaml.safe_load((root / "book" / "_toc.yml").read_text(encoding="utf-8"))
    return [
        page for page in _toc_files(toc)
        if not any((root / f"{page}{suffix}").exists() for suffix in ("", ".md", ".ipynb"))
    ]


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


def build_book(
    strict: bool = True,
    *,
    root: Path | str | None = None,
    out_dir: Path | str | None = None,
    log: Callable[[str], Any] = print,
) -> Path:
    """Render the book from the executed notebooks; return the HTML folder.

    Equivalent to ``jupyter-book build <root> --toc book/_toc.yml --config _config.yml
    -W -n --keep-going`` (``strict=False`` drops ``-W -n --keep-going``). The build goes to a
    staging folder; only a successful build replaces ``out_dir`` (default ``<root>/_build/html``),
    so the last good book survives a failed build. The full log is kept next to ``out_dir``
    as ``build.log``.
    """
    root = Path(root) if root is not None else REPO_ROOT
    final = Path(out_dir) if out_dir is not None else root / "_build" / "html"
    missing = missing_pages(root)
    if missing:
        raise LinUtilsError(
            f"cannot build the book: missing page(s) {', '.join(missing)}; executed notebooks "
            "appear under book/notebooks/ after a run (lin-utils book run --profile NAME)"
        )
    ensure_mathjax(root)

    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".book-staging-", dir=final.parent))
    cmd = [
        sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
        "build", str(root),
        "--toc", str(root / "book" / "_toc.yml"),
        "--config", str(root / "_config.yml"),
        "--path-output", str(staging),
        "--builder", "html",
    ]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    log(f"building the book from {root} ...")
    start = time.perf_counter()
    env = {**os.environ, "NO_COLOR": "1"}
    res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    build_log = final.parent / "build.log"
    build_log.write_text(_ANSI.sub("", res.stdout + "\n" + res.stderr), encoding="utf-8")
    built = staging / "_build" / "html"
    if res.returncode != 0 or not (built / "index.html").exists():
        shutil.rmtree(staging, ignore_errors=True)
        raise LinUtilsError(
            f"jupyter-book build failed (exit {res.returncode}); full log: {build_log}\n"
            + _log_summary(res.stdout + "\n" + res.stderr)
        )
    try:
        check_offline_math(built)
    except LinUtilsError:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(built, final)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    log(f"book built in {time.perf_counter() - start:.1f} s -> {final / 'index.html'}")
    return final
