"""``process_docs`` and helper functions for the project's lm-evaluation-harness task files.

The task YAMLs in this folder mirror lm-eval's built-in tasks (prompts, choices, targets, metrics)
but read the local data mirror (``$LIN_DATA_DIR``) with ``dataset_path: json``. The mirror keeps
the original file formats, which differ from the Hugging Face hub rows the built-in tasks expect;
the ``process_*`` functions below convert the mirror's rows to the hub's layout, so the built-in
prompt templates apply unchanged:

- SuperGLUE labels are strings (``"true"``, ``"entailment"``) or booleans (FewGLUE); the hub has
  integers in its ``ClassLabel`` order (boolq/wic: false=0, true=1; cb: entailment=0,
  contradiction=1, neutral=2; rte: entailment=0, not_entailment=1).
- MultiRC files hold passages with nested questions and answers; the hub (and the task) has one
  row per answer: ``paragraph, question, answer, label, idx``.
- ReCoRD files hold passages with entity *spans* (end inclusive) and several queries; the task
  needs one row per query with entity and answer *strings*.
- ARC files nest ``question.stem`` and ``question.choices``; the hub has ``question`` (a string)
  and ``choices = {"text": [...], "label": [...]}``.

lm-eval loads this module by file path from each generated task folder (see
:func:`lin_utils.evaluate.harness.write_task_dir`) through a one-line shim, so the functions live
here once. Only ``datasets`` and the standard library are used.
"""

from __future__ import annotations

import collections
import functools
import re
import string
from typing import Any, Callable

import numpy as np

__all__ = [
    "process_boolq", "process_cb", "process_rte", "process_wic", "process_multirc",
    "process_record", "process_record_hub", "process_arc",
    "copa_doc_to_text", "copa_doc_to_target", "copa_doc_to_choice",
    "record_doc_to_text", "record_doc_to_target", "record_doc_to_choice",
    "record_process_results", "cb_multi_f1", "squad_f1", "squad_exact",
]

CB_LABELS = ("entailment", "contradiction", "neutral")  # aps/super_glue ClassLabel order
RTE_LABELS = ("entailment", "not_entailment")


def _as_bool_int(value: Any) -> int:
    """``"true"``/``"false"`` (val files), ``True``/``False`` (FewGLUE) or 0/1 -> 1/0."""
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1"):
            return 1
        if low in ("false", "0"):
            return 0
        raise ValueError(f"not a boolean label: {value!r}")
    return int(bool(value))


def _as_class_int(value: Any, names: tuple[str, ...]) -> int:
    if isinstance(value, str):
        try:
            return names.index(value.strip().lower())
        except ValueError:
            raise ValueError(f"label {value!r} is not one of {names}") from None
    return int(value)


_CONVERTED: dict[tuple[str, str], Any] = {}


def _once_per_dataset(process: Callable) -> Callable:
    """Convert each dataset once per process: lm-eval calls ``process_docs`` on the whole split
    every time it builds the task and again for every access to the split (ARC-Easy's 2,376
    questions were converted 80 times, 9 of the 23 s of a smoke pruning study). Keyed by the
    dataset's content fingerprint; datasets without one are converted every time."""
    @functools.wraps(process)
    def wrapper(dataset):
        fingerprint = getattr(dataset, "_fingerprint", None)
        if fingerprint is None:
            return process(dataset)
        key = (process.__name__, fingerprint)
        if key not in _CONVERTED:
            _CONVERTED[key] = process(dataset)
        return _CONVERTED[key]
    return wrapper


def _map_label(dataset, fn):
    """Replace the ``label`` column by ``fn(label)`` (batched: lm-eval calls process_docs for
    every access to the split)."""
    return dataset.map(lambda b: {"label": [fn(x) for x in b["label"]]}, batched=True,
                       load_from_cache_file=False)


def _from_rows(dataset, rows: list[dict]):
    import datasets  # heavy and optional: only for the task documents lm-eval asks for

    if not rows:
        raise ValueError("process_docs produced no rows")
    return datasets.Dataset.from_list(rows)


# ------------------------------------------------------------------ SuperGLUE, one row per doc

@_once_per_dataset
def process_boolq(dataset):
    """BoolQ: label ``"true"``/``True`` -> 1, ``"false"``/``False`` -> 0 (choices no, yes)."""
    return _map_label(dataset, _as_bool_int)


@_once_per_dataset
def process_wic(dataset):
    """WiC: label ``"true"``/``True`` -> 1, else 0 (choices ``no``, ``yes``)."""
    return _map_label(dataset, _as_bool_int)


@_once_per_dataset
def process_cb(dataset):
    """CB: entailment -> 0, contradiction -> 1, neutral -> 2 (choices True, False, Neither)."""
    return _map_label(dataset, lambda x: _as_class_int(x, CB_LABELS))


@_once_per_dataset
def process_rte(dataset):
    """RTE: entailment -> 0, not_entailment -> 1 (choices True, False)."""
    return _map_label(dataset, lambda x: _as_class_int(x, RTE_LABELS))


# ------------------------------------------------------------------ COPA (built-in utils, mirrored)

def _lower_first(choice: str) -> str:
    return choice[0].lower() + choice[1:]


def copa_doc_to_text(doc) -> str:
    """The premise without its final period, then ``because`` / ``therefore``."""
    connector = {"cause": "because", "effect": "therefore"}[doc["question"]]
    return doc["premise"].strip()[:-1] + f" {connector}"


def copa_doc_to_target(doc) -> str:
    correct = doc["choice1"] if doc["label"] == 0 else doc["choice2"]
    return " " + _lower_first(correct)


def copa_doc_to_choice(doc) -> list[str]:
    return [" " + _lower_first(doc["choice1"]), " " + _lower_first(doc["choice2"])]


# ------------------------------------------------------------------ MultiRC: one row per answer

@_once_per_dataset
def process_multirc(dataset):
    """Flatten passages -> one row per answer option, as ``aps/super_glue`` (multirc) has them:
    ``paragraph, question, answer, label`` (1 = the answer is correct) and
    ``idx = {paragraph, question, answer}``."""
    rows = []
    for doc in dataset.to_list():  # one Arrow conversion, not one per row
        passage = doc["passage"]
        for q in passage["questions"]:
            for a in q["answers"]:
                rows.append({
                    "paragraph": passage["text"], "question": q["question"],
                    "answer": a["text"], "label": _as_bool_int(a["label"]),
                    "idx": {"paragraph": doc["idx"], "question": q["idx"], "answer": a["idx"]},
                })
    return _from_rows(dataset, rows)


# ------------------------------------------------------------------ ReCoRD

def _record_doc(passage: str, query: str, entities, answers) -> dict:
    # as lm-eval's built-in record/util.py process_docs: sorted, de-duplicated strings
    return {"passage": passage, "query": query,
            "entities": sorted(set(entities)), "answers": sorted(set(answers))}


@_once_per_dataset
def process_record(dataset):
    """Local SuperGLUE ReCoRD files (passage with entity spans, several queries) -> one row per
    query with entity and answer strings. Entity spans are inclusive: ``text[start:end + 1]``."""
    rows = []
    for doc in dataset.to_list():
        text = doc["passage"]["text"]
        entities = [text[e["start"]:e["end"] + 1] for e in doc["passage"]["entities"]]
        for qa in doc["qas"]:
            rows.append(_record_doc(text, qa["query"], entities,
                                    [a["text"] for a in qa["answers"]]))
    return _from_rows(dataset, rows)


@_once_per_dataset
def process_record_hub(dataset):
    """Hub rows (``aps/super_glue`` record) -> the built-in task's processed docs."""
    return dataset.map(lambda d: _record_doc(d["passage"], d["query"], d["entities"],
                                             d["answers"]), load_from_cache_file=False)


def record_doc_to_text(doc) -> str:
    initial_text, *highlights = doc["passage"].strip().split("\n@highlight\n")
    text = initial_text + "\n\n"
    for highlight in highlights:
        text += f"  - {highlight}.\n"
    return text


def _record_answer(query: str, entity: str) -> str:
    return f"  - {query}".replace("@placeholder", entity)


def record_doc_to_target(doc) -> str:
    return _record_answer(doc["query"], doc["answers"][0])


def record_doc_to_choice(doc) -> list[str]:
    return [_record_answer(doc["query"], e) for e in doc["entities"]]


def _normalize_answer(s: str) -> str:
    # SQuAD v1.1 normalization (as transformers' former squad_metrics.normalize_answer)
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s, flags=re.UNICODE)
    return " ".join(s.split())


def squad_exact(a: str, b: str) -> int:
    """1 when both strings are equal after SQuAD normalization."""
    return int(_normalize_answer(a) == _normalize_answer(b))


def squad_f1(a: str, b: str) -> float:
    """SQuAD token-overlap F1 between two strings (symmetric)."""
    ta, tb = _normalize_answer(a).split(), _normalize_answer(b).split()
    if not ta or not tb:
        return float(ta == tb)
    same = sum((collections.Counter(ta) & collections.Counter(tb)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(tb), same / len(ta)
    return 2 * precision * recall / (precision + recall)


def record_process_results(doc, results) -> dict:
    """As the built-in ``record/util.py`` ``process_results``: the highest-likelihood entity,
    scored against the gold answers by max token F1 and max exact match. (The built-in imports
    ``transformers.data.metrics.squad_metrics``, which transformers 5 removed; this is the same
    SQuAD arithmetic.)"""
    lls = [r[0] for r in results]
    prediction = doc["entities"][max(range(len(lls)), key=lls.__getitem__)]
    return {"f1": max(squad_f1(prediction, g) for g in doc["answers"]),
            "em": max(squad_exact(prediction, g) for g in doc["answers"])}


# ------------------------------------------------------------------ CB macro-F1 (built-in)

def cb_multi_f1(items) -> float:
    """Unweighted mean of the three per-class F1 scores (lm-eval's ``cb_multi_fi``)."""
    from sklearn.metrics import f1_score  # heavy and optional: only for CB's F1

    preds, golds = (np.asarray(x) for x in zip(*items))
    return float(np.mean([f1_score(golds == c, preds == c, zero_division=0.0) for c in range(3)]))


# ------------------------------------------------------------------ ARC

@_once_per_dataset
def process_arc(dataset):
    """Local ARC rows ``{id, question: {stem, choices: [{text, label}]}, answerKey}`` -> hub rows
    ``{id, question, choices: {text: [...], label: [...]}, answerKey}``."""
    def convert(doc):
        ch = doc["question"]["choices"]
        return {"id": doc["id"], "question": doc["question"]["stem"],
                "choices": {"text": [c["text"] for c in ch], "label": [c["label"] for c in ch]},
                "answerKey": doc["answerKey"]}
    return _from_rows(dataset, [convert(d) for d in dataset.to_list()])
