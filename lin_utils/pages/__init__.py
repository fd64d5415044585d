"""One home per book page: its configuration, its computation, its numbers, tables and claims.

Each module of this package is one page of the book, named after its notebook
(``notebooks/<name>.ipynb``). A page module holds:

- ``CONFIG``: the page's parameters, one frozen and validated study configuration
  (:class:`lin_utils.config.StudyConfig`) whose values are the cpu profile's. The notebook's
  ``parameters`` cell repeats them (a test checks that it does), a profile's section overrides
  them (:func:`config`) and nothing else lists them;
- ``tables(config, *, profile, force=False, cache_only=False, progress=False)``: the call into
  :mod:`lin_utils.experiments` (cached there), or None with ``cache_only`` when a table is missing;
- ``numbers(...)``, ``summary(...)`` and other views: what the prose glues, from the tables alone;
- ``show(config, *, profile, force=False)``: the figure, the glued numbers and tables and the
  re-run commands: the notebook's one call (through :func:`show`);
- ``CLAIMS``: the paper's claims this page carries evidence for (:class:`lin_utils.claims.Claim`),
  judged from ``tables(config, cache_only=True)`` with the profile's config.

A notebook's code cell is then::

    from lin_utils import pages
    pages.show("<notebook name>", globals())

The claims page collects every page's claims (:func:`claims`); libraries below
(:mod:`lin_utils.experiments`, :mod:`lin_utils.plots`...) know nothing about pages.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .. import profiles
from ..config import INJECTED, StudyConfig
from ..errors import LinUtilsError

__all__ = ["all_claims", "config", "get", "name_of", "names", "show", "study_configs"]


def name_of(module_name: str) -> str:
    """A page's name (its notebook's stem) from its module's ``__name__``."""
    return module_name.rsplit(".", 1)[-1]


def names() -> list[str]:
    """Every page module, by name."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str) -> ModuleType:
    """The page module ``name``; LinUtilsError naming the valid pages for an unknown one."""
    if name not in names():
        raise LinUtilsError(f"unknown page {name!r}; valid: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}")


def config(page: str | ModuleType, profile: str) -> StudyConfig | None:
    """The page's configuration under ``profile``: its ``CONFIG`` with the profile's section
    applied (an unknown key is an error naming it); None for a page without parameters."""
    module = get(page) if isinstance(page, str) else page
    base = getattr(module, "CONFIG", None)
    section = profiles.load_profile(profile).get(name_of(module.__name__), {})
    if base is None:
        extra = sorted(set(section) - set(INJECTED))
        if extra:
            raise LinUtilsError(f"page {name_of(module.__name__)} takes no parameters; got {', '.join(extra)}")
        return None
    return base.with_params(section)


def show(name: str, namespace: Mapping[str, Any]) -> None:
    """A notebook's one call: build the page's config from the notebook's variables (its
    parameters cell, after papermill's injection) and show the page. Returns None, so that the
    notebook shows nothing else (``get(name).show`` returns the page's tables)."""
    module = get(name)
    base = getattr(module, "CONFIG", None)
    cfg = None if base is None else type(base).from_namespace(namespace)
    module.show(cfg, profile=namespace["profile"], force=bool(namespace.get("force", False)))


def all_claims() -> list:
    """Every page's claims, each bound to its page, in claims-page order (``Claim.order``)."""
    out = []
    for name in names():
        for claim in getattr(get(name), "CLAIMS", ()):
            out.append(dataclasses.replace(claim, page=name))
    return sorted(out, key=lambda c: c.order)


def study_configs(kind: type, profile: str) -> list[StudyConfig]:
    """The configs, under ``profile``, of every page whose ``CONFIG`` is a ``kind`` (e.g. every
    pruning page), without duplicates, in page order: for a claim judged over several pages."""
    out: list[StudyConfig] = []
    for name in names():
        module = get(name)
        if isinstance(getattr(module, "CONFIG", None), kind):
            cfg = config(module, profile)
            if cfg not in out:
                out.append(cfg)
    return out
