"""The page registry: one module per notebook, one list of parameters per page (its CONFIG), the
notebooks' parameters cells and the profiles agreeing with it, and each notebook's name in one
place under lin_utils/."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from lin_utils import pages, paths, profiles
from lin_utils.config import StudyConfig
from lin_utils.errors import LinUtilsError

NOTEBOOKS = sorted(p.stem for p in paths.notebooks_dir().glob("*.ipynb"))


def _parameters_cell(name: str) -> dict:
    nb = json.loads((paths.notebooks_dir() / f"{name}.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    out = {}
    for node in ast.parse("".join(cell["source"])).body:
        assert isinstance(node, ast.Assign), f"{name}: the parameters cell holds only assignments"
        out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_every_notebook_has_its_page_module_and_every_module_its_notebook():
    assert pages.names() == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_notebook_defaults_are_the_page_config_and_the_cpu_profile(name):
    page = pages.get(name)
    cell = _parameters_cell(name)
    assert cell.pop("profile") == "cpu" and cell.pop("force") is False
    expected = {} if page.CONFIG is None else page.CONFIG.params()
    assert cell == expected  # same names, same values: the cell repeats CONFIG and nothing else
    assert pages.config(page, "cpu") == page.CONFIG  # the cpu profile's section changes nothing


@pytest.mark.parametrize("profile", profiles.available_profiles())
def test_every_profile_gives_every_page_a_valid_config(profile):
    for name in NOTEBOOKS:
        cfg = pages.config(name, profile)
        assert cfg is None or isinstance(cfg, StudyConfig)


def test_a_notebook_name_appears_in_at_most_one_file_of_the_package():
    """As a file name (``fig1_x.ipynb``, ``book/notebooks/fig1_x``) or, for a name that is not also a
    plain word (``claims``, ``scaling`` label other things too), as a string literal: the page module
    may name itself; no other module names a page."""
    package = Path(pages.__file__).parents[1]
    for name in NOTEBOOKS:
        refs = (f"{name}.ipynb", f"notebooks/{name}") + ((f'"{name}"', f"'{name}'") if "_" in name else ())
        holders = [p.relative_to(package).as_posix() for p in package.rglob("*.py")
                   if any(r in p.read_text() for r in refs)]
        assert len(holders) <= 1 and all(h == f"pages/{name}.py" for h in holders), (name, holders)


def test_claims_have_distinct_places_on_the_claims_page():
    order = [c.order for c in pages.all_claims()]
    assert len(order) == len(set(order)) and order == sorted(order)
    assert all(c.page in NOTEBOOKS for c in pages.all_claims())


def test_a_misspelt_profile_key_fails_loudly_naming_it(tmp_path, monkeypatch):
    (tmp_path / "cpu.yaml").write_text("fig3_block_norms:\n  max_tokenz: 10\n")
    monkeypatch.setenv("LIN_PROFILES_DIR", str(tmp_path))
    with pytest.raises(LinUtilsError, match=r"unknown parameter\(s\) max_tokenz; valid: models, dataset"):
        pages.config("fig3_block_norms", "cpu")


def test_a_page_without_parameters_refuses_some(tmp_path, monkeypatch):
    (tmp_path / "cpu.yaml").write_text("claims:\n  models: [a]\n")
    monkeypatch.setenv("LIN_PROFILES_DIR", str(tmp_path))
    with pytest.raises(LinUtilsError, match="page claims takes no parameters; got models"):
        pages.config("claims", "cpu")


def test_unknown_page_names_the_valid_ones():
    with pytest.raises(LinUtilsError, match="unknown page 'fig99'; valid: claims, fig"):
        pages.get("fig99")


def test_a_notebook_namespace_missing_a_parameter_is_named():
    cfg = pages.get("fig3_block_norms").CONFIG
    namespace = {**cfg.params(), "profile": "cpu", "force": False}
    assert type(cfg).from_namespace(namespace) == cfg
    del namespace["seq_len"]
    with pytest.raises(LinUtilsError, match="does not define seq_len"):
        type(cfg).from_namespace(namespace)


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if getattr(pages.get(n), "CONFIG", None) is not None])
def test_every_page_finds_its_committed_cpu_tables(name, monkeypatch):
    """`make book` from the committed results computes nothing: each page's tables load from the cache."""
    monkeypatch.setenv("LIN_RESULTS_DIR", str(paths.REPO_ROOT / "data" / "results"))
    page = pages.get(name)
    assert page.tables(pages.config(page, "cpu"), profile="cpu", cache_only=True) is not None


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n.startswith(("fig", "table"))])
def test_every_figure_and_table_page_says_how_it_differs_from_the_paper_before_reproducing(name):
    nb = json.loads((paths.notebooks_dir() / f"{name}.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert text.index("{glue:md} differences") < text.index("## Reproduce this page")
