"""Numbers and tables that the book's text shows, computed from result tables.

Notebooks glue these values (myst-nb ``glue``) so that every number in their prose is read
from results, never typed in.
"""
from __future__ import annotations

import numbers

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
