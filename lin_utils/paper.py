"""The paper's own numbers, stored with their source, weighed by the same rule as ours.

``data/paper/`` holds the numbers of arXiv 2405.12250 that the project uses, one row each with
the table, row and column it comes from (:func:`paper_numbers`); nothing here is typed into prose.
Rows whose value was not available offline are left out of those files, and
:func:`evidence_table` says so.

Table 2 is weighed from the validation-set sizes (``table2_validation_sizes.csv``), **treating
the two models' scores as independent binomial proportions** (the paper reports no per-item
answers, so no paired test is possible): a task's variance is p(1 − p)/n for each model. Where
the per-task scores of a baseline/cosine pair are not stored, the standard error of the mean
difference is bounded above with p(1 − p) ≤ 1/4, so the z it gives is a lower bound, and the
table says how small p(1 − p) would have to be for z to reach the rule's 2. Constant-answer rates
(the score of answering every item alike, :func:`constant_answer_rates`) are computed from the
validation files of the data mirror and stored in ``table2_constant_answers.csv``.

:func:`evidence_table` is what the claims page and the pages concerned show: one row per
weighed number (artifact, what, the paper's value, se, z, MDE, verdict, reason, source).
"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd

from .claims import MDE_Z, NOT_RUN, Evidence, Test, decide
from .paths import REPO_ROOT

__all__ = ["PAPER_DIR", "TASK_SIZES", "constant_answer_rates", "evidence_for", "evidence_table", "paper_numbers",
           "table2_mean_effects", "table2_mean_se"]

#: the tasks of Table 2 whose mean the paper reports (its eight columns)
TABLE2_TASKS = ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "xstorycloze_en")


def paper_dir() -> Path:
    return REPO_ROOT / "data" / "paper"


PAPER_DIR = paper_dir()


def paper_numbers(table: str) -> pd.DataFrame:
    """The stored numbers of the paper's ``table`` ("table1", "table2", "table3"): ``table, row,
    column, value, unit, source, note`` (an empty frame when none was available offline)."""
    return pd.read_csv(paper_dir() / f"{table}.csv", keep_default_na=False, na_values=[""])


def task_sizes() -> dict[str, int]:
    """Validation-set size of each Table 2 task."""
    t = pd.read_csv(paper_dir() / "table2_validation_sizes.csv")
    return dict(zip(t.task, t.n_validation.astype(int)))


TASK_SIZES = task_sizes()


def table2_mean_se(sizes: dict[str, int] | None = None, p: dict[str, tuple[float, float]] | None = None,
                   q: float = 0.25) -> float:
    """Standard error (in points) of the difference of two models' Table 2 means, each task's
    score an independent binomial proportion: sqrt(Σ_t [p_a(1−p_a) + p_b(1−p_b)] / n_t) / T · 100.
    ``p``: each task's two scores (fractions); without them every p(1 − p) is ``q`` (1/4: the
    largest, so the standard error is an upper bound)."""
    sizes = sizes or TASK_SIZES
    var = 0.0
    for t, n in sizes.items():
        if p is not None and t in p:
            a, b = p[t]
            var += (a * (1 - a) + b * (1 - b)) / n
        else:
            var += 2 * q / n
    return 100 * math.sqrt(var) / len(sizes)


def _q_for_z(effect: float, z: float = 2.0, sizes: dict[str, int] | None = None) -> float:
    """The common p(1 − p) at which ``effect`` (points) is exactly ``z`` standard errors."""
    sizes = sizes or TASK_SIZES
    return (effect / 100 * len(sizes) / z) ** 2 / (2 * sum(1 / n for n in sizes.values()))


def table2_mean_effects() -> pd.DataFrame:
    """The paper's cosine − baseline differences of Table 2's mean (points) with their source."""
    t = paper_numbers("table2")
    return t[t.column == "mean"].reset_index(drop=True)


def constant_answer_rates(root: str | Path | None = None) -> pd.DataFrame:
    """The accuracy (%) of answering every item of a Table 2 task with the same label, from the
    validation files of the data mirror (``$LIN_DATA_DIR``): one row per (task, answer) with
    ``n`` (items), ``count`` (items whose gold label is that answer) and ``rate``. ReCoRD has no
    fixed answer set (its choices are each passage's entities) and is left out."""
    from .data import data_dir

    root = Path(root) if root is not None else data_dir()
    if root is None:
        raise FileNotFoundError("LIN_DATA_DIR is not set: the validation files are needed")

    def rows(rel):
        with open(root / rel, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    labels = {
        "boolq": [("yes" if str(r["label"]).lower() == "true" else "no") for r in rows("superglue/BoolQ/val.jsonl")],
        "cb": [r["label"] for r in rows("superglue/CB/val.jsonl")],
        "copa": [f"choice{int(r['label']) + 1}" for r in rows("superglue/COPA/val.jsonl")],
        "multirc": [("true" if int(a["label"]) else "false") for r in rows("superglue/MultiRC/val.jsonl")
                    for q in r["passage"]["questions"] for a in q["answers"]],
        "rte": [r["label"] for r in rows("superglue/RTE/val.jsonl")],
        "wic": [("yes" if str(r["label"]).lower() == "true" else "no") for r in rows("superglue/WiC/val.jsonl")],
        "xstorycloze_en": [f"ending{int(r['answer_right_ending'])}" for r in rows("xstorycloze-en/en_eval.jsonl")],
    }
    out = []
    for task, lab in labels.items():
        for answer, count in sorted(Counter(lab).items()):
            out.append(dict(task=task, answer=answer, n=len(lab), count=count, rate=round(100 * count / len(lab), 2)))
    return pd.DataFrame(out)


def stored_constant_answer_rates() -> pd.DataFrame:
    """:func:`constant_answer_rates` as committed in ``data/paper/table2_constant_answers.csv``."""
    return pd.read_csv(paper_dir() / "table2_constant_answers.csv", keep_default_na=False)


#: how the paper's Table 2 mean difference is tested (the same rule as ours, on the paper's numbers)
PAPER_TABLE2_TEST = Test(
    quantity="the paper's Table 2 mean, cosine − baseline (points), its standard error from the validation-set sizes "
             "with the two models as independent binomials", direction=+1, unit="validation items (binomial)")

COLUMNS = ["artifact", "what", "paper", "se", "z", "mde", "verdict", "reason", "source"]


def _pair_scores(scores: pd.DataFrame, row: str) -> dict[str, tuple[float, float]] | None:
    """Per-task scores (fractions) of the two rows named in a difference row ("A − B"), when the
    file holds every Table 2 task for both; else None."""
    parts = [p.strip() for p in str(row).split("−")]
    if len(parts) != 2:
        return None
    got = {}
    for name in parts:
        r = scores[(scores.row == name) & scores.column.isin(TABLE2_TASKS)].set_index("column").value
        if set(r.index) != set(TABLE2_TASKS):
            return None
        got[name] = r
    return {t: (got[parts[0]][t] / 100, got[parts[1]][t] / 100) for t in TABLE2_TASKS}


def _table2_rows() -> list[dict]:
    rows = []
    scores = paper_numbers("table2")
    for r in table2_mean_effects().itertuples():
        p = _pair_scores(scores, r.row)
        se = table2_mean_se(p=p)
        verdict, reason = decide(PAPER_TABLE2_TEST, Evidence(float(r.value), se, sum(TASK_SIZES.values())))
        if p is None:
            q = _q_for_z(float(r.value))
            p_lo = (1 - math.sqrt(max(0.0, 1 - 4 * q))) / 2
            reason = (f"{reason}; with p(1 − p) ≤ 1/4 the standard error is an upper bound, so z ≥ "
                      f"{r.value / se:.2f}: z would reach 2 only if every task's p(1 − p) were below {q:.2f} "
                      f"(scores outside {100 * p_lo:.0f}–{100 * (1 - p_lo):.0f}%); the per-task scores are not stored")
        else:
            reason = f"{reason}; the standard error from the stored per-task scores"
        rows.append(dict(artifact="Table 2", what=f"mean, {r.row}", paper=float(r.value), se=se, z=r.value / se,
                         mde=MDE_Z * se, verdict=verdict, reason=reason, source=r.source))
    rates = stored_constant_answer_rates()
    for r in scores[scores.column != "mean"].itertuples():
        mine = rates[rates.task == r.column]
        if mine.empty:
            continue
        c = mine.loc[(mine.rate - r.value).abs().idxmin()]  # the nearest constant answer
        p = c["count"] / c["n"]
        se = 100 * math.sqrt(p * (1 - p) / c["n"])
        z = (r.value - c["rate"]) / se
        near = abs(z) <= 2
        rows.append(dict(artifact="Table 2", what=f"{r.column} {r.row} against always \"{c['answer']}\" "
                                                  f"({c['rate']:.2f}%)",
                         paper=float(r.value), se=se, z=z, mde=MDE_Z * se,
                         verdict="at a constant answer" if near else "above a constant answer",
                         reason=(f"{r.value:.2f} is {z:+.2f} standard errors of a binomial with n = {int(c['n']):,} "
                                 f"from the score of answering \"{c['answer']}\" to every item"),
                         source=r.source))
    return rows


def _missing(artifact: str, table: str, what: str) -> list[dict]:
    if len(paper_numbers(table)):
        return []
    return [dict(artifact=artifact, what=what, paper=math.nan, se=math.nan, z=math.nan, mde=math.nan,
                 verdict=NOT_RUN, reason=f"the paper's {artifact} numbers were not available offline: "
                                         f"data/paper/{table}.csv holds no row yet", source="")]


def evidence_table() -> pd.DataFrame:
    """The paper's own evidence weighed by the same rule: one row per number (see the module)."""
    rows = _table2_rows()
    rows += _missing("Table 1", "table1", "fine-tuning deltas, mean ± std over seeds")
    rows += _missing("Table 3", "table3", "judge scores, cosine − baseline")
    return pd.DataFrame(rows, columns=COLUMNS)


def evidence_for(artifact: str) -> str:
    """One sentence for the claims page's column: the paper's own evidence for ``artifact``
    ("Table 2"), or "" when there is none to weigh."""
    t = evidence_table()
    t = t[t.artifact == artifact]
    if t.empty:
        return ""
    if (t.verdict == NOT_RUN).all():
        return t.reason.iloc[0]
    parts = []
    for r in t.itertuples():
        if r.what.startswith("mean"):
            parts.append(f"{r.what}: {r.paper:+.1f} points, se ≤ {r.se:.2f}, z ≥ {r.z:.2f} ({r.verdict})")
    near = t[t.verdict == "at a constant answer"]
    if len(near):
        parts.append(f"{len(near)} of {len(t) - len(parts)} stored scores within 2 standard errors of a constant answer")
    return "; ".join(parts)
