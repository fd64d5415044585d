"""What every page shows besides its prose: glued numbers, figures and tables, and how to re-run it.

Notebooks glue these values (myst-nb ``glue``) so that every number in their prose is read from
results, never typed in. A figure page ends its code with one call, :func:`figure_page`: it glues
the figure, the numbers, a compact summary table and the full table for the page's prose to place,
and shows how to re-run the page with links to its result tables (:func:`reproduce`).
"""
from __future__ import annotations

import html
import io
import json
import numbers
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from .. import paths, results, runner, site
from .tables import md_table, tables_by_model

__all__ = ["FIGURE", "SUMMARY", "TABLE", "figure_page", "figure_png", "glue_figure", "glue_markdown",
           "glue_numbers", "reproduce", "reproduce_markdown"]

FIGURE, SUMMARY, TABLE = "figure", "summary", "table"  # the glue keys every figure page places
FIGURE_DPI = 200  # 7 in -> 1400 px, shown at the column's ~700 px: sharp on high-density screens


class _Text:
    """A string that IPython shows without quotes, so ``{glue:text}`` prints it verbatim."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def glue_numbers(prefix: str, values: dict) -> dict:
    """Glue each value as ``{prefix}_{key}`` (numbers as plain Python floats, text unquoted)."""
    from myst_nb import glue  # heavy (Sphinx): only where a page glues

    glued = {}
    for key, value in values.items():
        value = float(value) if isinstance(value, numbers.Real) else _Text(str(value))
        glue(f"{prefix}_{key}", value, display=False)
        glued[f"{prefix}_{key}"] = value
    return glued


def glue_markdown(key: str, text: str) -> None:
    """Glue MyST text for ``{glue:md} key`` with ``:format: myst`` (tables, links, directives)."""
    from IPython.display import Markdown  # notebook kernels only
    from myst_nb import glue  # heavy (Sphinx): only where a page glues

    glue(key, Markdown(text), display=False)


def figure_png(fig, dpi: int = FIGURE_DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def glue_figure(fig, key: str = FIGURE) -> bytes:
    """Glue ``fig`` as a PNG for ``{glue:figure} key`` and close it (so it is not shown twice)."""
    from IPython.display import Image  # notebook kernels only
    from myst_nb import glue  # heavy (Sphinx): only where a page glues

    png = figure_png(fig)
    glue(key, Image(data=png, format="png"), display=False)
    plt.close(fig)
    return png


def _pages_depth() -> str:
    return "../" * len(Path(site.PAGES_DIR).parts)


def _file_label(meta_path: Path) -> str:
    try:
        meta = json.loads(Path(meta_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    params = meta.get("params") or {}
    what = f"{meta.get('computation', '')}/{meta.get('table', '')}"
    model = params.get("model")
    return f"{model}: {what}" if model else what


def reproduce_markdown(name: str, profile: str,
                       files: list[tuple[Path, Path]] | None = None) -> tuple[str, list[str]]:
    """The end of page ``name``: how to re-run it and links to the result tables it used.

    The commands come from :func:`lin_utils.runner.reproduce_commands`; the tables are ``files``
    (default: every table this process loaded, :func:`lin_utils.results.files_read`), each CSV
    with its provenance JSON. Returns the markdown and those files, relative to the result cache.
    """
    pairs = results.files_read() if files is None else files
    root = paths.results_root().resolve()
    downloads, items = [], []
    for csv_path, json_path in pairs:
        try:
            rel_csv = Path(csv_path).resolve().relative_to(root).as_posix()
            rel_json = Path(json_path).resolve().relative_to(root).as_posix()
        except ValueError:  # outside the result cache: nothing the build can copy
            continue
        downloads += [rel_csv, rel_json]
        base = f"{_pages_depth()}{site.DOWNLOADS_DIR}/"
        label = html.escape(_file_label(json_path))
        items.append(f'<li><a href="{html.escape(base + rel_csv)}" download>{html.escape(Path(rel_csv).name)}</a>'
                     f' {label} · <a href="{html.escape(base + rel_json)}" download>provenance (JSON)</a></li>')
    commands = "\n".join(runner.reproduce_commands(name, profile))
    text = (f"From the repository root, with the book's runner or with papermill alone (profile `{profile}`; "
            "`--force`, or `force: true`, recomputes instead of reading the result cache):\n\n"
            f"```bash\n{commands}\n```\n")
    if items:
        text += ("\nThe result tables this page read, each CSV with its provenance "
                 "(parameters, commit, versions, hardware):\n\n<ul>\n" + "\n".join(items) + "\n</ul>\n")
    return text, downloads


def reproduce(name: str, profile: str, files: list[tuple[Path, Path]] | None = None) -> dict:
    """Show :func:`reproduce_markdown` as the page's last output. Its metadata lists the files,
    so that the book's build copies them next to the page (:func:`lin_utils.site.stage_downloads`);
    returns that metadata."""
    from IPython.display import Markdown, display  # notebook kernels only

    text, downloads = reproduce_markdown(name, profile, files)
    meta = {site.PAGE_METADATA: {"downloads": downloads}}
    display(Markdown(text), metadata=meta)
    return meta


def figure_page(name: str, profile: str, fig, *, numbers: dict | None = None, summary: pd.DataFrame | None = None,
                table: pd.DataFrame | None = None, formats: dict | None = None, prefix: str | None = None) -> None:
    """Everything a figure page shows besides its prose, in one call (the last line of its code).

    Glues ``fig`` as ``figure``, the prose's ``numbers`` as ``<prefix>_<key>`` (prefix: the
    notebook name up to its first ``_``, e.g. ``fig1``), the compact ``summary`` table as
    ``summary`` and the full ``table`` (one table per model, ``formats`` per column) as ``table``;
    then shows how to re-run the page and links to its result tables (:func:`reproduce`).
    The page's markdown places them (see any figure notebook, README "How to add a figure")::

        ```{glue:figure} figure
        :name: <name>-figure
        ```
        ```{glue:md} summary
        :format: myst
        ```
    """
    if fig is not None:
        glue_figure(fig)
    if numbers:
        glue_numbers(prefix or name.split("_")[0], numbers)
    if summary is not None:
        glue_markdown(SUMMARY, md_table(summary) if isinstance(summary, pd.DataFrame) else str(summary))
    if table is not None:
        glue_markdown(TABLE, tables_by_model(table, formats))
    reproduce(name, profile)
