"""A real notebook and a real loader against an empty data mirror.

Its own module, so that pytest-xdist (``--dist loadscope``) runs it beside the smoke book, not after it.
"""
from pathlib import Path

import pytest

from lin_utils import runner

ROOT = Path(__file__).resolve().parents[2]


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
