"""Fine-tuning tasks of the paper's Table 1: their formatting, deterministic splits and encoding.

Tasks (``TASKS``):

* ``multirc`` (binary): one example per candidate answer, ``"paragraph: … question: … answer: …"``,
  label = whether the answer is correct. Grouped by paragraph, so one paragraph's answers never
  fall on both sides of the split.
* ``boolq`` (binary): ``"question: …? passage: … answer:"``, label = the answer (true = 1).
* ``cb`` (binary, as the paper casts its classification tasks): ``"premise: … hypothesis: … label:"``,
  label = entailment (1) against the rest (0: SuperGLUE's ``contradiction`` and ``neutral`` merged;
  :data:`CB_CLASSES` are the source's three classes).
* ``hh-rlhf`` (pairwise reward modelling): Anthropic HH-RLHF helpful-base pairs; each example is
  the ``chosen`` and the ``rejected`` dialogue.

The trailing ``"answer:"`` / ``"label:"`` cue is our addition to the paper's formatting: a decoder's
head reads the last real token, and without it that token would be wherever truncation cut the
passage.

Offline there are only validation sets (and HH's test set), so each is split into a fine-tune
part and a held-out part by :func:`split_examples`: groups (passages for MultiRC and BoolQ,
examples otherwise) are ordered by the sha256 of ``"<task>:<group>"`` and the first
``round(heldout_fraction · n_groups)`` are held out. The split depends on nothing else (not on
the seed, the model or the file order), and the two parts are disjoint by construction.

Encoding (:func:`encode_examples`): each text is a list of :class:`Segment`; the segments are
tokenized separately (no special tokens) and concatenated, and the one truncatable segment (the
passage or the dialogue) is cut, on its stated side, so that the whole fits ``max_len`` with BOS
(and, for encoders, a final ``[SEP]``). Sequences are right-padded in batches by
:meth:`EncodedSet.batch`; padding never enters a loss or a statistic.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..data import load_eval
from ..errors import LinUtilsError

__all__ = [
    "TASKS", "CB_CLASSES", "TaskSpec", "Segment", "Example", "EncodedSet", "task_spec", "load_examples",
    "pad_right", "split_examples", "encode_examples", "shuffle_labels", "special_ids",
]


@dataclass(frozen=True)
class TaskSpec:
    """What a task is.

    Attributes:
        name: the key in :data:`TASKS`.
        eval_name: the :func:`lin_utils.data.load_eval` set it reads.
        split: that set's split (the validation set; HH's test set).
        kind: ``"binary"`` (one logit, BCE), ``"multiclass"`` (``n_classes`` logits, CE) or
            ``"pairwise"`` (one scalar reward, loss −log σ(r_chosen − r_rejected)).
        labels: class names, index = label.
    """

    name: str
    eval_name: str
    split: str
    kind: str
    labels: tuple[str, ...]

    @property
    def n_outputs(self) -> int:
        """Width of the head: 1 for binary and pairwise, the class count otherwise."""
        return len(self.labels) if self.kind == "multiclass" else 1

    @property
    def seqs_per_example(self) -> int:
        """Sequences per example: 2 (chosen, rejected) for pairwise, else 1."""
        return 2 if self.kind == "pairwise" else 1


#: CB's classes in the source (SuperGLUE); the task is binary: entailment against the other two
CB_CLASSES = ("entailment", "contradiction", "neutral")

TASKS: dict[str, TaskSpec] = {
    "multirc": TaskSpec("multirc", "multirc", "validation", "binary", ("false", "true")),
    "boolq": TaskSpec("boolq", "boolq", "validation", "binary", ("false", "true")),
    "cb": TaskSpec("cb", "cb", "validation", "binary", ("not entailment", "entailment")),
    "hh-rlhf": TaskSpec("hh-rlhf", "hh-rlhf-helpful", "test", "pairwise", ("chosen", "rejected")),
}


def task_spec(name: str) -> TaskSpec:
    """The :class:`TaskSpec` of ``name``; LinUtilsError naming the argument otherwise."""
    if name not in TASKS:
        raise LinUtilsError(f"task must be one of {', '.join(TASKS)}, got {name!r}")
    return TASKS[name]


@dataclass(frozen=True)
class Segment:
    """A piece of an input text. ``truncate`` is ``None`` (kept whole), ``"right"`` (keep its
    start) or ``"left"`` (keep its end); at most one segment of a text is truncatable."""

    text: str
    truncate: str | None = None


@dataclass(frozen=True)
class Example:
    """One task example.

    Attributes:
        group: the split unit (examples of a group stay together).
        texts: one text (classification) or two (pairwise: chosen, rejected), each a tuple of
            :class:`Segment`.
        label: class index; 0 for pairwise (the first text is the preferred one).
        uid: a stable id of the example within its task (for provenance).
    """

    group: str
    texts: tuple[tuple[Segment, ...], ...]
    label: int
    uid: str


def _bool_label(value, where: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return int(value.lower() == "true")
    raise LinUtilsError(f"{where}: cannot read label {value!r} as a boolean")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_examples(task: str) -> list[Example]:
    """Every labelled example of ``task``, in file order (from the local mirror, else the hub)."""

    spec = task_spec(task)
    rows = load_eval(spec.eval_name, spec.split)
    out: list[Example] = []
    if task == "boolq":
        for i, r in enumerate(rows):
            q = r["question"].strip()
            q = q if q.endswith("?") else q + "?"
            texts = ((Segment(f"question: {q}\n"), Segment(f"passage: {r['passage'].strip()}", "right"),
                      Segment("\nanswer:")),)
            # BoolQ asks several questions about some passages: group by passage.
            out.append(Example(_digest(r["passage"]), texts, _bool_label(r["label"], f"boolq row {i}"),
                               str(r.get("idx", i))))
    elif task == "multirc":
        for r in rows:
            p = r["passage"]
            for q in p["questions"]:
                for a in q["answers"]:
                    texts = ((Segment(f"paragraph: {p['text'].strip()}", "right"),
                              Segment(f"\nquestion: {q['question'].strip()}\nanswer: {a['text'].strip()}")),)
                    out.append(Example(str(r["idx"]), texts, _bool_label(a["label"], "multirc answer"),
                                       f"{r['idx']}-{q['idx']}-{a['idx']}"))
    elif task == "cb":
        for i, r in enumerate(rows):
            if r["label"] not in CB_CLASSES:
                raise LinUtilsError(f"cb row {i}: unknown label {r['label']!r}")
            texts = ((Segment(f"premise: {r['premise'].strip()}", "right"),
                      Segment(f"\nhypothesis: {r['hypothesis'].strip()}\nlabel:")),)
            out.append(Example(str(r.get("idx", i)), texts, int(r["label"] == "entailment"), str(r.get("idx", i))))
    else:  # hh-rlhf: keep the end of each dialogue (the final answer is what differs)
        for i, r in enumerate(rows):
            texts = ((Segment(r["chosen"].strip(), "left"),), (Segment(r["rejected"].strip(), "left"),))
            out.append(Example(str(i), texts, 0, str(i)))
    if not out:
        raise LinUtilsError(f"task {task}: no examples found")
    return out


def split_examples(task: str, examples: Sequence[Example], heldout_fraction: float
                   ) -> tuple[list[Example], list[Example], dict]:
    """Deterministic, disjoint split into ``(finetune, heldout, info)``.

    Groups are ordered by ``sha256("<task>:<group>")``; the first ``round(heldout_fraction ·
    n_groups)`` groups (at least one, and at least one left for fine-tuning) are held out. Both
    parts keep the file order. ``info`` (JSON-ready, for the result's provenance) gives the rule,
    the counts, the held-out group ids and the sha256 of the sorted held-out example ids.
    """
    if not isinstance(heldout_fraction, (int, float)) or isinstance(heldout_fraction, bool) \
            or not 0 < heldout_fraction < 1:
        raise LinUtilsError(f"heldout_fraction must be a number in (0, 1), got {heldout_fraction!r}")
    groups = list(dict.fromkeys(e.group for e in examples))
    if len(groups) < 2:
        raise LinUtilsError(f"task {task}: {len(groups)} group(s); a split needs at least 2")
    order = sorted(groups, key=lambda g: hashlib.sha256(f"{task}:{g}".encode()).hexdigest())
    n_held = min(max(round(heldout_fraction * len(groups)), 1), len(groups) - 1)
    held = set(order[:n_held])
    finetune = [e for e in examples if e.group not in held]
    heldout = [e for e in examples if e.group in held]
    held_ids = sorted(e.uid for e in heldout)
    info = dict(
        task=task, rule="groups ordered by sha256('<task>:<group>'); the first round(fraction * groups) are held out",
        heldout_fraction=float(heldout_fraction), n_groups=len(groups), n_heldout_groups=n_held,
        n_finetune=len(finetune), n_heldout=len(heldout),
        heldout_groups=sorted(held),
        heldout_ids_sha256=hashlib.sha256(json.dumps(held_ids).encode()).hexdigest(),
    )
    return finetune, heldout, info


def special_ids(tokenizer, encoder: bool) -> tuple[int, int | None, int]:
    """``(bos, eos_or_none, pad)`` ids used to frame sequences.

    BOS follows :func:`lin_utils.data.text_chunks` (the tokenizer's BOS, else its EOS; for an
    encoder, [CLS], which :func:`lin_utils.models.load_model` installs as BOS). An encoder's
    sequence also ends with [SEP]; a decoder's has no end token. Padding uses the pad id, else EOS,
    else 0 (padding is masked everywhere).
    """
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if bos is None:
        raise LinUtilsError("the tokenizer has neither a BOS nor an EOS token to start sequences with")
    end = getattr(tokenizer, "sep_token_id", None) if encoder else None
    pad = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)
    return int(bos), (None if end is None else int(end)), int(pad)


def _encode_text(segments: Sequence[Segment], ids_of: dict[str, list[int]], max_len: int, bos: int,
                 end: int | None) -> list[int]:
    pieces = [ids_of[s.text] for s in segments]
    budget = max_len - 1 - (end is not None)
    fixed = sum(len(p) for p, s in zip(pieces, segments) if s.truncate is None)
    room = max(budget - fixed, 0)
    ids: list[int] = []
    for p, s in zip(pieces, segments):
        if s.truncate == "right":
            p = p[:room]
        elif s.truncate == "left":
            p = p[max(len(p) - room, 0):] if room else []
        ids.extend(p)
    ids = ids[:budget]  # fixed segments alone too long: keep their start
    return [bos, *ids] + ([end] if end is not None else [])


@dataclass
class EncodedSet:
    """Token ids of a task's examples, ready to batch.

    Attributes:
        seqs: one list of ids per sequence; example ``i`` owns sequences
            ``i*k .. i*k+k-1`` with ``k = seqs_per_example`` (chosen first for pairwise).
        labels: (n_examples,) long.
        seqs_per_example: 1, or 2 for pairwise.
        pad_id: the id written into padding (masked).
    """

    seqs: list[list[int]]
    labels: torch.Tensor
    seqs_per_example: int
    pad_id: int
    uids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_tokens(self) -> int:
        """Real tokens over all sequences (BOS included)."""
        return sum(len(s) for s in self.seqs)

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Examples ``indices`` as ``(input_ids, attention_mask, labels)``.

        Shapes: ``input_ids`` and ``attention_mask`` (len(indices) · seqs_per_example, T) long,
        right-padded to the longest sequence T of the batch, example by example (chosen, then
        rejected); ``labels`` (len(indices),) long.
        """
        k = self.seqs_per_example
        rows = [self.seqs[i * k + j] for i in indices for j in range(k)]
        return (*pad_right(rows, self.pad_id), self.labels[list(indices)])


def pad_right(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists: ``(input_ids, attention_mask)``, each (len(rows), max length) long."""
    if not rows:
        raise LinUtilsError("pad_right: no sequences to batch")
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.as_tensor(list(r), dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


def encode_examples(examples: Sequence[Example], tokenizer, max_len: int, *, encoder: bool = False) -> EncodedSet:
    """Tokenize examples into an :class:`EncodedSet` (at most ``max_len`` ids per sequence)."""
    if not isinstance(max_len, int) or isinstance(max_len, bool) or max_len < 4:
        raise LinUtilsError(f"max_len must be an integer >= 4, got {max_len!r}")
    if not examples:
        raise LinUtilsError("encode_examples: no examples")
    k = {len(e.texts) for e in examples}
    if len(k) != 1:
        raise LinUtilsError(f"encode_examples: examples mix {sorted(k)} texts per example")
    bos, end, pad = special_ids(tokenizer, encoder)
    # One batched call over the distinct segment texts (MultiRC repeats a paragraph per answer).
    texts = list(dict.fromkeys(s.text for e in examples for t in e.texts for s in t))
    ids_of = dict(zip(texts, tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]))
    seqs = [_encode_text(t, ids_of, max_len, bos, end) for e in examples for t in e.texts]
    return EncodedSet(seqs, torch.tensor([e.label for e in examples], dtype=torch.long), k.pop(), pad,
                      [e.uid for e in examples])


def shuffle_labels(data: EncodedSet, kind: str, seed: int) -> EncodedSet:
    """The control of a fine-tuning run: ``data`` with its labels made uninformative, same inputs.

    Classification (``binary``, ``multiclass``): the labels permuted among the examples (class
    counts kept). ``pairwise``: each pair's two dialogues swapped with probability 1/2, so the
    "chosen" one (first, label 0) is a coin flip. Deterministic in ``seed``
    (``torch.Generator().manual_seed(seed · 1_000_003 + 7)``); ``data`` is left unchanged.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + 7)
    n = len(data)
    if kind == "pairwise":
        if data.seqs_per_example != 2:
            raise LinUtilsError(f"pairwise data has {data.seqs_per_example} sequence(s) per example, not 2")
        swap = torch.rand(n, generator=g) < 0.5
        seqs = []
        for i in range(n):
            a, b = data.seqs[2 * i], data.seqs[2 * i + 1]
            seqs += [list(b), list(a)] if bool(swap[i]) else [list(a), list(b)]
        return EncodedSet(seqs, data.labels.clone(), 2, data.pad_id, list(data.uids))
    if kind not in ("binary", "multiclass"):
        raise LinUtilsError(f"kind must be binary, multiclass or pairwise, got {kind!r}")
    perm = torch.randperm(n, generator=g)
    return EncodedSet([list(s) for s in data.seqs], data.labels[perm].clone(), data.seqs_per_example, data.pad_id,
                      list(data.uids))
