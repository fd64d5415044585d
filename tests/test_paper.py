"""The paper's own numbers (:mod:`lin_utils.paper`): stored with their source, weighed by the same
rule as ours (issue 23, "Beyond the paper")."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import pytest

from lin_utils import paper
from lin_utils.claims import INCONCLUSIVE, NOT_RUN


def test_every_stored_number_names_its_table_row_and_source():
    for name in ("table1", "table2", "table3"):
        t = paper.paper_numbers(name)
        assert list(t.columns) == ["table", "row", "column", "value", "unit", "source", "note"]
        assert t.source.str.contains("2405.12250").all() and t.row.notna().all()
    t2 = paper.paper_numbers("table2")
    assert set(t2.column) == {"boolq", "multirc", "mean"}


def test_validation_sizes():
    assert paper.TASK_SIZES == {"boolq": 3270, "cb": 56, "copa": 100, "multirc": 4848, "record": 10000, "rte": 277,
                                "wic": 638, "xstorycloze_en": 1511}


def test_mean_se_of_independent_binomials():
    s = sum(1 / n for n in paper.TASK_SIZES.values())
    assert paper.table2_mean_se() == pytest.approx(100 * math.sqrt(2 * 0.25 * s) / 8)
    p = {t: (0.6, 0.7) for t in paper.TASK_SIZES}
    assert paper.table2_mean_se(p=p) == pytest.approx(100 * math.sqrt((0.24 + 0.21) * s) / 8)
    assert paper.table2_mean_se(p=p) < paper.table2_mean_se()  # 1/4 bounds p(1 - p): an upper bound
    q = paper._q_for_z(2.7)
    assert 2.7 / paper.table2_mean_se(q=q) == pytest.approx(2.0)


def test_constant_answer_rates_are_stored_as_computed():
    stored = paper.stored_constant_answer_rates().set_index(["task", "answer"])
    assert stored.at[("boolq", "no"), "rate"] == 37.83 and stored.at[("multirc", "false"), "rate"] == 57.20
    assert stored.at[("boolq", "no"), "n"] == 3270 and stored.at[("multirc", "false"), "n"] == 4848
    root = os.environ.get("LIN_DATA_DIR")
    if not root or not (Path(root) / "superglue" / "BoolQ" / "val.jsonl").is_file():
        pytest.skip("the data mirror is not here")
    fresh = paper.constant_answer_rates(root)
    pd.testing.assert_frame_equal(fresh.reset_index(drop=True), paper.stored_constant_answer_rates(),
                                  check_dtype=False)


def test_the_papers_evidence_by_the_same_rule():
    e = paper.evidence_table()
    mean = e[(e.artifact == "Table 2") & e.what.str.startswith("mean")].set_index("paper")
    assert mean.loc[2.7, "z"] == pytest.approx(2.7 / paper.table2_mean_se())
    assert mean.loc[2.7, "z"] == pytest.approx(1.65, abs=0.01)
    assert (mean.verdict == INCONCLUSIVE).all() and mean.loc[2.7, "mde"] > 2.7
    near = e[e.what.str.startswith("boolq")]
    assert list(near.verdict) == ["at a constant answer"] * 2 and near.z.tolist() == pytest.approx([1.19, 1.84], abs=0.01)
    assert "\"no\"" in near.what.iloc[0]
    missing = e[e.artifact.isin(["Table 1", "Table 3"])]
    assert list(missing.verdict) == [NOT_RUN, NOT_RUN] and missing.reason.str.contains("not available offline").all()


def test_evidence_for_the_claims_page():
    assert paper.evidence_for("Table 2").startswith("mean, 650M cosine − 650M baseline: +2.7 points, se ≤ 1.64, z ≥ 1.65")
    assert "not available offline" in paper.evidence_for("Table 3")
    assert paper.evidence_for("Fig 1") == ""


def test_stored_per_task_rows_replace_the_upper_bound(monkeypatch):
    t = paper.paper_numbers("table2")
    extra = [dict(table="Table 2", row=name, column=task, value=v, unit="accuracy (%)", source="arXiv 2405.12250 test",
                  note="") for name, v in (("650M cosine", 62.7), ("650M baseline", 60.0)) for task in paper.TABLE2_TASKS]
    monkeypatch.setattr(paper, "paper_numbers", lambda name: pd.concat([t, pd.DataFrame(extra)], ignore_index=True)
                        if name == "table2" else pd.DataFrame())
    rows = [r for r in paper._table2_rows() if r["paper"] == 2.7]
    p = {task: (0.627, 0.600) for task in paper.TABLE2_TASKS}
    assert rows[0]["se"] == pytest.approx(paper.table2_mean_se(p=p)) and "per-task scores" in rows[0]["reason"]
