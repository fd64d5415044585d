"""The repository root and the default folders, in one place.

Every default location of the package is a function here, so that an environment variable or a
test can move it without patching several modules:

- :func:`results_root`: the result cache (``$LIN_RESULTS_DIR``, else ``<repo>/data/results``);
- :func:`profiles_dir` (``$LIN_PROFILES_DIR``), :func:`notebooks_dir`, :func:`book_dir`: the profiles, the papermill
  source notebooks and the book's pages (``book/_toc.yml``, ``book/notebooks/`` for the executed
  copies);
- :func:`cache_dir`: rebuildable things that live outside git, such as vendored MathJax and
  trained models (``$LIN_CACHE``, else ``~/.cache/lin_utils``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def results_root() -> Path:
    """The result cache: ``$LIN_RESULTS_DIR`` if set, else ``<repo>/data/results``."""
    return _env_path("LIN_RESULTS_DIR") or REPO_ROOT / "data" / "results"


def profiles_dir() -> Path:
    """The profiles, one YAML file of notebook parameters each: ``$LIN_PROFILES_DIR`` if set (a
    generated profile, e.g. the rehearsal's; the kernels inherit it, so pages and claims read the
    parameters that ran), else ``<repo>/profiles``."""
    return _env_path("LIN_PROFILES_DIR") or REPO_ROOT / "profiles"


def notebooks_dir() -> Path:
    """``<repo>/notebooks``: the papermill source notebooks (outputs stripped)."""
    return REPO_ROOT / "notebooks"


def book_dir() -> Path:
    """``<repo>/book``: the book's pages, its ``_toc.yml`` and ``notebooks/`` (executed copies)."""
    return REPO_ROOT / "book"


def cache_dir() -> Path:
    """Rebuildable files kept outside git: ``$LIN_CACHE`` if set, else ``~/.cache/lin_utils``."""
    return _env_path("LIN_CACHE") or Path.home() / ".cache" / "lin_utils"
