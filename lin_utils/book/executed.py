"""The executed pages of a profile, read back: titles, glued figures, labels (the landing page's cards)."""
from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

from PIL import Image

from .. import paths, runner, site
from .glue import FIGURE

__all__ = ["executed_page", "figure_label", "glued_png", "has_label", "page_title", "thumbnail"]

THUMB_WIDTH = 600  # px, the landing page's thumbnails


def _pages_dirs() -> list[Path]:
    """Where the executed pages are: this run's staging folder first (``$LIN_PAGES_DIRS``, set
    by the runner), then ``book/notebooks``."""
    dirs = [Path(p) for p in os.environ.get(runner.PAGES_ENV, "").split(os.pathsep) if p]
    return dirs + [paths.book_dir() / "notebooks"]


def executed_page(name: str, profile: str) -> dict | None:
    """The executed notebook ``name`` of ``profile`` (as JSON), newest first; None if there is none."""
    for folder in _pages_dirs():
        path = folder / f"{name}.ipynb"
        if path.is_file() and site.page_profile(path) == profile:
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
    return None


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def page_title(nb: dict) -> str | None:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in _source(cell).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


def glued_png(nb: dict, key: str = FIGURE) -> bytes | None:
    """The PNG an executed notebook glued under ``key``."""
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            scrap = (out.get("metadata") or {}).get("scrapbook") or {}
            mime = scrap.get("mime_prefix", "") + "image/png"
            if scrap.get("name") == key and mime in out.get("data", {}):
                data = out["data"][mime]
                return base64.b64decode("".join(data) if isinstance(data, list) else data)
    return None


def figure_label(name: str) -> str:
    """The label a figure page gives its figure (``:name:`` of its ``{glue:figure}``)."""
    return f"{name}-figure"


def has_label(nb: dict | None, label: str) -> bool:
    return nb is not None and any(
        cell.get("cell_type") == "markdown" and f":name: {label}" in _source(cell) for cell in nb.get("cells", [])
    )


def thumbnail(png: bytes, width: int = THUMB_WIDTH) -> bytes:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
