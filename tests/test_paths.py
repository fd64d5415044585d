"""One place for the repository root and the default folders."""

from pathlib import Path

from lin_utils import paths, results


def test_repository_folders():
    root = Path(__file__).resolve().parents[1]
    assert paths.REPO_ROOT == root
    assert paths.profiles_dir() == root / "profiles" and (root / "profiles" / "smoke.yaml").exists()
    assert paths.notebooks_dir() == root / "notebooks" and any(root.joinpath("notebooks").glob("*.ipynb"))
    assert paths.book_dir() == root / "book" and (root / "book" / "_toc.yml").exists()
    assert results.REPO_ROOT == paths.REPO_ROOT and results.results_root is paths.results_root


def test_results_root_and_cache_dir_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("LIN_RESULTS_DIR", raising=False)
    monkeypatch.delenv("LIN_CACHE", raising=False)
    assert paths.results_root() == paths.REPO_ROOT / "data" / "results"
    assert paths.cache_dir() == Path.home() / ".cache" / "lin_utils"
    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path / "r"))
    monkeypatch.setenv("LIN_CACHE", str(tmp_path / "c"))
    assert paths.results_root() == tmp_path / "r"
    assert paths.cache_dir() == tmp_path / "c"
    monkeypatch.setenv("LIN_CACHE", "")  # empty means unset
    assert paths.cache_dir() == Path.home() / ".cache" / "lin_utils"


def test_cache_is_outside_the_source_tree_by_default(monkeypatch):
    monkeypatch.delenv("LIN_CACHE", raising=False)
    assert paths.REPO_ROOT not in paths.cache_dir().parents


def test_smoke_results_and_run_leftovers_are_ignored_by_git():
    import shutil
    import subprocess

    import pytest

    if shutil.which("git") is None or not (paths.REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    probe = ["data/results/smoke/linearity_scan/blocks-0123456789ab.csv",
             "book/notebooks/.staging-abc/fig1.ipynb", "book/notebooks/.failed/fig1.ipynb",
             "book/notebooks/fig1_linearity_profiles.ipynb"]
    res = subprocess.run(["git", "check-ignore", "--no-index", *probe], cwd=paths.REPO_ROOT,
                         capture_output=True, text=True)
    assert res.stdout.split() == probe
    committed = ["data/results/cpu/x/t-0123456789ab.csv", "data/results/gpu/x/t-0123456789ab.csv"]
    res = subprocess.run(["git", "check-ignore", "--no-index", *committed], cwd=paths.REPO_ROOT,
                         capture_output=True, text=True)
    assert res.stdout.split() == []


def test_profiles_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LIN_PROFILES_DIR", str(tmp_path))
    assert paths.profiles_dir() == tmp_path
    monkeypatch.setenv("LIN_PROFILES_DIR", "")
    assert paths.profiles_dir() == paths.REPO_ROOT / "profiles"
