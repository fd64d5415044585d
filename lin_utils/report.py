"""Numbers and tables that the book's text shows, computed from result tables, and the pieces
every page shares.

Notebooks glue these values (myst-nb ``glue``) so that every number in their prose is read
from results, never typed in. A figure page ends its code with one call, :func:`figure_page`:
it glues the figure, the numbers, a compact summary table and the full table for the page's
prose to place, and shows how to re-run the page with links to its result tables
(:func:`reproduce`). :func:`claims_page` and :func:`landing_page` do the same for the claims
page and the book's landing page.
"""
from __future__ import annotations

import html
import json
import numbers
import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import claims


class _Text:
    """A string that IPython shows without quotes, so ``{glue:text}`` prints it verbatim."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _with_verdicts(numbers_: dict, table: pd.DataFrame, **judges) -> dict:
    out = dict(numbers_)
    for key, judge in judges.items():
        out[f"verdict_{key}"] = judge(table)[1]
    return out


def fig1_numbers(table: pd.DataFrame) -> dict:
    out = _with_verdicts(claims.fig1_numbers(table), table, score=claims.judge_score, nores=claims.judge_nores)
    trained, random = out["score_mean"], out["random_score_mean"]
    if pd.isna(random):
        out["training_effect"] = "not measured here (no random-init model in this profile)"
    elif random > trained:
        out["training_effect"] = "less linear than at initialisation, the direction of the paper's Figure 2 (linearity falls during pretraining)"
    else:
        out["training_effect"] = "at least as linear as at initialisation, unlike the paper's Figure 2 (linearity falls during pretraining)"
    return out


def fig3_numbers(table: pd.DataFrame) -> dict:
    return _with_verdicts(claims.fig3_numbers(table), table, norms=claims.judge_norms)


def fig9_numbers(table: pd.DataFrame) -> dict:
    return _with_verdicts(claims.fig9_numbers(table), table, tail=claims.judge_tail)


def glue_numbers(prefix: str, values: dict) -> dict:
    """Glue each value as ``{prefix}_{key}`` (numbers as plain Python floats, text unquoted)."""
    from myst_nb import glue

    glued = {}
    for key, value in values.items():
        value = float(value) if isinstance(value, numbers.Real) else _Text(str(value))
        glue(f"{prefix}_{key}", value, display=False)
        glued[f"{prefix}_{key}"] = value
    return glued


def show_table(table: pd.DataFrame, columns: list[str], precision: int = 3):
    """Display selected columns as an HTML table without the index."""
    from IPython.display import display

    display(table[columns].style.format(precision=precision, thousands=",").hide(axis="index"))


def show_claims(table: pd.DataFrame):
    """Display the claims table with its verdicts coloured."""
    from IPython.display import display

    colours = {claims.REPLICATED: "#d4edda", claims.PARTLY: "#fff3cd", claims.NOT_REPLICATED: "#f8d7da", claims.NOT_RUN: "#e2e3e5"}
    styled = table.style.hide(axis="index").map(lambda v: f"background-color: {colours.get(v, '')}", subset=["verdict"])
    display(styled)


# -------------------------------------------------------------------------------------------------
# Summary tables: a few rows a reader needs (one per model), formatted for the text column. Each
# carries its column formats in ``attrs["formats"]`` for :func:`md_table`.


def _kind(grp: pd.DataFrame) -> str:
    row = grp.iloc[0]
    if "arch" not in grp or "trained" not in grp:
        return ""
    return f"{'trained' if row['trained'] else 'random'} {row['arch']}"


def _model_cell(model: str, kind: str) -> str:
    """A model's name with its kind in small type below it (one table column for both)."""
    return f"{model}<br><small>{html.escape(kind)}</small>" if kind else model


def _per_model(table: pd.DataFrame, columns, formats: dict) -> pd.DataFrame:
    rows = [{"model": _model_cell(model, _kind(grp)), **columns(grp)}
            for model, grp in table.groupby("model", sort=False)]
    out = pd.DataFrame(rows)
    out.attrs["formats"] = formats
    return out


def fig1_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: tokens n, width d, chance d/(n−1), mean score with and without the residual."""
    return _per_model(table, lambda g: {
        "n": g.n_tokens.min(), "d": g.d.max(), "chance": g.chance.max(),
        "with residual": g.score.mean(), "without": g.score_nores.mean(),
        "without, held out": g.heldout_nores.mean(),
    }, {"n": ",d", "d": ",d"})


def fig3_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: the block-output / residual-stream norm ratio over blocks, and the mean cosine."""
    return _per_model(table, lambda g: {
        "ratio, median": g.norm_ratio.median(), "min": g.norm_ratio.min(), "max": g.norm_ratio.max(),
        "blocks below 1": float((g.norm_ratio < 1).mean()), "mean cosine": g.cosine.mean(),
    }, {"ratio, median": ".2f", "min": ".2f", "max": ".2f", "blocks below 1": ".0%", "mean cosine": ".3f"})


def fig9_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Per model (medians over blocks): the error's median, its tail p99.9 / median, the Gaussian's."""
    return _per_model(summary, lambda g: {
        "tokens": g.n_tokens.min(), "median error": g["median"].median(),
        "tail p99.9/median": g.tail_ratio.median(), "Gaussian tail": g.gauss_tail_ratio.median(),
        "excess": g.excess_tail.median(),
    }, {"tokens": ",d", "median error": ".3f", "tail p99.9/median": ".2f", "Gaussian tail": ".2f",
        "excess": ".2f"})


# -------------------------------------------------------------------------------------------------
# Page pieces. Every figure page is one pattern (README, "How to add a figure"): its prose places
# the glued figure, numbers and tables; its code cell ends with one call to figure_page.

FIGURE, SUMMARY, TABLE = "figure", "summary", "table"  # the glue keys every figure page places
FIGURE_DPI = 200  # 7 in -> 1400 px, shown at the column's ~700 px: sharp on high-density screens
THUMB_WIDTH = 600  # px, the landing page's thumbnails
VERDICT_COLOURS = {claims.REPLICATED: "#cde8d4", claims.PARTLY: "#fbeab4",
                   claims.NOT_REPLICATED: "#f5ccd0", claims.NOT_RUN: "#e2e3e5"}


def _cell_text(value, spec=None) -> str:
    """One table cell as text: ``spec`` a format spec or a function; blanks for missing values."""
    try:
        if pd.isna(value):
            return "—"
    except (TypeError, ValueError):
        pass
    if callable(spec):
        return str(spec(value))
    if spec:
        return format(value, spec)
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if isinstance(value, numbers.Real):
        return f"{value:.3f}"
    return str(value)


def md_table(df: pd.DataFrame, formats: dict | None = None) -> str:
    """``df`` as a MyST (pipe) table: text left, numbers right-aligned, no index.

    ``formats`` maps a column to a format spec (``".2f"``, ``",d"``, ``".0%"``) or a function;
    the default is ``df.attrs["formats"]``, then 3 decimals for floats and thousands separators
    for integers.
    """
    formats = {**df.attrs.get("formats", {}), **(formats or {})}
    columns = list(df.columns)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in columns]

    def esc(text) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in columns) + " |",
             "|" + "|".join("---:" if n else ":---" for n in numeric) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(esc(_cell_text(v, formats.get(c))) for c, v in zip(columns, row)) + " |")
    return "\n".join(lines)


def _column_slices(df: pd.DataFrame, max_columns: int) -> list[pd.DataFrame]:
    """``df`` cut into tables of at most ``max_columns`` columns, each repeating the key columns:
    the leading columns that are not floats (``block``; ``task``, ``seed``)."""
    keys = 0
    while keys < len(df.columns) - 1 and not pd.api.types.is_float_dtype(df[df.columns[keys]]):
        keys += 1
    values = list(df.columns[keys:])
    if len(df.columns) <= max_columns or keys >= max_columns:
        return [df]
    width = max_columns - keys
    n = -(-len(values) // width)
    size = -(-len(values) // n)  # even slices
    return [df[list(df.columns[:keys]) + values[i:i + size]] for i in range(0, len(values), size)]


def tables_by_model(table: pd.DataFrame, formats: dict | None = None, max_columns: int = 9) -> str:
    """The full table, one :func:`md_table` per model under the model's name and kind.

    Columns that hold one value for the whole model (``n_tokens``, ``d``, ``chance``...) move
    into that heading, and underscores in column names become spaces so that headers can wrap:
    the rest fits the text column. A model's table with more than ``max_columns`` columns is cut
    into several (:func:`_column_slices`).
    """
    if "model" not in table:
        return md_table(table, formats)
    formats = {**table.attrs.get("formats", {}), **(formats or {})}
    parts = []
    for model, grp in table.groupby("model", sort=False):
        kind = _kind(grp)
        rest = grp.drop(columns=[c for c in ("model", "arch", "trained") if c in grp])
        constant = [c for c in rest.columns if c != "block" and len(rest) > 1 and rest[c].nunique(dropna=False) == 1]
        facts = ", ".join(f"{c} = {_cell_text(rest[c].iloc[0], formats.get(c))}" for c in constant)
        rest = rest.drop(columns=constant)
        rest = rest.rename(columns=lambda c: str(c).replace("_", " "))
        head = f"**{model}**" + (f" ({kind})" if kind else "") + (f": {facts}" if facts else "")
        fmts = {str(k).replace("_", " "): v for k, v in formats.items()}
        parts.append(head + "\n\n" + "\n\n".join(md_table(part, fmts) for part in _column_slices(rest, max_columns)))
    return "\n\n".join(parts)


def glue_markdown(key: str, text: str) -> None:
    """Glue MyST text for ``{glue:md} key`` with ``:format: myst`` (tables, links, directives)."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(key, Markdown(text), display=False)


def figure_png(fig, dpi: int = FIGURE_DPI) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def glue_figure(fig, key: str = FIGURE) -> bytes:
    """Glue ``fig`` as a PNG for ``{glue:figure} key`` and close it (so it is not shown twice)."""
    import matplotlib.pyplot as plt
    from IPython.display import Image
    from myst_nb import glue

    png = figure_png(fig)
    glue(key, Image(data=png, format="png"), display=False)
    plt.close(fig)
    return png


def _pages_depth() -> str:
    from . import site

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
    from . import paths, results, runner, site

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
    from IPython.display import Markdown, display

    from . import site

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
    The page's markdown places them (see ``notebooks/fig1_linearity_profiles.ipynb``)::

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


# -------------------------------------------------------------------------------------------------
# The claims page and the landing page


def _pages_dirs() -> list[Path]:
    """Where the executed pages are: this run's staging folder first (``$LIN_PAGES_DIRS``, set
    by the runner), then ``book/notebooks``."""
    from . import paths, runner

    dirs = [Path(p) for p in os.environ.get(runner.PAGES_ENV, "").split(os.pathsep) if p]
    return dirs + [paths.book_dir() / "notebooks"]


def executed_page(name: str, profile: str) -> dict | None:
    """The executed notebook ``name`` of ``profile`` (as JSON), newest first; None if there is none."""
    from . import site

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
    import base64

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


def _has_label(nb: dict | None, label: str) -> bool:
    return nb is not None and any(
        cell.get("cell_type") == "markdown" and f":name: {label}" in _source(cell) for cell in nb.get("cells", [])
    )


def _verdict(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "")
    return (f'<span class="lin-verdict" style="background:{colour};padding:0.1em 0.4em;border-radius:0.25em;'
            f'display:inline-block;font-weight:600">{html.escape(verdict)}</span>')


def _evidence(row, profile: str) -> str:
    """The claim's artifact, linked to the figure on its page (or to the page) when there is one."""
    name = row["notebook"]
    if not name:
        return str(row["artifact"])
    if _has_label(executed_page(name, profile), figure_label(name)):
        return f"{{ref}}`{row['artifact']} <{figure_label(name)}>`"
    return f"{{doc}}`{row['artifact']} <{name}>`"


def claims_markdown(table: pd.DataFrame, profile: str, *, compact: bool = False) -> str:
    """The claims table as MyST: each claim linked to its evidence, the verdict coloured.

    The full table puts the verdict next to the evidence, where a narrow screen still shows it;
    ``compact`` (the landing page): evidence, claim and verdict of the claims that were judged.
    """
    rows = table if not compact else table[table.verdict != claims.NOT_RUN]
    out = pd.DataFrame({"evidence": [_evidence(r, profile) for _, r in rows.iterrows()]})
    verdicts = [_verdict(v) for v in rows.verdict]
    if compact:
        out["claim"], out["verdict"] = rows.claim.to_numpy(), verdicts
    else:
        out["verdict"], out["claim"] = verdicts, rows.claim.to_numpy()
        out["paper"], out["ours"] = rows.paper.to_numpy(), rows.ours.to_numpy()
    return md_table(out)


def claims_headline(table: pd.DataFrame, profile: str) -> str:
    """One sentence: how many of the judged claims replicated at this profile."""
    counts = table.verdict.value_counts()
    judged = int(len(table) - counts.get(claims.NOT_RUN, 0))
    parts = [f"**{counts.get(v, 0)} {v}**" for v in (claims.REPLICATED, claims.PARTLY, claims.NOT_REPLICATED)]
    pending = int(counts.get(claims.NOT_RUN, 0))
    text = (f"At the `{profile}` profile this book tests {judged} of the paper's {len(table)} claims: "
            f"{parts[0]}, {parts[1]}, {parts[2]}.")
    if pending:
        text += f" The other {pending} are *not run* yet: later parts of the project add their experiments."
    return text


def claims_page(profile: str) -> pd.DataFrame:
    """The claims page: glues ``claims`` (the table), ``rules`` (how each verdict is decided) and
    ``headline``; then the re-run commands and the tables the verdicts read."""
    table = claims.claims_table(profile)
    glue_markdown("headline", claims_headline(table, profile))
    glue_markdown("claims", claims_markdown(table, profile))
    rules = [f"- **{r.artifact}**, {r.claim[0].lower()}{r.claim[1:]}: {r.rule}." for r in table.itertuples()
             if r.rule != "pending"]
    glue_markdown("rules", "\n".join(rules))
    reproduce("claims", profile)
    return table


def landing_page(profile: str, name: str = "intro") -> pd.DataFrame:
    """The landing page: glues ``headline``, ``verdicts`` (the judged claims, from the same
    :func:`lin_utils.claims.claims_table` as the claims page) and ``figures`` (a linked thumbnail
    of each figure page of this profile, read from the executed pages)."""
    from IPython.display import Image
    from myst_nb import glue

    from . import runner

    table = claims.claims_table(profile)
    glue_markdown("headline", claims_headline(table, profile))
    glue_markdown("verdicts", claims_markdown(table, profile, compact=True))
    cards = []
    for page in runner.run_order():
        nb = executed_page(page, profile) if page not in (name, "claims") else None
        png = glued_png(nb) if nb else None
        if png is None:
            continue
        glue(f"thumb_{page}", Image(data=_thumbnail(png), format="png"), display=False)
        title = page_title(nb) or page
        cards.append(f":::{{grid-item-card}} {title}\n:link: {page}\n:link-type: doc\n\n"
                     f"```{{glue}} thumb_{page}\n```\n:::")
    grid = ("::::{grid} 1 2 3 3\n:gutter: 2\n\n" + "\n\n".join(cards) + "\n::::" if cards
            else "*No figure page has run at this profile yet.*")
    glue_markdown("figures", grid)
    reproduce(name, profile)
    return table


def _thumbnail(png: bytes, width: int = THUMB_WIDTH) -> bytes:
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# -------------------------------------------------------------------------------------------------
# Section 4: the model zoo, Fig 2, Fig 4


def zoo_numbers(summary: pd.DataFrame) -> dict:
    """Validation loss of each regularized model minus its size's baseline, and the reference's bpb."""
    zoo = summary[summary.variant != "reference"]
    base = zoo[zoo.variant == "baseline"].set_index("size")
    deltas = [row.val_loss - base.loc[row.size, "val_loss"] for row in zoo.itertuples()
              if row.variant != "baseline" and row.size in base.index]
    ref = summary[summary.variant == "reference"]
    return dict(n_models=len(zoo), tokens_min=zoo.tokens.min(), tokens_max=zoo.tokens.max(),
                best_bpb=zoo.val_bpb.min(), worst_bpb=zoo.val_bpb.max(),
                delta_min=min(deltas) if deltas else np.nan, delta_max=max(deltas) if deltas else np.nan,
                reference_bpb=float(ref.val_bpb.iloc[0]) if len(ref) else np.nan,
                reference=str(ref.model.iloc[0]) if len(ref) else "none")


def zoo_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Per model: size, regularizer, λ, parameters, tokens, validation loss and bits per byte."""
    out = pd.DataFrame({
        "model": summary.model.str.replace("zoo:", "", regex=False),
        "regularizer": [f"{r} {lam:g}" if r != "none" else "none" for r, lam in zip(summary.regularizer, summary.reg_lambda)],
        "parameters": summary.n_params, "tokens": summary.tokens,
        "val loss": summary.val_loss, "bits / byte": summary.val_bpb,
    })
    out.attrs["formats"] = {"parameters": ",.0f", "tokens": ",.0f", "val loss": ".3f", "bits / byte": ".3f"}
    return out


def fig2_numbers(table: pd.DataFrame) -> dict:
    return _with_verdicts(claims.fig2_numbers(table), table, dynamics=claims.judge_dynamics)


def fig2_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean score with and without the residual at the first and last checkpoint."""
    rows = []
    for model, g in table.sort_values("step").groupby("model", sort=False):
        first, last = g.iloc[0], g.iloc[-1]
        rows.append({"model": model.replace("zoo:", ""), "checkpoints": len(g), "last step": int(last.step),
                     "score at init": first.score, "score, last": last.score,
                     "no residual at init": first.score_nores, "no residual, last": last.score_nores})
    out = pd.DataFrame(rows)
    out.attrs["formats"] = {"checkpoints": "d", "last step": ",d"}
    return out


def fig4_numbers(table: pd.DataFrame) -> dict:
    return _with_verdicts(claims.fig4_numbers(table), table, regularizer=claims.judge_regularizer)


# -------------------------------------------------------------------------------------------------
# Beyond the paper: the scaling study (the `scaling` page)


def scaling_numbers(tables: dict) -> dict:
    """The scaling page's prose numbers (:func:`lin_utils.claims.scaling_numbers`) and its verdict."""
    return _with_verdicts(claims.scaling_numbers(tables), tables, scaling=claims.judge_scaling)


def scaling_summary(tables: dict) -> pd.DataFrame:
    """Per trained model and its random-init copy: validation loss, mean score with and without the
    residual, and the geometric means over blocks of the identity's three quantities.

    The model's name carries its family, shape and token budget (``grid-mistral-L4-d64@1499136``),
    so those are not repeated as columns: the table fits the text column.
    """
    m = tables["models"]
    out = pd.DataFrame({
        "model": m.model, "val loss": m.val_loss, "score": m.score, "score, no residual": m.score_nores,
        "held-out": m.heldout, "1 − score": m.gm_one_minus_score, "1 − score, no residual": m.gm_one_minus_nores,
        "‖B_c‖² / ‖Y_c‖²": m.gm_ratio_sq,
    })
    out.attrs["formats"] = {"val loss": ".3f", "score": ".3f", "score, no residual": ".3f", "held-out": ".3f",
                            "1 − score": ".4f", "1 − score, no residual": ".3f", "‖B_c‖² / ‖Y_c‖²": ".4f"}
    return out


SCALING_QUANTITIES = {"one_minus_score": "1 − score", "one_minus_nores": "1 − score, no residual",
                      "ratio_sq": "‖B_c‖² / ‖Y_c‖²"}


def scaling_fit_table(tables: dict) -> pd.DataFrame:
    """The fitted coefficients with standard errors, one row per (fit, init, quantity)."""
    f = tables["fit"]
    rows = []
    for (fit, init, target), g in f.groupby(["fit", "init", "target"], sort=False):
        g = g.set_index("term")
        row = {"fit": f"{fit}, {init}", "quantity": SCALING_QUANTITIES.get(target, target),
               "n": int(g.n.iloc[0]), "R²": float(g.r2.iloc[0])}
        for term in g.index:
            row[term.replace("_", " ").replace("width", "d")] = f"{g.loc[term, 'coef']:+.3f} ± {g.loc[term, 'se']:.3f}"
        rows.append(row)
    return pd.DataFrame(rows).fillna("")
