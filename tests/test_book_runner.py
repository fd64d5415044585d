"""The papermill runner and the Jupyter Book build, on real fixture notebooks (no mocks)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

from lin_utils import book
from lin_utils.errors import LinUtilsError

REPO = Path(__file__).resolve().parents[1]
STEP = REPO / "tests" / "fixtures" / "notebooks" / "step.ipynb"

# c reads the results of a and b; listed out of order on purpose
REGISTRY = {"c": ["a", "b"], "b": ["a"], "a": []}


def _project(tmp_path: Path, sections: dict, registry=REGISTRY, profile="smoke") -> dict:
    """Notebooks (copies of the fixture), one profile file, and the run_profile overrides."""
    nb_dir, prof_dir = tmp_path / "notebooks", tmp_path / "profiles"
    nb_dir.mkdir(exist_ok=True)
    prof_dir.mkdir(exist_ok=True)
    for name in registry:
        shutil.copy(STEP, nb_dir / f"{name}.ipynb")
    (prof_dir / f"{profile}.yaml").write_text(yaml.safe_dump(sections))
    return dict(profiles_dir=prof_dir, notebooks_dir=nb_dir, book_dir=tmp_path / "book",
                registry=registry)


def _logging_sections(tmp_path: Path, **extra) -> dict:
    log = str(tmp_path / "run.log")
    return {n: {"name": n, "log_path": log, **extra.get(n, {})} for n in REGISTRY}


def test_runs_in_dependency_order_with_injected_parameters(tmp_path):
    dirs = _project(tmp_path, _logging_sections(tmp_path))
    lines = []
    records = book.run_profile("smoke", force=True, log=lines.append, **dirs)

    assert [r.name for r in records] == ["a", "b", "c"]
    ran = (tmp_path / "run.log").read_text().splitlines()
    assert ran == [f"{n} profile=smoke force=True env=smoke" for n in "abc"]
    for r in records:
        assert r.output == tmp_path / "book" / "notebooks" / f"{r.name}.ipynb"
        nb = nbformat.read(r.output, as_version=4)
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
        assert any(o.get("output_type") == "display_data" for c in nb.cells
                   for o in c.get("outputs", []))  # the figure was drawn
        assert r.parameters["profile"] == "smoke" and r.parameters["force"] is True
        assert r.wall_time_s > 0
    # the run log reports each notebook's wall time
    assert sum(bool(re.search(rf"\] {n} done in \d+\.\d s", ln)) for n in "abc" for ln in lines) == 3
    assert not list((tmp_path / "book" / "notebooks" / ".staging").glob("*.ipynb"))
    assert "LIN_PROFILE" not in os.environ


def test_only_runs_the_selection_in_order(tmp_path):
    dirs = _project(tmp_path, _logging_sections(tmp_path))
    records = book.run_profile("smoke", only=["c", "a"], log=lambda _: None, **dirs)
    assert [r.name for r in records] == ["a", "c"]
    assert (tmp_path / "run.log").read_text().splitlines()[1] == "c profile=smoke force=False env=smoke"


def test_unknown_profile_lists_valid_ones(tmp_path):
    dirs = _project(tmp_path, {})
    (dirs["profiles_dir"] / "cpu.yaml").write_text("{}\n")
    with pytest.raises(LinUtilsError) as err:
        book.run_profile("laptop", **dirs)
    msg = str(err.value)
    assert "\n" not in msg and "'laptop'" in msg and "cpu, smoke" in msg


def test_undeclared_parameter_names_notebook_and_parameter(tmp_path):
    sections = _logging_sections(tmp_path, b={"max_tokenz": 10})
    dirs = _project(tmp_path, sections)
    with pytest.raises(LinUtilsError, match=r"'max_tokenz' is not declared by notebook b"):
        book.run_profile("smoke", **dirs)
    assert not (tmp_path / "run.log").exists()  # validated before anything ran


def test_unknown_names_and_reserved_parameters(tmp_path):
    dirs = _project(tmp_path, {"a": {}, "zz": {}})
    with pytest.raises(LinUtilsError, match="unknown notebook.*zz"):
        book.run_profile("smoke", **dirs)
    dirs = _project(tmp_path, {"a": {"force": True}})
    with pytest.raises(LinUtilsError, match="sets 'force', which the runner injects"):
        book.run_profile("smoke", **dirs)
    dirs = _project(tmp_path, {"_shared": {"anything": 1}})  # '_' keys are for YAML anchors
    with pytest.raises(LinUtilsError, match=r"unknown notebook\(s\) 'nope'; valid: a, b, c"):
        book.run_profile("smoke", only=["nope"], **dirs)


def test_notebook_must_declare_profile_and_force(tmp_path):
    dirs = _project(tmp_path, {}, registry={"a": []})
    nb = nbformat.read(dirs["notebooks_dir"] / "a.ipynb", as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = "\n".join(ln for ln in params.source.splitlines() if "force" not in ln)
    nbformat.write(nb, dirs["notebooks_dir"] / "a.ipynb")
    with pytest.raises(LinUtilsError, match="notebook a must declare force"):
        book.run_profile("smoke", **dirs)


def test_failure_names_notebook_and_cell_and_keeps_previous_copy(tmp_path):
    dirs = _project(tmp_path, _logging_sections(tmp_path))
    book.run_profile("smoke", log=lambda _: None, **dirs)
    executed = tmp_path / "book" / "notebooks" / "b.ipynb"
    before = executed.read_bytes()

    (dirs["profiles_dir"] / "smoke.yaml").write_text(
        yaml.safe_dump(_logging_sections(tmp_path, b={"fail": True}))
    )
    with pytest.raises(LinUtilsError) as err:
        book.run_profile("smoke", log=lambda _: None, **dirs)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("notebook b failed at cell 4 of 5")
    assert "DataNotFoundError: dataset 'tinystories' not found in the local mirror" in msg
    assert executed.read_bytes() == before  # the last good executed copy is untouched
    ran = (tmp_path / "run.log").read_text().splitlines()
    assert [ln.split()[0] for ln in ran] == ["a", "b", "c", "a", "b"]  # c never ran the 2nd time


def test_run_order_rejects_cycles_and_unknown_dependencies():
    assert book.run_order(book.NOTEBOOKS)[-1] == "claims"
    with pytest.raises(LinUtilsError, match="cycle among: a, b"):
        book.run_order({"a": ["b"], "b": ["a"]})
    with pytest.raises(LinUtilsError, match="depends on unknown notebook 'x'"):
        book.run_order({"a": ["x"]})


def test_repository_profiles_and_toc_match_the_registry():
    assert book.available_profiles() == ["cpu", "full", "gpu", "smoke"]
    for profile in book.available_profiles():
        assert set(book.load_profile(profile)) <= set(book.NOTEBOOKS), profile
    toc = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    files = [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    assert toc["root"] == "book/intro" and "book/methods" in files
    assert {f"book/notebooks/{n}" for n in book.NOTEBOOKS} <= set(files)


def test_vendor_script_explains_missing_npm(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("dirname"), bin_dir / "dirname")
    res = subprocess.run(
        ["/bin/bash", str(REPO / "scripts" / "vendor_mathjax.sh"), str(tmp_path / "mj")],
        env={"PATH": str(bin_dir)}, capture_output=True, text=True,
    )
    assert res.returncode == 1 and "npm not found" in res.stderr
    assert not (tmp_path / "mj").exists()


@pytest.mark.slow
def test_build_book_renders_offline_math_and_keeps_last_good_build(tmp_path):
    """Execute fixture notebooks under the real page names, then build the real book config."""
    root = tmp_path / "project"
    (root / "book").mkdir(parents=True)
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    for page in ("_toc.yml", "intro.md", "methods.md"):
        shutil.copy(REPO / "book" / page, root / "book" / page)
    entry = book.ensure_mathjax(REPO)  # vendored once per checkout (npm), shared by the test
    os.symlink(entry.parents[2], root / "book" / "_mathjax")

    dirs = _project(tmp_path, {}, registry=book.NOTEBOOKS)
    book.run_profile("smoke", log=lambda _: None, **{**dirs, "book_dir": root / "book"})

    html = book.build_book(root=root, log=lambda _: None)
    assert html == root / "_build" / "html"
    for page in ("book/intro", "book/methods", *(f"book/notebooks/{n}" for n in book.NOTEBOOKS)):
        assert (html / f"{page}.html").exists(), page
    nested = html / "book" / "notebooks" / "fig1_linearity_profiles.html"
    srcs = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', nested.read_text())
    assert len(srcs) == 1
    target = (nested.parent / srcs[0].split("?")[0]).resolve()
    assert target == (html / "mathjax" / "es5" / "tex-chtml.js").resolve() and target.is_file()
    assert (html / "mathjax" / "es5" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    for page in html.rglob("*.html"):
        text = page.read_text()
        assert "cdn.jsdelivr" not in text and not re.search(r"src=\"https?://", text), page

    # a page with a warning fails the strict build, and the last good book stays in place
    (root / "book" / "intro.md").write_text("# Intro\n\nSee {ref}`no-such-label`.\n")
    with pytest.raises(LinUtilsError, match="jupyter-book build failed") as err:
        book.build_book(root=root, log=lambda _: None)
    assert "no-such-label" in str(err.value)
    assert (html / "book" / "methods.html").exists()
    assert "Your Transformer is Secretly Linear" in (html / "book" / "intro.html").read_text()
    assert not list((root / "_build").glob(".book-staging-*"))
