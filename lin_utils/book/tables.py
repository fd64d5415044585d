"""Tables for the text column: MyST pipe tables, per-model summaries and full tables cut to fit.

Each summary table carries its column formats in ``attrs["formats"]`` for :func:`md_table`.
"""
from __future__ import annotations

import html
import numbers

import numpy as np
import pandas as pd

__all__ = ["md_table", "per_model", "tables_by_model", "cell_text"]


def _kind(grp: pd.DataFrame) -> str:
    row = grp.iloc[0]
    if "arch" not in grp or "trained" not in grp:
        return ""
    return f"{'trained' if row['trained'] else 'random'} {row['arch']}"


def _model_cell(model: str, kind: str) -> str:
    """A model's name with its kind in small type below it (one table column for both)."""
    return f"{model}<br><small>{html.escape(kind)}</small>" if kind else model


def per_model(table: pd.DataFrame, columns, formats: dict) -> pd.DataFrame:
    rows = [{"model": _model_cell(model, _kind(grp)), **columns(grp)}
            for model, grp in table.groupby("model", sort=False)]
    out = pd.DataFrame(rows)
    out.attrs["formats"] = formats
    return out


def cell_text(value, spec=None) -> str:
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
        lines.append("| " + " | ".join(esc(cell_text(v, formats.get(c))) for c, v in zip(columns, row)) + " |")
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
        facts = ", ".join(f"{c} = {cell_text(rest[c].iloc[0], formats.get(c))}" for c in constant)
        rest = rest.drop(columns=constant)
        rest = rest.rename(columns=lambda c: str(c).replace("_", " "))
        head = f"**{model}**" + (f" ({kind})" if kind else "") + (f": {facts}" if facts else "")
        fmts = {str(k).replace("_", " "): v for k, v in formats.items()}
        parts.append(head + "\n\n" + "\n\n".join(md_table(part, fmts) for part in _column_slices(rest, max_columns)))
    return "\n\n".join(parts)
